"""Waiting longer than an hour, through the local CloudFormation: examples/long-update.yaml, a failure after the
answer, a rollback while the work still runs (CloudFormation cancels what is in progress), and a Delete that
cannot wait for AppStream to finish."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.appstream import LocalAppStream
from appstream_image_local.cfn.driver import Cloud, StackFailed
from tests.conftest import ROOT

pytestmark = pytest.mark.toolchain  # synthesized assemblies (tools/synth.py: a jsii runtime when its cache is cold)

MakeCloud = Callable[..., tuple[Cloud, LocalAppStream, list[str]]]
PROVIDER = "AppStreamImageProvider"
EXAMPLE = ROOT / "examples" / "long-update.yaml"


def _scenario(**durations: float) -> dict[str, Any]:
    return {
        "durations": {"copy": 4, "update": 8, "delete": 1, **durations},
        "images": [{"name": "golden-base"}, {"name": "broken-base", "copies_end": "FAILED"}, {"name": "bystander"}],
    }


def _cloud(make_cloud: MakeCloud, assemblies: dict[str, Path], **durations: float) -> tuple[Cloud, Any, list[str]]:
    # EventBridge's minute runs ten times faster (as the service's clock runs a quarter of the scenario's).
    cloud, service, lines = make_cloud(_scenario(**durations), schedule_scale=0.1)
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    return cloud, service, lines


def _rules(cloud: Cloud) -> list[str]:
    return [rule["Name"] for rule in cloud.scheduler.rules()]


def _template(tmp_path: Path, resources: dict[str, Any]) -> Path:
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"Resources": resources}))
    return path


def _image(name: str, handle: str, source: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Custom::AppStreamImage",
        "Properties": {
            "ServiceToken": {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"},
            "ImageName": name,
            "Source": source,
            "AvailableSignal": {"Handle": {"Ref": handle}, "Timeout": 43200},
            **extra,
        },
    }


def _fails_after(resource: str) -> dict[str, Any]:
    """A resource that fails (it adopts an image that does not exist) once `resource` has answered."""
    return {
        "Type": "Custom::AppStreamImage",
        "DependsOn": resource,
        "Properties": {
            "ServiceToken": {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"},
            "ImageName": "no-such-image",
        },
    }


def _wait(image: str, handle: str) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudFormation::WaitCondition",
        "DependsOn": image,
        "Properties": {"Handle": {"Ref": handle}, "Timeout": "43200"},
    }


def test_the_plain_cloudformation_example_waits_then_starts_the_fleet(
    make_cloud: MakeCloud, assemblies: dict[str, Path]
) -> None:
    cloud, service, lines = _cloud(make_cloud, assemblies)
    stack = cloud.deploy("Long", EXAMPLE)
    assert service.backend.images["patched-2026-11"].state == "AVAILABLE"
    assert service.backend.fleets["Long-fleet"].image_name == "patched-2026-11"
    assert stack.outputs["PatchedImageArn"].endswith(":image/patched-2026-11")

    def at(status: str, logical_id: str) -> int:
        return next(n for n, line in enumerate(lines) if f"| {status}" in line and line.rstrip().endswith(logical_id))

    assert at("CREATE_COMPLETE", "PatchedImage") < at("CREATE_COMPLETE", "Patched202611Available")
    assert at("CREATE_COMPLETE", "Patched202611Available") < at("CREATE_IN_PROGRESS", "Fleet")
    cloud.destroy("Long")
    cloud.destroy(PROVIDER)
    assert "patched-2026-11" not in service.backend.images
    assert _rules(cloud) == []
    assert cloud.leaks == []
    assert cloud.violations == []


def test_a_failure_after_the_answer_fails_the_wait_condition_and_the_rollback_removes_the_image(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, _ = _cloud(make_cloud, assemblies)
    template = _template(
        tmp_path,
        {
            "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
            "Broken": _image("broken-copy", "Handle", {"Type": "Copy", "SourceImageName": "broken-base"}),
            "Available": _wait("Broken", "Handle"),
        },
    )
    with pytest.raises(StackFailed, match="WaitCondition received failed message: 'Image broken-copy is FAILED"):
        cloud.deploy("Broken", template)
    assert "Broken" not in cloud.stacks  # ROLLBACK_COMPLETE, then gone
    assert "broken-copy" not in service.backend.images
    assert _rules(cloud) == []
    assert cloud.leaks == []
    cloud.destroy(PROVIDER)


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
def test_a_rollback_while_the_update_still_runs_stops_its_polling_and_removes_the_image(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, lines = _cloud(make_cloud, assemblies, update=160)  # 40 s: it outlasts the other's failure
    template = _template(
        tmp_path,
        {
            "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
            "Patched": _image("patched-long", "Handle", {"Type": "Update", "SourceImageName": "golden-base"}),
            "Available": _wait("Patched", "Handle"),
            # Another resource fails once the image resource has answered: CloudFormation cancels the wait.
            "Other": _fails_after("Patched"),
        },
    )
    with pytest.raises(StackFailed, match="Image no-such-image does not exist"):
        cloud.deploy("Rollback", template)
    assert any("Resource creation cancelled" in line and "Available" in line for line in lines)
    assert "patched-long" not in service.backend.images  # waited out CREATING, then deleted
    assert [c["error"] for c in service.audit.calls("DeleteImage", Name="patched-long")][-1] is None
    assert _rules(cloud) == []  # the polling that waited for AVAILABLE was stopped
    assert cloud.leaks == []
    cloud.destroy(PROVIDER)


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
def test_a_delete_that_cannot_wait_for_appstream_fails_naming_the_image_and_a_later_delete_finishes(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, lines = _cloud(make_cloud, assemblies, update=400)  # 100 s on the service's clock
    template = _template(
        tmp_path,
        {
            "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
            "Patched": _image(
                "patched-slow", "Handle", {"Type": "Update", "SourceImageName": "golden-base"}, ServiceTimeout=60
            ),
            "Available": _wait("Patched", "Handle"),
            "Other": _fails_after("Patched"),
        },
    )
    with pytest.raises(StackFailed):
        cloud.deploy("Slow", template)
    assert cloud.stacks["Slow"].status == "ROLLBACK_FAILED"
    failed = [line for line in lines if "DELETE_FAILED" in line and line.rstrip().split("|")[-1].startswith(" Patched")]
    assert failed
    assert "patched-slow is still CREATING" in failed[0]
    assert service.backend.images["patched-slow"].state == "CREATING"  # nothing leaked silently: named, kept
    service.backend.images["patched-slow"].state_until = service.backend.now()  # AppStream finishes (fast-forward)
    cloud.destroy("Slow")  # DeleteStack again, from ROLLBACK_FAILED
    assert "patched-slow" not in service.backend.images
    assert _rules(cloud) == []
    cloud.destroy(PROVIDER)

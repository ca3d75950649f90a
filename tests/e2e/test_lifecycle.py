"""The whole lifecycle offline: synthesized stacks and examples/*.yaml deployed, updated and destroyed
by the local driver, with the provider running from its asset as Lambda would run it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.appstream import LocalAppStream
from appstream_image_local.audit import mutated_images, outside
from appstream_image_local.cfn.driver import Cloud, Stack, StackFailed
from provider.contract import OWNER_TAG, PROVIDER_TAGS, owner_value
from tests.conftest import ROOT

pytestmark = pytest.mark.toolchain  # synthesized assemblies (tools/synth.py: a jsii runtime when its cache is cold)

EXAMPLE = "AppStreamImageExample"
PROVIDER = "AppStreamImageProvider"

MakeCloud = Callable[..., tuple[Cloud, LocalAppStream, list[str]]]


def images(stack: Stack) -> dict[str, str]:
    return {lid: live.physical_id for lid, live in stack.resources.items() if live.type == "Custom::AppStreamImage"}


HOLD = 3600.0  # seconds: a fleet lets go of its old image only when the test says so


def _release_after_two_checks(service: LocalAppStream, fleet: str) -> None:
    """The fleet moves off its old image once the cleanup's Delete has seen it held twice (DescribeFleets)."""
    before = len(service.audit.calls("DescribeFleets"))
    ends = time.monotonic() + 600
    while time.monotonic() < ends:
        if len(service.audit.calls("DescribeFleets")) >= before + 2:
            with service.backend._lock:
                moving = service.backend.fleets[fleet]
                moving.image_name, moving.release_at = moving.release_to, None
            return
        time.sleep(0.05)


def assert_clean(cloud: Cloud, service: LocalAppStream, owned: set[str]) -> None:
    """Nothing outside the stack was changed; no polling leftovers; every response was valid."""
    assert outside(service.audit.entries(), owned) == {}
    assert cloud.leaks == []
    assert cloud.violations == []


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
def test_example_app_deploy_update_in_place_rotate_and_destroy(
    make_cloud: MakeCloud, assemblies: dict[str, Path]
) -> None:
    # The fleet keeps the old image until the test releases it (an event, not a race with the cleanup's start).
    cloud, service, lines = make_cloud(fleet_switch_seconds=HOLD)
    backend = service.backend

    stack = cloud.deploy(EXAMPLE, assemblies["v1"] / f"{EXAMPLE}.template.json")
    ids = images(stack)
    golden_id = next(lid for lid in ids if lid.startswith("GoldenImage"))
    assert ids[golden_id] == "golden-2026-11"
    golden = backend.images["golden-2026-11"]
    assert golden.state == "AVAILABLE"
    assert golden.tags["team"] == "euc"
    assert golden.tags[OWNER_TAG] == owner_value(stack.stack_id, golden_id)
    assert golden.tags[OWNER_TAG].startswith(f"{EXAMPLE}/{golden_id}/")
    assert backend.accepted_permissions("golden-2026-11") == {
        "210987654321": {"allowFleet": True, "allowImageBuilder": False}
    }
    assert backend.fleets[f"{EXAMPLE}-fleet"].image_name == "golden-2026-11"
    assert stack.outputs["GoldenImageArn"] == golden.arn

    # In place: a tag changes, the physical id does not, nothing is deleted.
    stack = cloud.deploy(EXAMPLE, assemblies["tags"] / f"{EXAMPLE}.template.json")
    assert images(stack)[golden_id] == "golden-2026-11"
    assert backend.images["golden-2026-11"].tags["team"] == "vdi"
    assert service.audit.calls("DeleteImage") == []

    # Rotation: a new ImageName replaces the image; the fleet moves; the old image goes once released.
    releaser = threading.Thread(target=_release_after_two_checks, args=(service, f"{EXAMPLE}-fleet"), daemon=True)
    releaser.start()
    stack = cloud.deploy(EXAMPLE, assemblies["v2"] / f"{EXAMPLE}.template.json")
    releaser.join(timeout=5)
    assert images(stack)[golden_id] == "golden-2026-12"
    assert "golden-2026-11" not in backend.images
    assert backend.fleets[f"{EXAMPLE}-fleet"].image_name == "golden-2026-12"
    # The fleet still held it: InUse Wait kept checking, and called DeleteImage only once it let go.
    deletes = [c for c in service.audit.calls("DeleteImage", Name="golden-2026-11") if c["error"] is None]
    assert len(deletes) == 1
    fleet_checks = [c for c in service.audit.calls("DescribeFleets") if c["seq"] < deletes[0]["seq"]]
    assert len(fleet_checks) >= 2
    assert any("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS" in line for line in lines)

    cloud.destroy(EXAMPLE)
    owned = {"builder-output-2026-11", "golden-2026-11", "golden-2026-12"}
    assert not {"golden-2026-11", "golden-2026-12"} & set(backend.images)
    # The adopted image is released, not deleted (OnDelete's default for Source Existing): kept, without our tags.
    assert not set(PROVIDER_TAGS) & set(backend.images["builder-output-2026-11"].tags)
    assert {"golden-base", "unrelated-team-image", "AppStream-WinServer2022-11-01-2026"} <= set(backend.images)
    assert f"{EXAMPLE}-fleet" not in backend.fleets
    assert_clean(cloud, service, owned)
    assert cloud.functions.by_arn == {}


def test_plain_cloudformation_example_through_the_provider_stacks_export(
    make_cloud: MakeCloud, assemblies: dict[str, Path]
) -> None:
    cloud, service, _ = make_cloud()
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    assert "AppStreamImageProvider-ServiceToken" in cloud.exports
    template = ROOT / "examples" / "images.yaml"

    stack = cloud.deploy("Images", template)
    assert images(stack) == {"BuilderImage": "builder-output-2026-11", "GoldenImage": "golden-2026-11"}
    assert backend.fleets["Images-fleet"].image_name == "golden-2026-11"
    assert stack.outputs["BuilderImagePlatform"] == "WINDOWS_SERVER_2022"
    assert stack.outputs["GoldenImageCreated"].startswith("20")

    stack = cloud.deploy("Images", template, {"GoldenImageName": "golden-2026-12"})
    assert images(stack)["GoldenImage"] == "golden-2026-12"
    assert "golden-2026-11" not in backend.images

    cloud.destroy("Images")
    cloud.destroy(PROVIDER)
    assert_clean(cloud, service, {"builder-output-2026-11", "golden-2026-11", "golden-2026-12"})
    assert {"golden-base", "unrelated-team-image"} <= set(backend.images)
    # The function's log lines are Lambda's JSON format (LoggingConfig LogFormat JSON), with the provider's context.
    [log] = sorted(cloud.runner.log_dir.glob("*.log"))
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert records
    assert all({"timestamp", "level", "message", "logger", "requestId"} <= set(r) for r in records)
    assert any(r.get("phase") == "delete" and r.get("image") == "golden-2026-11" for r in records)


def test_a_failed_create_rolls_back_and_removes_what_it_made(
    make_cloud: MakeCloud, assemblies: dict[str, Path]
) -> None:
    scenario: dict[str, Any] = {
        "durations": {"copy": 1, "delete": 1},
        "images": [
            {"name": "builder-output-2026-11"},
            {"name": "broken-base", "copies_end": "FAILED"},
            {"name": "unrelated-team-image"},
        ],
    }
    cloud, service, lines = make_cloud(scenario)
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    with pytest.raises(StackFailed, match="IMAGE_COPY_FAILURE"):
        cloud.deploy("Images", ROOT / "examples" / "images.yaml", {"GoldenSource": "broken-base"})
    assert "Images" not in cloud.stacks
    assert any("ROLLBACK_COMPLETE" in line for line in lines)
    backend = service.backend
    assert "golden-2026-11" not in backend.images  # the failed copy was deleted by the rollback
    # The adoption had finished before the copy failed: the rollback gives the image back as it was found.
    assert backend.images["builder-output-2026-11"].state == "AVAILABLE"
    assert backend.images["builder-output-2026-11"].tags == {}
    assert backend.accepted_permissions("builder-output-2026-11") == {}
    assert {"broken-base", "unrelated-team-image"} <= set(backend.images)
    assert "Images-fleet" not in backend.fleets
    changed = mutated_images(service.audit.entries())
    assert set(changed) == {"golden-2026-11", "builder-output-2026-11"}
    cloud.destroy(PROVIDER)
    assert_clean(cloud, service, {"golden-2026-11", "builder-output-2026-11"})


def test_retain_keeps_the_image_and_sends_no_delete(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, lines = make_cloud()
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    template = tmp_path / "retain.yaml"
    template.write_text(
        "Resources:\n"
        "  Kept:\n"
        "    Type: Custom::AppStreamImage\n"
        "    DeletionPolicy: Retain\n"
        "    Properties:\n"
        "      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken\n"
        "      ImageName: builder-output-2026-11\n"
    )
    cloud.deploy("Retained", template)
    cloud.destroy("Retained")
    assert "builder-output-2026-11" in service.backend.images
    assert service.audit.calls("DeleteImage") == []
    assert any("DELETE_SKIPPED" in line for line in lines)
    cloud.destroy(PROVIDER)


def test_a_failed_update_rolls_back_and_keeps_the_old_image(make_cloud: MakeCloud, assemblies: dict[str, Path]) -> None:
    scenario: dict[str, Any] = {
        "durations": {"copy": 1, "delete": 1},
        "images": [
            {"name": "builder-output-2026-11"},
            {"name": "golden-base"},
            {"name": "broken-base", "copies_end": "FAILED"},
        ],
    }
    cloud, service, lines = make_cloud(scenario)
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    template = ROOT / "examples" / "images.yaml"
    cloud.deploy("Images", template)
    with pytest.raises(StackFailed, match="IMAGE_COPY_FAILURE"):
        cloud.deploy("Images", template, {"GoldenImageName": "golden-2026-12", "GoldenSource": "broken-base"})
    assert any("UPDATE_ROLLBACK_COMPLETE" in line for line in lines)
    stack = cloud.stacks["Images"]
    assert images(stack)["GoldenImage"] == "golden-2026-11"
    assert backend.images["golden-2026-11"].state == "AVAILABLE"
    assert backend.fleets["Images-fleet"].image_name == "golden-2026-11"
    assert service.audit.calls("DeleteImage", Name="golden-2026-11") == []
    # The failed replacement copy is being deleted (or gone), so no FAILED image is left behind.
    assert backend.snapshot()["images"].get("golden-2026-12", {}).get("State") in (None, "DELETING")
    # A later deploy with the same name and a fixed source succeeds.
    stack = cloud.deploy("Images", template, {"GoldenImageName": "golden-2026-12", "GoldenSource": "golden-base"})
    assert images(stack)["GoldenImage"] == "golden-2026-12"
    assert backend.images["golden-2026-12"].state == "AVAILABLE"
    cloud.destroy("Images")
    cloud.destroy(PROVIDER)
    assert_clean(cloud, service, {"builder-output-2026-11", "golden-2026-11", "golden-2026-12"})


def test_update_replace_policy_retain_keeps_the_replaced_image(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, lines = make_cloud()
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    template = tmp_path / "keep-old.yaml"
    body = (
        "Parameters:\n  Name:\n    Type: String\n"
        "Resources:\n"
        "  Golden:\n"
        "    Type: Custom::AppStreamImage\n"
        "    UpdateReplacePolicy: Retain\n"
        "    Properties:\n"
        "      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken\n"
        "      ImageName: !Ref Name\n"
        "      Source: {Type: Copy, SourceImageName: golden-base}\n"
    )
    template.write_text(body)
    cloud.deploy("KeepOld", template, {"Name": "golden-2026-11"})
    cloud.deploy("KeepOld", template, {"Name": "golden-2026-12"})
    assert {"golden-2026-11", "golden-2026-12"} <= set(service.backend.images)
    assert any("DELETE_SKIPPED" in line and "golden-2026-11 retained" in line for line in lines)
    cloud.destroy("KeepOld")
    assert "golden-2026-12" not in service.backend.images
    assert "golden-2026-11" in service.backend.images
    cloud.destroy(PROVIDER)


def test_a_provider_whose_policy_is_too_narrow_is_denied_offline_as_on_aws(
    make_cloud: MakeCloud, assemblies: dict[str, Path]
) -> None:
    cloud, service, _ = make_cloud()
    cloud.deploy(PROVIDER, assemblies["narrow"] / f"{PROVIDER}.template.json")  # manages team-a-* images only
    with pytest.raises(StackFailed) as excinfo:
        cloud.deploy("Images", ROOT / "examples" / "images.yaml")
    reason = str(excinfo.value)
    assert "Access denied: the provider's role may not call appstream:" in reason
    assert "It may manage only images named team-a-*" in reason
    denied = [e for e in service.audit.entries() if e["error"] == "AccessDeniedException"]
    assert denied
    assert all("is not authorized to perform: appstream:" in e["message"] for e in denied)
    assert service.audit.mutations() == []  # nothing outside the scope was changed
    cloud.destroy(PROVIDER)

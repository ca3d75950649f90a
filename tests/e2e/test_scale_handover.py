"""Sixty images that hand over to scheduled polling within the same second, through the local cloud with AWS's
limits on (a function policy of 20 KB, concurrent function updates refused, 300 rules a bus): every one is
waited for and signalled, and the stack's Delete leaves nothing (no schedule, rule, permission or image)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.appstream import LocalAppStream
from appstream_image_local.cfn.driver import Cloud

pytestmark = pytest.mark.toolchain  # the synthesized provider stack (tools/synth.py: jsii when its cache is cold)

MakeCloud = Callable[..., tuple[Cloud, LocalAppStream, list[str]]]
PROVIDER = "AppStreamImageProvider"
COUNT = 60


def _template(tmp_path: Path) -> Path:
    token = {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"}
    resources: dict[str, Any] = {}
    for n in range(COUNT):
        key = f"Copy{n:02d}"
        resources[f"{key}Handle"] = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
        resources[key] = {
            "Type": "Custom::AppStreamImage",
            "Properties": {
                "ServiceToken": token,
                "ImageName": f"copy-{n:02d}",
                "Source": {"Type": "Copy", "SourceImageName": "golden-base"},
                "AvailableSignal": {"Handle": {"Ref": f"{key}Handle"}, "Timeout": 43200},
            },
        }
        resources[f"{key}Available"] = {
            "Type": "AWS::CloudFormation::WaitCondition",
            "DependsOn": key,
            "Properties": {"Handle": {"Ref": f"{key}Handle"}, "Timeout": "43200"},
        }
    path = tmp_path / "sixty.json"
    path.write_text(json.dumps({"Resources": resources}))
    return path


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
def test_sixty_images_hand_over_at_once_and_leave_nothing(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    scenario = {
        "durations": {"copy": 40, "delete": 1},
        "limits": {"copies": COUNT, "images": COUNT + 10},  # every copy starts at once, so all hand over together
        "images": [{"name": "golden-base"}],
    }
    cloud, service, _ = make_cloud(scenario, schedule_scale=0.1)
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    stack = cloud.deploy("Sixty", _template(tmp_path))
    assert stack.status == "CREATE_COMPLETE"
    backend = service.backend
    assert all(backend.images[f"copy-{n:02d}"].state == "AVAILABLE" for n in range(COUNT))
    handed_over = [c for c in service.audit.calls("CopyImage") if c["error"] is None]
    assert len(handed_over) == COUNT

    functions = list(cloud.functions.by_arn.values())
    assert functions
    assert all(cloud.functions.policy_statements(f) == [] for f in functions)  # no permission ever added

    cloud.destroy("Sixty")
    assert not [n for n in backend.images if n.startswith("copy-")]
    assert cloud.schedules.targets() == {}
    assert cloud.scheduler.rules() == []
    assert cloud.leaks == []
    assert cloud.violations == []

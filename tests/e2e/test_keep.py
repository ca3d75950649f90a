"""Keep through the local CloudFormation and the provider's asset (its IAM policies enforced by the local IAM): two
rotations with Keep 1 retire the replaced images and delete the one past Keep, a fleet rolls back to the kept image
by name, and the stack delete leaves nothing of the resource."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.appstream import LocalAppStream
from appstream_image_local.cfn.driver import Cloud
from provider.contract import OWNER_TAG, RETIRED_TAG, owner_value

pytestmark = pytest.mark.toolchain  # synthesized assemblies (tools/synth.py: a jsii runtime when its cache is cold)

PROVIDER = "AppStreamImageProvider"
TOKEN = {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"}
MakeCloud = Callable[..., tuple[Cloud, LocalAppStream, list[str]]]
SCENARIO: dict[str, Any] = {"durations": {"copy": 1, "delete": 1}, "images": [{"name": "golden-base"}]}


def template(tmp_path: Path, name: str, fleet_image: Any = None) -> Path:
    """The image (Keep 1) and a fleet on it: on the image's name (its Ref) unless `fleet_image` names another."""
    image = {
        "Type": "Custom::AppStreamImage",
        "Properties": {
            "ServiceToken": TOKEN,
            "ServiceTimeout": 300,
            "ImageName": name,
            "Source": {"Type": "Copy", "SourceImageName": "golden-base"},
            "Keep": 1,
        },
    }
    fleet = {
        "Type": "AWS::AppStream::Fleet",
        "Properties": {"Name": "sales", "ImageName": fleet_image or {"Ref": "Golden"}},
    }
    path = tmp_path / f"{name}-{fleet_image or 'ref'}.json"
    path.write_text(json.dumps({"Resources": {"Golden": image, "Fleet": fleet}}))
    return path


def test_two_rotations_keep_one_image_a_fleet_rolls_back_to_it_by_name_and_the_stack_delete_leaves_nothing(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, _ = make_cloud(SCENARIO)
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    stack = cloud.deploy("Images", template(tmp_path, "golden-1"))
    owner = owner_value(stack.stack_id, "Golden")

    cloud.deploy("Images", template(tmp_path, "golden-2"))  # the first rotation: golden-1 retired
    assert RETIRED_TAG in backend.images["golden-1"].tags
    assert backend.images["golden-1"].tags[OWNER_TAG] == owner
    cloud.deploy("Images", template(tmp_path, "golden-3"))  # the second: golden-2 retired, golden-1 past Keep 1
    assert set(backend.images) == {"golden-base", "golden-2", "golden-3"}
    assert RETIRED_TAG in backend.images["golden-2"].tags
    assert RETIRED_TAG not in backend.images["golden-3"].tags

    # The fleet rolls back to the kept image by its name; the image resource is left as it is.
    cloud.deploy("Images", template(tmp_path, "golden-3", fleet_image="golden-2"))
    assert cloud.stacks["Images"].status == "UPDATE_COMPLETE"
    fleet = backend.fleets["sales"]
    assert "golden-2" in (fleet.image_name, fleet.release_to)  # UpdateFleet took it (an AVAILABLE image only)

    cloud.destroy("Images")
    assert set(backend.images) == {"golden-base"}  # the image and every retired one: nothing left to clean up

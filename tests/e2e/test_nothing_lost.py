"""Nothing lost that the user did not ask to lose, through the local CloudFormation and the provider's asset:
renamed resources keep their image on every path, and a rolled-back Create gives an adopted image back even
when the user asked for deletion on the stack's Delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.appstream import LocalAppStream
from appstream_image_local.cfn.driver import Cloud, StackFailed
from provider.contract import MOVED_FROM_TAG, OWNER_TAG, PROVIDER_TAGS, owner_value

pytestmark = pytest.mark.toolchain  # synthesized assemblies (tools/synth.py: a jsii runtime when its cache is cold)

PROVIDER = "AppStreamImageProvider"
TOKEN = {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"}
MakeCloud = Callable[..., tuple[Cloud, LocalAppStream, list[str]]]
SCENARIO: dict[str, Any] = {
    "durations": {"copy": 1, "delete": 1},
    "images": [
        {"name": "golden-base"},
        {"name": "builder-output-2026-11", "tags": {"made-by": "image-builder"}},
    ],
}


def image(logical_id: str = "Golden", name: str = "golden-2026-11", **props: Any) -> dict[str, Any]:
    source = {"Type": "Copy", "SourceImageName": "golden-base"}
    body = {"ServiceToken": TOKEN, "ServiceTimeout": 300, "ImageName": name, "Source": source, **props}
    return {logical_id: {"Type": "Custom::AppStreamImage", "Properties": body}}


BROKEN = {  # an unrelated resource that fails once the others are done
    "Broken": {
        "Type": "Custom::AppStreamImage",
        "Properties": {
            "ServiceToken": TOKEN,
            "ServiceTimeout": 300,
            "ImageName": "broken-2026-11",
            "Source": {"Type": "Copy", "SourceImageName": "no-such-base"},
        },
    }
}


def template(tmp_path: Path, name: str, *resources: dict[str, Any], after: str = "") -> Path:
    merged: dict[str, Any] = {k: v for r in resources for k, v in r.items()}
    if after and "Broken" in merged:
        merged["Broken"] = {**merged["Broken"], "DependsOn": after}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"Resources": merged}))
    return path


def deletes_of(service: LocalAppStream, name: str) -> int:
    return len([c for c in service.audit.calls("DeleteImage", Name=name) if c["error"] is None])


def test_a_renamed_resource_keeps_its_image_through_a_rollback_an_update_and_the_stack_delete(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, _ = make_cloud(SCENARIO)
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    stack = cloud.deploy("Images", template(tmp_path, "v1", image("Golden")))
    first = owner_value(stack.stack_id, "Golden")
    assert backend.images["golden-2026-11"].tags[OWNER_TAG] == first

    # The construct renamed, beside a resource that fails: the rollback gives the image back, deletes nothing.
    failing = template(tmp_path, "renamed-failing", image("GoldenRenamed"), BROKEN, after="GoldenRenamed")
    with pytest.raises(StackFailed, match="no-such-base"):
        cloud.deploy("Images", failing)
    assert cloud.stacks["Images"].status == "UPDATE_ROLLBACK_COMPLETE"
    tags = backend.images["golden-2026-11"].tags
    assert tags[OWNER_TAG] == first
    assert MOVED_FROM_TAG not in tags
    assert deletes_of(service, "golden-2026-11") == 0

    # The rename itself: the new logical id takes the image; CloudFormation's cleanup of the old one leaves it.
    stack = cloud.deploy("Images", template(tmp_path, "renamed", image("GoldenRenamed")))
    assert stack.status == "UPDATE_COMPLETE"
    assert stack.resources["GoldenRenamed"].physical_id == "golden-2026-11"
    tags = backend.images["golden-2026-11"].tags
    assert tags[OWNER_TAG] == owner_value(stack.stack_id, "GoldenRenamed")
    assert MOVED_FROM_TAG not in tags
    assert deletes_of(service, "golden-2026-11") == 0
    assert service.audit.calls("CopyImage", DestinationImageName="golden-2026-11")[1:] == []  # copied once

    # The stack's Delete removes it, exactly once.
    cloud.destroy("Images")
    assert "golden-2026-11" not in backend.images
    assert deletes_of(service, "golden-2026-11") == 1
    cloud.destroy(PROVIDER)
    assert cloud.leaks == []
    assert cloud.violations == []


def test_a_rolled_back_create_gives_an_adopted_image_back_even_with_on_delete_delete(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, _ = make_cloud(SCENARIO)
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    adopted = {
        "Adopted": {
            "Type": "Custom::AppStreamImage",
            "Properties": {
                "ServiceToken": TOKEN,
                "ImageName": "builder-output-2026-11",
                "OnDelete": "Delete",  # asked for on the stack's Delete, never on a rollback
                "Tags": [{"Key": "made-by", "Value": "platform-team"}, {"Key": "stage", "Value": "prod"}],
                "SharedWith": [{"AccountId": "210987654321"}],
            },
        }
    }
    with pytest.raises(StackFailed, match="no-such-base"):
        cloud.deploy("Images", template(tmp_path, "adopt-failing", adopted, BROKEN, after="Adopted"))
    assert "Images" not in cloud.stacks
    found = backend.images["builder-output-2026-11"]
    assert found.state == "AVAILABLE"
    assert found.tags == {"made-by": "image-builder"}  # as it was found: values put back, added tags removed
    assert backend.accepted_permissions("builder-output-2026-11") == {}
    assert deletes_of(service, "builder-output-2026-11") == 0

    # Deployed for good, then deleted: OnDelete Delete is what the user asked for, and now it applies.
    cloud.deploy("Images", template(tmp_path, "adopt", adopted))
    cloud.destroy("Images")
    assert "builder-output-2026-11" not in backend.images


def test_an_image_the_stack_made_is_kept_untagged_with_on_delete_release(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, _ = make_cloud(SCENARIO)
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    cloud.deploy("Images", template(tmp_path, "release", image("Golden", OnDelete="Release")))
    cloud.destroy("Images")
    kept = backend.images["golden-2026-11"]
    assert kept.state == "AVAILABLE"
    assert not set(PROVIDER_TAGS) & set(kept.tags)
    assert deletes_of(service, "golden-2026-11") == 0


def test_a_retained_image_is_adopted_again_once_its_stack_is_gone_with_adopt_if_owner_gone(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    cloud, service, _ = make_cloud(SCENARIO)
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    retained = image("Golden")
    retained["Golden"]["DeletionPolicy"] = "Retain"  # CloudFormation sends no Delete: the tag stays
    old = cloud.deploy("Old", template(tmp_path, "old", retained))
    cloud.destroy("Old")
    assert backend.images["golden-2026-11"].tags[OWNER_TAG] == owner_value(old.stack_id, "Golden")

    adopting = {"Type": "Custom::AppStreamImage", "Properties": {"ServiceToken": TOKEN, "ImageName": "golden-2026-11"}}
    with pytest.raises(StackFailed, match="aws appstream untag-resource --resource-arn"):
        cloud.deploy("New", template(tmp_path, "new", {"Golden": adopting}))
    adopting["Properties"]["Adopt"] = "IfOwnerGone"  # CloudFormation says stack Old is gone
    new = cloud.deploy("New", template(tmp_path, "new-if-gone", {"Golden": adopting}))
    assert backend.images["golden-2026-11"].tags[OWNER_TAG] == owner_value(new.stack_id, "Golden")
    cloud.destroy("New")  # adopted, so released: kept without the provider's tags
    assert not set(PROVIDER_TAGS) & set(backend.images["golden-2026-11"].tags)


def test_an_adoption_added_by_a_failed_update_is_given_back_by_its_rollback(
    make_cloud: MakeCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    """CloudFormation deletes what a failed update created (UPDATE_ROLLBACK_*): an adopted image goes back as found."""
    # Its own image and stack names: no late call of another test's function can meet them (see the closing note).
    scenario = {**SCENARIO, "images": [*SCENARIO["images"], {"name": "hand-built", "tags": {"made-by": "me"}}]}
    cloud, service, _ = make_cloud(scenario)
    backend = service.backend
    cloud.deploy(PROVIDER, assemblies["v1"] / f"{PROVIDER}.template.json")
    cloud.deploy("Grow", template(tmp_path, "v1", image("Golden")))
    adopted = {
        "Adopted": {
            "Type": "Custom::AppStreamImage",
            "Properties": {
                "ServiceToken": TOKEN,
                "ImageName": "hand-built",
                "OnDelete": "Delete",
                "Tags": [{"Key": "made-by", "Value": "platform-team"}],
            },
        }
    }
    with pytest.raises(StackFailed, match="no-such-base"):
        cloud.deploy("Grow", template(tmp_path, "v2", image("Golden"), adopted, BROKEN, after="Adopted"))
    assert cloud.stacks["Grow"].status == "UPDATE_ROLLBACK_COMPLETE"
    assert backend.images["hand-built"].tags == {"made-by": "me"}
    assert deletes_of(service, "hand-built") == 0
    assert backend.images["golden-2026-11"].state == "AVAILABLE"

"""The local CloudFormation serves each region as its own CloudFormation (issue 32, item 1), and keeps AWS's rule on
exports another stack imports (user guide, Outputs: "After another stack imports an output value, you can't delete
the stack that is exporting the output value or modify the exported output value")."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from appstream_image_local.cloud import LocalCloud


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(tmp_path, printer=lambda _line: None) as cloud:
        yield cloud


def _cfn(local: LocalCloud, region: str) -> Any:
    env = local.env()
    return boto3.client(
        "cloudformation",
        endpoint_url=env["AWS_ENDPOINT_URL_CLOUDFORMATION"],
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _wait(cfn: Any, stack: str) -> dict[str, Any]:
    for _ in range(600):
        found = dict(cfn.describe_stacks(StackName=stack)["Stacks"][0])
        if not str(found["StackStatus"]).endswith("_IN_PROGRESS"):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{stack} is still {found['StackStatus']}")


def _deploy(cfn: Any, stack: str, body: dict[str, Any], *, update: bool = False) -> dict[str, Any]:
    (cfn.update_stack if update else cfn.create_stack)(StackName=stack, TemplateBody=json.dumps(body))
    return _wait(cfn, stack)


def _producer(value: str) -> dict[str, Any]:
    return {
        "Resources": {"Thing": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": value}}},
        "Outputs": {
            "Name": {"Value": value, "Export": {"Name": "Producer:ImageName"}},
            "Region": {"Value": {"Ref": "AWS::Region"}},
        },
    }


CONSUMER = {
    "Resources": {
        "Uses": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Type": "String", "Value": {"Fn::ImportValue": "Producer:ImageName"}},
        }
    }
}


def test_each_region_has_its_own_stacks_ids_and_pseudo_region(local: LocalCloud) -> None:
    east, west = _cfn(local, "us-east-1"), _cfn(local, "eu-west-1")
    made_east = _deploy(east, "Producer", _producer("golden-1"))
    made_west = _deploy(west, "Producer", _producer("golden-2"))  # the same name: another region's stack

    assert made_east["StackId"].startswith("arn:aws:cloudformation:us-east-1:")
    assert made_west["StackId"].startswith("arn:aws:cloudformation:eu-west-1:")
    assert {o["OutputKey"]: o["OutputValue"] for o in made_west["Outputs"]}["Region"] == "eu-west-1"
    assert [s["StackName"] for s in west.describe_stacks()["Stacks"]] == ["Producer"]
    assert [e["Value"] for e in west.list_exports()["Exports"]] == ["golden-2"]  # exports are per region
    assert [e["Value"] for e in east.list_exports()["Exports"]] == ["golden-1"]
    assert local.region("eu-west-1").region == "eu-west-1"

    west.delete_stack(StackName="Producer")
    _wait(west, made_west["StackId"])
    assert [s["StackName"] for s in east.describe_stacks()["Stacks"]] == ["Producer"]  # the other region's stays


def test_a_region_cloudformation_does_not_serve_is_refused(local: LocalCloud) -> None:
    with pytest.raises(_cfn(local, "xx-nowhere-1").exceptions.ClientError, match="not served offline in xx-nowhere"):
        _cfn(local, "xx-nowhere-1").describe_stacks()


def test_an_import_is_resolved_in_its_own_region_only(local: LocalCloud) -> None:
    _deploy(_cfn(local, "us-east-1"), "Producer", _producer("golden-1"))
    west = _cfn(local, "eu-west-1")
    failed = _deploy(west, "Consumer", CONSUMER)
    assert failed["StackStatus"] == "ROLLBACK_COMPLETE"


def test_an_export_in_use_cannot_be_updated_and_the_update_rolls_back(local: LocalCloud) -> None:
    cfn = _cfn(local, "us-east-1")
    _deploy(cfn, "Producer", _producer("golden-1"))
    assert _deploy(cfn, "Consumer", CONSUMER)["StackStatus"] == "CREATE_COMPLETE"

    rotated = _deploy(cfn, "Producer", _producer("golden-2"), update=True)

    assert rotated["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    reasons = [
        e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName="Producer")["StackEvents"]
    ]
    assert "Export Producer:ImageName cannot be updated as it is in use by Consumer" in reasons
    assert [e["Value"] for e in cfn.list_exports()["Exports"]] == ["golden-1"]
    assert local.cloud is not None
    assert local.cloud.stacks["Producer"].resources["Thing"].properties["Value"] == "golden-1"  # rolled back


def test_an_export_in_use_cannot_be_removed_nor_its_stack_deleted(local: LocalCloud) -> None:
    cfn = _cfn(local, "us-east-1")
    _deploy(cfn, "Producer", _producer("golden-1"))
    consumer = _deploy(cfn, "Consumer", CONSUMER)["StackId"]
    without = _producer("golden-1")
    del without["Outputs"]["Name"]

    assert _deploy(cfn, "Producer", without, update=True)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    cfn.delete_stack(StackName="Producer")
    deleted = _wait(cfn, "Producer")

    assert deleted["StackStatus"] == "DELETE_FAILED"
    assert deleted["StackStatusReason"] == (
        "Delete canceled. Export Producer:ImageName cannot be deleted as it is in use by Consumer"
    )
    assert local.cloud is not None
    assert "Thing" in local.cloud.stacks["Producer"].resources  # nothing was deleted
    cfn.delete_stack(StackName="Consumer")
    assert _wait(cfn, consumer)["StackStatus"] == "DELETE_COMPLETE"
    cfn.delete_stack(StackName="Producer")  # once nothing imports it
    assert _wait(cfn, deleted["StackId"])["StackStatus"] == "DELETE_COMPLETE"


def test_a_functions_role_holds_in_every_regions_cloudformation(local: LocalCloud) -> None:
    """IAM is global: a function of eu-west-1 whose role allows no CloudFormation call is denied in us-east-1 too."""
    key = "ASIAWESTFUNCTION0001"
    role = "arn:aws:sts::123456789012:assumed-role/west-role/west-function"
    local.region("eu-west-1").functions.iam.register(key, role, [{"Version": "2012-10-17", "Statement": []}])
    env = local.env()
    east = boto3.client(
        "cloudformation",
        endpoint_url=env["AWS_ENDPOINT_URL_CLOUDFORMATION"],
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key="local",
    )
    with pytest.raises(east.exceptions.ClientError, match="AccessDenied"):
        east.describe_stacks()


def test_an_export_name_another_stack_exports_fails_the_create_and_the_update(local: LocalCloud) -> None:
    """User guide, Outputs: export names are unique within a region; the second exporter rolls back."""
    cfn = _cfn(local, "us-east-1")
    _deploy(cfn, "Producer", _producer("golden-1"))
    copycat = _deploy(cfn, "Copycat", _producer("golden-2"))
    assert copycat["StackStatus"] == "ROLLBACK_COMPLETE"
    taken = "Export with name Producer:ImageName is already exported by stack Producer"
    assert taken in [e.get("ResourceStatusReason") for e in cfn.describe_stack_events(StackName=copycat["StackId"])
                     ["StackEvents"]]  # fmt: skip
    other = _producer("golden-2")
    del other["Outputs"]["Name"]
    _deploy(cfn, "Other", other)
    assert _deploy(cfn, "Other", _producer("golden-2"), update=True)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert [e["Value"] for e in cfn.list_exports()["Exports"]] == ["golden-1"]  # the first exporter keeps it

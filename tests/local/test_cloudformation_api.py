"""The local CloudFormation API as botocore parses it: the calls and answers the CDK CLI relies on
(measured against the pinned CLI), and CloudFormation's rules for change sets and stacks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from appstream_image_local.cloud import LocalCloud

PARAMETER = {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": {"Ref": "Value"}}}
TEMPLATE = {
    "Parameters": {"Value": {"Type": "String", "Default": "one", "MaxLength": 8}},
    "Resources": {"Setting": PARAMETER},
    "Outputs": {
        "Name": {"Value": {"Ref": "Setting"}, "Export": {"Name": "SettingName"}},
        "Copy": {"Value": {"Ref": "Setting"}},  # the same value, not exported
    },
}
ROLE: dict[str, Any] = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(tmp_path, printer=lambda _line: None) as cloud:
        yield cloud


@pytest.fixture
def cfn(local: LocalCloud) -> Any:
    env = local.env()
    return boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL_CLOUDFORMATION"], region_name="us-east-1")


def _settled(cfn: Any, stack: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300  # a bound for a stuck stack, not a measure of speed
    while time.monotonic() < deadline:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not described["StackStatus"].endswith("IN_PROGRESS"):
            return dict(described)
        time.sleep(0.05)
    raise AssertionError(f"{stack} did not settle")


def _change_set(cfn: Any, kind: str, template: dict[str, Any], **extra: Any) -> dict[str, Any]:
    made = cfn.create_change_set(
        StackName="Settings", ChangeSetName="cdk-deploy-change-set", ChangeSetType=kind,
        TemplateBody=json.dumps(template), **extra,
    )  # fmt: skip
    return dict(cfn.describe_change_set(ChangeSetName=made["Id"], StackName="Settings"))


def test_a_missing_stack_is_a_validation_error_naming_it(cfn: Any) -> None:
    with pytest.raises(ClientError) as caught:
        cfn.describe_stacks(StackName="Nowhere")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["Error"]["Message"] == "Stack with id Nowhere does not exist"


def test_a_deleted_stack_is_gone_by_name_and_described_by_its_id(cfn: Any) -> None:
    cfn.create_stack(StackName="Settings", TemplateBody=json.dumps(TEMPLATE))
    stack_id = _settled(cfn, "Settings")["StackId"]
    cfn.delete_stack(StackName="Settings")
    assert _settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"  # by StackId, deleted stacks too
    with pytest.raises(ClientError) as caught:
        cfn.describe_stacks(StackName="Settings")  # by name, live stacks only (API reference, DescribeStacks)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"] == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "Stack with id Settings does not exist",
    }
    assert stack_id not in [s["StackId"] for s in cfn.describe_stacks()["Stacks"]]


def test_create_by_change_set_then_describe_outputs_exports_and_events(cfn: Any) -> None:
    described = _change_set(cfn, "CREATE", TEMPLATE)
    assert (described["Status"], described["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    assert [c["ResourceChange"]["Action"] for c in described["Changes"]] == ["Add"]
    assert cfn.describe_stacks(StackName="Settings")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    cfn.execute_change_set(ChangeSetName=described["ChangeSetId"])
    stack = _settled(cfn, "Settings")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o for o in stack["Outputs"]}
    output = outputs["Name"]
    assert output["ExportName"] == "SettingName"
    assert "ExportName" not in outputs["Copy"]  # an equal value does not make an output exported
    assert cfn.list_exports()["Exports"][0]["Value"] == output["OutputValue"]
    events = cfn.describe_stack_events(StackName="Settings")["StackEvents"]
    stamps = [e["Timestamp"] for e in events]
    assert stamps == sorted(stamps, reverse=True)  # newest first,
    assert len(set(stamps)) == len(stamps)  # and one order even at millisecond resolution
    assert events[0]["ResourceStatus"] == "CREATE_COMPLETE"
    assert events[0]["PhysicalResourceId"] == stack["StackId"]
    resources = cfn.describe_stack_resources(StackName="Settings")["StackResources"]
    assert [(r["LogicalResourceId"], r["ResourceStatus"]) for r in resources] == [("Setting", "CREATE_COMPLETE")]
    body = cfn.get_template(StackName="Settings")["TemplateBody"]  # botocore decodes a JSON body itself
    assert (body if isinstance(body, dict) else json.loads(body)) == TEMPLATE


def test_an_unchanged_change_set_fails_with_the_message_the_cli_reads(cfn: Any) -> None:
    cfn.execute_change_set(ChangeSetName=_change_set(cfn, "CREATE", TEMPLATE)["ChangeSetId"])
    _settled(cfn, "Settings")
    same = _change_set(cfn, "UPDATE", TEMPLATE, Parameters=[{"ParameterKey": "Value", "UsePreviousValue": True}])
    assert same["Status"] == "FAILED"
    assert same["StatusReason"].startswith("The submitted information didn't contain changes.")
    assert same["ExecutionStatus"] == "UNAVAILABLE"


def test_deleting_a_change_set_that_is_not_there_succeeds_and_describing_it_says_not_found(cfn: Any) -> None:
    cfn.delete_change_set(ChangeSetName="cdk-deploy-change-set", StackName="Settings")
    with pytest.raises(ClientError) as caught:
        cfn.describe_change_set(ChangeSetName="cdk-deploy-change-set", StackName="Settings")
    assert caught.value.response["Error"]["Code"] == "ChangeSetNotFound"


def test_an_update_keeps_previous_values_and_changes_the_resource(cfn: Any, local: LocalCloud) -> None:
    cfn.execute_change_set(ChangeSetName=_change_set(cfn, "CREATE", TEMPLATE)["ChangeSetId"])
    _settled(cfn, "Settings")
    changed = {**TEMPLATE, "Resources": {"Setting": {**PARAMETER, "Properties": {"Type": "String", "Value": "two"}}}}
    described = _change_set(cfn, "UPDATE", changed, Parameters=[{"ParameterKey": "Value", "UsePreviousValue": True}])
    assert [c["ResourceChange"]["Action"] for c in described["Changes"]] == ["Modify"]
    cfn.execute_change_set(ChangeSetName=described["ChangeSetId"])
    stack = _settled(cfn, "Settings")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert stack["Parameters"] == [{"ParameterKey": "Value", "ParameterValue": "one"}]
    assert local.cloud is not None
    name = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["Name"]
    assert local.cloud.ssm.get_parameter(Name=name)["Parameter"]["Value"] == "two"


def test_parameters_are_checked_when_the_change_set_is_made(cfn: Any) -> None:
    with pytest.raises(ClientError, match="Value"):
        _change_set(cfn, "CREATE", TEMPLATE, Parameters=[{"ParameterKey": "Value", "ParameterValue": "much-too-long"}])
    with pytest.raises(ClientError, match="Unknown"):
        _change_set(cfn, "CREATE", TEMPLATE, Parameters=[{"ParameterKey": "Unknown", "ParameterValue": "x"}])


def test_iam_resources_need_the_iam_capability(cfn: Any) -> None:
    template = {"Resources": {"Role": ROLE}}
    with pytest.raises(ClientError) as caught:
        _change_set(cfn, "CREATE", template)
    assert caught.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    named = {"Resources": {"Role": {**ROLE, "Properties": {**ROLE["Properties"], "RoleName": "fixed"}}}}
    with pytest.raises(ClientError, match="CAPABILITY_NAMED_IAM"):
        _change_set(cfn, "CREATE", named, Capabilities=["CAPABILITY_IAM"])
    assert _change_set(cfn, "CREATE", named, Capabilities=["CAPABILITY_NAMED_IAM"])["Status"] == "CREATE_COMPLETE"


def test_a_failed_create_rolls_back_and_stays_until_deleted(cfn: Any) -> None:
    broken = {"Resources": {"Setting": {**PARAMETER, "Properties": {"Type": "NoSuchType", "Value": "x"}}}}
    cfn.create_stack(StackName="Settings", TemplateBody=json.dumps(broken))
    stack = _settled(cfn, "Settings")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [
        e
        for e in cfn.describe_stack_events(StackName="Settings")["StackEvents"]
        if e["ResourceStatus"] == "CREATE_FAILED"
    ]
    assert failed[0]["LogicalResourceId"] == "Setting"
    with pytest.raises(ClientError, match="already exists"):
        cfn.create_stack(StackName="Settings", TemplateBody=json.dumps(TEMPLATE))
    cfn.delete_stack(StackName="Settings")
    assert _settled(cfn, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"  # by id, a deleted stack still shows
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName="Settings")


def test_a_template_rule_that_fails_fails_the_deploy(cfn: Any) -> None:
    ruled = {**TEMPLATE, "Rules": {"Check": {"Assertions": [{
        "Assert": {"Fn::Not": [{"Fn::Contains": [["one"], {"Ref": "Value"}]}]}, "AssertDescription": "not one",
    }]}}}  # fmt: skip
    with pytest.raises(ClientError, match="not one"):  # checked when the stack is asked for, as CloudFormation does
        cfn.create_stack(StackName="Settings", TemplateBody=json.dumps(ruled))
    cfn.create_stack(StackName="Settings", TemplateBody=json.dumps(ruled), Parameters=[
        {"ParameterKey": "Value", "ParameterValue": "two"}])  # fmt: skip
    assert _settled(cfn, "Settings")["StackStatus"] == "CREATE_COMPLETE"


def test_cloudtrail_lookups_answer_no_events(local: LocalCloud) -> None:
    env = local.env()
    trail = boto3.client("cloudtrail", endpoint_url=env["AWS_ENDPOINT_URL_CLOUDTRAIL"], region_name="us-east-1")
    assert trail.lookup_events()["Events"] == []


def test_event_pages_go_on_after_the_last_event_shown_even_when_newer_events_come(cfn: Any) -> None:
    many = {**TEMPLATE, "Resources": {f"Setting{i:02d}": PARAMETER for i in range(51)}, "Outputs": {}}
    cfn.create_stack(StackName="Many", TemplateBody=json.dumps(many))
    _settled(cfn, "Many")
    pages = cfn.get_paginator("describe_stack_events").paginate(StackName="Many")
    everything = [e["EventId"] for page in pages for e in page["StackEvents"]]
    assert len(everything) > 100
    first = cfn.describe_stack_events(StackName="Many")
    assert len(first["StackEvents"]) == 100  # API reference, DescribeStackEvents: up to 100 a page
    update = [{"ParameterKey": "Value", "ParameterValue": "two"}]
    cfn.update_stack(StackName="Many", TemplateBody=json.dumps(many), Parameters=update)
    _settled(cfn, "Many")  # newer events, in front of those already shown
    second = cfn.describe_stack_events(StackName="Many", NextToken=first["NextToken"])
    assert [e["EventId"] for e in first["StackEvents"] + second["StackEvents"]] == everything
    assert "NextToken" not in second
    with pytest.raises(ClientError, match="NextToken"):
        cfn.describe_stack_events(StackName="Many", NextToken="not-an-event")

"""GetTemplateSummary as botocore parses it (what `aws cloudformation deploy` asks of a stack before updating
it), and CloudFormation's errors for a missing stack and for templates it cannot read."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from appstream_image_local.cfn.query import ApiError
from appstream_image_local.cfn.summary import read_template
from appstream_image_local.cloud import LocalCloud

PARAMETER = {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": {"Ref": "Value"}}}
TEMPLATE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "Two settings",
    "Metadata": {"AWS::CloudFormation::Interface": {"ParameterGroups": [{"Parameters": ["Value"]}]}},
    "Parameters": {
        "Value": {"Type": "String", "Default": "one", "AllowedValues": ["one", "two"], "Description": "Which"},
        "Secret": {"Type": "String", "NoEcho": True, "Default": "hidden"},
        "Names": {"Type": "CommaDelimitedList", "Default": "a,b"},
    },
    "Resources": {"First": PARAMETER, "Second": PARAMETER},
}
ROLE: dict[str, Any] = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """One cloud for the module (each test uses stack names of its own)."""
    with LocalCloud(tmp_path_factory.mktemp("summary"), printer=lambda _line: None) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def cfn(local: LocalCloud) -> Any:
    env = local.env()
    return boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL_CLOUDFORMATION"], region_name="us-east-1")


def _error(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return dict(caught.value.response["Error"])


def _settled(cfn: Any, stack: str) -> str:
    for _ in range(200):
        status = str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])
        if not status.endswith("IN_PROGRESS"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"{stack} did not settle")


def test_a_template_body_is_summarized_with_its_parameters_types_and_metadata(cfn: Any) -> None:
    summary = cfn.get_template_summary(TemplateBody=json.dumps(TEMPLATE))
    assert summary["Parameters"] == [
        {
            "ParameterKey": "Value",
            "DefaultValue": "one",
            "ParameterType": "String",
            "NoEcho": False,
            "Description": "Which",
            "ParameterConstraints": {"AllowedValues": ["one", "two"]},
        },
        {
            "ParameterKey": "Secret",
            "DefaultValue": "hidden",
            "ParameterType": "String",
            "NoEcho": True,
            "ParameterConstraints": {},
        },
        {
            "ParameterKey": "Names",
            "DefaultValue": "a,b",
            "ParameterType": "CommaDelimitedList",
            "NoEcho": False,
            "ParameterConstraints": {},
        },
    ]
    assert summary["Description"] == "Two settings"
    assert summary["ResourceTypes"] == ["AWS::SSM::Parameter", "AWS::SSM::Parameter"]  # one per resource
    assert summary["Version"] == "2010-09-09"
    assert json.loads(summary["Metadata"]) == TEMPLATE["Metadata"]
    assert "Capabilities" not in summary  # no IAM resource
    assert "DeclaredTransforms" not in summary


def test_a_yaml_template_without_a_format_version_has_the_latest_and_lists_its_transforms(cfn: Any) -> None:
    body = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
    summary = cfn.get_template_summary(TemplateBody=body)
    assert summary["Version"] == "2010-09-09"
    assert summary["DeclaredTransforms"] == ["AWS::Serverless-2016-10-31"]
    assert summary["Parameters"] == []
    assert "Metadata" not in summary


def test_iam_resources_are_reported_with_the_capability_they_need_and_why(cfn: Any) -> None:
    profile = {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [{"Ref": "Role"}]}}
    summary = cfn.get_template_summary(TemplateBody=json.dumps({"Resources": {"Role": ROLE, "Profile": profile}}))
    assert summary["Capabilities"] == ["CAPABILITY_IAM"]
    assert summary["CapabilitiesReason"] == (
        "The following resource(s) require capabilities: [AWS::IAM::InstanceProfile, AWS::IAM::Role]"
    )
    named = {**ROLE, "Properties": {**ROLE["Properties"], "RoleName": "fixed"}}
    summary = cfn.get_template_summary(TemplateBody=json.dumps({"Resources": {"Role": named}}))
    assert summary["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert summary["CapabilitiesReason"] == "The following resource(s) require capabilities: [AWS::IAM::Role]"


def test_a_stack_is_summarized_by_name_or_id_and_once_deleted_only_by_id(cfn: Any) -> None:
    stack_id = cfn.create_stack(StackName="Summarized", TemplateBody=json.dumps(TEMPLATE))["StackId"]
    assert _settled(cfn, "Summarized") == "CREATE_COMPLETE"
    by_name = cfn.get_template_summary(StackName="Summarized")
    assert [p["ParameterKey"] for p in by_name["Parameters"]] == ["Value", "Secret", "Names"]
    assert cfn.get_template_summary(StackName=stack_id)["ResourceTypes"] == by_name["ResourceTypes"]
    cfn.delete_stack(StackName="Summarized")
    assert _settled(cfn, stack_id) == "DELETE_COMPLETE"
    assert cfn.get_template_summary(StackName=stack_id)["Description"] == "Two settings"
    assert _error(cfn.get_template_summary, StackName="Summarized") == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "Stack with id Summarized does not exist",
    }


def test_a_stack_still_in_review_has_no_summary(cfn: Any) -> None:
    cfn.create_change_set(
        StackName="InReview", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=json.dumps(TEMPLATE)
    )
    error = _error(cfn.get_template_summary, StackName="InReview")
    assert error["Message"] == "GetTemplateSummary cannot be called on REVIEW_IN_PROGRESS stacks."


def test_a_template_url_is_read_from_the_local_s3(cfn: Any, local: LocalCloud) -> None:
    assert local.cloud is not None
    local.cloud.s3.create_bucket(Bucket="templates")
    local.cloud.s3.put_object(Bucket="templates", Key="v1/settings.json", Body=json.dumps(TEMPLATE).encode())
    url = f"{local.env()['AWS_ENDPOINT_URL']}/templates/v1/settings.json"  # path-style, as `deploy --s3-bucket`
    assert cfn.get_template_summary(TemplateURL=url)["Description"] == "Two settings"
    missing = _error(cfn.get_template_summary, TemplateURL=f"{local.env()['AWS_ENDPOINT_URL']}/templates/v2.json")
    assert (missing["Code"], missing["Message"]) == ("ValidationError", "S3 error: The specified key does not exist.")
    unsupported = _error(cfn.get_template_summary, TemplateURL="s3://templates/v1/settings.json")
    assert unsupported["Message"] == "TemplateURL must be a supported URL."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"this is invalid JSON"="bobbins"}', "Template format error: JSON not well-formed. (line 1, column 25)"),
        ("Resources:\n  A: [1\n  B: 2\n", "Template format error: YAML not well-formed. (line 3, column 4)"),
        ("- a\n- b\n", "Template format error: unsupported structure."),
        ("Resources: {}\n", "Template format error: At least one Resources member must be defined."),
        ('{"Parameters": {}}', "Template format error: At least one Resources member must be defined."),
    ],
)
def test_a_template_that_cannot_be_read_is_a_format_error(cfn: Any, body: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        read_template(body)
    assert (caught.value.code, caught.value.message) == ("ValidationError", message)
    assert _error(cfn.get_template_summary, TemplateBody=body) == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": message,
    }


def test_exactly_one_source_is_asked_for(cfn: Any) -> None:
    none = _error(cfn.get_template_summary)
    both = _error(cfn.get_template_summary, StackName="Settings", TemplateBody=json.dumps(TEMPLATE))
    for error in (none, both):
        assert error["Code"] == "ValidationError"
        assert error["Message"].startswith("You must specify only one of the following parameters: StackName")
    stack_set = _error(cfn.get_template_summary, StackSetName="Everywhere")
    assert (stack_set["Code"], stack_set["Message"]) == ("StackSetNotFoundException", "StackSet Everywhere not found")


def test_a_stack_deployed_by_the_driver_is_summarized_from_its_template(
    local: LocalCloud, cfn: Any, tmp_path: Path
) -> None:
    assert local.cloud is not None
    path = tmp_path / "direct.json"
    path.write_text(json.dumps(TEMPLATE))
    local.cloud.deploy("Direct", path)  # not through the API: the API knows it from its events only
    assert cfn.get_template_summary(StackName="Direct")["Description"] == "Two settings"

"""What the provider asks CloudFormation (DescribeStacks), answered by moto's CloudFormation."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from provider.cloudformation.stacks import ROLLBACK_STATUSES, CloudFormationStacks
from provider.contract import owner_value

TEMPLATE = '{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}'


@pytest.fixture
def cfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDFORMATION", raising=False)
    with mock_aws():
        yield boto3.client("cloudformation", region_name="us-east-1")


def test_an_owner_whose_stack_instance_is_gone_or_replaced_is_gone(cfn: object) -> None:
    client = boto3.client("cloudformation", region_name="us-east-1")
    stack_id = client.create_stack(StackName="images", TemplateBody=TEMPLATE)["StackId"]
    stacks = CloudFormationStacks(lambda: client)
    assert stacks.owner_gone(owner_value(stack_id, "Golden")) is False  # it lives
    older = stack_id.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"  # same name, an earlier instance
    assert stacks.owner_gone(owner_value(older, "Golden")) is True
    assert stacks.owner_gone(owner_value(stack_id.replace("/images/", "/gone/"), "Golden")) is True
    assert stacks.owner_gone("not-an-owner-value") is None  # a shortened or foreign value: not known
    client.delete_stack(StackName="images")
    assert stacks.owner_gone(owner_value(stack_id, "Golden")) is True


def test_a_stack_in_a_rollback_status_is_rolling_back_and_an_unknown_answer_is_none(cfn: object) -> None:
    client = boto3.client("cloudformation", region_name="us-east-1")
    stack_id = client.create_stack(StackName="images", TemplateBody=TEMPLATE)["StackId"]
    stacks = CloudFormationStacks(lambda: client)
    assert stacks.rolling_back(stack_id) is False  # CREATE_COMPLETE
    assert stacks.rolling_back(stack_id.replace("/images/", "/other/")) is None  # its own stack always exists
    assert "ROLLBACK_IN_PROGRESS" in ROLLBACK_STATUSES
    assert "DELETE_IN_PROGRESS" not in ROLLBACK_STATUSES


def test_a_denied_or_unreachable_cloudformation_answers_none() -> None:
    stacks = CloudFormationStacks(
        lambda: boto3.client("cloudformation", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    )
    assert stacks.rolling_back("arn:aws:cloudformation:us-east-1:123456789012:stack/s/1") is None
    assert stacks.owner_gone("s/Logical/0123abcd") is None

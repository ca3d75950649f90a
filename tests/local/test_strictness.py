"""The local service is at least as strict as AWS: every model constraint, only modelled errors, quotas, lags.

Each test is a boto3 probe: what AWS answers, the local service answers too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local.appstream import ApiError, AppStreamBackend, Fault, Limits, LocalAppStream, operations
from appstream_image_local.appstream.copies import copy_image
from tests.conftest import FakeClock
from tests.local.test_appstream_service import raw_call

OTHER = "210987654321"
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def strict(backend: AppStreamBackend) -> Iterator[tuple[LocalAppStream, object]]:
    """The service and a client that does not retry, so each answer is seen as AWS sends it."""
    with LocalAppStream(backend) as svc:
        yield svc, boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)


def code_and_message(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(err.value.response["Error"]["Code"]), str(err.value.response["Error"]["Message"])


@pytest.mark.parametrize(
    ("operation", "body", "member", "constraint"),
    [
        ("TagResource", {"Tags": {"team": "a#b"}}, "tags", "Map value must satisfy constraint"),
        ("TagResource", {"Tags": {"a,b": "x"}}, "tags", "Map keys must satisfy constraint"),
        ("TagResource", {"Tags": {"aws:x": "y"}}, "tags", "Map keys must satisfy constraint"),
        ("TagResource", {"Tags": {"k": "v" * 257}}, "tags", "less than or equal to 256"),
        ("TagResource", {"Tags": {}}, "tags", "greater than or equal to 1"),
        ("TagResource", {"Tags": {f"k{n}": "v" for n in range(51)}}, "tags", "less than or equal to 50"),
        ("UntagResource", {"TagKeys": [f"k{n}" for n in range(51)]}, "tagKeys", "less than or equal to 50"),
        ("DescribeImages", {"MaxResults": 26}, "maxResults", "less than or equal to 25"),
        ("DescribeImages", {"Type": "EVERYONE"}, "type", "enum value set: [PUBLIC, PRIVATE, SHARED]"),
        ("DescribeImages", {"Arns": ["not-an-arn"]}, "arns.1.member", "regular expression pattern"),
        ("CopyImage", {"DestinationImageDescription": "d" * 257}, "destinationImageDescription", "256"),
        ("CopyImage", {"DestinationImageName": "-bad"}, "destinationImageName", "regular expression pattern"),
        ("CopyImage", {"DestinationRegion": "r" * 33}, "destinationRegion", "less than or equal to 32"),
        ("CreateUpdatedImage", {"newImageDisplayName": "d" * 101}, "newImageDisplayName", "100"),
        ("CreateUpdatedImage", {"newImageTags": {"owner": "stack/Logical#hash"}}, "newImageTags", "Map value"),
        ("DescribeImagePermissions", {"MaxResults": 501}, "maxResults", "less than or equal to 500"),
        ("DescribeImagePermissions", {"SharedAwsAccountIds": [OTHER] * 6}, "sharedAwsAccountIds", "5"),
        ("UpdateImagePermissions", {"SharedAccountId": "12ab"}, "sharedAccountId", "regular expression"),
    ],
)
def test_every_model_constraint_is_enforced_naming_the_member(
    service: LocalAppStream, operation: str, body: dict[str, object], member: str, constraint: str
) -> None:
    base: dict[str, dict[str, object]] = {
        "TagResource": {"ResourceArn": "arn:aws:appstream:us-east-1:123456789012:image/x", "Tags": {"a": "b"}},
        "UntagResource": {"ResourceArn": "arn:aws:appstream:us-east-1:123456789012:image/x", "TagKeys": ["a"]},
        "DescribeImages": {},
        "CopyImage": {"SourceImageName": "a", "DestinationImageName": "b", "DestinationRegion": "us-east-1"},
        "CreateUpdatedImage": {"existingImageName": "a", "newImageName": "b"},
        "DescribeImagePermissions": {"Name": "a"},
        "UpdateImagePermissions": {"Name": "a", "SharedAccountId": OTHER, "ImagePermissions": {}},
    }
    status, payload, _ = raw_call(service, operation, json.dumps(base[operation] | body).encode())
    assert status == 400
    assert payload["__type"] == "ValidationException"
    assert f"at '{member}'" in str(payload["message"])
    assert constraint in str(payload["message"])


def test_the_old_ownership_tag_with_a_hash_is_rejected_as_aws_rejects_it(backend: AppStreamBackend, client) -> None:
    arn = backend.add_image("golden").arn
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=arn, Tags={"appstream-image-provider:owner": "images/GoldenImage#82b3400e"})
    code, message = code_and_message(excinfo)
    assert code == "ValidationException"
    assert "tags" in message
    client.tag_resource(ResourceArn=arn, Tags={"appstream-image-provider:owner": "images/GoldenImage/82b3400e"})


def test_unicode_letters_and_spaces_are_allowed_in_tags(backend: AppStreamBackend, client) -> None:
    arn = backend.add_image("golden").arn
    client.tag_resource(ResourceArn=arn, Tags={"équipe": "Données clients 42 +=@:/._-"})
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"]["équipe"].startswith("Données")


def test_injected_errors_apply_only_where_the_model_lists_them(backend: AppStreamBackend, client) -> None:
    backend.add_image("golden")
    with LocalAppStream(backend) as svc:
        probe = boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)
        svc.faults.add(Fault("concurrent_modification"), Fault("error", code="ResourceInUseException"))
        assert probe.describe_images(Names=["golden"])["Images"]  # DescribeImages lists neither
        with pytest.raises(probe.exceptions.ConcurrentModificationException):
            probe.delete_image(Name="golden")


def test_an_unmodelled_error_from_the_backend_becomes_an_internal_failure(
    backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: AppStreamBackend, __: dict[str, object]) -> dict[str, object]:
        raise ApiError("OperationNotPermittedException", "not modelled for DescribeFleets")

    monkeypatch.setitem(operations.OPERATIONS, "DescribeFleets", broken)
    with LocalAppStream(backend) as svc:
        status, body = svc.handle("DescribeFleets", {})
    assert (status, body["__type"]) == (500, "InternalFailure")
    assert "unmodelled error OperationNotPermittedException" in body["message"]


def test_the_default_quotas_are_the_admin_guides() -> None:
    limits = Limits()
    assert (limits.images, limits.builders, limits.copies, limits.updates, limits.shares) == (10, 10, 2, 5, 100)


def test_a_managed_update_counts_against_the_image_builder_quota(clock: FakeClock) -> None:
    backend = AppStreamBackend(clock=clock, limits=Limits(builders=2))
    backend.add_image("golden")
    backend.add_builder("win-builder", "golden")
    with LocalAppStream(backend) as svc:
        probe = boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)
        probe.create_updated_image(existingImageName="golden", newImageName="u1")  # its builder is the second
        with pytest.raises(probe.exceptions.LimitExceededException, match="limit of 2 image builders"):
            probe.create_updated_image(existingImageName="golden", newImageName="u2")


def test_images_per_account_quota(clock: FakeClock) -> None:
    backend = AppStreamBackend(clock=clock, limits=Limits(images=2))
    backend.add_image("golden")
    with LocalAppStream(backend) as svc:
        probe = boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)
        probe.copy_image(SourceImageName="golden", DestinationImageName="c1", DestinationRegion="us-east-1")
        with pytest.raises(probe.exceptions.LimitExceededException, match="limit of 2 images"):
            probe.create_updated_image(existingImageName="golden", newImageName="u1")


def test_request_rates_are_throttled_per_operation(backend: AppStreamBackend) -> None:
    backend.limits = Limits(rate=0.001, burst=2)
    with LocalAppStream(backend) as svc:
        probe = boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)
        probe.describe_images()
        probe.describe_images()
        with pytest.raises(ClientError) as excinfo:
            probe.describe_images()
        assert code_and_message(excinfo)[0] == "ThrottlingException"
        probe.describe_fleets()  # another operation has its own bucket


def test_share_quota_counts_accepted_shares(clock: FakeClock) -> None:
    backend = AppStreamBackend(clock=clock, limits=Limits(shares=2))
    backend.add_image("golden")
    with LocalAppStream(backend) as svc:
        probe = boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)
        for account in ("111111111111", "222222222222"):
            probe.update_image_permissions(Name="golden", SharedAccountId=account, ImagePermissions={})
        with pytest.raises(probe.exceptions.LimitExceededException):  # counted before the lag applies them
            probe.update_image_permissions(Name="golden", SharedAccountId="333333333333", ImagePermissions={})


def test_transitions_run_on_a_time_scale(clock: FakeClock) -> None:
    backend = AppStreamBackend(clock=clock, time_scale=0.001)  # a 40-minute copy in 2.4 s of the clock
    backend.durations.copy = 2400
    backend.add_image("golden")
    copy_image(backend, {"SourceImageName": "golden", "DestinationImageName": "c", "DestinationRegion": "us-east-1"})
    clock.advance(2.39)
    assert backend.snapshot()["images"]["c"]["State"] == "COPYING"
    clock.advance(0.02)
    assert backend.snapshot()["images"]["c"]["State"] == "AVAILABLE"

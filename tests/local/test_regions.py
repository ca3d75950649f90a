"""The local AppStream serves one account in several regions, each the region a call is signed for."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from appstream_image_local.appstream.copies import copy_image
from appstream_image_local.appstream.errors import ApiError
from appstream_image_local.appstream.regions import region_of
from tests.conftest import FakeClock

ACCOUNT = "123456789012"


def regional(service: LocalAppStream, region: str) -> Any:
    return boto3.client(
        "appstream",
        region_name=region,
        endpoint_url=service.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def names(client: Any) -> dict[str, str]:
    return {i["Name"]: i["State"] for i in client.describe_images()["Images"]}


def copy(client: Any, source: str, destination: str, region: str) -> None:
    client.copy_image(SourceImageName=source, DestinationImageName=destination, DestinationRegion=region)


def test_a_call_goes_to_the_region_it_is_signed_for(service: LocalAppStream, backend: AppStreamBackend) -> None:
    backend.add_image("golden")
    service.regions.get("eu-west-1").add_image("irish")
    assert names(regional(service, "us-east-1")) == {"golden": "AVAILABLE"}
    assert names(regional(service, "eu-west-1")) == {"irish": "AVAILABLE"}
    image = regional(service, "eu-west-1").describe_images(Names=["irish"])["Images"][0]
    assert image["Arn"] == f"arn:aws:appstream:eu-west-1:{ACCOUNT}:image/irish"


def test_a_cross_region_copy_appears_in_the_destination_after_the_copy_time_without_tags(
    service: LocalAppStream, backend: AppStreamBackend, clock: FakeClock
) -> None:
    backend.add_image("golden", tags={"team": "euc"})
    east, west = regional(service, "us-east-1"), regional(service, "us-west-2")
    copy(east, "golden", "golden", "us-west-2")  # the same name in another region is another image
    clock.advance(backend.limits.visibility_lag + 0.1)
    assert names(west) == {"golden": "COPYING"}
    assert names(east) == {"golden": "AVAILABLE"}
    clock.advance(30)  # the fixture's copy duration
    assert names(west) == {"golden": "AVAILABLE"}
    arn = f"arn:aws:appstream:us-west-2:{ACCOUNT}:image/golden"
    assert west.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}  # CopyImage does not copy tags


def test_a_copy_into_a_region_that_has_the_name_is_refused(service: LocalAppStream, backend: AppStreamBackend) -> None:
    backend.add_image("golden")
    service.regions.get("us-west-2").add_image("golden")
    with pytest.raises(ClientError) as err:
        copy(regional(service, "us-east-1"), "golden", "golden", "us-west-2")
    assert err.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"


def test_the_copy_quota_holds_in_the_destination_region(service: LocalAppStream, backend: AppStreamBackend) -> None:
    """appstream-images.md: 2 concurrent copies per destination region."""
    backend.add_image("golden")
    irish = service.regions.get("eu-west-1")
    irish.add_image("irish-golden")
    copy(regional(service, "eu-west-1"), "irish-golden", "west-0", "us-west-2")
    copy(regional(service, "us-east-1"), "golden", "west-1", "us-west-2")
    with pytest.raises(ClientError) as err:  # us-west-2's two slots are taken, whatever the source regions
        copy(regional(service, "us-east-1"), "golden", "west-extra", "us-west-2")
    assert err.value.response["Error"]["Code"] == "LimitExceededException"
    copy(regional(service, "us-east-1"), "golden", "local", "us-east-1")  # the source region has a slot left


def test_a_copy_to_another_region_holds_a_slot_of_the_source_region_until_it_ends(
    service: LocalAppStream, backend: AppStreamBackend, clock: FakeClock
) -> None:
    """Issue 32: the source region's copy quota applies too (both are enforced: the stricter reading)."""
    backend.add_image("golden")
    east = regional(service, "us-east-1")
    copy(east, "golden", "west", "us-west-2")
    copy(east, "golden", "irish", "eu-west-1")
    with pytest.raises(ClientError) as err:  # us-east-1's two slots: its two copies out
        copy(east, "golden", "tokyo", "ap-northeast-1")
    assert err.value.response["Error"]["Code"] == "LimitExceededException"
    with pytest.raises(ClientError):
        copy(east, "golden", "local", "us-east-1")
    clock.advance(backend.durations.copy)
    copy(east, "golden", "tokyo", "ap-northeast-1")  # the copies ended: their slots are free
    assert set(service.control("/_local/regions", None)) == {"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"}


def test_a_refused_copy_gives_back_the_source_regions_slot(service: LocalAppStream, backend: AppStreamBackend) -> None:
    backend.add_image("golden")
    service.regions.get("us-west-2").add_image("taken")
    east = regional(service, "us-east-1")
    for _ in range(3):  # refused by the destination each time: no slot is kept for it
        with pytest.raises(ClientError, match="already exists"):
            copy(east, "golden", "taken", "us-west-2")
    copy(east, "golden", "west", "us-west-2")
    copy(east, "golden", "irish", "eu-west-1")


def test_a_region_appstream_does_not_serve_is_refused(service: LocalAppStream, backend: AppStreamBackend) -> None:
    backend.add_image("golden")
    with pytest.raises(ClientError) as err:
        copy(regional(service, "us-east-1"), "golden", "golden", "mars-north-1")
    assert err.value.response["Error"]["Code"] == "ResourceNotAvailableException"
    assert "mars-north-1" in err.value.response["Error"]["Message"]


def test_controls_take_a_region(service: LocalAppStream) -> None:
    service.control("/_local/images/create", {"name": "seeded", "region": "ap-south-1"})
    assert set(service.regions.get("ap-south-1").snapshot()["images"]) == {"seeded"}
    assert "seeded" not in service.backend.snapshot()["images"]


def test_a_lone_backend_refuses_another_destination_region(backend: AppStreamBackend) -> None:
    backend.add_image("golden")
    params = {"SourceImageName": "golden", "DestinationImageName": "g", "DestinationRegion": "us-west-2"}
    with pytest.raises(ApiError, match="single region"):
        copy_image(backend, params)


@pytest.mark.parametrize(
    ("header", "region"),
    [
        ("AWS4-HMAC-SHA256 Credential=AKID/20261207/eu-west-2/appstream/aws4_request, SignedHeaders=host", "eu-west-2"),
        ("", None),
        ("AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host", None),
    ],
)
def test_region_of_reads_the_credential_scope(header: str, region: str | None) -> None:
    assert region_of(header) == region

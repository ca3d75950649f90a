"""Source Copy with SourceRegion (issue 32, item 1): CopyImage is called in the source's region with DestinationRegion
the stack's; the copy is tagged, waited for, shared and deleted in the stack's region; a missing source or an unknown
region is named; the destination's copy quota is waited out; IAM is asked for CopyImage on the source's own ARN."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from provider.appstream import images
from provider.appstream.properties import parse
from provider.cloudformation.outcome import Continue
from provider.contract import OWNER_TAG, SOURCE_TAG
from provider.errors import AccessDenied, InvalidProperties
from tests.conftest import FakeClock
from tests.provider.conftest import NO_RETRY, OWNER, event, finished, handle, scheduled

WEST = "us-west-2"
COPY = {"Type": "Copy", "SourceImageName": "golden", "SourceRegion": WEST, "Description": "from Oregon"}
PARTNER = "210987654321"


def test_a_copy_from_another_region_is_made_here_tagged_waited_for_and_shared(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    service.regions.get(WEST).add_image("golden", display_name="Golden (Oregon)")
    body = event(
        "create",
        ImageName="golden",  # the same name as its source: another region
        Source=COPY,
        SharedWith=[{"AccountId": PARTNER}],
        Tags=[{"Key": "team", "Value": "euc"}],
    )
    done = finished(handle(client, clock, body))
    assert done.physical_id == "golden"
    assert done.attributes["Arn"] == "arn:aws:appstream:us-east-1:123456789012:image/golden"
    [call] = service.audit.calls("CopyImage")
    assert call["region"] == WEST  # called in the source's region
    assert call["params"] == {
        "SourceImageName": "golden",
        "DestinationImageName": "golden",
        "DestinationRegion": "us-east-1",
        "DestinationImageDescription": "from Oregon",
    }
    copy = backend.images["golden"]
    assert copy.state == "AVAILABLE"
    assert copy.tags[OWNER_TAG] == OWNER
    assert copy.tags["team"] == "euc"
    assert copy.tags[SOURCE_TAG].startswith("Copy/golden/")
    assert set(backend.accepted_permissions("golden")) == {PARTNER}
    # Everything but CopyImage happens in the stack's region; the source is left as it was.
    assert {c["region"] for c in service.audit.entries() if c["operation"] != "CopyImage"} == {"us-east-1"}
    assert service.regions.get(WEST).images["golden"].tags == {}

    delete = event("delete", ImageName="golden", Source=COPY)
    delete["PhysicalResourceId"] = "golden"
    finished(handle(client, clock, delete))
    assert "golden" not in backend.images
    assert "golden" in service.regions.get(WEST).images


def test_the_region_is_part_of_what_the_image_was_made_from(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    """An in-place Update naming another SourceRegion is refused (a new Source needs a new ImageName)."""
    service, client = fake
    service.regions.get(WEST).add_image("golden")
    finished(handle(client, clock, event("create", ImageName="golden-copy", Source=COPY)))
    moved = {**COPY, "SourceRegion": "eu-west-1"}
    update = event("update", ImageName="golden-copy", Source=moved)
    update["OldResourceProperties"] = {"ImageName": "golden-copy", "Source": COPY}
    update["PhysicalResourceId"] = "golden-copy"
    with pytest.raises(InvalidProperties, match="Invalid property Source: it changed from"):
        handle(client, clock, update)
    assert (
        parse({"ImageName": "x", "Source": {**COPY, "SourceRegion": WEST}}).source.fingerprint()
        != parse(
            {"ImageName": "x", "Source": {"Type": "Copy", "SourceImageName": "golden", "Description": "from Oregon"}}
        ).source.fingerprint()
    )


def test_a_source_missing_in_its_region_is_named_with_the_region(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden")  # here, not in Oregon
    with pytest.raises(InvalidProperties, match=r"image golden does not exist in region us-west-2"):
        handle(client, clock, event("create", ImageName="golden-copy", Source=COPY))
    assert "golden-copy" not in backend.images


def test_a_busy_destination_is_waited_out_as_a_local_copy_is(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    service.regions.get(WEST).add_image("golden")
    backend.limits.copies = 1
    backend.add_image("someone-elses-copy", state="COPYING", settle_seconds=120)
    body = event("create", ImageName="golden-copy", Source=COPY)
    outcome = handle(client, clock, body)
    for _ in range(20):  # the wait for a slot hands over to scheduled runs, each starting from the properties
        if not isinstance(outcome, Continue):
            break
        clock.advance(60)
        outcome = handle(client, clock, scheduled(body, outcome.state))
    done = finished(outcome)
    assert done.attributes["State"] == "AVAILABLE"
    errors = [c["error"] for c in service.audit.calls("CopyImage")]
    assert errors[0] == "LimitExceededException"
    assert errors[-1] is None


@pytest.mark.parametrize(
    ("region", "problem"),
    [
        ("oregon", "Source.SourceRegion: 'oregon' is not a region name"),
        ("us-north-9", "Source.SourceRegion: AppStream is not served in us-north-9"),
        (7, "Source.SourceRegion: '7' is not a region name"),
    ],
)
def test_the_source_region_is_checked_against_the_regions_appstream_serves(region: Any, problem: str) -> None:
    with pytest.raises(InvalidProperties, match=problem):
        parse({"ImageName": "golden-copy", "Source": {**COPY, "SourceRegion": region}})


def test_the_same_name_needs_another_region() -> None:
    with pytest.raises(InvalidProperties, match=r"must differ from ImageName \(or name its SourceRegion\)"):
        parse({"ImageName": "golden", "Source": {"Type": "Copy", "SourceImageName": "golden"}})
    assert parse({"ImageName": "golden", "Source": COPY}).source.source_region == WEST


def test_iam_is_asked_for_copy_image_on_the_sources_arn_in_its_region(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, _ = fake
    service.regions.get(WEST).add_image("golden")
    here = "arn:aws:appstream:us-east-1:123456789012:image/golden"
    there = "arn:aws:appstream:us-west-2:123456789012:image/golden"
    rest = {"Effect": "Allow", "NotAction": "appstream:CopyImage", "Resource": "*"}
    for key, source in (("ASIAHERE", here), ("ASIATHERE", there)):
        copying = {
            "Effect": "Allow",
            "Action": "appstream:CopyImage",
            "Resource": [source, here.replace("/golden", "/golden-copy")],
        }
        service.iam.register(
            key, "arn:aws:sts::123456789012:assumed-role/provider/fn", [{"Statement": [rest, copying]}]
        )
    body = event("create", ImageName="golden-copy", Source=COPY)
    session = boto3.session.Session(aws_access_key_id="ASIAHERE", aws_secret_access_key="x", region_name="us-east-1")
    with pytest.raises(AccessDenied, match="may not call appstream:CopyImage on image golden"):
        handle(session.client("appstream", endpoint_url=service.url, config=NO_RETRY), clock, body)
    assert [(d.action, d.resource) for d in service.iam.denials] == [("appstream:CopyImage", there)]
    session = boto3.session.Session(aws_access_key_id="ASIATHERE", aws_secret_access_key="x", region_name="us-east-1")
    done = finished(handle(session.client("appstream", endpoint_url=service.url, config=NO_RETRY), clock, body))
    assert done.attributes["State"] == "AVAILABLE"


def test_on_aws_the_source_regions_own_endpoint_is_used_with_the_same_principal_and_retry_bound() -> None:
    session = boto3.session.Session(aws_access_key_id="AKIAHOME", aws_secret_access_key="s", region_name="us-east-1")
    home = session.client("appstream", config=images.RETRY_CONFIG)
    assert home.meta.endpoint_url == "https://appstream2.us-east-1.amazonaws.com"
    images.bound_retries(home, 1234.0)
    west = images.in_region(home, WEST)
    assert west.meta.endpoint_url == "https://appstream2.us-west-2.amazonaws.com"  # each region its own endpoint
    assert west.meta.region_name == WEST
    assert west._request_signer._credentials.access_key == "AKIAHOME"
    assert west.meta.config.retries == home.meta.config.retries
    assert images._BOUNDS[west] == 1234.0
    assert images.in_region(home, "us-east-1") is home

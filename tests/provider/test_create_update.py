"""Create (adopt, copy, update) and Update (replacement or in place): ownership, tags, sharing, waiting."""

from __future__ import annotations

import pytest

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from provider.appstream.sources import Source
from provider.contract import FAILED_CREATE_ID, OWNER_TAG, SOURCE_TAG
from tests.provider.conftest import OWNER, Provider, owned_image

OTHER = "210987654321"
ATTRIBUTES = {
    "Arn",
    "Name",
    "State",
    "Platform",
    "Visibility",
    "CreatedTime",
    "BaseImageArn",
    "AppstreamAgentVersion",
    "DisplayName",
    "AmiId",  # Export's AMI: "" without Export
}


def test_sample_create_adopts_an_existing_image_and_returns_attributes(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-2026-11", display_name="Golden", platform="WINDOWS_SERVER_2022")
    response = provider.invoke(provider.event("create"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    data = response["Data"]
    assert set(data) == ATTRIBUTES
    assert data["AmiId"] == ""
    assert data["Arn"] == "arn:aws:appstream:us-east-1:123456789012:image/golden-2026-11"
    assert (data["State"], data["Visibility"], data["DisplayName"]) == ("AVAILABLE", "PRIVATE", "Golden")
    assert data["CreatedTime"].startswith("20")
    assert "T" in data["CreatedTime"]  # ISO 8601
    assert live_backend.images["golden-2026-11"].tags == {OWNER_TAG: OWNER, SOURCE_TAG: "Existing"}
    assert len(appstream.audit.calls("DescribeImages")) == 1  # the settle step reuses the adoption's look


def test_a_response_url_that_first_answers_500_still_gets_the_response(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    live_backend.add_image("golden-2026-11")
    provider.endpoint.fail_next(1)
    response = provider.invoke(provider.event("create"))
    assert response is not None  # recorded only once a PUT was accepted
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"


def test_create_of_a_missing_existing_image_fails_with_the_marker_id(provider: Provider) -> None:
    response = provider.invoke(provider.event("create"))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "does not exist" in response["Reason"]
    assert response["PhysicalResourceId"] == FAILED_CREATE_ID


def test_a_copy_from_a_missing_source_names_the_property_not_botocore(provider: Provider) -> None:
    props = {"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "no-such-base"}}
    response = provider.invoke(provider.event("create", props=props))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith("Invalid property Source.SourceImageName: image no-such-base does not exist")
    assert "An error occurred" not in response["Reason"]
    assert response["PhysicalResourceId"] == FAILED_CREATE_ID


def test_invalid_properties_fail_create_with_a_reason_naming_them(
    provider: Provider, appstream: LocalAppStream
) -> None:
    event = provider.event("create", props={"ImageName": "golden-2026-11", "SharedWith": [{"AccountId": "42"}]})
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "SharedWith[0].AccountId" in response["Reason"]
    assert "12-digit" in response["Reason"]
    assert response["PhysicalResourceId"] == FAILED_CREATE_ID
    assert appstream.audit.entries() == []


def test_create_refuses_an_image_another_resource_owns(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", owner="other-stack/Other", tags={})
    response = provider.invoke(provider.event("create"))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "owned by other-stack/Other" in response["Reason"]
    assert live_backend.images["golden-2026-11"].tags == {OWNER_TAG: "other-stack/Other"}
    assert appstream.audit.mutations() == []


@pytest.mark.parametrize(
    ("visibility", "reason"),
    [("PUBLIC", "is PUBLIC: only PRIVATE images"), ("SHARED", "does not exist")],  # shared: found by ARN only
)
def test_create_refuses_public_and_shared_with_us_images(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream, visibility: str, reason: str
) -> None:
    live_backend.add_image("golden-2026-11", visibility=visibility)
    response = provider.invoke(provider.event("create"))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert reason in response["Reason"]
    assert appstream.audit.mutations() == []


def test_create_by_copy_waits_for_available_then_shares_and_tags(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-base", platform="AMAZON_LINUX2")
    props = {
        "ImageName": "golden-2026-11",
        "Source": {"Type": "Copy", "SourceImageName": "golden-base", "Description": "monthly"},
        "SharedWith": [{"AccountId": OTHER, "AllowFleet": "true", "AllowImageBuilder": "false"}],
        "Tags": [{"Key": "team", "Value": "euc"}],
    }
    response = provider.invoke(provider.event("create", props=props))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["Data"]["State"] == "AVAILABLE"
    assert response["Data"]["Platform"] == "AMAZON_LINUX2"
    image = live_backend.images["golden-2026-11"]
    made_from = Source("Copy", "golden-base", "monthly").fingerprint()
    assert made_from.startswith("Copy/golden-base/")
    assert image.tags == {"team": "euc", OWNER_TAG: OWNER, SOURCE_TAG: made_from}
    assert live_backend.accepted_permissions("golden-2026-11") == {
        OTHER: {"allowFleet": True, "allowImageBuilder": False}
    }
    copies = appstream.audit.calls("CopyImage")
    assert [c["params"] for c in copies] == [
        {
            "SourceImageName": "golden-base",
            "DestinationImageName": "golden-2026-11",
            "DestinationRegion": "us-east-1",
            "DestinationImageDescription": "monthly",
        }
    ]


def test_create_by_update_tags_atomically_and_waits(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-base")
    props = {
        "ImageName": "golden-2026-11",
        "Source": {"Type": "Update", "SourceImageName": "golden-base", "DisplayName": "Patched"},
    }
    response = provider.invoke(provider.event("create", props=props))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["Data"]["DisplayName"] == "Patched"
    assert response["Data"]["BaseImageArn"] == live_backend.images["golden-base"].arn
    call = appstream.audit.calls("CreateUpdatedImage")[0]
    made_from = Source("Update", "golden-base", display_name="Patched").fingerprint()
    assert call["params"]["newImageTags"] == {OWNER_TAG: OWNER, SOURCE_TAG: made_from}


def test_create_without_waiting_returns_while_copying(provider: Provider, live_backend: AppStreamBackend) -> None:
    live_backend.add_image("golden-base")
    live_backend.durations.copy = 30
    props = {
        "ImageName": "golden-2026-11",
        "WaitForAvailable": "false",
        "Source": {"Type": "Copy", "SourceImageName": "golden-base"},
    }
    response = provider.invoke(provider.event("create", props=props))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["Data"]["State"] == "COPYING"


def test_an_image_that_fails_while_waited_on_fails_create_with_its_reason(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    live_backend.add_image("golden-2026-11", state="PENDING", settle_seconds=0.5, then="FAILED")
    response = provider.invoke(provider.event("create"))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "Image golden-2026-11 is FAILED: INTERNAL_ERROR Seeded failure." in response["Reason"]


def test_duplicate_create_delivery_is_idempotent(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-base")
    props = {"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}}
    event = provider.event("create", props=props)
    first = provider.invoke(dict(event))
    second = provider.invoke(dict(event))
    assert first is not None
    assert second is not None
    assert (first["Status"], second["Status"]) == ("SUCCESS", "SUCCESS")
    assert len(appstream.audit.calls("CopyImage")) == 1


def test_sample_update_changes_tags_in_place(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", tags={"old": "1"})
    event = provider.event("update")
    event["OldResourceProperties"]["Tags"] = [{"Key": "old", "Value": "1"}]
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert live_backend.images["golden-2026-11"].tags == {"team": "euc", OWNER_TAG: OWNER, SOURCE_TAG: "Existing"}
    assert appstream.audit.calls("DeleteImage") == []


def test_update_changes_sharing_in_place(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(
        live_backend, "golden-2026-11", tags={}, permissions={OTHER: {"allowFleet": True, "allowImageBuilder": True}}
    )
    event = provider.event(
        "update",
        props={"ImageName": "golden-2026-11", "SharedWith": [{"AccountId": "111122223333"}]},
        old_props={"ImageName": "golden-2026-11", "SharedWith": [{"AccountId": OTHER}]},
    )
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert live_backend.accepted_permissions("golden-2026-11") == {
        "111122223333": {"allowFleet": True, "allowImageBuilder": True}
    }


def test_sample_rename_is_a_replacement_that_deletes_nothing(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11")
    live_backend.add_image("golden-2026-12")
    response = provider.invoke(provider.event("update-rename"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-12"
    assert live_backend.images["golden-2026-12"].tags == {OWNER_TAG: OWNER, SOURCE_TAG: "Existing"}
    assert "golden-2026-11" in live_backend.images  # CloudFormation's cleanup Delete removes it later
    assert appstream.audit.calls("DeleteImage") == []


def test_source_change_without_a_new_name_fails_and_keeps_the_image(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11")
    event = provider.event(
        "update",
        props={"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}},
        old_props={"ImageName": "golden-2026-11"},
    )
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "give the new Source a new ImageName" in response["Reason"]
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert appstream.audit.mutations() == []


def test_update_of_an_image_someone_else_owns_fails(provider: Provider, live_backend: AppStreamBackend) -> None:
    live_backend.add_image("golden-2026-11")
    response = provider.invoke(provider.event("update"))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "owned by no resource" in response["Reason"]
    assert response["PhysicalResourceId"] == "golden-2026-11"


def test_unknown_request_type_fails_with_a_reason(provider: Provider, live_backend: AppStreamBackend) -> None:
    live_backend.add_image("golden-2026-11")
    event = provider.event("create", RequestType="Upsert")
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "Unknown RequestType 'Upsert'" in response["Reason"]


def test_a_failed_copy_is_handed_to_the_rollback_which_deletes_it(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-base", copies_end="FAILED")
    props = {"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}}
    response = provider.invoke(provider.event("create", props=props))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "IMAGE_COPY_FAILURE" in response["Reason"]
    assert "the rollback deletes image golden-2026-11" in response["Reason"]
    assert response["PhysicalResourceId"] == "golden-2026-11"
    rollback = provider.event("delete", props=props, PhysicalResourceId=response["PhysicalResourceId"])
    deleted = provider.invoke(rollback)
    assert deleted is not None
    assert deleted["Status"] == "SUCCESS"
    assert "golden-2026-11" not in live_backend.images
    assert "golden-base" in live_backend.images


def test_a_failed_adoption_releases_the_image(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-2026-11", state="PENDING", settle_seconds=0.3, then="FAILED", tags={"keep": "me"})
    response = provider.invoke(provider.event("create"))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == FAILED_CREATE_ID
    assert live_backend.images["golden-2026-11"].tags == {"keep": "me"}
    assert appstream.audit.calls("DeleteImage") == []


def test_a_failed_replacement_keeps_the_old_id_and_deletes_the_failed_image(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11")
    live_backend.add_image("golden-base", copies_end="FAILED")
    event = provider.event(
        "update-rename",
        props={"ImageName": "golden-2026-12", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}},
    )
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert "image golden-2026-11 is kept; image golden-2026-12 is deleted" in response["Reason"]
    assert [c["params"]["Name"] for c in appstream.audit.calls("DeleteImage")] == ["golden-2026-12"]
    assert live_backend.snapshot()["images"]["golden-2026-12"]["State"] == "DELETING"
    assert live_backend.images["golden-2026-11"].state == "AVAILABLE"

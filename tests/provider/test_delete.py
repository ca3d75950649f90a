"""Delete: revoke sharing, DeleteImage, wait until gone; never touch what this resource does not own."""

from __future__ import annotations

from typing import Any

import pytest

from appstream_image_local.appstream import AppStreamBackend, Fault, LocalAppStream
from provider.cloudformation import clock as budget_clock
from provider.contract import OWNER_TAG, SOURCE_TAG, owner_value
from tests.conftest import FakeClock
from tests.provider.conftest import STACK_ID, Provider, event, finished, handle, owned_image, run_step

OTHER = "210987654321"


def mutations(appstream: LocalAppStream) -> list[tuple[str, dict[str, object]]]:
    return [(m["operation"], m["params"]) for m in appstream.audit.mutations()]


def test_sample_delete_event_deletes_the_owned_image_and_waits_until_gone(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.5)
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert "golden-2026-11" not in live_backend.images
    last = appstream.audit.calls("DescribeImages")[-1]
    assert last["error"] == "ResourceNotFoundException"  # SUCCESS only once AppStream says it is gone
    assert mutations(appstream) == [("DeleteImage", {"Name": "golden-2026-11"})]


def test_already_gone_is_success_with_no_mutation(provider: Provider, appstream: LocalAppStream) -> None:
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", "golden-2026-11")
    assert mutations(appstream) == []


def test_duplicate_deliveries_both_succeed(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.5)
    event = provider.event("delete")
    first = provider.invoke(dict(event))
    second = provider.invoke(dict(event))
    assert first is not None
    assert second is not None
    assert (first["Status"], second["Status"]) == ("SUCCESS", "SUCCESS")
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"] == "golden-2026-11"
    assert len(appstream.audit.calls("DeleteImage")) == 1


def test_sharing_is_revoked_before_delete(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(
        live_backend,
        "golden-2026-11",
        permissions={OTHER: {"allowFleet": True, "allowImageBuilder": True}, "111122223333": {"allowFleet": True}},
        delete_seconds=0.2,
    )
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert mutations(appstream) == [
        ("DeleteImagePermissions", {"Name": "golden-2026-11", "SharedAccountId": "111122223333"}),
        ("DeleteImagePermissions", {"Name": "golden-2026-11", "SharedAccountId": OTHER}),
        ("DeleteImage", {"Name": "golden-2026-11"}),
    ]


def test_image_not_owned_by_this_resource_is_left_in_place(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-2026-11")  # re-created by someone else: no ownership tag
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert "golden-2026-11" in live_backend.images
    assert mutations(appstream) == []


def test_image_owned_by_another_resource_is_left_in_place(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream, caplog
) -> None:
    owned_image(live_backend, "golden-2026-11", owner="other-stack/OtherImage")
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert mutations(appstream) == []
    assert any("owned by other-stack/OtherImage" in r.getMessage() for r in caplog.records)


def test_the_failed_create_marker_never_reaches_appstream(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11")
    event = provider.event("delete", PhysicalResourceId="AppStreamImage::CREATE_FAILED")
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "AppStreamImage::CREATE_FAILED"
    assert appstream.audit.entries() == []  # the failed Create answered with the marker: it made nothing
    assert "golden-2026-11" in live_backend.images


def test_an_id_not_of_this_provider_leaves_an_image_of_unknown_making_alone(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", tags={})  # owned, but no source tag says this resource made it
    for name in ("delete-after-failed-create", "delete-after-create-timeout"):
        event = provider.event(name)
        response = provider.invoke(event)
        assert response is not None
        assert response["Status"] == "SUCCESS"
        assert response["PhysicalResourceId"] == event["PhysicalResourceId"]
    assert appstream.audit.mutations() == []
    assert "golden-2026-11" in live_backend.images


COPY = {"Type": "Copy", "SourceImageName": "golden-base"}
MADE = "Copy/golden-base/0123456789abcdef"  # the source tag a copy gets


def test_an_id_cloudformation_made_up_deletes_the_image_this_resource_made(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    """A Create cancelled because another resource failed (or one that timed out) gets a Delete with an id of
    CloudFormation's own (aws/aws-cdk#26139, PR #36951): the image it made carries this resource's tag."""
    _, client = fake
    owned_image(backend, "golden-2026-11", tags={SOURCE_TAG: MADE})
    body = event("delete-after-create-timeout", ImageName="golden-2026-11", Source=COPY)
    stopped: list[str] = []
    outcome = handle(client, clock, body, stop_polling=lambda name: stopped.append(name) or False)
    assert finished(outcome).physical_id == body["PhysicalResourceId"]  # a Delete answers with the id it was given
    assert "golden-2026-11" not in backend.images
    assert stopped[0] == "golden-2026-11"  # the Create's polling, should it have handed over


def test_an_id_cloudformation_made_up_waits_for_an_image_the_cancelled_create_may_still_make(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    body = event("delete-after-create-timeout", ImageName="golden-2026-11", Source=COPY)
    real_advance = clock.advance

    def advance(seconds: float) -> None:  # the cancelled Create's CopyImage lands 30 s into the Delete
        before = clock.now
        real_advance(seconds)
        if before < 1030 <= clock.now:
            owned_image(backend, "golden-2026-11", state="COPYING", settle_seconds=20, tags={SOURCE_TAG: MADE})

    outcome = run_step(client, body, 900_000, clock=clock, sleep=advance)
    assert finished(outcome).physical_id == body["PhysicalResourceId"]
    assert "golden-2026-11" not in backend.images or backend.images["golden-2026-11"].state == "DELETING"


def test_an_id_cloudformation_made_up_with_nothing_made_answers_after_the_window_and_changes_nothing(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-2026-11", tags={OWNER_TAG: "other-stack/Other/00000000"})  # someone else's
    started = clock.now
    body = event("delete-after-create-timeout", ImageName="golden-2026-11", Source=COPY)
    assert finished(handle(client, clock, body)).physical_id == body["PhysicalResourceId"]
    assert clock.now >= started + budget_clock.IN_FLIGHT
    assert service.audit.mutations() == []
    assert "golden-2026-11" in backend.images


def test_an_image_a_never_answered_create_adopted_is_given_back_not_deleted(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "builder-output", tags={SOURCE_TAG: "Existing", "team": "euc"})
    body = event("delete-after-create-timeout", ImageName="builder-output")
    assert finished(handle(client, clock, body)).physical_id == body["PhysicalResourceId"]
    image = backend.images["builder-output"]
    assert image.state == "AVAILABLE"
    assert OWNER_TAG not in image.tags
    assert SOURCE_TAG not in image.tags
    assert image.tags["team"] == "euc"


def test_in_use_by_a_fleet_fails_at_once_without_calling_delete_image(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", permissions={"210987654321": {"allowFleet": True}})
    live_backend.add_fleet("sales-fleet", "golden-2026-11")
    response = provider.invoke(provider.event("delete", props={"ImageName": "golden-2026-11", "InUse": "Fail"}))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert "fleet sales-fleet" in response["Reason"]
    assert "Gave up deleting image golden-2026-11 at once (InUse: Fail)" in response["Reason"]
    assert "golden-2026-11" in live_backend.images
    assert mutations(appstream) == []  # nothing revoked, nothing changed


def test_an_image_builder_does_not_stop_the_provider_asking_and_appstreams_refusal_names_it(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    shares = {"210987654321": {"allowFleet": True, "allowImageBuilder": False}}
    owned_image(live_backend, "golden-2026-11", permissions=dict(shares))
    live_backend.add_builder("win-builder", "golden-2026-11")
    response = provider.invoke(provider.event("delete", props={"ImageName": "golden-2026-11", "InUse": "Fail"}))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "image builder win-builder" in response["Reason"]
    assert "The image is kept, with its sharing" in response["Reason"]
    assert "golden-2026-11" in live_backend.images
    # AppStream documents "in use" as DeleteImage's blocker and the admin guide names fleets: the provider
    # asks once no fleet holds the image, and gives the sharing it revoked back when AppStream refuses.
    assert [c["error"] for c in appstream.audit.calls("DeleteImage")] == ["ResourceInUseException"]
    operations = [operation for operation, _ in mutations(appstream)]  # successful changes only
    assert operations == ["DeleteImagePermissions", "UpdateImagePermissions"]
    assert live_backend.accepted_permissions("golden-2026-11") == shares


@pytest.mark.parametrize("seconds", [0.0, 2.0, 12.0, 30.0])
def test_a_deletion_is_reported_within_t_plus_3_seconds(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, seconds: float
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11", delete_seconds=seconds)
    started = clock.now
    assert finished(handle(client, clock, event("delete"))).physical_id == "golden-2026-11"
    assert "golden-2026-11" not in backend.snapshot()["images"]
    assert seconds <= clock.now - started <= seconds + 3


def test_in_use_wait_keeps_trying_until_the_fleet_releases_the_image(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    appstream, client = fake
    owned_image(backend, "golden-2026-11", delete_seconds=0.5)
    backend.add_fleet("sales-fleet", "golden-2026-11", release_after=60, release_to="golden-2026-12")
    outcome = handle(client, clock, event("delete", ImageName="golden-2026-11", InUse="Wait"))
    assert finished(outcome).physical_id == "golden-2026-11"
    assert "golden-2026-11" not in backend.snapshot()["images"]
    # DeleteImage is called only once the fleet let go: while in use, nothing is attempted or revoked.
    assert [c["error"] for c in appstream.audit.calls("DeleteImage")] == [None]
    assert len(appstream.audit.calls("DescribeFleets")) >= 2


def test_concurrent_modification_is_retried_then_succeeds(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    appstream, client = fake
    owned_image(backend, "golden-2026-11", delete_seconds=0.2)
    appstream.faults.add(Fault("concurrent_modification", operation="DeleteImage", count=3))
    assert finished(handle(client, clock, event("delete"))).physical_id == "golden-2026-11"
    errors = [c["error"] for c in appstream.audit.calls("DeleteImage")]
    assert errors == ["ConcurrentModificationException"] * 3 + [None]


def test_throttling_bursts_are_retried_by_botocore(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.2)
    appstream.faults.add(Fault("throttle", count=2), Fault("server_error", operation="DeleteImage", count=1))
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    faults = [e for e in appstream.audit.entries() if e["faults"]]
    assert len(faults) == 3


def test_image_still_being_copied_is_waited_for_then_deleted(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    appstream, client = fake
    owned_image(backend, "golden-2026-11", state="COPYING", settle_seconds=600, delete_seconds=0.3)
    assert finished(handle(client, clock, event("delete"))).physical_id == "golden-2026-11"
    assert "golden-2026-11" not in backend.snapshot()["images"]
    assert [c["error"] for c in appstream.audit.calls("DeleteImage")] == [None]


def test_failed_image_is_deleted_too(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", state="PENDING", settle_seconds=0, then="FAILED", delete_seconds=0.2)
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert "golden-2026-11" not in live_backend.images


def test_not_permitted_fails_with_a_clear_reason(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11")
    appstream.faults.add(Fault("error", operation="DeleteImage", code="OperationNotPermittedException"))
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "does not permit deleting image golden-2026-11" in response["Reason"]
    assert "golden-2026-11" in live_backend.images


def test_physical_id_is_always_the_events(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11")
    live_backend.add_fleet("f", "golden-2026-11")
    for props in ({"ImageName": "golden-2026-11", "InUse": "Fail"}, {"ImageName": 5}, {}):
        response = provider.invoke(provider.event("delete", props=props))
        assert response is not None
        assert response["PhysicalResourceId"] == "golden-2026-11"


def test_a_late_delete_from_a_deleted_stack_leaves_the_recreated_stacks_image(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    # The stack was deleted and created again under the same name: a new StackId, a new owner value.
    recreated = STACK_ID.rsplit("/", 1)[0] + "/11111111-2222-3333-4444-555555555555"
    owned_image(live_backend, "golden-2026-11", owner=owner_value(recreated, "GoldenImage"))
    response = provider.invoke(provider.event("delete"))  # a duplicate delivery of the old stack's Delete
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert "golden-2026-11" in live_backend.images
    assert mutations(appstream) == []

"""What AWS enforces, and the provider gets right: each test failed on the provider before issue #10's fixes.

Most run `step.run` on the service's fake clock (sleeping advances it), so waits of minutes take
milliseconds; the client does not retry, so each AppStream answer is seen as AWS sends it.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from appstream_image_local.appstream import AppStreamBackend, Fault, Limits, LocalAppStream
from appstream_image_local.appstream.copies import copy_image
from provider.appstream import deletion
from provider.appstream.creation import Made
from provider.appstream.sources import Source
from provider.appstream.states import Budget
from provider.cloudformation import clock as budget_clock
from provider.cloudformation.clock import LATEST_RUN, Timing
from provider.cloudformation.outcome import Continue
from provider.cloudformation.resume import Phase, Resume
from provider.contract import OWNER_TAG, SOURCE_TAG, owner_pattern, owner_value, tag_value_problem
from provider.errors import AccessDenied, DeadlineExceeded, ImageInUse, NotOwned, NotPermitted, QuotaExceeded
from tests.conftest import FakeClock
from tests.provider.conftest import OWNER, STACK_ID, Provider, event, finished, handle, owned_image, scheduled

OTHER = "210987654321"


# -- 1. the ownership tag AppStream accepts ------------------------------------------------------


@pytest.mark.parametrize("logical_id", ["GoldenImage", "L" * 255])
def test_the_ownership_tag_uses_only_characters_appstream_allows_and_matches_the_iam_pattern(logical_id: str) -> None:
    value = owner_value(STACK_ID, logical_id)
    assert tag_value_problem(value) == ""
    assert len(value) <= 256
    assert fnmatch.fnmatchcase(value, owner_pattern("images"))  # the RetireImagesThisStackOwns condition
    assert not fnmatch.fnmatchcase(value, owner_pattern("image"))
    assert value != owner_value(STACK_ID.replace("5b6c1e30", "00000000"), logical_id)  # per stack instance


def test_a_copy_is_tagged_as_owned_and_appstream_accepts_the_tag(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-base")
    props = {"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}}
    response = provider.invoke(provider.event("create", props=props))
    assert response is not None
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert live_backend.images["golden-2026-11"].tags[OWNER_TAG] == "images/GoldenImage/" + OWNER.rsplit("/", 1)[1]
    assert [c["error"] for c in appstream.audit.calls("TagResource")] == [None]


def test_user_tags_appstream_would_reject_fail_before_any_call(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-2026-11")
    props = {"ImageName": "golden-2026-11", "Tags": [{"Key": "cost-center", "Value": "#42"}]}
    response = provider.invoke(provider.event("create", props=props))
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "Tags[0].Value: the value of tag 'cost-center' contains '#'" in response["Reason"]
    assert appstream.audit.entries() == []


# -- 2. Copy and Update never claim an image they did not make -------------------------------------


@pytest.mark.parametrize("kind", ["Copy", "Update"])
def test_copy_or_update_into_a_name_taken_by_another_image_fails_without_touching_it(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, kind: str
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    backend.add_image("golden-2026-11", tags={"team": "other"})
    body = event("create", ImageName="golden-2026-11", Source={"Type": kind, "SourceImageName": "golden-base"})
    with pytest.raises(NotOwned, match="Image golden-2026-11 already exists and this resource did not make it"):
        handle(client, clock, body)
    assert service.audit.mutations() == []
    assert backend.images["golden-2026-11"].tags == {"team": "other"}


def test_a_retried_create_picks_up_the_copy_it_already_made(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    owned_image(backend, "golden-2026-11", state="COPYING", settle_seconds=20)
    claims: list[str] = []
    body = event("create", ImageName="golden-2026-11", Source={"Type": "Copy", "SourceImageName": "golden-base"})
    done = finished(handle(client, clock, body, claim=claims.append))
    assert (done.physical_id, done.attributes["State"]) == ("golden-2026-11", "AVAILABLE")
    assert service.audit.calls("CopyImage") == []
    assert claims == ["golden-2026-11"]  # a failure now would hand it to the rollback


@pytest.mark.parametrize(
    ("owner", "outcome"),
    [
        (OWNER, "picked up"),  # a duplicate delivery of this request made it a moment ago
        ("other-stack/Other/12345678", "made meanwhile by other-stack/Other/12345678"),
        (None, "no ownership tag after 30 s"),
    ],
)
def test_a_name_taken_between_our_look_and_our_copy_is_picked_up_only_when_ours(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, owner: str | None, outcome: str
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    tags = {OWNER_TAG: owner} if owner else {}
    made = backend.add_image("golden-2026-11", state="CREATING", settle_seconds=30, tags=tags)
    made.visible_at = clock.now + 5  # read-after-write: our DescribeImages does not see it yet
    body = event("create", ImageName="golden-2026-11", Source={"Type": "Update", "SourceImageName": "golden-base"})
    if owner == OWNER:
        assert finished(handle(client, clock, body)).physical_id == "golden-2026-11"
    else:
        with pytest.raises(NotOwned, match=outcome):
            handle(client, clock, body)
    assert [c["error"] for c in service.audit.calls("CreateUpdatedImage")] == ["ResourceAlreadyExistsException"]
    assert backend.images["golden-2026-11"].tags == tags  # never claimed


# -- 3. rotation with default settings; a refused delete changes nothing ----------------------------


def test_with_default_properties_the_cleanup_delete_waits_for_the_fleet_to_let_go(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11", permissions={OTHER: {"allowFleet": True, "allowImageBuilder": True}})
    backend.add_fleet("fleet", "golden-2026-11", release_after=120, release_to="golden-2026-12")
    outcome = handle(client, clock, event("delete"))  # the sample event: no InUse, no ServiceTimeout
    assert finished(outcome).physical_id == "golden-2026-11"
    assert "golden-2026-11" not in backend.snapshot()["images"]
    revokes = service.audit.calls("DeleteImagePermissions")
    assert revokes
    fleet_checks = service.audit.calls("DescribeFleets")
    assert [c for c in fleet_checks if c["seq"] < revokes[0]["seq"]]  # users checked before anything is revoked
    deletes = [c["error"] for c in service.audit.calls("DeleteImage")]
    assert deletes[-1] is None
    assert set(deletes[:-1]) <= {"ResourceInUseException"}  # only while the revocation was being applied
    assert service.audit.calls("UpdateImagePermissions") == []


def test_an_image_in_use_is_neither_unshared_nor_changed_and_the_reason_names_what_holds_it(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    service, client = fake
    shares = {OTHER: {"allowFleet": True, "allowImageBuilder": False}}
    owned_image(backend, "golden-2026-11", permissions=dict(shares))
    backend.add_fleet("outside-fleet", "golden-2026-11")
    body = event("delete", ImageName="golden-2026-11", ServiceTimeout="120")
    caplog.set_level(logging.INFO)
    with pytest.raises(ImageInUse) as excinfo:
        handle(client, clock, body)
    assert "Gave up deleting image golden-2026-11 after waiting until the ServiceTimeout" in str(excinfo.value)
    assert "in use by fleet outside-fleet" in str(excinfo.value)
    assert service.audit.mutations() == []
    assert backend.accepted_permissions("golden-2026-11") == shares
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "golden-2026-11" in errors[0].getMessage()
    assert "fleet outside-fleet" in errors[0].getMessage()


def test_a_delete_refused_after_revoking_gives_the_sharing_back() -> None:
    client = boto3.client("appstream", region_name="us-east-1")
    arn = "arn:aws:appstream:us-east-1:123456789012:image/golden-2026-11"
    perms = {"allowFleet": True, "allowImageBuilder": False}
    with Stubber(client) as stub:
        stub.add_response("describe_fleets", {"Fleets": []})  # builders are not checked before DeleteImage
        stub.add_response(
            "describe_image_permissions",
            {
                "Name": "golden-2026-11",
                "SharedImagePermissionsList": [{"sharedAccountId": OTHER, "imagePermissions": perms}],
            },
        )
        stub.add_response("delete_image_permissions", {}, {"Name": "golden-2026-11", "SharedAccountId": OTHER})
        stub.add_client_error("delete_image", "ResourceInUseException", "a fleet started using it")
        fleet = {"Name": "late-fleet", "ImageName": "golden-2026-11", "ImageArn": arn, "InstanceType": "x"}
        fleet |= {"ComputeCapacityStatus": {"Desired": 1}, "State": "RUNNING", "Arn": "arn:aws:appstream:f"}
        stub.add_response("describe_fleets", {"Fleets": [fleet]})
        stub.add_response("describe_image_builders", {"ImageBuilders": []})
        stub.add_response(
            "update_image_permissions",
            {},
            {"Name": "golden-2026-11", "SharedAccountId": OTHER, "ImagePermissions": perms},
        )
        with pytest.raises(ImageInUse, match="fleet late-fleet"):
            deletion._attempt(client, deletion.Deletion("golden-2026-11", in_use="Fail"), arn, "AVAILABLE")
        stub.assert_no_pending_responses()


def test_revoked_sharing_that_has_not_applied_yet_is_waited_for_not_restored(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.limits.permission_lag = 5
    owned_image(backend, "golden-2026-11", permissions={OTHER: {"allowFleet": True, "allowImageBuilder": True}})
    outcome = handle(client, clock, event("delete", ImageName="golden-2026-11", InUse="Fail"))
    assert finished(outcome).physical_id == "golden-2026-11"
    assert "golden-2026-11" not in backend.snapshot()["images"]
    assert service.audit.calls("UpdateImagePermissions") == []
    assert [c["error"] for c in service.audit.calls("DeleteImage")][-1] is None


# -- 4. no orphaned images --------------------------------------------------------------------------


def test_a_later_deploy_replaces_the_failed_image_this_resource_made(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    owned_image(backend, "golden-2026-12", state="FAILED")
    body = event("create", ImageName="golden-2026-12", Source={"Type": "Copy", "SourceImageName": "golden-base"})
    done = finished(handle(client, clock, body))
    assert (done.physical_id, done.attributes["State"]) == ("golden-2026-12", "AVAILABLE")
    assert [c["params"] for c in service.audit.calls("DeleteImage")] == [{"Name": "golden-2026-12"}]
    assert len(service.audit.calls("CopyImage")) == 1


def test_describe_failures_right_after_the_copy_started_are_outlasted_and_the_copy_is_tagged(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    service.faults.add(Fault("server_error", operation="DescribeImages", skip=1, count=4))
    body = event("create", ImageName="golden-2026-11", Source={"Type": "Copy", "SourceImageName": "golden-base"})
    assert finished(handle(client, clock, body)).physical_id == "golden-2026-11"
    made_from = Source("Copy", "golden-base").fingerprint()
    assert backend.images["golden-2026-11"].tags == {OWNER_TAG: OWNER, SOURCE_TAG: made_from}


def test_a_copy_that_never_becomes_visible_fails_naming_the_image_for_the_rollback(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    service.faults.add(Fault("server_error", operation="DescribeImages", skip=1))
    claims: list[str] = []
    body = event(
        "create",
        ImageName="golden-2026-11",
        ServiceTimeout="60",
        Source={"Type": "Copy", "SourceImageName": "golden-base"},
    )
    with pytest.raises(Made, match="the rollback deletes image golden-2026-11"):
        handle(client, clock, body, claim=claims.append)
    assert claims == ["golden-2026-11"]


def test_a_scheduled_invocation_of_a_create_that_made_its_image_answers_with_it(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    owned_image(live_backend, "golden-2026-11", state="COPYING", settle_seconds=600)
    scheduled = provider.event("create", props={"ImageName": "golden-2026-11"})
    scheduled["ResponseURL"] = provider.endpoint.url("scheduled-timeout")
    resume = Resume(deadline=0.0, image="golden-2026-11", made=True)  # the deadline has passed
    scheduled |= {"CrHelperPoll": True, "CrHelperData": {"_Resume": resume.to_data()}}
    response = provider.invoke(scheduled)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == "golden-2026-11"


# -- 5. eventual consistency -------------------------------------------------------------------------


def test_a_new_copy_invisible_for_a_while_is_waited_for(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.limits.visibility_lag = 20
    backend.add_image("golden-base")
    body = event("create", ImageName="golden-2026-11", Source={"Type": "Update", "SourceImageName": "golden-base"})
    done = finished(handle(client, clock, body))
    assert (done.physical_id, done.attributes["State"]) == ("golden-2026-11", "AVAILABLE")
    assert "ResourceNotFoundException" in [c["error"] for c in service.audit.calls("DescribeImages")]


# -- 6. quotas ------------------------------------------------------------------------------------------


def test_a_copy_refused_for_the_concurrency_quota_waits_for_a_slot(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    for name in ("other-1", "other-2"):  # two copies already running: AppStream's quota is 2
        copy_image(
            backend, {"SourceImageName": "golden-base", "DestinationImageName": name, "DestinationRegion": "us-east-1"}
        )
    caplog.set_level(logging.INFO)
    body = event("create", ImageName="golden-2026-11", Source={"Type": "Copy", "SourceImageName": "golden-base"})
    started = clock.now
    outcome = handle(client, clock, body)
    # A slot wait hands over to scheduled polling within 40 s (a Delete can stop scheduled runs, not this one).
    assert isinstance(outcome, Continue)
    assert clock.now - started <= 40
    assert outcome.state.phase is Phase.START
    while isinstance(outcome, Continue):
        clock.advance(60)
        outcome = handle(client, clock, scheduled(body, outcome.state))
    assert finished(outcome).physical_id == "golden-2026-11"
    attempts = [c["error"] for c in service.audit.calls("CopyImage")]
    assert attempts[-1] is None
    assert set(attempts[:-1]) == {"LimitExceededException"}
    assert any("waiting for a free copy slot" in r.getMessage() for r in caplog.records)


def test_a_quota_that_waiting_will_not_free_fails_at_once_naming_it(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.limits = Limits(images=1)
    backend.add_image("golden-base")
    body = event("create", ImageName="golden-2026-11", Source={"Type": "Copy", "SourceImageName": "golden-base"})
    started = clock.now
    with pytest.raises(QuotaExceeded, match="number of images per account and region"):
        handle(client, clock, body)
    assert clock.now - started <= 20  # a short re-check (running copies can be invisible), not the deadline
    assert service.audit.mutations() == []


def test_waiting_for_a_slot_continues_in_scheduled_invocations_with_all_properties() -> None:
    from provider.cloudformation.schedule import polling_input

    body = event("create", ImageName="golden-2026-11", Tags=[{"Key": "team", "Value": "euc"}])
    assert '"Tags"' in polling_input(body, Resume(1.0, "golden-2026-11", phase=Phase.START), "run-2")
    assert '"Tags"' not in polling_input(body, Resume(1.0, "golden-2026-11", phase=Phase.SETTLE), "run-2")


# -- 7. every answer before CloudFormation's timeout ----------------------------------------------------


def test_a_deadline_between_two_scheduled_runs_is_waited_through_inline(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11", delete_seconds=3600)
    deadline = clock.now + 50  # after this run's 40 s slice, before the next run (60 s later)
    run = scheduled(event("delete"), Resume(deadline, "golden-2026-11", Phase.DELETE))
    backend.delete_image({"Name": "golden-2026-11"})
    with pytest.raises(DeadlineExceeded):
        handle(client, clock, run)
    assert deadline - 3 <= clock.now <= deadline  # answered by the deadline, not at the next run


def test_a_first_invocation_whose_deadline_falls_after_its_end_answers_before_handing_over_too_late() -> None:
    timing = Timing(now=0.0, remaining_ms=900_000, polling=False)
    last_moment = 900.0 - budget_clock.HAND_OVER
    window = timing.window(deadline=920.0)  # the next scheduled run would come at about 950 s
    assert window.deadline <= last_moment
    assert window.hand_over_at == float("inf")
    far = timing.window(deadline=3000.0)
    assert (far.deadline, far.hand_over_at) == (3000.0, last_moment)
    polled = Timing(now=0.0, remaining_ms=900_000, polling=True).window(deadline=3000.0)
    assert polled.hand_over_at == budget_clock.POLL_SLICE


def test_a_deadline_before_the_latest_a_successor_schedule_can_run_is_waited_for_not_handed_over() -> None:
    """A one-time schedule runs anywhere in the minute it names, up to schedule.LATEST_RUN after the hand-over."""
    timing = Timing(now=0.0, remaining_ms=900_000, polling=True)
    gap = budget_clock.POLL_SLICE + LATEST_RUN + budget_clock.NEXT_RUN_SLACK
    assert timing.window(deadline=gap - 1).hand_over_at == float("inf")
    assert timing.window(deadline=gap + 1).hand_over_at == budget_clock.POLL_SLICE


def test_budget_inline_never_hands_over_and_ends_by_the_last_moment() -> None:
    budget = Budget(deadline=100.0, hand_over_at=50.0, last_moment=80.0).inline()
    assert (budget.deadline, budget.hand_over_at) == (80.0, float("inf"))


# -- 8. IAM: AccessDenied names the action, the image and the scope -------------------------------------


def test_access_denied_names_the_action_the_image_and_the_scope(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    service.faults.add(Fault("error", operation="CopyImage", code="AccessDeniedException"))
    body = event("create", ImageName="team-b-image", Source={"Type": "Copy", "SourceImageName": "golden-base"})
    with pytest.raises(AccessDenied, match="may not call appstream:CopyImage on image team-b-image") as excinfo:
        handle(client, clock, body, scope="images named golden-*")
    assert "It may manage only images named golden-*" in str(excinfo.value)


# -- 9. failures while loading the handler answer --------------------------------------------------------


def test_a_module_that_fails_to_import_still_answers_failed(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import sys

    import provider as package

    monkeypatch.delattr(package, "step")
    monkeypatch.setitem(sys.modules, "provider.step", None)  # importing it now raises ImportError
    module = importlib.reload(provider.module)
    body = provider.event("create")
    body["ResponseURL"] = provider.endpoint.url("load-failure")
    module.handler(body, None)
    [response] = provider.endpoint.received["load-failure"]
    assert response["Status"] == "FAILED"
    assert "The provider failed to load: ModuleNotFoundError" in response["Reason"]
    assert response["PhysicalResourceId"] == "AppStreamImage::CREATE_FAILED"
    monkeypatch.undo()
    importlib.reload(provider.module)


def test_client_errors_other_than_access_denied_pass_through(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11")
    service.faults.add(Fault("error", operation="DeleteImage", code="OperationNotPermittedException"))
    with pytest.raises(NotPermitted, match="does not permit deleting"):
        handle(client, clock, event("delete"))

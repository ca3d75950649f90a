"""CloudFormation's own protocol: rollback Updates, refusals that change nothing, deadlines on its clock,
one answer in time, AppStream's whole answer (each test fails on the provider before these fixes)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from appstream_image_local.appstream import AppStreamBackend, Fault, LocalAppStream
from provider import logs
from provider.appstream import images
from provider.appstream.creation import Made
from provider.appstream.sources import Source
from provider.cloudformation import clock as budget_clock
from provider.cloudformation.answer import Answer
from provider.cloudformation.outcome import Continue
from provider.contract import SOURCE_TAG
from provider.errors import (
    AccessDenied,
    DeadlineExceeded,
    ImageFailed,
    ImageShared,
    InvalidProperties,
    NotPermitted,
    ProviderError,
)
from tests.conftest import FakeClock
from tests.provider.conftest import (
    OWNER,
    Provider,
    event,
    finished,
    handle,
    owned_image,
    policy_statements,
    rules_left,
    run_step,
    scheduled,
)

OTHER = "210987654321"
COPY_S1 = {"Type": "Copy", "SourceImageName": "golden-base"}
COPY_S2 = {"Type": "Copy", "SourceImageName": "no-such-source"}
SHARE = {OTHER: {"allowFleet": True, "allowImageBuilder": False}}


def made_by_copy(backend: AppStreamBackend, name: str, source: dict[str, str] = COPY_S1, **attrs: Any) -> None:
    """An image this resource made by a copy: ownership and source tags, as the provider leaves them."""
    fingerprint = Source("Copy", source["SourceImageName"]).fingerprint()
    owned_image(backend, name, tags={SOURCE_TAG: fingerprint, **attrs.pop("tags", {})}, **attrs)


def rollback(new: dict[str, Any], failed: dict[str, Any], physical_id: str) -> dict[str, Any]:
    """The Update CloudFormation sends to roll a failed Update back (aws/aws-cdk#17040)."""
    body = event("update", **new)
    body["OldResourceProperties"] = {"ServiceToken": body["ServiceToken"], **failed}
    body["PhysicalResourceId"] = physical_id
    return body


# -- 1. rollback Updates succeed ------------------------------------------------------------------------


def test_the_rollback_of_a_failed_rotation_that_also_changed_the_source_succeeds(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    made_by_copy(backend, "golden-a", tags={"team": "euc"})
    old = {"ImageName": "golden-a", "Source": COPY_S1, "Tags": [{"Key": "team", "Value": "euc"}]}
    failed = {"ImageName": "golden-b", "Source": COPY_S2, "Tags": [{"Key": "team", "Value": "vdi"}]}
    assert finished(handle(client, clock, rollback(old, failed, "golden-a"))).physical_id == "golden-a"
    assert backend.images["golden-a"].tags["team"] == "euc"
    assert [c["operation"] for c in service.audit.mutations()] == []  # nothing to put back, nothing touched


def test_the_rollback_of_a_refused_same_name_source_change_succeeds_and_the_forward_change_is_still_refused(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    made_by_copy(backend, "golden-a", permissions=dict(SHARE))
    before = {"ImageName": "golden-a", "Source": COPY_S1, "SharedWith": [{"AccountId": OTHER}]}
    after = {"ImageName": "golden-a", "Source": COPY_S2}
    forward = rollback(after, before, "golden-a")
    with pytest.raises(InvalidProperties, match="it changed from Copy of golden-base to Copy of no-such-source"):
        handle(client, clock, forward)
    assert finished(handle(client, clock, rollback(before, after, "golden-a"))).physical_id == "golden-a"
    assert OTHER in backend.accepted_permissions("golden-a")


def test_a_rollback_removes_the_copy_an_abandoned_replacement_left_copying(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    made_by_copy(backend, "golden-a")
    # The replacement's copy was still COPYING at its deadline: tagged as this resource's, never finished.
    made_by_copy(backend, "golden-b", state="COPYING", settle_seconds=120)
    old = {"ImageName": "golden-a", "Source": COPY_S1}
    done = finished(handle(client, clock, rollback(old, {"ImageName": "golden-b", "Source": COPY_S1}, "golden-a")))
    assert done.physical_id == "golden-a"
    assert done.attributes["Name"] == "golden-a"
    assert "golden-b" not in backend.snapshot()["images"]  # waited until it settled, then deleted it


def test_a_rollback_leaves_an_image_it_cannot_prove_it_made_and_says_so(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = fake
    made_by_copy(backend, "golden-a")
    backend.add_image("golden-b", tags={"appstream-image-provider:owner": "another-stack/Image/00000000"})
    old = {"ImageName": "golden-a", "Source": COPY_S1}
    with caplog.at_level(logging.INFO, logger="provider"):
        outcome = handle(client, clock, rollback(old, {"ImageName": "golden-b", "Source": COPY_S1}, "golden-a"))
    assert finished(outcome).physical_id == "golden-a"
    assert "golden-b" in backend.images
    assert any("left in place" in r.getMessage() and r.image == "golden-b" for r in caplog.records)  # type: ignore[attr-defined]


# -- 2. a Delete that does not go ahead changes nothing ---------------------------------------------------


def test_an_in_use_refusal_with_nothing_visible_gives_the_sharing_back_by_the_deadline(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11", permissions=dict(SHARE))
    service.faults.add(Fault("error", operation="DeleteImage", code="ResourceInUseException"))
    body = event("delete", ImageName="golden-2026-11", ServiceTimeout="60")
    with pytest.raises(DeadlineExceeded):
        handle(client, clock, body)
    assert backend.accepted_permissions("golden-2026-11") == SHARE


def test_operation_not_permitted_gives_the_sharing_back(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11", permissions=dict(SHARE))
    service.faults.add(Fault("error", operation="DeleteImage", code="OperationNotPermittedException"))
    with pytest.raises(NotPermitted):
        handle(client, clock, event("delete", ImageName="golden-2026-11"))
    assert backend.accepted_permissions("golden-2026-11") == SHARE


def test_the_revoked_sharing_is_carried_into_scheduled_invocations_and_given_back_there(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11", permissions=dict(SHARE))
    service.faults.add(Fault("error", operation="DeleteImage", code="ResourceInUseException"))
    body = event("delete", ImageName="golden-2026-11", ServiceTimeout="3600")
    outcome = handle(client, clock, body, remaining_ms=60_000)  # hands over after 50 s
    assert isinstance(outcome, Continue)
    assert outcome.state.revoked == (f"{OTHER}:f-",)
    assert OTHER not in backend.accepted_permissions("golden-2026-11")  # revoked while the Delete goes on
    last = replace(outcome.state, deadline=clock.now + 30)  # the last scheduled run
    with pytest.raises(DeadlineExceeded):
        handle(client, clock, scheduled(body, last))
    assert backend.accepted_permissions("golden-2026-11") == SHARE


def test_shared_on_delete_fail_refuses_a_shared_image_and_changes_nothing(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11", permissions=dict(SHARE))
    with pytest.raises(ImageShared, match=f"shared with {OTHER}.*zero capacity"):
        handle(client, clock, event("delete", ImageName="golden-2026-11", SharedOnDelete="Fail"))
    assert service.audit.mutations() == []
    assert backend.accepted_permissions("golden-2026-11") == SHARE


def test_the_accounts_that_lose_access_are_logged_before_revoking(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11", permissions=dict(SHARE))
    with caplog.at_level(logging.WARNING, logger="provider"):
        handle(client, clock, event("delete", ImageName="golden-2026-11"))
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert OTHER in warning.getMessage()
    assert "zero capacity" in warning.getMessage()
    first_revocation = next(e["time"] for e in service.audit.entries() if e["operation"] == "DeleteImagePermissions")
    assert warning.created <= first_revocation + 1  # logged first


# -- 5. deadlines on CloudFormation's clock ------------------------------------------------------------


@pytest.mark.parametrize("queued", [0.0, 5.0, 30.0, 59.0])
def test_the_answer_comes_before_cloudformations_timeout_counted_from_its_send(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, queued: float
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11", delete_seconds=7200)
    sent = clock.now
    clock.advance(queued)  # asynchronous queueing and a cold start, before the handler starts
    with pytest.raises(DeadlineExceeded):
        handle(client, clock, event("delete", ImageName="golden-2026-11", ServiceTimeout="900"))
    assert clock.now < sent + 900


def test_the_send_margin_is_a_tenth_of_timeouts_a_minute_at_most_and_more_for_short_ones() -> None:
    assert budget_clock.deadline_for(3600, 0.0) == 3540.0
    assert budget_clock.deadline_for(300, 0.0) == 270.0
    assert budget_clock.deadline_for(100, 0.0) == 80.0  # 20 s, more than a tenth
    assert budget_clock.deadline_for(60, 0.0) == 40.0  # a cold start can take seconds: 20 s kept back
    assert budget_clock.deadline_for(150, 0.0) == 130.0
    assert budget_clock.deadline_for(21, 0.0) == 14.0  # a third of a short timeout


# -- 4. answer first, clean up after ---------------------------------------------------------------------


def test_the_timeout_path_answers_before_it_removes_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = Answer({"CrHelperPoll": True}, None, None)  # type: ignore[arg-type]  # no calls: both steps are recorded
    order: list[str] = []
    monkeypatch.setattr(answer, "send", lambda *a, **k: order.append("answer"))
    monkeypatch.setattr(answer, "_remove_polling", lambda: order.append("remove schedule"))
    answer.time_out()
    assert order == ["answer", "remove schedule"]


def test_the_timer_leaves_time_for_the_put_and_its_retries() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    timer = Answer({}, Context(), None).start_timer()  # type: ignore[arg-type]
    timer.cancel()
    assert timer.interval == 60 - budget_clock.TIMER_LEAD
    assert budget_clock.TIMER_LEAD >= 5  # crhelper's own timer leaves 0.5 s
    assert budget_clock.TIMER_LEAD + budget_clock.SCHEDULE_SETUP == budget_clock.HAND_OVER  # work stops first


def test_only_the_first_of_two_answers_is_sent(provider: Provider, live_backend: AppStreamBackend) -> None:
    live_backend.add_image("golden-2026-11")
    body = provider.event("create")
    response = provider.invoke(body)
    assert response is not None
    helper = provider.module.helper
    before = len(provider.endpoint.received[provider.response_key(body)])
    helper.answer.send("FAILED", "a late timer")  # what a timer firing after the handler answered would do
    assert len(provider.endpoint.received[provider.response_key(body)]) == before


# -- 6. the scheduled path matches the inline one --------------------------------------------------------


def test_a_replacement_that_fails_in_a_scheduled_invocation_deletes_its_image(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    made_by_copy(backend, "golden-a")
    backend.add_image("golden-base", copies_end="FAILED")
    backend.durations.copy = 600
    body = event("update", ImageName="golden-b", Source=COPY_S1)
    body["OldResourceProperties"] = {"ServiceToken": body["ServiceToken"], "ImageName": "golden-a", "Source": COPY_S1}
    body["PhysicalResourceId"] = "golden-a"
    outcome = handle(client, clock, body, remaining_ms=60_000)
    assert isinstance(outcome, Continue)
    assert outcome.state.made is True  # an Update's replacement is "made" too
    clock.advance(600)
    with pytest.raises(ProviderError, match=r"golden-b is FAILED.*image golden-a is kept; image golden-b is deleted"):
        handle(client, clock, scheduled(body, outcome.state))
    assert backend.snapshot()["images"].get("golden-b", {}).get("State") in (None, "DELETING")


def test_a_scheduled_invocation_that_cannot_load_removes_its_rule_and_permission(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    events, lambda_ = boto3.client("events"), boto3.client("lambda")
    rule = events.put_rule(Name="AppStreamImagePoll-GoldenImage-LOADFAIL", ScheduleExpression="rate(1 minute)")
    lambda_.add_permission(
        FunctionName="AppStreamImageProvider",
        StatementId="AppStreamImagePoll-GoldenImage-LOADFAIL",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule["RuleArn"],
    )
    monkeypatch.setenv("AWS_REGION", "not a region!")
    module = importlib.reload(provider.module)
    body = provider.event("delete")
    body |= {
        "CrHelperPoll": True,
        "CrHelperRule": rule["RuleArn"],
        "CrHelperPermission": "AppStreamImagePoll-GoldenImage-LOADFAIL",
        "ResponseURL": provider.endpoint.url("load-failure-in-a-scheduled-run"),
    }
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # boto3 itself works again for the cleanup
    from tests.provider.conftest import lambda_context

    module.handler(body, lambda_context())
    [answer] = provider.endpoint.received["load-failure-in-a-scheduled-run"]
    assert answer["Status"] == "FAILED"
    assert "AppStreamImagePoll-GoldenImage-LOADFAIL" not in rules_left()
    assert policy_statements() == []


# -- 7. AppStream's whole answer -------------------------------------------------------------------------


def test_can_update_image_false_fails_at_once_naming_the_source(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base", updatable=False)
    body = event("create", ImageName="golden-2026-11", Source={"Type": "Update", "SourceImageName": "golden-base"})
    started = clock.now
    with pytest.raises(ImageFailed, match="will not update image golden-base"):
        handle(client, clock, body)
    assert clock.now - started < 5  # no wait for an image that never appears
    assert "golden-2026-11" not in backend.images


def test_a_failed_images_errors_are_in_the_reason(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base", copies_end="FAILED")
    body = event("create", ImageName="golden-2026-11", Source=COPY_S1)
    with pytest.raises(Made, match=r"IMAGE_COPY_FAILURE.*INTERNAL_SERVICE_ERROR golden-2026-11: the image failed"):
        handle(client, clock, body)


# -- 8. Lambda's log levels -------------------------------------------------------------------------------


@pytest.mark.parametrize(("lambda_level", "python_level"), [("TRACE", "DEBUG"), ("WARN", "WARNING"), ("", "INFO")])
def test_lambda_log_levels_map_to_pythons(lambda_level: str, python_level: str) -> None:
    assert logs.lambda_log_level(lambda_level) == python_level


def test_aws_lambda_log_level_trace_does_not_fail_every_request(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "TRACE")
    module = importlib.reload(provider.module)
    assert module.LOAD_FAILURE is None
    assert module.helper._init_failed is None
    live_backend.add_image("golden-2026-11")
    provider.module = module
    response = provider.invoke(provider.event("create"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL")
    logging.getLogger().setLevel(logging.WARNING)


# -- 9. Reasons that name the right thing -----------------------------------------------------------------


def _denied(resource: str) -> ClientError:
    user = "arn:aws:sts::123456789012:assumed-role/p/f"
    message = f"User: {user} is not authorized to perform: appstream:CopyImage on resource: {resource}"
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, "CopyImage")


def test_access_denied_on_the_source_names_the_source_and_the_scope() -> None:
    err = _denied("arn:aws:appstream:us-east-1:123456789012:image/golden-base")
    reason = str(images.access_denied(err, "team-a-image", "images named team-a-*"))
    assert "on image golden-base" in reason
    assert "It may manage only images named team-a-*" in reason
    assert "team-a-image" not in reason


def test_access_denied_on_a_public_image_says_what_aws_allows() -> None:
    err = _denied("arn:aws:appstream:us-east-1::image/AppStream-WinServer2022-01-01-2026")
    denied = images.access_denied(err, "team-a-image", "images named team-a-*")
    assert isinstance(denied, AccessDenied)
    assert "a public AWS image" in str(denied)
    assert "launch an image builder from AppStream-WinServer2022-01-01-2026" in str(denied)


# -- 10. duplicate deliveries --------------------------------------------------------------------------------


def test_a_duplicate_delivery_waits_for_the_untagged_copy_the_other_delivery_is_tagging(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base")
    backend.add_image("golden-2026-11", state="COPYING", settle_seconds=60)  # the other delivery's, untagged yet
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds)
        if len(naps) == 3:  # the other delivery tags its copy a few seconds later
            backend.images["golden-2026-11"].tags["appstream-image-provider:owner"] = OWNER

    body = event("create", ImageName="golden-2026-11", Source=COPY_S1)
    assert finished(run_step(client, body, 900_000, clock=clock, sleep=sleep)).physical_id == "golden-2026-11"


# -- 3. each AppStream call bounded by the time left -----------------------------------------------------------


def test_botocore_does_not_retry_past_the_invocations_time(
    appstream: LocalAppStream, live_backend: AppStreamBackend
) -> None:
    live_backend.add_image("golden-base")
    appstream.faults.add(Fault("error", operation="CopyImage", code="LimitExceededException"))
    client = images.appstream_client()
    images.bound_retries(client, time.time() + images.RETRY_HEADROOM - 1)  # no room for a retry
    with pytest.raises(ClientError, match="LimitExceeded"):
        images.copy(client, "golden-base", "golden-2026-11", "")
    assert len(appstream.audit.calls("CopyImage")) == 1
    images.bound_retries(client, time.time() + 600)  # the next invocation's bound replaces this one's
    appstream.faults.clear()
    appstream.faults.add(Fault("error", operation="CopyImage", code="LimitExceededException", count=1))
    images.copy(client, "golden-base", "golden-2026-11", "")  # retried by botocore, then accepted
    assert len(appstream.audit.calls("CopyImage")) == 3


def test_a_scheduled_invocation_that_hits_crhelpers_init_failure_removes_its_schedule(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, lambda_ = boto3.client("events"), boto3.client("lambda")
    name = "AppStreamImagePoll-GoldenImage-INITFAIL"
    rule = events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")
    lambda_.add_permission(
        FunctionName="AppStreamImageProvider",
        StatementId=name,
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule["RuleArn"],
    )
    monkeypatch.setattr(provider.module.helper, "_init_failed", RuntimeError("crhelper could not start"))
    body = provider.event("delete") | {
        "CrHelperPoll": True,
        "CrHelperRule": rule["RuleArn"],
        "CrHelperPermission": name,
    }
    body["ResponseURL"] = provider.endpoint.url("init-failure-scheduled")
    from tests.provider.conftest import lambda_context

    provider.module.handler(body, lambda_context())
    [answer] = provider.endpoint.received["init-failure-scheduled"]
    assert answer["Status"] == "FAILED"
    assert "crhelper could not start" in answer["Reason"]
    assert name not in rules_left()
    assert policy_statements() == []

"""AvailableSignal: the resource answers once the work has started; the wait for AVAILABLE goes on after the
answer in scheduled polling, which signals the wait condition handle (SUCCESS, or FAILURE with the Reason).

CloudFormation user guide, "Create wait conditions": a signal is a PUT of {Status, UniqueId, Data, Reason}
to the handle's presigned URL; the wait condition's Timeout is at most 43200 s and starts when it is created.
"""

from __future__ import annotations

import datetime
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from provider.appstream.properties import parse
from provider.cloudformation import clock as budget_clock
from provider.cloudformation.outcome import AnsweredThenContinue, Continue
from provider.cloudformation.response import url_expiry
from provider.cloudformation.resume import RESUME, Resume
from provider.cloudformation.schedule import image_chain, image_rule, schedule_name
from provider.errors import DeadlineExceeded, InvalidProperties, ProviderError
from provider.logs import redact
from tests.conftest import FakeClock
from tests.provider.conftest import (
    FUNCTION,
    OWNER,
    STACK_ID,
    Provider,
    clear_schedules,
    ensure_function,
    event,
    finish_soon,
    finished,
    fire,
    handle,
    next_run,
    owned_image,
    policy_statements,
    rules_left,
    run_step,
    scheduled,
    schedules_left,
)

AWS_HANDLE = (
    "https://cloudformation-waitcondition-us-east-1.s3.amazonaws.com/arn%3Aaws%3Acloudformation%3Aus-east-1%3A"
    "123456789012%3Astack%2Fimages%2F5b6c%2FGoldenAvailableHandle?Expires=4102444800&AWSAccessKeyId=AKIAEXAMPLE"
    "&Signature=ik1twT6hpS4cgNAw7wyOoRejVoo%3D"
)


@pytest.fixture(autouse=True)
def _no_rules_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "provider" not in request.fixturenames:
        return
    clear_schedules()  # a failed test must not leave its chain to the next one
    events = boto3.client("events")
    for rule in rules_left():  # nor an old rule
        events.remove_targets(Rule=rule, Ids=["1"])
        events.delete_rule(Name=rule)
    for statement in policy_statements():
        boto3.client("lambda").remove_permission(FunctionName=FUNCTION, StatementId=statement["Sid"])


LONG_COPY = 600.0  # seconds: the copy outlasts the first invocation however slow the machine; tests finish it


def copy_props(handle_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "ImageName": "golden-2026-11",
        "Source": {"Type": "Copy", "SourceImageName": "golden-base"},
        "SharedWith": [{"AccountId": "210987654321"}],
        "AvailableSignal": {"Handle": handle_url, "Timeout": "43200"},
        **extra,
    }


# -- the property ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        ({"Timeout": "600"}, "AvailableSignal.Handle: required"),
        ({"Handle": "http://example.com/x"}, "presigned https:// URL"),
        ({"Handle": AWS_HANDLE, "Timeout": "43201"}, "outside 1-43200 seconds"),
        ({"Handle": AWS_HANDLE, "Timeout": "soon"}, "whole number of seconds"),
        ({"Handle": AWS_HANDLE, "Count": "2"}, "unknown keys 'Count'"),
        ("just-a-url", "expected an object"),
    ],
)
def test_a_bad_available_signal_names_the_property_and_what_is_allowed(signal: Any, message: str) -> None:
    with pytest.raises(InvalidProperties, match=message):
        parse({"ImageName": "golden-2026-11", "AvailableSignal": signal})


def test_wait_for_available_false_does_not_go_with_a_signal() -> None:
    with pytest.raises(InvalidProperties, match="WaitForAvailable: false does not go with AvailableSignal"):
        parse({"ImageName": "x1", "WaitForAvailable": "false", "AvailableSignal": {"Handle": AWS_HANDLE}})
    signal = parse({"ImageName": "x1", "AvailableSignal": {"Handle": AWS_HANDLE}}).available_signal
    assert signal is not None
    assert signal.timeout == 43200  # the wait condition's maximum, by default
    assert AWS_HANDLE not in repr(signal)  # a credential stays out of reprs and logs


def test_a_wait_condition_handle_url_is_redacted_from_logs() -> None:
    text = redact(f"signalling {AWS_HANDLE} now; Signature=abc&AWSAccessKeyId=AKIAEXAMPLE")
    assert "ik1twT6hpS4cgNAw7wyOoRejVoo" not in text
    assert "AKIAEXAMPLE" not in text
    assert "abc" not in text.replace("<presigned-url>", "")


# -- the whole protocol, in-process against the local service and moto's EventBridge Scheduler ---------------


def first_schedule(request: dict[str, Any]) -> str:
    """The name of the first schedule of a Create's polling (by image: a Delete finds it)."""
    prefix = image_chain(STACK_ID, "GoldenImage", "golden-2026-11")
    return schedule_name(prefix, request["RequestId"], 1)


def run_until_done(provider: Provider, scheduled: dict[str, Any]) -> None:
    """EventBridge Scheduler runs each schedule of the chain, which each run that does not finish extends."""
    while provider.invoke(scheduled) is None and schedules_left():
        scheduled = next_run()


def test_a_copy_answers_once_started_and_signals_success_once_available(
    provider: Provider, live_backend: AppStreamBackend, caplog: pytest.LogCaptureFixture
) -> None:
    live_backend.add_image("golden-base")
    live_backend.durations.copy = LONG_COPY
    handle_url = provider.endpoint.url("handle-success")
    request = provider.event("create", props=copy_props(handle_url))
    caplog.set_level(logging.DEBUG)
    answer = provider.invoke(request)
    assert answer is not None  # answered in the first invocation, while the copy runs
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "golden-2026-11"
    assert answer["Data"]["State"] == "COPYING"
    assert answer["Data"]["Arn"].endswith(":image/golden-2026-11")
    assert not any(key.startswith(("_", "CrHelper")) for key in answer["Data"])
    assert "handle-success" not in provider.endpoint.received  # no signal yet
    assert schedules_left() == [first_schedule(request)]
    assert policy_statements() == []
    assert not live_backend.accepted_permissions("golden-2026-11")  # sharing waits for AVAILABLE

    finish_soon(live_backend, "golden-2026-11")
    run_until_done(provider, fire(first_schedule(request)))
    [signal] = provider.endpoint.wait_for("handle-success")
    assert signal == {
        "Status": "SUCCESS",
        "UniqueId": "golden-2026-11",
        "Data": "golden-2026-11",
        "Reason": "Image golden-2026-11 is AVAILABLE",
    }
    assert len(provider.endpoint.received[provider.response_key(request)]) == 1  # never a second response
    assert live_backend.accepted_permissions("golden-2026-11")
    assert schedules_left() == []
    assert policy_statements() == []
    assert "ik1twT6hpS4cgNAw7wyOoRejVoo" not in caplog.text
    assert "secret-signature" not in caplog.text  # the handle (and the ResponseURL) never logged


def test_an_available_image_is_signalled_with_the_answer(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", tags={})  # adopted, already AVAILABLE
    handle_url = provider.endpoint.url("handle-now")
    props = {"ImageName": "golden-2026-11", "AvailableSignal": {"Handle": handle_url}}
    answer = provider.invoke(provider.event("create", props=props))
    assert answer is not None
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"]["State"] == "AVAILABLE"
    [signal] = provider.endpoint.wait_for("handle-now")
    assert signal["Status"] == "SUCCESS"
    assert schedules_left() == []


def test_a_copy_that_fails_after_the_answer_signals_failure_with_its_errors_and_keeps_the_image(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    live_backend.add_image("golden-base")
    live_backend.durations.copy = LONG_COPY
    handle_url = provider.endpoint.url("handle-failed")
    request = provider.event("create", props=copy_props(handle_url))
    answer = provider.invoke(request)
    assert answer is not None
    assert answer["Status"] == "SUCCESS"
    with live_backend._lock:  # the copy fails, as AppStream reports it: FAILED with ImageErrors
        image = live_backend.images["golden-2026-11"]
        image.state_until = live_backend.now() + 1.0
        image.next_state = "FAILED"
        image.next_reason = {"Code": "IMAGE_COPY_FAILURE", "Message": "The image could not be copied."}
        image.next_errors = [{"ErrorCode": "INTERNAL_SERVICE_ERROR", "ErrorMessage": "snapshot failed"}]
    run_until_done(provider, fire(first_schedule(request)))
    [signal] = provider.endpoint.wait_for("handle-failed")
    assert signal["Status"] == "FAILURE"
    assert "IMAGE_COPY_FAILURE" in signal["Reason"]
    assert "snapshot failed" in signal["Reason"]
    assert live_backend.images["golden-2026-11"].state == "FAILED"  # the rollback's Delete removes it
    assert len(provider.endpoint.received[provider.response_key(request)]) == 1
    assert schedules_left() == []


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_a_delete_stops_the_wait_that_outlives_the_answer_and_removes_the_image(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    live_backend.add_image("golden-base")
    live_backend.durations.copy = LONG_COPY
    handle_url = provider.endpoint.url("handle-deleted")
    props = copy_props(handle_url)
    request = provider.event("create", props=props)
    answer = provider.invoke(request)
    assert answer is not None
    assert schedules_left() == [first_schedule(request)]
    assert live_backend.images["golden-2026-11"].state == "COPYING"
    finish_soon(live_backend, "golden-2026-11", 2.0)  # AppStream deletes it only once the copy has settled
    deletion = provider.event("delete", props=props)  # the rollback, or a stack deletion, while COPYING
    response = provider.invoke(deletion)
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert schedules_left() == []  # the wait that outlived the answer is over
    assert policy_statements() == []
    assert "golden-2026-11" not in live_backend.images
    assert "handle-deleted" not in provider.endpoint.received  # nothing signalled for a deleted image
    assert [c["params"]["Name"] for c in appstream.audit.calls("DeleteImage") if c["error"] is None] == [
        "golden-2026-11"
    ]


def test_a_duplicate_delivery_reuses_the_same_schedule(provider: Provider, live_backend: AppStreamBackend) -> None:
    live_backend.add_image("golden-base")
    live_backend.durations.copy = 60.0
    props = copy_props(provider.endpoint.url("handle-twice"))
    request = provider.event("create", props=props)
    first = provider.invoke(request)
    second = provider.invoke(provider.event("create", props=props))  # the same request again: its schedule is taken
    assert first is not None
    assert second is not None
    assert [first["Status"], second["Status"]] == ["SUCCESS", "SUCCESS"]
    assert schedules_left() == [first_schedule(request)]
    assert policy_statements() == []
    assert len(live_backend.images) == 2  # one copy


# -- the decisions, on the fake clock -----------------------------------------------------------------------


def test_the_signal_deadline_fails_the_wait_naming_the_last_state(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11", state="CREATING", settle_seconds=50_000)
    body = event("create", ImageName="golden-2026-11", AvailableSignal={"Handle": AWS_HANDLE, "Timeout": "7200"})
    outcome = handle(client, clock, body)
    assert isinstance(outcome, AnsweredThenContinue)
    assert outcome.physical_id == "golden-2026-11"
    resume = outcome.state
    assert resume.answered
    assert resume.signal == AWS_HANDLE
    assert resume.deadline == pytest.approx(clock.now + 7200 - 60)  # before the wait condition's own Timeout

    def poll_until_it_fails() -> None:
        state = resume
        for run in itertools.count():
            # A few runs a minute apart, then the clock jumps to ten minutes before the deadline: the hours
            # between are the same run again (the image stays CREATING), at a few milliseconds of CPU each.
            clock.advance(60 if run != 3 else max(60.0, resume.deadline - 600 - clock.now))
            result = handle(client, clock, scheduled(body, state), remaining_ms=900_000)
            assert isinstance(result, Continue)
            assert result.state.deadline == resume.deadline  # each run keeps the handle's deadline
            state = result.state

    with pytest.raises(DeadlineExceeded) as failed:
        poll_until_it_fails()
    failure = str(failed.value)
    assert "Timed out waiting for image golden-2026-11 to become AVAILABLE" in failure
    assert "CREATING" in failure
    assert clock.now <= resume.deadline + 60


def test_a_copy_waiting_for_a_slot_answers_with_the_images_arn_and_starts_later(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base")
    backend.limits.copies = 1
    backend.durations.copy = 600  # ten scheduled minutes: the copy outlasts the run that starts it
    backend.add_image("someone-elses-copy", state="COPYING", settle_seconds=300)
    body = event(
        "create",
        ImageName="golden-2026-11",
        Source={"Type": "Copy", "SourceImageName": "golden-base"},
        AvailableSignal={"Handle": AWS_HANDLE},
    )
    answered = handle(client, clock, body)
    assert isinstance(answered, AnsweredThenContinue)
    assert answered.physical_id == "golden-2026-11"
    assert answered.attributes["State"] == "QUEUED"
    assert answered.attributes["Arn"] == "arn:aws:appstream:us-east-1:123456789012:image/golden-2026-11"
    assert answered.attributes["Platform"] == ""  # every attribute present, so each GetAtt resolves
    assert "golden-2026-11" not in backend.images
    state = answered.state
    for _ in range(30):
        clock.advance(60)
        result = handle(client, clock, scheduled(body, state))
        if not isinstance(result, Continue):
            break
        # Each scheduled run keeps what it continues: an answered request, and the handle to signal.
        state = result.state
        assert state.answered
        assert state.signal == AWS_HANDLE
    done = finished(result)
    assert done.physical_id == "golden-2026-11"
    assert done.attributes["State"] == "AVAILABLE"
    assert done.signal == ""  # answered already: the Answer signals the handle after the last scheduled run
    assert backend.images["golden-2026-11"].tags[OWNER_TAG_KEY] == OWNER


OWNER_TAG_KEY = "appstream-image-provider:owner"


def test_a_delete_of_a_queued_image_waits_until_a_stopped_run_could_no_longer_start_it(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    props = {"ImageName": "golden-2026-11", "AvailableSignal": {"Handle": AWS_HANDLE}}
    body = event("delete", **props)
    started = clock.now
    stopped: list[str] = []
    outcome = handle(client, clock, body, stop_polling=lambda name: stopped.append(name) or True)
    assert finished(outcome).physical_id == "golden-2026-11"
    assert stopped == ["golden-2026-11"]
    assert clock.now >= started + budget_clock.IN_FLIGHT  # not "gone" before a stopped run would have ended


def test_a_delete_deletes_an_image_a_stopped_run_started_meanwhile(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    body = event("delete", ImageName="golden-2026-11", AvailableSignal={"Handle": AWS_HANDLE})
    real_advance = clock.advance

    def advance(seconds: float) -> None:  # the stopped run starts its copy 20 s into the Delete
        before = clock.now
        real_advance(seconds)
        if before < 1020 <= clock.now:
            owned_image(backend, "golden-2026-11", state="COPYING", settle_seconds=30)

    outcome = run_step(client, body, 900_000, clock=clock, sleep=advance, stop_polling=lambda _name: True)
    assert finished(outcome).physical_id == "golden-2026-11"
    assert "golden-2026-11" not in backend.images or backend.images["golden-2026-11"].state == "DELETING"


def test_a_delete_without_a_signal_makes_no_eventbridge_call(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11")
    asked: list[str] = []
    outcome = handle(client, clock, event("delete"), stop_polling=lambda name: asked.append(name) or False)
    assert finished(outcome).physical_id == "golden-2026-11"
    assert asked == []  # the provider's role needs no EventBridge call for an ordinary Delete


# -- failures of the wait that goes on after the answer: the handle hears of them, never the ResponseURL ---------


def _after_answer_schedule(provider: Provider, name: str, handle_url: str) -> dict[str, Any]:
    """A scheduled event of the polling that outlived its answer, from an old rule (made before the upgrade to
    EventBridge Scheduler), with its rule and permission in place."""
    ensure_function()
    events, lambda_ = boto3.client("events"), boto3.client("lambda")
    rule = events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")
    lambda_.add_permission(
        FunctionName=FUNCTION,
        StatementId=name,
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule["RuleArn"],
    )
    resume = Resume(9e9, "golden-2026-11", answered=True, signal=handle_url)
    body = provider.event("create", props=copy_props(handle_url))
    body |= {
        "CrHelperPoll": True,
        "CrHelperRule": rule["RuleArn"],
        "CrHelperPermission": name,
        "CrHelperData": {RESUME: resume.to_data()},
        "ResponseURL": provider.endpoint.url(f"{name}-response"),
    }
    return body


def test_a_load_failure_after_the_answer_signals_failure_and_removes_the_schedule(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from tests.provider.conftest import lambda_context

    name = "AppStreamImagePoll-GoldenImage-AFTERLOAD"
    body = _after_answer_schedule(provider, name, provider.endpoint.url("handle-load"))
    monkeypatch.setenv("AWS_REGION", "not a region!")
    module = importlib.reload(provider.module)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    module.handler(body, lambda_context())
    [signal] = provider.endpoint.wait_for("handle-load")
    assert signal["Status"] == "FAILURE"
    assert "failed to load" in signal["Reason"]
    assert signal["UniqueId"] == "golden-2026-11"
    assert f"{name}-response" not in provider.endpoint.received  # CloudFormation had its answer already
    assert name not in rules_left()
    assert policy_statements() == []


def test_crhelpers_init_failure_after_the_answer_signals_failure(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.provider.conftest import lambda_context

    name = "AppStreamImagePoll-GoldenImage-AFTERINIT"
    body = _after_answer_schedule(provider, name, provider.endpoint.url("handle-init"))
    monkeypatch.setattr(provider.module.helper, "_init_failed", RuntimeError("crhelper could not start"))
    provider.module.handler(body, lambda_context())
    [signal] = provider.endpoint.wait_for("handle-init")
    assert signal["Status"] == "FAILURE"
    assert "crhelper could not start" in signal["Reason"]
    assert f"{name}-response" not in provider.endpoint.received
    assert name not in rules_left()
    assert policy_statements() == []


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_a_lambda_timeout_after_the_answer_signals_failure_once(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    from appstream_image_local.appstream import Fault
    from tests.provider.conftest import lambda_context

    live_backend.add_image("golden-base")
    owned_image(live_backend, "golden-2026-11", state="COPYING", settle_seconds=600)
    name = image_rule(STACK_ID, "GoldenImage", "golden-2026-11")
    body = _after_answer_schedule(provider, name, provider.endpoint.url("handle-timeout"))
    appstream.faults.add(Fault("latency", operation="DescribeImages", count=1, seconds=5))
    provider.module.handler(body, lambda_context(timeout_s=8.0))  # the timer fires at 2 s, mid-call
    [signal] = provider.endpoint.wait_for("handle-timeout", timeout=60)
    assert signal["Status"] == "FAILURE"
    assert "timed out" in signal["Reason"]
    assert f"{name}-response" not in provider.endpoint.received
    assert len(provider.endpoint.received["handle-timeout"]) == 1


def test_lambda_refuses_a_statement_id_twice_as_aws_does(moto_url: str) -> None:
    """The local Lambda (moto, made strict): a second AddPermission with the same id is ResourceConflictException."""
    ensure_function()
    lambda_ = boto3.client("lambda")
    kwargs = {
        "FunctionName": FUNCTION,
        "StatementId": "twice",
        "Action": "lambda:InvokeFunction",
        "Principal": "events.amazonaws.com",
    }
    lambda_.add_permission(**kwargs)
    try:
        with pytest.raises(lambda_.exceptions.ResourceConflictException, match="already exists"):
            lambda_.add_permission(**kwargs)
        assert [s["Sid"] for s in policy_statements()] == ["twice"]
    finally:
        lambda_.remove_permission(FunctionName=FUNCTION, StatementId="twice")


def test_a_new_image_name_with_the_old_handle_is_refused_before_anything_changes(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11")
    backend.add_image("golden-base")
    signal = {"Handle": AWS_HANDLE, "Timeout": "43200"}
    source = {"Type": "Copy", "SourceImageName": "golden-base"}
    body = event("update", ImageName="golden-2026-12", Source=source, AvailableSignal=signal)
    body["OldResourceProperties"] = {"ImageName": "golden-2026-11", "Source": source, "AvailableSignal": signal}
    with pytest.raises(InvalidProperties, match="a new ImageName \\(golden-2026-12\\) needs a new wait condition"):
        handle(client, clock, body)
    assert service.audit.mutations() == []  # its wait condition completed long ago: a fleet would move too soon


def test_an_in_place_update_signals_only_a_new_handle(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11", tags={})
    old = {"ImageName": "golden-2026-11", "AvailableSignal": {"Handle": AWS_HANDLE}}
    same = event("update", **old)
    same["OldResourceProperties"] = dict(old)
    assert finished(handle(client, clock, same)).signal == ""  # its wait condition is not waiting
    moved = event("update", ImageName="golden-2026-11", AvailableSignal={"Handle": AWS_HANDLE + "&x=2"})
    moved["OldResourceProperties"] = dict(old)
    done = finished(handle(client, clock, moved))
    assert done.physical_id == "golden-2026-11"
    assert done.signal == AWS_HANDLE + "&x=2"  # a new handle's wait condition hears at once, with the answer


def sigv4_handle(signed_at: float, expires: int = 86399) -> str:
    """A handle URL as CloudFormation makes them now: SigV4, signed when the stack operation started."""
    stamp = datetime.datetime.fromtimestamp(signed_at, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return (
        "https://cloudformation-waitcondition-us-east-1.s3.amazonaws.com/arn%3Aaws%3Acloudformation%3Aus-east-1%3A"
        f"123456789012%3Astack%2Fimages%2F5b6c%2FGoldenAvailableHandle?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date="
        f"{stamp}&X-Amz-SignedHeaders=host&X-Amz-Expires={expires}&X-Amz-Credential=AKIAEXAMPLE%2F20261127%2F"
        "us-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0123456789abcdef"
    )


def test_the_expiry_is_read_from_sigv4_and_sigv2_handle_urls() -> None:
    assert url_expiry(sigv4_handle(1_800_000_000.0)) == 1_800_000_000.0 + 86399
    assert url_expiry(AWS_HANDLE) == 4102444800.0
    assert url_expiry("https://example.com/handle?X-Amz-Date=garbage&X-Amz-Expires=10") is None
    assert url_expiry("https://example.com/handle") is None


def test_the_wait_never_outlasts_the_handle_url_and_its_failure_names_the_expiry(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    """A chain of long images: this one's handle was made 20 hours ago, with the stack operation."""
    _, client = fake
    clock.advance(1_800_000_000)
    handle_url = sigv4_handle(clock.now - 20 * 3600)
    owned_image(backend, "golden-2026-11", state="CREATING", settle_seconds=50_000)
    body = event("create", ImageName="golden-2026-11", AvailableSignal={"Handle": handle_url, "Timeout": "43200"})
    outcome = handle(client, clock, body)
    assert isinstance(outcome, AnsweredThenContinue)
    assert outcome.physical_id == "golden-2026-11"
    resume = outcome.state
    expires = clock.now - 20 * 3600 + 86399
    assert resume.deadline == expires - budget_clock.EXPIRY_MARGIN  # not the 12-hour Timeout's

    def poll_until_it_fails() -> None:
        state = resume
        for run in itertools.count():
            # A few runs a minute apart, then the clock jumps to ten minutes before the deadline: the hours
            # between are the same run again (the image stays CREATING), at a few milliseconds of CPU each.
            clock.advance(60 if run != 3 else max(60.0, resume.deadline - 600 - clock.now))
            result = handle(client, clock, scheduled(body, state), remaining_ms=900_000)
            assert isinstance(result, Continue)
            assert result.state.deadline == resume.deadline  # each run keeps the handle's deadline
            state = result.state

    with pytest.raises(DeadlineExceeded) as failed:
        poll_until_it_fails()
    assert clock.now < expires  # the FAILURE signal still has a URL that takes it
    assert "the wait condition handle's URL expires at" in str(failed.value)
    assert "Timed out waiting for image golden-2026-11" in str(failed.value)


def test_a_handle_url_about_to_expire_fails_at_once_and_starts_nothing(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    clock.advance(1_800_000_000)
    backend.add_image("golden-base")
    body = event(
        "create",
        ImageName="golden-2026-11",
        Source={"Type": "Copy", "SourceImageName": "golden-base"},
        AvailableSignal={"Handle": sigv4_handle(clock.now - 86399 + 100)},
    )
    with pytest.raises(ProviderError, match=r"URL expires at .* too soon to wait for image golden-2026-11"):
        handle(client, clock, body)
    assert service.audit.mutations() == []


def test_a_signal_that_could_not_be_delivered_is_tried_again_by_a_next_run(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider.module.helper, "_sleep", lambda _: None)  # the PUT's retries, without waiting
    live_backend.add_image("golden-base")
    live_backend.durations.copy = LONG_COPY
    handle_url = provider.endpoint.url("handle-later")
    request = provider.event("create", props=copy_props(handle_url))
    assert provider.invoke(request) is not None  # answered at once; the wait goes on
    finish_soon(live_backend, "golden-2026-11")
    provider.endpoint.fail_next(100)  # S3 answers errors to every try of this run's signal PUT
    provider.invoke(fire(first_schedule(request)), timeout_s=60)  # AVAILABLE within its inline wait
    assert "handle-later" not in provider.endpoint.received
    retry = next_run()
    assert retry["CrHelperData"]["_Resume"]["phase"] == "signal"
    assert retry["CrHelperData"]["_Resume"]["outcome"] == "SUCCESS"
    provider.endpoint.fail_next(0)
    provider.invoke(retry)
    [signal] = provider.endpoint.wait_for("handle-later")
    assert signal["Status"] == "SUCCESS"
    assert schedules_left() == []


def test_a_signal_sent_with_the_answer_that_could_not_be_delivered_is_tried_again_by_a_next_run(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider.module.helper, "_sleep", lambda _: None)
    owned_image(live_backend, "golden-2026-11", tags={})  # adopted, already AVAILABLE: signalled with the answer
    unreachable = "https://127.0.0.1:9/handle?X-Amz-Signature=x"  # S3 cannot be reached for this run's tries
    props = {"ImageName": "golden-2026-11", "AvailableSignal": {"Handle": unreachable}}
    answer = provider.invoke(provider.event("create", props=props))
    assert answer is not None
    assert answer["Status"] == "SUCCESS"
    retry = next_run()
    state = retry["CrHelperData"]["_Resume"]
    assert (state["phase"], state["outcome"], state["signal"]) == ("signal", "SUCCESS", unreachable)
    state["signal"] = provider.endpoint.url("handle-again")  # S3 answers again
    provider.invoke(retry)
    [signal] = provider.endpoint.wait_for("handle-again")
    assert signal["Status"] == "SUCCESS"
    assert schedules_left() == []

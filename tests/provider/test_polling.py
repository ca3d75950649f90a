"""Long waits hand over to scheduled polling: a chain of EventBridge Scheduler one-time schedules, each made by the
run before it with that run's state, which always ends and always cleans up (issue 29).

The schedules live in moto, where nothing runs them: a test reads a schedule's Input (GetSchedule), deletes it as
ActionAfterCompletion DELETE does after the run, and invokes the handler with it.
"""

from __future__ import annotations

import copy
import datetime
import importlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from appstream_image_local import moto_strict
from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from appstream_image_local.response_endpoint import ResponseEndpoint
from provider.cloudformation.answer import Answer, ImageResource
from provider.cloudformation.outcome import Continue, Done
from provider.cloudformation.resume import RESUME, Phase, Resume
from provider.cloudformation.schedule import (
    MAX_NAME,
    NAME,
    RETRY_POLICY,
    SCHEDULE,
    image_chain,
    request_chain,
    schedule_name,
)
from provider.contract import owner_value
from tests.conftest import FakeClock
from tests.provider.conftest import (
    FUNCTION,
    FUNCTION_ARN,
    GROUP,
    STACK_ID,
    Provider,
    clear_schedules,
    ensure_function,
    finish_soon,
    fire,
    lambda_context,
    next_run,
    owned_image,
    policy_statements,
    rule_input,
    rules_left,
    scheduled_input,
    schedules_left,
)

SHORT_LAMBDA = 16.5  # seconds: with the 15 s hand-over margin, about 1.5 s of inline waiting
SHARES = {"210987654321": {"allowFleet": True, "allowImageBuilder": False}}


@pytest.fixture(autouse=True)
def _nothing_scheduled_before_or_after(request: pytest.FixtureRequest) -> Iterator[None]:
    if "moto_url" not in request.fixturenames and "provider" not in request.fixturenames:
        yield
        return
    assert schedules_left() == []
    assert rules_left() == []
    assert policy_statements() == []
    yield
    left = schedules_left()
    clear_schedules()  # a failed test must not leave its chain to the next one
    assert left == [], "a polling schedule was left behind"
    assert rules_left() == [], "a polling rule was left behind"
    assert policy_statements() == [], "a permission was left on the function"


def test_a_deletion_longer_than_the_invocation_completes_through_scheduled_polling(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=600)  # until the test ends it: hand-over on any machine
    event = provider.event("delete")
    assert provider.invoke(event, timeout_s=SHORT_LAMBDA) is None  # handed over, no response yet
    [name] = schedules_left()
    assert NAME.match(name)
    assert name == schedule_name(request_chain(STACK_ID, "GoldenImage", event["RequestId"]), event["RequestId"], 1)
    assert policy_statements() == []  # the function's resource policy never changes
    scheduled = fire(name)
    assert scheduled["CrHelperPoll"] is True
    assert scheduled[SCHEDULE] == name
    assert "OldResourceProperties" not in scheduled
    finish_soon(live_backend, "golden-2026-11", 0)  # AppStream finishes
    response = provider.invoke(scheduled)  # EventBridge Scheduler runs it
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert response["Data"] == {}
    assert "golden-2026-11" not in live_backend.images
    assert schedules_left() == []  # a finished run makes no successor


def test_a_long_create_completes_through_polling_with_attributes(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    live_backend.add_image("golden-base")
    live_backend.durations.copy = 3
    props = {
        "ImageName": "golden-2026-11",
        "Source": {"Type": "Copy", "SourceImageName": "golden-base"},
        "SharedWith": [{"AccountId": "210987654321"}],
    }
    event = provider.event("create", props=props)
    assert provider.invoke(event, timeout_s=SHORT_LAMBDA) is None
    [name] = schedules_left()
    assert name.startswith(image_chain(STACK_ID, "GoldenImage", "golden-2026-11"))  # a Delete finds it by image
    response = provider.invoke(fire(name))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert response["Data"]["State"] == "AVAILABLE"
    assert not any(k.startswith("_") or k.startswith("CrHelper") for k in response["Data"])
    assert live_backend.accepted_permissions("golden-2026-11")  # shared once AVAILABLE


def test_a_scheduled_delete_held_in_use_gives_back_the_sharing_it_revoked_at_its_deadline(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    """Issue 29's regression: a rule's Input was frozen at the first hand-over, so a Delete that revoked sharing in a
    later run lost its `revoked` set, and giving up at the deadline left the other account without the image."""
    owned_image(live_backend, "golden-2026-11", permissions=dict(SHARES))
    live_backend.limits.permission_lag = 3600  # a revocation shows late: DeleteImage still finds the image shared
    live_backend.add_fleet("sales-fleet", "golden-2026-11")
    assert provider.invoke(provider.event("delete"), timeout_s=SHORT_LAMBDA) is None  # held: nothing revoked yet
    runs = [next_run()]
    inputs = [copy.deepcopy(runs[0])]  # as each schedule's Input says (a run changes its event)
    live_backend.set_fleet_image("sales-fleet", "")  # the fleet lets go: the run revokes, DeleteImage is refused
    assert provider.invoke(runs[-1], timeout_s=SHORT_LAMBDA) is None
    assert not live_backend.accepted_permissions("golden-2026-11")  # revoked
    live_backend.set_fleet_image("sales-fleet", "golden-2026-11")  # and a fleet holds it again
    for _ in range(3):
        runs.append(next_run())
        inputs.append(copy.deepcopy(runs[-1]))
        if len(runs) < 4:
            assert provider.invoke(runs[-1], timeout_s=SHORT_LAMBDA) is None  # held: waits on
    assert [run["CrHelperData"][RESUME]["revoked"] for run in inputs] == [[], *[["210987654321:f-"]] * 3]
    assert [run[SCHEDULE].rsplit("-", 1)[1] for run in inputs] == ["1", "2", "3", "4"]
    runs[-1]["CrHelperData"][RESUME]["deadline"] = time.time() - 1  # as the clock reads at the deadline
    response = provider.invoke(runs[-1], timeout_s=SHORT_LAMBDA)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "Gave up deleting image golden-2026-11" in response["Reason"]
    assert "fleet sales-fleet" in response["Reason"]
    assert live_backend.accepted_permissions("golden-2026-11") == SHARES  # given back
    assert "golden-2026-11" in live_backend.images


def test_each_successor_runs_a_period_ahead_with_the_run_s_state_and_the_next_sequence_number(
    endpoint: ResponseEndpoint, moto_url: str
) -> None:
    ensure_function()
    clock = FakeClock()
    clock.now = datetime.datetime(2026, 12, 7, 20, 13, 30, tzinfo=datetime.UTC).timestamp()
    helper, states = ImageResource(clock=clock), iter(range(1, 4))

    def waits(event: dict[str, Any], context: Any) -> str | None:  # each run hands over with a new state
        return helper.answer.accept(Continue(Resume(9e9, "golden-2026-11", Phase.DELETE, not_gone_before=next(states))))

    helper.delete(waits)
    helper.poll_delete(waits)
    event = _event(endpoint, "Delete", "request-1")
    helper(event, lambda_context())
    [first] = schedules_left()
    assert first == schedule_name(request_chain(STACK_ID, "GoldenImage", "request-1"), "request-1", 1)
    found = boto3.client("scheduler").get_schedule(GroupName=GROUP, Name=first)
    assert found["ScheduleExpression"] == "at(2026-12-07T20:15:00)"  # 20:14:30, rounded up to the minute
    assert found["ScheduleExpressionTimezone"] == "UTC"
    assert found["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert found["ActionAfterCompletion"] == "DELETE"
    assert found["Target"]["Arn"] == FUNCTION_ARN
    assert found["Target"]["RetryPolicy"] == RETRY_POLICY
    clock.advance(100)
    helper(fire(first), lambda_context())
    [second] = schedules_left()
    assert second == first[:-1] + "2"
    assert boto3.client("scheduler").get_schedule(GroupName=GROUP, Name=second)["ScheduleExpression"] == (
        "at(2026-12-07T20:17:00)"
    )
    scheduled = fire(second)
    assert scheduled["CrHelperData"][RESUME]["not_gone_before"] == 2  # the second run's state, not the first's
    assert scheduled["RequestId"] == "request-1"
    assert scheduled["ResponseURL"] == event["ResponseURL"]


def test_60_hand_overs_in_the_same_second_all_get_their_schedule_and_leave_the_function_policy_alone(
    endpoint: ResponseEndpoint, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rule + AddPermission per hand-over met Lambda's 409 ("an update is in progress") and the 20 KB policy."""
    ensure_function()
    clock = FakeClock()  # one second for all of them
    monkeypatch.setattr(moto_strict, "clock", clock)  # and one for the function: any update of it would conflict
    helpers = [ImageResource(clock=clock) for _ in range(60)]
    for n, helper in enumerate(helpers):
        image = f"golden-{n:02d}"

        def hands_over(
            event: dict[str, Any], context: Any, helper: ImageResource = helper, image: str = image
        ) -> str | None:
            return helper.answer.accept(Continue(Resume(9e9, image, Phase.DELETE)))

        helper.delete(hands_over)
        helper.poll_delete(hands_over)
        helper._scheduler_client.meta  # noqa: B018 - made here: boto3's default session makes clients one at a time
    ready = threading.Barrier(len(helpers))

    def deliver(n: int) -> None:
        ready.wait()
        helpers[n](_event(endpoint, "Delete", f"request-{n:02d}", poll=False), lambda_context())

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(len(helpers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    names = schedules_left()
    assert len(names) == 60
    assert {scheduled_input(name)["RequestId"] for name in names} == {f"request-{n:02d}" for n in range(60)}
    assert policy_statements() == []
    assert not any(key.startswith("r-hand-over-") for key in endpoint.received)  # nobody answered: all wait
    clear_schedules()


def test_a_duplicate_delivery_stops_at_its_twin_s_schedule(provider: Provider, live_backend: AppStreamBackend) -> None:
    # AppStream deletes until the test says so: a twin on a slow machine still finds the image DELETING (with a
    # 3-second delete it found it gone, and rightly answered, once in a fresh-clone CI run).
    owned_image(live_backend, "golden-2026-11", delete_seconds=600)
    assert provider.invoke(provider.event("delete"), timeout_s=SHORT_LAMBDA) is None
    twin = provider.event("delete")  # Lambda delivers the same request again
    assert provider.invoke(twin, timeout_s=SHORT_LAMBDA) is None  # ConflictException: logged, no error, no answer
    [name] = schedules_left()
    finish_soon(live_backend, "golden-2026-11", 0)  # AppStream finishes
    response = provider.invoke(fire(name))
    assert response is not None
    assert response["Status"] == "SUCCESS"


def test_a_run_from_an_old_rule_removes_the_rule_and_its_permission_then_goes_on_with_a_schedule(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    """Issue 29 item 7: polling that started before the upgrade moves to EventBridge Scheduler."""
    owned_image(live_backend, "golden-2026-11", delete_seconds=600)
    name = "AppStreamImagePoll-GoldenImage-UPGRADED"
    body = _old_rule(provider, name, provider.event("delete"))
    assert provider.invoke(rule_input(name), timeout_s=SHORT_LAMBDA) is None  # the rule fires: still DELETING
    assert rules_left() == []
    assert policy_statements() == []
    [schedule] = schedules_left()
    scheduled = fire(schedule)
    assert "CrHelperRule" not in scheduled
    assert "CrHelperPermission" not in scheduled
    assert scheduled["CrHelperData"][RESUME]["image"] == "golden-2026-11"
    assert scheduled["RequestId"] == body["RequestId"]
    finish_soon(live_backend, "golden-2026-11", 0)  # AppStream finishes
    response = provider.invoke(scheduled)
    assert response is not None
    assert response["Status"] == "SUCCESS"


def test_an_old_rule_s_permission_is_removed_after_a_concurrent_update_of_the_function(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda answers 409 while another update of the function is in progress: the removal tries again."""
    clock = FakeClock()
    monkeypatch.setattr(moto_strict, "clock", clock)  # the function's update windows, on a clock the test moves
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.2)
    name = "AppStreamImagePoll-GoldenImage-BUSYFUNC"
    _old_rule(provider, name, provider.event("delete"))  # AddPermission: the function is being updated now
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    monkeypatch.setattr(provider.module.helper, "_sleep", sleep)
    response = provider.invoke(rule_input(name))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert len(waits) == 1  # refused once (409), then removed
    assert policy_statements() == []
    assert rules_left() == []


def test_a_stop_deletes_the_chain_and_again_at_the_end_what_a_run_under_way_made_meanwhile(
    endpoint: ResponseEndpoint, moto_url: str
) -> None:
    """A Delete stops an image's chain by its prefix. A run of that chain under way has no schedule (its schedule
    went once it ran) and may still make its successor: the Delete's invocation stops the chain again at its end."""
    ensure_function()
    scheduler = boto3.client("scheduler")
    prefix = image_chain(STACK_ID, "GoldenImage", "golden-2026-11")
    pending = schedule_name(prefix, "the-create", 3)
    _schedule(scheduler, pending)
    helper, seen = ImageResource(), []

    def deletes(event: dict[str, Any], context: Any) -> str | None:
        seen.append((helper.answer.stop_polling("golden-2026-11"), schedules_left()))
        _schedule(scheduler, schedule_name(prefix, "the-create", 4))  # the run under way makes its successor
        return helper.answer.accept(Done("golden-2026-11"))

    helper.delete(deletes)
    helper(_event(endpoint, "Delete", "the-delete", poll=False), lambda_context())
    assert seen == [(True, [])]
    assert schedules_left() == []
    assert helper.answer.stop_polling("golden-2026-11") is True  # none pending: a run may be under way all the same


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_a_timeout_while_the_schedule_is_being_made_leaves_no_schedule(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer answers FAILED while the successor is being made: what is made after that is removed.

    (Found by a loaded run: the timer's removal found nothing yet, the setup then made a schedule, and it polled on.)"""
    live_backend.add_image("golden-base")
    live_backend.durations.copy = 600
    helper = provider.module.helper
    answered = threading.Event()
    send, create_schedule = Answer.send, helper._scheduler_client.create_schedule

    def send_then_tell(answer: Answer, *args: Any, **kwargs: Any) -> None:
        send(answer, *args, **kwargs)
        answered.set()

    def create_once_answered(**kwargs: Any) -> Any:
        assert answered.wait(60), "the timer did not answer"
        return create_schedule(**kwargs)

    monkeypatch.setattr(Answer, "send", send_then_tell)  # the timer's answer, and any other
    monkeypatch.setattr(helper._scheduler_client, "create_schedule", create_once_answered)
    props = {"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}}
    response = provider.invoke(provider.event("create", props=props), timeout_s=SHORT_LAMBDA)
    helper._timer.join(60)  # the timer's removal waits for the making to finish
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "timed out" in response["Reason"]
    assert schedules_left() == []


def test_the_deadline_fails_the_request_and_makes_no_successor(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=600)
    # A deadline past the latest a successor schedule can run (schedule.LATEST_RUN): the request hands over.
    event = provider.event("delete", props={"ImageName": "golden-2026-11", "ServiceTimeout": "400"})
    assert provider.invoke(event, timeout_s=SHORT_LAMBDA) is None
    scheduled = next_run()
    scheduled["CrHelperData"][RESUME]["deadline"] = time.time() - 1  # as the clock will read 400 s later
    started = time.monotonic()
    response = provider.invoke(scheduled)
    assert response is not None
    assert time.monotonic() - started < 3
    assert response["Status"] == "FAILED"
    assert "Timed out waiting for image golden-2026-11 to be deleted" in response["Reason"]
    assert "last observed state was DELETING" in response["Reason"]
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert schedules_left() == []


def test_an_inline_deadline_fails_without_ever_scheduling(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=600)
    event = provider.event("delete", props={"ImageName": "golden-2026-11", "ServiceTimeout": "2"})
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "Timed out" in response["Reason"]


def test_a_200_character_logical_id_polls_and_cleans_up(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", owner=owner_value(STACK_ID, "L" * 200), delete_seconds=600)
    event = provider.event("delete", LogicalResourceId="L" * 200)
    assert provider.invoke(event, timeout_s=SHORT_LAMBDA) is None
    [name] = schedules_left()
    assert len(name) <= MAX_NAME
    finish_soon(live_backend, "golden-2026-11", 0)  # AppStream finishes
    response = provider.invoke(fire(name))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["LogicalResourceId"] == "L" * 200


def test_a_failure_while_scheduling_answers_failed_and_leaves_nothing(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=30)

    def broken(**kwargs: object) -> None:
        raise ClientError({"Error": {"Code": "InternalServerException", "Message": "boom"}}, "CreateSchedule")

    monkeypatch.setattr(provider.module.helper._scheduler_client, "create_schedule", broken)
    response = provider.invoke(provider.event("delete"), timeout_s=SHORT_LAMBDA)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "CreateSchedule" in response["Reason"]


def test_a_fast_deletion_never_creates_a_schedule(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.3)
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"


def test_errors_at_import_still_answer_failed(
    provider: Provider, endpoint: ResponseEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "not a region!")
    module = importlib.reload(provider.module)
    event = provider.event("create")
    event["ResponseURL"] = endpoint.url("init-failure")
    module.handler(event, lambda_context())
    [response] = endpoint.received["init-failure"]
    assert response["Status"] == "FAILED"
    assert "not a region" in response["Reason"]
    assert response["PhysicalResourceId"]  # never empty: CloudFormation rejects an empty id
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    importlib.reload(provider.module)


# -- helpers ---------------------------------------------------------------------------------------------------


def _event(endpoint: ResponseEndpoint, request_type: str, request_id: str, *, poll: bool = True) -> dict[str, Any]:
    """A bare request of the sample stack's GoldenImage (answers go to the local endpoint under `r-<id>`)."""
    from tests.provider.conftest import load_event

    event = load_event(request_type.lower())
    key = f"r-hand-over-{request_id}" if not poll else f"r-{request_id}"
    return {**event, "RequestId": request_id, "ResponseURL": endpoint.url(key)}


def _old_rule(provider: Provider, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Polling as the provider made it before the upgrade: a rate rule, a permission, a target with the input."""
    ensure_function()
    events, lambda_ = boto3.client("events"), boto3.client("lambda")
    rule = events.put_rule(Name=name, ScheduleExpression="rate(1 minute)", State="ENABLED")
    lambda_.add_permission(
        FunctionName=FUNCTION,
        StatementId=name,
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule["RuleArn"],
    )
    state = Resume(time.time() + 3000, "golden-2026-11", Phase.DELETE)
    body = body | {
        "CrHelperPoll": True,
        "CrHelperRule": rule["RuleArn"],
        "CrHelperPermission": name,
        "CrHelperData": {RESUME: state.to_data()},
        "ResponseURL": provider.endpoint.url(f"{name}-response"),
    }
    events.put_targets(Rule=name, Targets=[{"Id": "1", "Arn": FUNCTION_ARN, "Input": json.dumps(body)}])
    return body


def _schedule(scheduler: Any, name: str) -> None:
    scheduler.create_schedule(
        Name=name,
        GroupName=GROUP,
        ScheduleExpression="at(2030-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": FUNCTION_ARN, "RoleArn": "arn:aws:iam::123456789012:role/x", "Input": "{}"},
    )

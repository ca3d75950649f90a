"""Faults from AppStream and around the provider: every request ends in the right status, once."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local.appstream import AppStreamBackend, Fault, LocalAppStream
from appstream_image_local.cfn.lambda_runner import Function, LambdaRunner, default_environment
from appstream_image_local.response_endpoint import ResponseEndpoint
from bench.harness import provider_function
from provider.appstream.images import RETRY_CONFIG
from provider.cloudformation import response
from provider.contract import FAILED_CREATE_ID
from tests.conftest import FakeClock
from tests.provider.conftest import (
    Provider,
    event,
    finished,
    handle,
    owned_image,
    policy_statements,
    rules_left,
    schedules_left,
)


def delete_once(provider: Provider, tally: Counter[str], faults: int) -> dict[str, object]:
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    tally["faults injected"] += faults
    tally["responses checked"] += 1
    return response


def test_latency_beyond_the_client_timeout_is_retried(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, tally: Counter[str]
) -> None:
    appstream, _ = fake
    owned_image(backend, "golden-2026-11", delete_seconds=0.2)
    # The provider's own retry settings, with the read timeout shortened from 10 s so the test is quick.
    client = boto3.client("appstream", endpoint_url=appstream.url, config=RETRY_CONFIG.merge(Config(read_timeout=0.5)))
    appstream.faults.add(Fault("latency", operation="DescribeImages", count=1, seconds=1.0))
    assert finished(handle(client, clock, event("delete"))).physical_id == "golden-2026-11"
    tally["faults injected"] += 1
    tally["responses checked"] += 1
    assert "golden-2026-11" not in backend.snapshot()["images"]
    assert appstream.faults.injected == {"latency": 1}  # that call timed out on the client and was retried


def test_dropped_connections_are_retried(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream, tally: Counter[str]
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.2)
    appstream.faults.add(Fault("drop", count=3))
    assert delete_once(provider, tally, 3)["Status"] == "SUCCESS"


def test_a_streak_of_concurrent_modifications_is_outlasted(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, tally: Counter[str]
) -> None:
    appstream, client = fake
    owned_image(backend, "golden-2026-11", delete_seconds=0.2)
    appstream.faults.add(Fault("concurrent_modification", operation="DeleteImage", count=6))
    assert finished(handle(client, clock, event("delete"))).physical_id == "golden-2026-11"
    tally["faults injected"] += 6
    tally["responses checked"] += 1
    assert len(appstream.audit.calls("DeleteImage")) == 7


def test_5xx_bursts_on_every_operation_are_retried(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream, tally: Counter[str]
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.2)
    appstream.faults.add(Fault("server_error", count=4), Fault("unavailable", count=2))
    assert delete_once(provider, tally, 6)["Status"] == "SUCCESS"


def test_a_response_url_that_times_out_before_accepting_is_retried(
    endpoint: ResponseEndpoint, tally: Counter[str]
) -> None:
    endpoint.hang_next(1, seconds=1.5)  # longer than the PUT's timeout (10 s in the provider, 0.5 s here)
    body = b'{"Status": "SUCCESS"}'
    assert response.put(endpoint.url("hung"), body, deadline=time.time() + 30, timeout=0.5, first_delay=0.1)
    tally["faults injected"] += 1
    assert endpoint.wait_for("hung", timeout=60) == [{"Status": "SUCCESS"}]


def test_the_debug_log_never_holds_the_presigned_signature(
    provider: Provider,
    live_backend: AppStreamBackend,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tally: Counter[str],
) -> None:
    import importlib

    from appstream_image_local.cfn.lambda_bootstrap import RuntimeJsonFormatter
    from provider.logs import install

    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "DEBUG")  # crhelper then logs whole events
    provider.module = importlib.reload(provider.module)
    caplog.set_level(logging.DEBUG)
    install(caplog.handler)
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.2)
    delete_once(provider, tally, 0)
    text = "\n".join(RuntimeJsonFormatter().format(r) for r in caplog.records)
    assert "ResponseURL" in text  # the event was logged ...
    assert "secret-signature" not in text  # ... without its signature
    assert "secret-key" not in text
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL")
    importlib.reload(provider.module)


def test_a_failing_create_schedule_answers_failed_and_leaves_nothing(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch, tally: Counter[str]
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=30)
    scheduler = provider.module.helper._scheduler_client

    def refuse(**kwargs: object) -> None:
        raise ClientError({"Error": {"Code": "ServiceQuotaExceededException", "Message": "full"}}, "CreateSchedule")

    monkeypatch.setattr(scheduler, "create_schedule", refuse)
    response = provider.invoke(provider.event("delete"), timeout_s=16.5)
    tally["faults injected"] += 1
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "CreateSchedule" in response["Reason"]
    assert schedules_left() == []
    assert rules_left() == []
    assert policy_statements() == []


# -- the provider as a process, as Lambda runs it ------------------------------------------------


def delete_answering_at(provider: Provider, name: str) -> dict[str, object]:
    """The sample Delete event, answering at the response endpoint's path `name`."""
    event = provider.event("delete")
    event["ResponseURL"] = provider.endpoint.url(name)
    return event


@pytest.fixture
def runner(appstream: LocalAppStream, tmp_path: Path) -> Iterator[tuple[LambdaRunner, Function]]:
    env = default_environment({"AWS_ENDPOINT_URL_APPSTREAM": appstream.url, "AWS_REGION": "us-east-1"})
    function = provider_function()
    lambda_runner = LambdaRunner(env, tmp_path / "logs")
    yield lambda_runner, function
    lambda_runner.wait_all(5)
    lambda_runner.close()


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_a_lambda_timeout_mid_wait_still_answers_failed_once(
    provider: Provider,
    live_backend: AppStreamBackend,
    appstream: LocalAppStream,
    runner: tuple[LambdaRunner, Function],
    tally: Counter[str],
) -> None:
    lambda_runner, function = runner
    function.timeout = 10  # the timer answers at 4 s; the slow call still blocks at 10 s, when Lambda kills it
    owned_image(live_backend, "golden-2026-11")
    appstream.faults.add(Fault("latency", operation="DescribeImages", count=1, seconds=60))
    event = delete_answering_at(provider, "lambda-timeout")
    invocation = lambda_runner.invoke(function, event)
    answers = provider.endpoint.wait_for("lambda-timeout", timeout=60)
    ends = time.monotonic() + 120
    while invocation.running and time.monotonic() < ends:  # until Lambda (the runner) kills it at its timeout
        lambda_runner.reap()
        time.sleep(0.1)
    tally["faults injected"] += 1
    assert invocation.killed  # still blocked in the slow call at its timeout: Lambda (the runner) killed it
    assert len(provider.endpoint.received["lambda-timeout"]) == 1
    assert answers[0]["Status"] == "FAILED"
    assert "timed out" in answers[0]["Reason"]
    assert answers[0]["PhysicalResourceId"] == "golden-2026-11"


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_a_lambda_timeout_after_the_copy_started_answers_with_the_copy_for_the_rollback(
    provider: Provider,
    live_backend: AppStreamBackend,
    appstream: LocalAppStream,
    runner: tuple[LambdaRunner, Function],
    tally: Counter[str],
) -> None:
    lambda_runner, function = runner
    # The timer fires 6 s before the end (clock.TIMER_LEAD), so CopyImage has 8 s to start: ample at 5x slowdown.
    function.timeout = 14
    live_backend.add_image("golden-base")
    # The DescribeImages after CopyImage hangs past the function's timeout: crhelper's timer answers.
    appstream.faults.add(Fault("latency", operation="DescribeImages", skip=1, count=1, seconds=30))
    event = provider.event(
        "create", props={"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}}
    )
    event["ResponseURL"] = provider.endpoint.url("copy-timeout")
    lambda_runner.invoke(function, event)
    [answer] = provider.endpoint.wait_for("copy-timeout", timeout=60)
    tally["faults injected"] += 1
    assert answer["Status"] == "FAILED"
    assert "timed out" in answer["Reason"]
    assert answer["PhysicalResourceId"] == "golden-2026-11"  # not the fixed marker: the rollback deletes the copy
    assert [c["error"] for c in appstream.audit.calls("CopyImage")] == [None]


def test_a_process_killed_after_delete_image_is_finished_by_the_redelivery(
    provider: Provider,
    live_backend: AppStreamBackend,
    appstream: LocalAppStream,
    runner: tuple[LambdaRunner, Function],
    tally: Counter[str],
) -> None:
    lambda_runner, function = runner
    owned_image(live_backend, "golden-2026-11", delete_seconds=4)
    event = delete_answering_at(provider, "killed")
    first = lambda_runner.invoke(function, event)
    deadline = time.monotonic() + 20
    while not [c for c in appstream.audit.calls("DeleteImage") if c["error"] is None]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.process.kill()
    tally["faults injected"] += 1
    assert "killed" not in provider.endpoint.received
    lambda_runner.invoke(function, event)  # Lambda's retry delivers the same event again
    [answer] = provider.endpoint.wait_for("killed", timeout=120)
    log = lambda_runner.log_path(function)
    assert answer["Status"] == "SUCCESS", (answer["Reason"], log.read_text()[-3000:] if log.exists() else "")
    assert "golden-2026-11" not in live_backend.images


def test_two_deletes_of_the_same_image_at_once_both_succeed(
    provider: Provider,
    live_backend: AppStreamBackend,
    appstream: LocalAppStream,
    runner: tuple[LambdaRunner, Function],
    tally: Counter[str],
) -> None:
    lambda_runner, function = runner
    owned_image(live_backend, "golden-2026-11", delete_seconds=2)
    for name in ("twin-a", "twin-b"):
        event = delete_answering_at(provider, name)
        lambda_runner.invoke(function, event)
    answers = [provider.endpoint.wait_for(name, timeout=120) for name in ("twin-a", "twin-b")]
    tally["responses checked"] += 2
    assert [len(a) for a in answers] == [1, 1]
    assert [a[0]["Status"] for a in answers] == ["SUCCESS", "SUCCESS"]
    assert "golden-2026-11" not in live_backend.images
    assert appstream.audit.mutations() == [m for m in appstream.audit.mutations() if m["operation"] == "DeleteImage"]


def test_one_warm_environment_answers_each_request_once_with_its_own_outcome(
    provider: Provider, live_backend: AppStreamBackend, runner: tuple[LambdaRunner, Function], tally: Counter[str]
) -> None:
    """Lambda reuses the environment: what one request set (the image it claimed, its answer) must not carry over."""
    lambda_runner, function = runner
    live_backend.add_image("golden-base", copies_end="FAILED")
    copy = {"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}}
    requests = {
        "claimed": provider.event("create", props=copy),  # FAILED after the copy started: it names the copy
        "invalid": provider.event("create", props={"ImageName": "not a valid name!"}),  # FAILED before any claim
        "rollback": provider.event("delete", props=copy, PhysicalResourceId="golden-2026-11"),
    }
    answers = {}
    for name, request in requests.items():
        request["ResponseURL"] = provider.endpoint.url(name)
        request["RequestId"] = f"request-{name}"
        invocation = lambda_runner.invoke(function, request)
        answers[name] = provider.endpoint.wait_for(name, timeout=60)
        ends = time.monotonic() + 60
        while invocation.running:  # the environment is idle again before the next request arrives
            assert time.monotonic() < ends
            time.sleep(0.02)
    tally["responses checked"] += 3
    assert lambda_runner.environments_started == 1
    assert {name: len(got) for name, got in answers.items()} == {"claimed": 1, "invalid": 1, "rollback": 1}
    claimed, invalid, rollback = (answers[name][0] for name in requests)
    assert [a["RequestId"] for a in (claimed, invalid, rollback)] == [
        "request-claimed",
        "request-invalid",
        "request-rollback",
    ]
    assert (claimed["Status"], claimed["PhysicalResourceId"]) == ("FAILED", "golden-2026-11")
    assert (invalid["Status"], invalid["PhysicalResourceId"]) == ("FAILED", FAILED_CREATE_ID)  # not the claimed copy
    assert (rollback["Status"], rollback["PhysicalResourceId"]) == ("SUCCESS", "golden-2026-11")
    assert "Data" not in rollback or "Arn" not in rollback["Data"]
    assert "golden-2026-11" not in live_backend.images

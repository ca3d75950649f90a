"""Long waits hand over to crhelper's scheduled polling, which always ends and always cleans up."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from appstream_image_local.response_endpoint import ResponseEndpoint
from provider.ownership import owner_value
from tests.provider.conftest import (
    STACK_ID,
    Provider,
    lambda_context,
    owned_image,
    policy_statements,
    rules_left,
    scheduled_input,
)

SHORT_LAMBDA = 16.5  # seconds: with the 15 s hand-over margin, about 1.5 s of inline waiting


@pytest.fixture(autouse=True)
def _no_rules_before_or_after() -> Iterator[None]:
    assert rules_left() == []
    assert policy_statements() == []
    yield
    assert rules_left() == [], "a polling rule was left behind"
    assert policy_statements() == [], "a permission was left on the function"


def test_a_deletion_longer_than_the_invocation_completes_through_scheduled_polling(
    provider: Provider, live_backend: AppStreamBackend, appstream: LocalAppStream
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=3)
    event = provider.event("delete")
    assert provider.invoke(event, timeout_s=SHORT_LAMBDA) is None  # handed over, no response yet
    [rule] = rules_left()
    assert len(rule) <= 64
    [statement] = policy_statements()
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":rule/{rule}")
    scheduled = scheduled_input(rule)
    assert scheduled["CrHelperPoll"] is True
    assert "OldResourceProperties" not in scheduled
    response = provider.invoke(scheduled)  # EventBridge fires the rule
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert response["Data"] == {}
    assert "golden-2026-11" not in live_backend.images
    assert rules_left() == []
    assert policy_statements() == []


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
    [rule] = rules_left()
    response = provider.invoke(scheduled_input(rule))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert response["Data"]["State"] == "AVAILABLE"
    assert not any(k.startswith("_") or k.startswith("CrHelper") for k in response["Data"])
    assert live_backend.accepted_permissions("golden-2026-11")  # shared once AVAILABLE
    assert rules_left() == []
    assert policy_statements() == []


def test_a_timeout_while_the_schedule_is_being_made_leaves_no_schedule(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer answers FAILED while the setup is between its calls: what the setup makes after that is removed.

    (Found by a loaded run: the timer's removal found no rule yet, the setup then made one, and it polled on.)"""
    live_backend.add_image("golden-base")
    live_backend.durations.copy = 600
    helper = provider.module.helper
    answered = threading.Event()
    send, put_rule = helper._send, helper._events_client.put_rule

    def send_then_tell(*args: Any, **kwargs: Any) -> None:
        send(*args, **kwargs)
        answered.set()

    def put_rule_once_answered(**kwargs: Any) -> Any:
        assert answered.wait(60), "the timer did not answer"
        return put_rule(**kwargs)

    monkeypatch.setattr(helper, "_send", send_then_tell)
    monkeypatch.setattr(helper._events_client, "put_rule", put_rule_once_answered)
    props = {"ImageName": "golden-2026-11", "Source": {"Type": "Copy", "SourceImageName": "golden-base"}}
    response = provider.invoke(provider.event("create", props=props), timeout_s=SHORT_LAMBDA)
    helper._timer.join(60)  # the timer's removal waits for the setup to finish
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "timed out" in response["Reason"]
    assert rules_left() == []
    assert policy_statements() == []


def test_the_deadline_fails_the_request_and_removes_the_schedule(
    provider: Provider, live_backend: AppStreamBackend
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=600)
    event = provider.event("delete", props={"ImageName": "golden-2026-11", "ServiceTimeout": "200"})
    assert provider.invoke(event, timeout_s=SHORT_LAMBDA) is None
    [rule] = rules_left()
    scheduled = scheduled_input(rule)
    scheduled["CrHelperData"]["_Resume"]["deadline"] = time.time() - 1  # as the clock will read 200 s later
    started = time.monotonic()
    response = provider.invoke(scheduled)
    assert response is not None
    assert time.monotonic() - started < 3
    assert response["Status"] == "FAILED"
    assert "Timed out waiting for image golden-2026-11 to be deleted" in response["Reason"]
    assert "last observed state was DELETING" in response["Reason"]
    assert response["PhysicalResourceId"] == "golden-2026-11"
    assert rules_left() == []
    assert policy_statements() == []


def test_an_inline_deadline_fails_without_ever_scheduling(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=600)
    event = provider.event("delete", props={"ImageName": "golden-2026-11", "ServiceTimeout": "2"})
    response = provider.invoke(event)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "Timed out" in response["Reason"]


def test_a_200_character_logical_id_polls_and_cleans_up(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", owner=owner_value(STACK_ID, "L" * 200), delete_seconds=3)
    event = provider.event("delete", LogicalResourceId="L" * 200)
    assert provider.invoke(event, timeout_s=SHORT_LAMBDA) is None
    [rule] = rules_left()
    assert len(rule) <= 64
    response = provider.invoke(scheduled_input(rule))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert response["LogicalResourceId"] == "L" * 200
    assert rules_left() == []


def test_a_failure_while_setting_up_polling_answers_failed_and_leaves_nothing(
    provider: Provider, live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=30)
    events = provider.module.helper._events_client

    def broken_put_targets(**kwargs: object) -> None:
        raise ClientError({"Error": {"Code": "InternalException", "Message": "boom"}}, "PutTargets")

    monkeypatch.setattr(events, "put_targets", broken_put_targets)
    response = provider.invoke(provider.event("delete"), timeout_s=SHORT_LAMBDA)
    assert response is not None
    assert response["Status"] == "FAILED"
    assert "PutTargets" in response["Reason"]
    assert rules_left() == []
    assert policy_statements() == []


def test_a_fast_deletion_never_creates_a_rule(provider: Provider, live_backend: AppStreamBackend) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.3)
    response = provider.invoke(provider.event("delete"))
    assert response is not None
    assert response["Status"] == "SUCCESS"
    assert rules_left() == []


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

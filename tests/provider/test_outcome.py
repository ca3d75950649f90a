"""The typed outcome and what the answer's owner does with each: Done answers, Continue schedules a successor and
answers nothing, AnsweredThenContinue schedules first and then answers. A failure answers FAILED. Each answer's Data
is the outcome's attributes, nothing else; the state a successor continues from travels as the polling input's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from provider.cloudformation import response
from provider.cloudformation.answer import Answer
from provider.cloudformation.outcome import AnsweredThenContinue, Continue, Done
from provider.cloudformation.resume import Phase, Resume, resume_of
from provider.contract import FAILED_CREATE_ID
from tests.provider.conftest import lambda_context, load_event

ATTRIBUTES = {"Name": "golden-2026-11", "State": "COPYING"}
STATE = Resume(9e9, "golden-2026-11", Phase.SETTLE, shares=("210987654321:f-",), made=True)


@dataclass
class Polling:
    """EventBridge Scheduler as the Answer sees it (polling.Polling): the schedules made, in order."""

    made: list[dict[str, Any]] = field(default_factory=list)
    refuse: bool = False

    def make(self, name: str, **kwargs: Any) -> bool:
        if self.refuse:
            raise ClientError({"Error": {"Code": "InternalServerException", "Message": "boom"}}, "CreateSchedule")
        self.made.append({"name": name, **kwargs})
        return True

    def remove_rule(self, *args: Any) -> None:
        raise AssertionError("a first delivery has no old rule")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The bodies the Answer PUTs (the response, a signal), in order."""
    bodies: list[dict[str, Any]] = []
    monkeypatch.setattr(response, "put", lambda url, body, **_: bodies.append(json.loads(body)) or True)
    return bodies


def answer_of(polling: Polling, request: str = "create") -> Answer:
    return Answer(load_event(request), lambda_context(), polling)  # type: ignore[arg-type]


def test_done_answers_success_with_its_attributes_as_data_and_schedules_nothing(sent: list[dict[str, Any]]) -> None:
    polling = Polling()
    answer = answer_of(polling)
    assert answer.accept(Done("golden-2026-11", ATTRIBUTES)) == "golden-2026-11"  # crhelper's physical id
    answer.conclude(failed=False, reason="")
    [body] = sent
    assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", "golden-2026-11", ATTRIBUTES)
    assert polling.made == []


def test_continue_schedules_its_state_and_answers_nothing(sent: list[dict[str, Any]]) -> None:
    polling = Polling()
    answer = answer_of(polling)
    assert answer.accept(Continue(STATE)) is None  # crhelper's "no physical id yet"
    answer.conclude(failed=False, reason="")
    assert sent == []
    [made] = polling.made
    scheduled = json.loads(made["input_text"])
    assert resume_of(scheduled) == STATE  # the successor continues from exactly this state
    assert made["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:AppStreamImageProvider"


def test_answered_then_continue_schedules_first_then_answers_with_its_attributes(sent: list[dict[str, Any]]) -> None:
    polling = Polling()
    answer = answer_of(polling)
    state = replace(STATE, answered=True, signal="https://handle.example/x?Signature=s")
    assert answer.accept(AnsweredThenContinue("golden-2026-11", ATTRIBUTES, state)) == "golden-2026-11"
    answer.conclude(failed=False, reason="")
    [made] = polling.made
    assert resume_of(json.loads(made["input_text"])) == state
    [body] = sent
    assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", "golden-2026-11", ATTRIBUTES)


def test_answered_then_continue_without_its_schedule_fails_naming_the_image(sent: list[dict[str, Any]]) -> None:
    answer = answer_of(Polling(refuse=True))
    answer.accept(AnsweredThenContinue("golden-2026-11", ATTRIBUTES, STATE))
    answer.conclude(failed=False, reason="")
    [body] = sent
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("Could not schedule the wait for image golden-2026-11: ")
    assert body["PhysicalResourceId"] == "golden-2026-11"  # the rollback deletes the image the Create made


def test_a_failure_answers_failed_with_its_reason_and_no_data(sent: list[dict[str, Any]]) -> None:
    polling = Polling()
    answer = answer_of(polling)
    answer.conclude(failed=True, reason="Image golden-2026-11 is FAILED")  # the work raised: no outcome
    [body] = sent
    assert (body["Status"], body["Reason"], body["Data"]) == ("FAILED", "Image golden-2026-11 is FAILED", {})
    assert body["PhysicalResourceId"] == FAILED_CREATE_ID  # nothing claimed
    assert polling.made == []


def test_only_the_first_answer_is_sent(sent: list[dict[str, Any]]) -> None:
    answer = answer_of(Polling(), "delete")
    answer.accept(Done("golden-2026-11"))
    answer.conclude(failed=False, reason="")
    answer.send("FAILED", "a late timer")
    assert [body["Status"] for body in sent] == ["SUCCESS"]


def test_done_with_a_signal_signals_the_handle_after_the_answer(sent: list[dict[str, Any]]) -> None:
    answer = answer_of(Polling())
    answer.accept(Done("golden-2026-11", ATTRIBUTES, signal="https://handle.example/x?Signature=s"))
    answer.conclude(failed=False, reason="")
    response_body, signal = sent
    assert response_body["Status"] == "SUCCESS"
    assert signal == {
        "Status": "SUCCESS",
        "UniqueId": "golden-2026-11",
        "Data": "golden-2026-11",
        "Reason": "Image golden-2026-11 is AVAILABLE",
    }

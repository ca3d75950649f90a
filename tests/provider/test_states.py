"""The state tables and the bounded wait loop."""

from __future__ import annotations

import itertools

import pytest

from provider.appstream.states import AVAILABLE_TABLE, DELETE_TABLE, GONE, Action, Budget, Progress, decide, delays, run
from provider.errors import DeadlineExceeded


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (GONE, Action.DONE),
        ("DELETING", Action.WAIT),
        ("PENDING", Action.WAIT),
        ("COPYING", Action.WAIT),
        ("CREATING", Action.WAIT),
        ("IMPORTING", Action.WAIT),
        ("VALIDATING", Action.WAIT),
        ("AVAILABLE", Action.DELETE),
        ("FAILED", Action.DELETE),
    ],
)
def test_delete_table(state: str, action: Action) -> None:
    assert decide(DELETE_TABLE, state) is action


@pytest.mark.parametrize(
    ("state", "action"),
    [("AVAILABLE", Action.DONE), ("COPYING", Action.WAIT), ("FAILED", Action.FAIL), ("DELETING", Action.FAIL)],
)
def test_available_table(state: str, action: Action) -> None:
    assert decide(AVAILABLE_TABLE, state) is action


def test_unknown_states_are_waited_on() -> None:
    assert decide(DELETE_TABLE, "SOMETHING_NEW") is Action.WAIT


def test_backoff_starts_short_and_is_capped() -> None:
    assert list(itertools.islice(delays(0.5, 2.5), 6)) == [0.5, 0.75, 1.125, 1.6875, 2.5, 2.5]


def test_run_returns_when_the_step_is_done() -> None:
    clock = Clock()
    states = iter(["DELETING", "DELETING", GONE])
    budget = Budget(deadline=200, hand_over_at=150, clock=clock, sleep=clock.sleep)
    result = run(lambda: Progress((s := next(states)) == GONE, s), budget, delays(0.5, 2.5), "x")
    assert result.done
    assert clock.slept == [0.5, 0.75]


def test_run_hands_over_before_the_invocation_ends() -> None:
    clock = Clock()
    budget = Budget(deadline=1000, hand_over_at=105, clock=clock, sleep=clock.sleep)
    result = run(lambda: Progress(False, "DELETING"), budget, delays(1, 1), "x")
    assert not result.done
    assert clock.now <= 105


def test_run_fails_at_the_deadline_with_the_last_state() -> None:
    clock = Clock()
    budget = Budget(deadline=110, hand_over_at=1000, clock=clock, sleep=clock.sleep)
    with pytest.raises(DeadlineExceeded, match="last observed state was DELETING \\(slow\\)"):
        run(lambda: Progress(False, "DELETING", "slow"), budget, delays(1, 3), "image x to be deleted")
    assert clock.now == pytest.approx(110)  # the last nap is cut to the deadline, not past it


def test_a_request_is_read_once_into_a_frozen_typed_view() -> None:
    import dataclasses

    import pytest

    from provider.cloudformation.request import Request
    from provider.cloudformation.resume import RESUME, Resume
    from tests.provider.conftest import OWNER, load_event

    event = load_event("update")
    request = Request.of(event)
    assert (request.request_type, request.physical_id) == ("Update", "golden-2026-11")
    assert request.properties["ImageName"] == request.image == "golden-2026-11"
    assert request.old_properties == event["OldResourceProperties"]
    assert request.owner == OWNER
    assert request.resume is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.physical_id = "other"  # type: ignore[misc]
    scheduled = event | {"CrHelperPoll": True, "CrHelperData": {RESUME: Resume(1.0, "golden-2026-12").to_data()}}
    assert Request.of(scheduled).image == "golden-2026-12"  # a scheduled invocation is about the resumed image
    created = Request.of(load_event("create"))
    assert created.physical_id == ""
    assert created.old_properties == {}

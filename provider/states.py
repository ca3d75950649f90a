"""Image state -> what to do, as tables; and the bounded wait loop that reads them.

botocore's Waiter polls at a fixed delay with no deadline or hand-over, so the loop is ours;
the decisions stay data, as in botocore's acceptor tables.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from provider.errors import DeadlineExceeded

GONE = "GONE"  # DescribeImages says the image does not exist
TRANSITIONAL = ("PENDING", "COPYING", "CREATING", "IMPORTING", "VALIDATING")


class Action(enum.Enum):
    DONE = "done"
    WAIT = "wait"
    FAIL = "fail"
    DELETE = "delete"  # revoke sharing, then DeleteImage


# Delete: wait for transitions to settle, start the deletion, then wait until it is gone.
DELETE_TABLE: dict[str, Action] = {
    GONE: Action.DONE,
    "DELETING": Action.WAIT,
    **dict.fromkeys(TRANSITIONAL, Action.WAIT),
    "AVAILABLE": Action.DELETE,
    "FAILED": Action.DELETE,
}

# Create / Update: wait until the image can be used.
AVAILABLE_TABLE: dict[str, Action] = {
    "AVAILABLE": Action.DONE,
    **dict.fromkeys(TRANSITIONAL, Action.WAIT),
    "FAILED": Action.FAIL,
    "DELETING": Action.FAIL,
    GONE: Action.FAIL,
}


def decide(table: dict[str, Action], state: str) -> Action:
    """Unknown future states are waited on rather than guessed at."""
    return table.get(state, Action.WAIT)


def delays(first: float, cap: float, factor: float = 1.5) -> Iterator[float]:
    """Short backoff: the first re-check comes within a second or two."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)


DELETION_DELAYS = (0.5, 2.5)  # T + 3 s: never sleep longer than 2.5 s between checks of a deletion
SETTLE_DELAYS = (1.0, 10.0)  # copies and updates take minutes to hours


@dataclass
class Budget:
    """Two clocks: the request's deadline (ServiceTimeout) and this invocation's hand-over time."""

    deadline: float
    hand_over_at: float
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def past_deadline(self) -> bool:
        return self.clock() >= self.deadline

    def nap(self, seconds: float) -> bool:
        """Sleep up to `seconds` (less near the deadline); False when this invocation must hand over."""
        now = self.clock()
        seconds = min(seconds, max(0.0, self.deadline - now))
        if now + seconds >= self.hand_over_at:
            return False
        self.sleep(seconds)
        return True


@dataclass
class Progress:
    done: bool
    state: str
    detail: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


def run(step: Callable[[], Progress], budget: Budget, schedule: Iterator[float], what: str) -> Progress:
    """Call `step` until done, the deadline (-> DeadlineExceeded), or the hand-over time (-> not done)."""
    while True:
        progress = step()
        if progress.done:
            return progress
        if budget.past_deadline():
            detail = f" ({progress.detail})" if progress.detail else ""
            raise DeadlineExceeded(
                f"Timed out waiting for {what}: the last observed state was {progress.state}{detail}"
            )
        if not budget.nap(next(schedule)):
            return progress

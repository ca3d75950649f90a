"""Image state -> what to do, as tables; and the bounded wait loop that reads them.

botocore's Waiter polls at a fixed delay with no deadline or hand-over, so the loop is ours;
the decisions stay data, as in botocore's acceptor tables.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .errors import DeadlineExceeded

GONE = "GONE"  # DescribeImages says the image does not exist
TRANSITIONAL = ("PENDING", "COPYING", "CREATING", "IMPORTING", "VALIDATING")
MAKING = ("COPYING", "CREATING", "IMPORTING", "VALIDATING")  # states of an image a request is making


class Phase(enum.StrEnum):
    """What a scheduled invocation resumes."""

    START = "start"  # the copy or update is not started yet (waiting for a slot): needs the full properties
    SETTLE = "settle"  # waiting for AVAILABLE, then sharing
    DELETE = "delete"  # waiting until the image is gone
    DISCARD = "discard"  # a rollback Update removes the image a failed replacement made
    SIGNAL = "signal"  # the work is done; its signal to the wait condition could not be delivered yet


class Action(enum.Enum):
    DONE = "done"
    WAIT = "wait"
    FAIL = "fail"
    DELETE = "delete"  # check users, revoke sharing, then DeleteImage


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
QUOTA_DELAYS = (2.0, 30.0)  # a copy slot frees when another copy ends (minutes); the first looks come soon
# A wait for a slot (or for the image a stopped or cancelled run may still make) hands over to scheduled polling
# after this long, also in a first invocation: a Delete can stop scheduled runs, not a running invocation.
SLOT_SLICE = 40.0
IN_USE_DELAY = 5.0  # while fleets hold the image, look less often (three calls per look)


@dataclass
class Budget:
    """The request's deadline (ServiceTimeout), this invocation's hand-over time, and its last moment.

    `last_moment` is the latest time this invocation can still answer (its Lambda timeout, less a margin).
    """

    deadline: float
    hand_over_at: float
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    last_moment: float = float("inf")

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

    def inline(self) -> Budget:
        """This budget without a hand-over: wait in this invocation, failing by its last moment."""
        deadline = min(self.deadline, self.last_moment)
        return Budget(deadline, float("inf"), self.clock, self.sleep, self.last_moment)

    def at_most(self, seconds: float) -> Budget:
        """This budget, handing over after at most `seconds` from now."""
        hand_over_at = min(self.hand_over_at, self.clock() + seconds)
        return Budget(self.deadline, hand_over_at, self.clock, self.sleep, self.last_moment)


@dataclass
class Progress:
    done: bool
    state: str
    detail: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    phase: Phase = Phase.SETTLE  # what a scheduled invocation resumes
    min_delay: float = 0.0  # wait at least this long before the next look
    holders: tuple[str, ...] = ()  # Delete: the fleets and image builders that hold the image


def run(step: Callable[[], Progress], budget: Budget, schedule: Iterator[float], what: str) -> Progress:
    """Call `step` until done, the deadline (-> DeadlineExceeded), or the hand-over time (-> not done)."""
    while True:
        progress = step()
        if progress.done:
            return progress
        if budget.past_deadline():
            detail = f" ({progress.detail})" if progress.detail else ""
            raise DeadlineExceeded(
                f"Timed out waiting for {what}: the last observed state was {progress.state}{detail}", progress
            )
        if not budget.nap(max(next(schedule), progress.min_delay)):
            return progress

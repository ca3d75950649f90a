"""The clock: every margin and period of the provider's time budget, as named values whose arithmetic is code, and
one invocation's budget (Timing) computed from them.

Three clocks bound every answer: Lambda's (the invocation ends at its timeout, and the answer must be out before),
CloudFormation's (ServiceTimeout counts from CloudFormation's send; a wait condition handle's URL expires), and
EventBridge Scheduler's (a successor runs somewhere in the minute it names). The backoff between the looks of one
wait stays with that wait (appstream/states.py), the retries of one call with that call (response.put, polling.py).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DeadlineExceeded, ProviderError
from .response import url_expiry
from .resume import Resume

# -- Lambda: the end of this invocation --------------------------------------------------------------------------
HAND_OVER = 15.0  # the work stops this long before the invocation's end: time to make the successor and answer
SCHEDULE_SETUP = 9.0  # making the successor schedule (CreateSchedule, with its retries) after the work stopped
TIMER_LEAD = HAND_OVER - SCHEDULE_SETUP  # the timer answers FAILED this long before the end (crhelper's: 0.5 s)
RESPONSE_RESERVE = 0.5  # a response PUT gives up this long before the end (the timer's too)

# -- EventBridge Scheduler: when the next run comes ----------------------------------------------------------------
SCHEDULE_AHEAD = 60.0  # a successor's named minute is at least this long after the run that made it
# "All schedule types on EventBridge Scheduler invoke their targets with 60 second precision" (user guide,
# "Schedule types"): a schedule named for 1:00 runs between 1:00:00 and 1:00:59.
PRECISION = 60.0
LATEST_RUN = SCHEDULE_AHEAD + 2 * PRECISION  # its minute rounded up from a period ahead, then that whole minute
NEXT_RUN_SLACK = 10.0  # Scheduler's delivery and the next invocation's start, on top of that
NEXT_RUN = LATEST_RUN + NEXT_RUN_SLACK  # the latest a scheduled run goes on after a hand-over
# A scheduled run waits at most this long, and so does a wait for a copy or update slot in a first invocation: a
# Delete can stop scheduled runs, not a running invocation.
POLL_SLICE = 40.0
RACE_PATIENCE = 30.0  # the longest inline wait: an image another delivery made meanwhile shows its owner by then
# A run stopped under way (its schedule deleted) ends within its slice, plus the longest inline wait it may be in.
IN_FLIGHT = POLL_SLICE + RACE_PATIENCE + HAND_OVER

# -- CloudFormation: its timeout, and the wait condition handle's URL ------------------------------------------------
# ServiceTimeout runs from CloudFormation's send, not from the handler's start (AWS::CloudFormation::CustomResource):
# asynchronous queueing and a cold start come first, so the deadline keeps back up to a minute for them.
SEND_MARGIN = 60.0
SHORT_MARGIN = 20.0  # a short ServiceTimeout keeps back more than a tenth: a cold start alone takes seconds
SIGNAL_PUT_TIME = 60.0  # a signal's PUT with its retries (response.put)
# A wait condition handle's URL expires (response.url_expiry): the last answer goes out this long before, time for
# the run that notices the deadline to hand its FAILURE signal over and for the PUT's retries.
EXPIRY_MARGIN = HAND_OVER + SIGNAL_PUT_TIME


def deadline_for(timeout: int, start: float) -> float:
    """Answer before CloudFormation's own ServiceTimeout fires, which started counting before this invocation."""
    return start + timeout - min(SEND_MARGIN, max(timeout / 10, min(SHORT_MARGIN, timeout / 3)))


@dataclass(frozen=True)
class Window:
    """When to hand over to a scheduled run (infinity: never), the deadline to keep, and this invocation's last
    moment to answer (its Lambda timeout, less the hand-over)."""

    deadline: float
    hand_over_at: float
    last_moment: float


@dataclass(frozen=True)
class Timing:
    """This invocation's clock: when it started, how long Lambda gives it, and whether it is a scheduled one."""

    now: float
    remaining_ms: int
    polling: bool
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # When its AppStream calls must have ended, on the real clock (botocore sleeps on it): the hand-over time.
    calls_end: float = float("inf")

    @classmethod
    def start(
        cls,
        remaining_ms: int,
        *,
        polling: bool,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Timing:
        return cls(clock(), remaining_ms, polling, clock, sleep, time.time() + remaining_ms / 1000 - HAND_OVER)

    @property
    def last_moment(self) -> float:
        return self.now + self.remaining_ms / 1000 - HAND_OVER

    def window(self, deadline: float) -> Window:
        """When to hand over, and the deadline to keep, so that every answer comes before CloudFormation's timeout.

        A deadline that falls before the next scheduled invocation could run would be answered late:
        then this invocation waits through it (or, when it ends sooner, answers FAILED by its own end).
        """
        last_moment = self.last_moment
        hand_over_at = min(last_moment, self.now + POLL_SLICE) if self.polling else last_moment
        if deadline < hand_over_at + NEXT_RUN:
            return Window(min(deadline, last_moment), float("inf"), last_moment)
        return Window(deadline, hand_over_at, last_moment)

    def answer_soon(self, deadline: float) -> Window:
        """Each wait looks once, then hands over: the answer comes once the work has started."""
        return Window(min(deadline, self.last_moment), self.now, self.last_moment)


def _utc(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def signal_deadline(timeout: int, handle: str, image: str, now: float) -> float:
    """A wait's deadline after its answer: before the wait condition's Timeout and before its handle's URL expires.

    A URL that expires before even one scheduled run could look again fails the request now, naming it.
    """
    deadline = deadline_for(timeout, now)
    expires = url_expiry(handle)
    if expires is None or expires - EXPIRY_MARGIN >= deadline:
        return deadline
    if expires - EXPIRY_MARGIN <= now + NEXT_RUN:
        raise ProviderError(
            f"The wait condition handle's URL expires at {_utc(expires)}, too soon to wait for image {image} to "
            "become AVAILABLE: CloudFormation signs it for 24 hours from when the handle was made. Give the handle "
            "(and its wait condition) new logical ids so that a new one is made, and deploy again"
        )
    return expires - EXPIRY_MARGIN


def expired(err: DeadlineExceeded, resume: Resume) -> DeadlineExceeded:
    """The deadline's failure, naming the handle's expiry when that is what set the deadline."""
    expires = url_expiry(resume.signal) if resume.signal else None
    if expires is None or resume.deadline < expires - EXPIRY_MARGIN - 1:
        return err
    return DeadlineExceeded(
        f"{err}. The wait stopped at {_utc(resume.deadline)}: the wait condition handle's URL expires at "
        f"{_utc(expires)} (24 hours after the handle was made), after which no signal is accepted",
        err.progress,
    )

"""The waits: image state -> what to do, as tables; the bounded wait loop that reads them; the wait for AVAILABLE.

botocore's Waiter polls at a fixed delay with no deadline or hand-over, so the loop is ours;
the decisions stay data, as in botocore's acceptor tables.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .. import logs
from ..errors import DeadlineExceeded, ImageFailed
from . import exports, images
from .properties import ImageProperties

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

GONE = "GONE"  # DescribeImages says the image does not exist
TRANSITIONAL = ("PENDING", "COPYING", "CREATING", "IMPORTING", "VALIDATING")
MAKING = ("COPYING", "CREATING", "IMPORTING", "VALIDATING")  # states of an image a request is making


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
IN_USE_DELAY = 5.0  # while fleets hold the image, look less often (three calls per look)


@dataclass
class Budget:
    """The request's deadline (ServiceTimeout), this invocation's hand-over time, and its last moment.

    `last_moment` is the latest time this invocation can still answer (its Lambda timeout, less a margin). The
    caller (step.py, from clock.py) also sets `slice`, the longest a wait for a slot runs before it hands over
    (a Delete can stop scheduled runs, not a running invocation), and `patience`, the longest an inline wait
    gives an image another delivery made to show its owner.
    """

    deadline: float
    hand_over_at: float
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    last_moment: float = float("inf")
    slice: float = float("inf")
    patience: float = float("inf")

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
        return replace(self, deadline=min(self.deadline, self.last_moment), hand_over_at=float("inf"))

    def sliced(self) -> Budget:
        """This budget, handing over after at most its slice from now."""
        return replace(self, hand_over_at=min(self.hand_over_at, self.clock() + self.slice))

    def patient(self) -> Budget:
        """An inline wait of at most its patience from now (and never past the deadline)."""
        deadline = min(self.deadline, self.clock() + self.patience)
        return replace(self, deadline=deadline, hand_over_at=float("inf"), last_moment=float("inf"))


@dataclass
class Progress:
    done: bool
    state: str
    detail: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    # False: the copy, update or import has not started yet (waiting for a slot, or for a failed image to go):
    # a scheduled invocation starts it, from the full properties.
    started: bool = True
    made: bool = False  # this request made the image (a Create or a replacement): a failure names or deletes it
    min_delay: float = 0.0  # wait at least this long before the next look
    holders: tuple[str, ...] = ()  # Delete: the fleets and image builders that hold the image
    export_task: str = ""  # Export: the task this request started (or picked up), followed across runs


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


def failure_reason(image: images.Image | None) -> str:
    """AppStream's whole account of a failure: StateChangeReason and every ImageErrors entry."""
    if not image:
        return ""
    parts = []
    reason = image.get("StateChangeReason") or {}
    if reason:
        parts.append(f"{reason.get('Code', '')} {reason.get('Message', '')}".strip())
    for error in image.get("ImageErrors") or []:
        parts.append(f"{error.get('ErrorCode', '')} {error.get('ErrorMessage', '')}".strip())
    return f": {'; '.join(p for p in parts if p)}" if any(parts) else ""


def settle(
    client: AppStreamClient,
    props: ImageProperties,
    budget: Budget,
    *,
    first: images.Image | None = None,
    export_task: str = "",
) -> Progress:
    """Wait for AVAILABLE (or not, with WaitForAvailable false and no sharing), then share, then export (Export).

    `first` is an observation the caller just made: the first step uses it instead of describing again.
    `export_task`: the export an earlier run of this request started; the Progress carries the one followed.
    """
    seen = [first] if first is not None else []
    ready: list[images.Image] = []  # AVAILABLE and shared: only the export is left to wait for
    task = [export_task]

    def step() -> Progress:
        if ready:
            return _exported(client, props, ready[0], task)
        image = seen.pop() if seen else images.describe(client, props.image_name)
        state = str(image["State"]) if image else GONE
        action = decide(AVAILABLE_TABLE, state)
        logs.event("observed", image=props.image_name, phase="settle", state=state)
        if action is Action.FAIL or image is None:
            raise ImageFailed(f"Image {props.image_name} is {state}{failure_reason(image)}")
        if action is Action.WAIT:
            if not props.wait_for_available and not props.shared_with:
                return Progress(True, state, attributes=images.attributes(image))
            return Progress(False, state)
        _apply_shares(client, props)
        if props.export is not None:
            ready.append(image)
            return _exported(client, props, image, task)
        return Progress(True, state, attributes=images.attributes(image))

    what = f"image {props.image_name} to become AVAILABLE{' and be exported' if props.export else ''}"
    return run(step, budget, delays(*SETTLE_DELAYS), what)


def _exported(client: AppStreamClient, props: ImageProperties, image: images.Image, task: list[str]) -> Progress:
    """One look at the export of the AVAILABLE image; the task followed is kept in `task` and in the Progress."""
    assert props.export is not None
    look = exports.follow(client, props.image_name, str(image["Arn"]), props.export, task[0])
    task[0] = look.task_id or task[0]
    # Until the export completes the image is AVAILABLE and AmiId empty (an answer before the end: AvailableSignal).
    attributes = images.attributes(image) | {"AmiId": look.ami_id}
    return Progress(look.done, look.state, look.detail, attributes=attributes, export_task=task[0])


def _apply_shares(client: AppStreamClient, props: ImageProperties) -> None:
    if not props.shared_with:
        return
    current = images.shared_accounts(client, props.image_name)
    for share in props.shared_with:
        if current.get(share.account_id) != share:
            images.share(client, props.image_name, share)
            logs.event(f"shared with {share.account_id}", image=props.image_name, phase="share")

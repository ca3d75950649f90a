"""One invocation of Custom::AppStreamImage: dispatch, deadlines, and the hand-over to scheduled polling.

`handle` returns the physical id when the request is finished, or None to hand over to
scheduled polling, plus the Data to keep (attributes, and `_Resume` while polling).
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import creation, deletion, images, logs
from .contract import (
    DEFAULT_IN_USE,
    DEFAULT_SHARED_ON_DELETE,
    FAILED_CREATE_ID,
    IMAGE_NAME,
    IN_USE_MODES,
    MAX_TIMEOUT,
    SHARED_ON_DELETE_MODES,
)
from .errors import AccessDenied, DeadlineExceeded, InvalidProperties, ProviderError
from .properties import ImageProperties, Signal, parse, service_timeout, signal
from .request import Request
from .response import SIGNAL_PUT_TIME, url_expiry
from .resume import RESUME, Resume, resume_of
from .schedule import LATEST_RUN
from .stacks import StackLookup, Unknown

__all__ = ["RESUME", "SIGNAL", "Resume", "Timing", "access_denied", "deadline_for", "handle", "resume_of"]
from .states import GONE, SLOT_SLICE, Budget, Phase, Progress

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

HAND_OVER_MARGIN = 15.0  # seconds kept back to set up polling (9 s before the timer answers) and send the response
POLL_SLICE = SLOT_SLICE  # a scheduled invocation waits at most this long, well inside the 1-minute rate
POLL_PERIOD = LATEST_RUN  # a successor schedule runs at most this long after the hand-over (schedule.py)
NEXT_RUN_SLACK = 10.0  # EventBridge's delivery and the next invocation's start, on top of the period
# ServiceTimeout runs from CloudFormation's send, not from the handler's start (AWS::CloudFormation::CustomResource):
# asynchronous queueing and a cold start come first, so the deadline keeps back up to a minute for them.
SEND_MARGIN = 60.0
# A short ServiceTimeout keeps back more than a tenth: a cold start alone can take seconds (a third, up to 20 s).
SHORT_MARGIN = 20.0
# A wait condition handle's URL expires (properties.url_expiry): the last answer goes out this long before, time
# for the run that notices the deadline to hand its FAILURE signal over and for the PUT's retries.
EXPIRY_MARGIN = HAND_OVER_MARGIN + SIGNAL_PUT_TIME
# A scheduled run stopped under way ends within its slice, plus the longest inline wait it may be in.
IN_FLIGHT = POLL_SLICE + creation.RACE_PATIENCE + HAND_OVER_MARGIN

Outcome = tuple[str | None, dict[str, Any]]
SIGNAL = "_Signal"  # in Data: the wait condition handle to signal SUCCESS with the answer (done at once)


def deadline_for(timeout: int, start: float) -> float:
    """Answer before CloudFormation's own ServiceTimeout fires, which started counting before this invocation."""
    return start + timeout - min(SEND_MARGIN, max(timeout / 10, min(SHORT_MARGIN, timeout / 3)))


@dataclass(frozen=True)
class Timing:
    """This invocation's clock: when it started, how long Lambda gives it, and whether it is a scheduled one."""

    now: float
    remaining_ms: int
    polling: bool
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def budget(self, deadline: float) -> Budget:
        """When to hand over, and the deadline to keep, so that every answer comes before CloudFormation's timeout.

        A deadline that falls before the next scheduled invocation could run would be answered late:
        then this invocation waits through it (or, when it ends sooner, answers FAILED by its own end).
        """
        last_moment = self.now + self.remaining_ms / 1000 - HAND_OVER_MARGIN
        hand_over_at = min(last_moment, self.now + POLL_SLICE) if self.polling else last_moment
        if deadline < hand_over_at + POLL_PERIOD + NEXT_RUN_SLACK:
            return Budget(min(deadline, last_moment), float("inf"), self.clock, self.sleep, last_moment)
        return Budget(deadline, hand_over_at, self.clock, self.sleep, last_moment)

    def answer_soon(self, deadline: float) -> Budget:
        """Each wait looks once, then hands over: the answer comes once the work has started."""
        last_moment = self.now + self.remaining_ms / 1000 - HAND_OVER_MARGIN
        return Budget(min(deadline, last_moment), self.now, self.clock, self.sleep, last_moment)


def handle(
    client: AppStreamClient,
    event: Mapping[str, Any],
    remaining_ms: int,
    *,
    claim: Callable[[str], None] = lambda _: None,
    stop_polling: Callable[[str], bool] = lambda _: False,
    scope: str = "",
    stacks: StackLookup | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """One invocation: a first delivery, or a scheduled one carrying `_Resume` in CrHelperData.

    `claim(name)` is told the image a Create made, so that any FAILED answer (a Lambda timeout too)
    names it. `stop_polling(name)` stops the polling that goes on after an answer for that image of
    this resource (True if there was one). `scope` says which images the provider's role may manage,
    for AccessDenied reasons. `stacks` answers what CloudFormation says of stacks (a rollback under way, an
    owner stack gone); without it, nothing is known and nothing the stack did not make is deleted.
    """
    now = clock()
    stacks = stacks or Unknown()
    request = Request.of(event)
    resume, owner = request.resume, request.owner
    timing = Timing(now, remaining_ms, resume is not None, clock, sleep)
    if resume is not None and resume.made and request.request_type == "Create":
        claim(resume.image)
    # botocore's retries sleep on the real clock: they end by this invocation's hand-over time.
    images.CALL_DEADLINE.set(time.time() + remaining_ms / 1000 - HAND_OVER_MARGIN)
    try:
        if resume is not None and resume.phase is Phase.SIGNAL:  # only the signal is left to deliver
            if resume.outcome != "SUCCESS":
                raise ProviderError(resume.reason or f"The work on image {resume.image} failed")
            return resume.image, {}
        if request.request_type == "Delete":
            return _delete(client, request, timing, stop_polling, stacks)
        if resume is not None and resume.phase is Phase.DISCARD:
            return _discard(client, resume, owner, timing, stop_polling)
        if resume is not None and resume.phase is Phase.SETTLE:
            return _settle(client, request, resume, timing)
        return _create_or_update(client, request, timing=timing, claim=claim, stop_polling=stop_polling, stacks=stacks)
    except ClientError as err:
        if images.error_code(err) in ("AccessDeniedException", "AccessDenied"):
            raise access_denied(err, request.image, scope) from err
        raise


RESOURCE_IN_MESSAGE = re.compile(r"on resource: (arn:\S+)")


def access_denied(err: ClientError, image: str, scope: str) -> AccessDenied:
    """Name the resource IAM denied (from its message: the source of a copy, say) and what the scope allows."""
    granted = scope or "the images its stack declares"
    message = str(err.response.get("Error", {}).get("Message", ""))
    found = RESOURCE_IN_MESSAGE.search(message)
    arn = found.group(1).rstrip(".") if found else ""
    denied = arn.rsplit("/", 1)[-1] if arn else image
    action = f"appstream:{err.operation_name}"
    if arn.count(":") >= 5 and arn.split(":")[4] == "":  # an AWS public image's ARN names no account
        return AccessDenied(
            f"Access denied: {action} on image {denied}, a public AWS image. CopyImage and CreateUpdatedImage "
            f"take only images this account owns: launch an image builder from {denied}, create a private image "
            "from it, and use that as the Source"
        )
    return AccessDenied(
        f"Access denied: the provider's role may not call {action} on image {denied}. "
        f"It may manage only {granted}; deploy the provider with a scope that includes image {denied}"
    )


def _delete(
    client: AppStreamClient,
    request: Request,
    timing: Timing,
    stop_polling: Callable[[str], bool],
    stacks: StackLookup,
) -> Outcome:
    physical_id, props, resume = request.physical_id, request.properties, request.resume
    declared = _declared(props)
    deadline = resume.deadline if resume else deadline_for(_timeout_or_default(props), timing.now)
    target = resume.image if resume else physical_id
    not_gone_before = resume.not_gone_before if resume else 0.0
    if resume is None and IMAGE_NAME.match(declared) and physical_id not in (declared, FAILED_CREATE_ID):
        # An id CloudFormation made up: the Create was cancelled (another resource failed) or timed out, and may
        # still be running (aws/aws-cdk#26139). Its image, if it makes one, carries this resource's ownership tag.
        logs.event(f"the physical id {physical_id[:120]} is CloudFormation's own: looking for this resource's image",
                   image=declared, phase="delete")  # fmt: skip
        target = declared
        if _makes_images(props):  # a copy, update or import may yet start: wait as long as a run waits for a slot
            not_gone_before = timing.now + IN_FLIGHT
        stop_polling(declared)
    elif resume is None and declared == physical_id and "AvailableSignal" in props and stop_polling(physical_id):
        # The image's own polling (after a Create's answer) is stopped; a run of it already under way may still
        # start the copy it waited for, so an absent image counts as gone only once such a run has ended.
        not_gone_before = timing.now + IN_FLIGHT
    job = deletion.Deletion(
        target,
        in_use=resume.in_use if resume else _choice_or_default(props, "InUse", IN_USE_MODES, DEFAULT_IN_USE),
        shared_on_delete=resume.shared_on_delete
        if resume
        else _choice_or_default(props, "SharedOnDelete", SHARED_ON_DELETE_MODES, DEFAULT_SHARED_ON_DELETE),
        revoked={s.account_id: s for s in resume.revoked} if resume else {},
        not_gone_before=not_gone_before,
        stop_polling=lambda: stop_polling(target) if target == declared and target != physical_id else None,
        deletes=deletion.on_delete(props),
        undoes_create=lambda: stacks.rolling_back(request.stack_id),
        never_answered=target != physical_id,
    )
    done = deletion.delete(
        client, physical_id=target, props=props, owner=request.owner, job=job, budget=timing.budget(deadline)
    )
    if done:
        return physical_id, {}
    state = Resume(
        deadline,
        target,
        Phase.DELETE,
        in_use=job.in_use,
        revoked=tuple(job.revoked.values()),
        shared_on_delete=job.shared_on_delete,
        not_gone_before=job.not_gone_before,
    )
    return None, {RESUME: state.to_data()}


def _makes_images(props: Any) -> bool:
    source = props.get("Source") if isinstance(props, Mapping) else None
    return isinstance(source, Mapping) and source.get("Type") in ("Copy", "Update", "Import")


def _declared(props: Any) -> str:
    name = props.get("ImageName") if isinstance(props, Mapping) else None
    return name if isinstance(name, str) else ""


def _signal_for(request: Request, new: ImageProperties) -> Signal | None:
    """The wait condition this Create or Update signals: a new image's, or a new handle's (else none)."""
    wanted = new.available_signal
    if wanted is None or request.request_type == "Create":
        return wanted
    try:
        same_handle = signal(request.old_properties.get("AvailableSignal")).handle == wanted.handle
    except InvalidProperties:
        same_handle = False
    if new.image_name == request.physical_id:
        return None if same_handle else wanted
    if same_handle:  # its wait condition completed for the old image: a fleet would move before AVAILABLE
        raise InvalidProperties(
            f"Invalid property AvailableSignal.Handle: a new ImageName ({new.image_name}) needs a new wait "
            "condition handle and wait condition (a wait condition cannot be updated): give both new logical ids",
            "AvailableSignal.Handle",
            "a new ImageName needs a new wait condition handle",
        )
    return wanted


def _create_or_update(
    client: AppStreamClient,
    request: Request,
    *,
    timing: Timing,
    claim: Callable[[str], None],
    stop_polling: Callable[[str], bool],
    stacks: StackLookup,
) -> Outcome:
    new, resume, owner = parse(request.properties), request.resume, request.owner
    wanted = _signal_for(request, new) if resume is None else None
    if resume is not None:
        deadline, budget = resume.deadline, timing.budget(resume.deadline)
    elif wanted is not None:  # answer once started: the rest is waited for after the answer, up to the signal's Timeout
        deadline = signal_deadline(wanted, new.image_name, timing.now)
        budget = timing.answer_soon(min(deadline, deadline_for(new.service_timeout, timing.now)))
    else:
        deadline = deadline_for(new.service_timeout, timing.now)
        budget = timing.budget(deadline)
    made: list[str] = []

    def claimed(name: str) -> None:
        made.append(name)
        claim(name)

    stray = ""
    if request.request_type == "Create":
        progress = creation.create(client, new, owner, budget, claimed, stacks=stacks)
    else:
        physical_id, old_props = request.physical_id, request.old_properties
        progress = creation.update(
            client,
            physical_id=physical_id,
            new=new,
            old_props=old_props,
            owner=owner,
            budget=budget,
            claim=claimed,
            stacks=stacks,
        )
        stray = creation.abandoned(old_props, physical_id) if new.image_name == physical_id else ""
    if stray:
        stop_polling(stray)  # a replacement's wait that went on after its answer: the rollback removes its image
    state = Resume(
        deadline,
        new.image_name,
        progress.phase,
        new.wait_for_available,
        new.in_use,
        new.shared_with,
        made=bool(made),
        discard=stray,
        answered=resume.answered if resume is not None else False,  # a queued start continues after its answer
        signal=wanted.handle if wanted is not None else (resume.signal if resume is not None else ""),
    )
    return _finish(client, progress, state, owner, timing, request.stack_id)


def _utc(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def signal_deadline(wanted: Signal, image: str, now: float) -> float:
    """The wait's deadline: before the wait condition's Timeout and before its handle's URL expires.

    A URL that expires before even one scheduled run could look again fails the request now, naming it.
    """
    deadline = deadline_for(wanted.timeout, now)
    expires = wanted.expires
    if expires is None or expires - EXPIRY_MARGIN >= deadline:
        return deadline
    if expires - EXPIRY_MARGIN <= now + POLL_PERIOD + NEXT_RUN_SLACK:
        raise ProviderError(
            f"The wait condition handle's URL expires at {_utc(expires)}, too soon to wait for image {image} to "
            "become AVAILABLE: CloudFormation signs it for 24 hours from when the handle was made. Give the handle "
            "(and its wait condition) new logical ids so that a new one is made, and deploy again"
        )
    return expires - EXPIRY_MARGIN


def _expired(err: DeadlineExceeded, resume: Resume) -> DeadlineExceeded:
    """The deadline's failure, naming the handle's expiry when that is what set the deadline."""
    expires = url_expiry(resume.signal) if resume.signal else None
    if expires is None or resume.deadline < expires - EXPIRY_MARGIN - 1:
        return err
    return DeadlineExceeded(
        f"{err}. The wait stopped at {_utc(resume.deadline)}: the wait condition handle's URL expires at "
        f"{_utc(expires)} (24 hours after the handle was made), after which no signal is accepted",
        err.progress,
    )


def _settle(client: AppStreamClient, request: Request, resume: Resume, timing: Timing) -> Outcome:
    """A scheduled invocation waits for AVAILABLE; a replacement that fails there is deleted, as inline."""
    target = ImageProperties(resume.image, shared_with=resume.shares, wait_for_available=resume.wait)
    physical_id, owner = request.physical_id, request.owner
    try:
        try:
            progress = creation.settle(client, target, timing.budget(resume.deadline))
        except DeadlineExceeded as err:
            raise _expired(err, resume) from err
    except ProviderError as err:
        # After its answer, CloudFormation owns the outcome: the wait condition fails, the rollback deletes.
        if request.request_type != "Update" or not resume.made or resume.image == physical_id or resume.answered:
            raise
        creation.discard(client, resume.image)
        raise ProviderError(f"{err} (image {physical_id} is kept; image {resume.image} is deleted)") from err
    return _finish(client, progress, resume, owner, timing, request.stack_id)


def _finish(  # noqa: PLR0917 - the state of one request, passed through
    client: AppStreamClient, progress: Progress, resume: Resume, owner: str, timing: Timing, stack_id: str
) -> Outcome:
    if progress.done and resume.discard:
        return _discard(client, replace(resume, phase=Phase.DISCARD), owner, timing, lambda _: False)
    if progress.done:
        signalled = {SIGNAL: resume.signal} if resume.signal and not resume.answered else {}
        return resume.image, {**progress.attributes, **signalled}
    if resume.signal and not resume.answered:  # answer now; scheduled polling waits on, then signals the handle
        logs.event(
            "answering now: the wait for AVAILABLE goes on after the answer and ends with a signal to the wait "
            "condition",
            image=resume.image,
            phase="hand-over",
            state=progress.state,
        )
        attributes = progress.attributes or images.expected_attributes(resume.image, stack_id, progress.state)
        return resume.image, {**attributes, RESUME: replace(resume, answered=True).to_data()}
    logs.event("handing over to scheduled polling", image=resume.image, phase="hand-over", state=progress.state)
    return None, {RESUME: resume.to_data()}


def _discard(
    client: AppStreamClient, resume: Resume, owner: str, timing: Timing, stop_polling: Callable[[str], bool]
) -> Outcome:
    """A rollback Update abandons a failed replacement: delete the image it made once it settles.

    The resource itself is already back where it was, so this never fails the rollback (that would
    leave the stack UPDATE_ROLLBACK_FAILED): an image that cannot be removed is logged by name.
    """
    name = resume.discard
    stop_polling(name)
    # A rollback: the failed replacement's image is deleted if it made it, given back if it adopted it.
    job = deletion.Deletion(name, in_use="Fail", deletes=True, undoes_create=lambda: True)
    try:
        done = deletion.delete(
            client,
            physical_id=name,
            props={"ImageName": name},
            owner=owner,
            job=job,
            budget=timing.budget(resume.deadline),
        )
    except ProviderError as err:
        logs.logger.error(
            "left image %s, which the abandoned replacement made: %s. Delete it by hand once it settles",
            name,
            err,
            extra={"image": name, "phase": "discard"},
        )
        done = True
    if not done:
        return None, {RESUME: resume.to_data()}
    logs.event("removed the image the abandoned replacement made", image=name, phase="discard", state=GONE)
    image = images.describe(client, resume.image)
    return resume.image, images.attributes(image) if image else {}


def _timeout_or_default(props: Any) -> int:
    """Delete must answer even when its properties are broken: fall back to the default timeout."""
    try:
        return service_timeout(props.get("ServiceTimeout", MAX_TIMEOUT))
    except (InvalidProperties, AttributeError):
        return MAX_TIMEOUT


def _choice_or_default(props: Any, key: str, allowed: tuple[str, ...], default: str) -> str:
    """A Delete's setting even from broken properties: an unknown value means the default."""
    value = props.get(key, default) if isinstance(props, Mapping) else default
    return value if value in allowed else default

"""Between the two sides: one request and its time in, one outcome out.

The CloudFormation side (provider/cloudformation/) reads the request, keeps the clock and owns the answer; the
AppStream side (provider/appstream/) makes, waits for and deletes images. This is the only module that knows both:
it reads the properties, turns the clock's window into the AppStream side's Budget, passes the Caller (the request's
Answer: claim an image, stop a polling, what CloudFormation says of stacks) once, and turns what the work came to into
an Outcome with the state a scheduled run continues from. A failure raises; its message becomes the Reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import logs
from .appstream import creation, deletion, images, retirement, states
from .appstream.properties import ImageProperties, Share, Signal, export_or_none, parse, service_timeout, signal
from .appstream.states import GONE, Budget, Progress
from .cloudformation import clock
from .cloudformation.answer import ImageResource
from .cloudformation.clock import Timing, Window
from .cloudformation.outcome import AnsweredThenContinue, Continue, Done, Outcome
from .cloudformation.request import LambdaContext, Request
from .cloudformation.resume import Phase, Resume
from .contract import (
    DEFAULT_IN_USE,
    DEFAULT_SHARED_ON_DELETE,
    FAILED_CREATE_ID,
    IMAGE_NAME,
    IN_USE_MODES,
    MAX_TIMEOUT,
    SHARED_ON_DELETE_MODES,
)
from .errors import DeadlineExceeded, InvalidProperties, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

    from .appstream.caller import Caller


def handle(
    event: dict[str, Any], context: LambdaContext, *, client: AppStreamClient, front: ImageResource, scope: str
) -> str | None:
    """crhelper's dispatch lands here (handler.py registers it for every request type, first deliveries and scheduled
    runs): the request, read once, and its time; the work; its outcome to the request's Answer, which gives crhelper
    the physical id (None: no answer yet)."""
    request = Request.of(event)
    timing = Timing.start(context.get_remaining_time_in_millis(), polling=request.resume is not None)
    return front.answer.accept(run(client, request, timing, front.answer, scope=scope))


def run(client: AppStreamClient, request: Request, timing: Timing, caller: Caller, *, scope: str = "") -> Outcome:
    """One invocation's work: a first delivery, or a scheduled run resuming `request.resume`.

    `caller` is the request's CloudFormation side as the AppStream side needs it (the Answer: appstream/caller.py).
    `scope` says which images the provider's role may manage, for AccessDenied reasons.
    """
    resume = request.resume
    if resume is not None and resume.made and request.request_type == "Create":
        caller.claim(resume.image)  # a FAILED answer, a timeout's too, names the image the Create made
    images.bound_retries(client, timing.calls_end)  # botocore's retries end by the hand-over, on the real clock
    try:
        if resume is None:
            return _first(client, request, timing, caller)
        return _resumed(client, request, resume, timing, caller)
    except ClientError as err:
        if images.error_code(err) in images.DENIED:
            raise images.access_denied(err, request.image, scope) from err
        raise


def _first(client: AppStreamClient, request: Request, timing: Timing, caller: Caller) -> Outcome:
    if request.request_type == "Delete":
        return _delete_first(client, request, timing, caller)
    return _create_or_update(client, request, timing, caller)


def _resumed(client: AppStreamClient, request: Request, resume: Resume, timing: Timing, caller: Caller) -> Outcome:
    if resume.phase is Phase.SIGNAL:  # only the signal is left to deliver: the Answer delivers it
        if resume.outcome != "SUCCESS":
            raise ProviderError(resume.reason or f"The work on image {resume.image} failed")
        return Done(resume.image)
    if request.request_type == "Delete":
        return _delete_resumed(client, request, resume, timing, caller)
    if resume.phase is Phase.DISCARD:
        return _discard(client, request, resume, timing, caller)
    if resume.phase is Phase.SETTLE:
        return _settle(client, request, resume, timing, caller)
    return _start_resumed(client, request, resume, timing, caller)  # Phase.START: it waited for a slot


def _budget(window: Window, timing: Timing) -> Budget:
    """The AppStream side's budget for a window of the clock, with the clock's slice and patience."""
    return Budget(
        window.deadline,
        window.hand_over_at,
        timing.clock,
        timing.sleep,
        window.last_moment,
        slice=clock.POLL_SLICE,
        patience=clock.RACE_PATIENCE,
    )


# -- Delete -------------------------------------------------------------------------------------------------------


def _delete_first(client: AppStreamClient, request: Request, timing: Timing, caller: Caller) -> Outcome:
    physical_id, props = request.physical_id, request.properties
    declared = _declared(props)
    target, not_gone_before = physical_id, 0.0
    if IMAGE_NAME.match(declared) and physical_id not in (declared, FAILED_CREATE_ID):
        # An id CloudFormation made up: the Create was cancelled (another resource failed) or timed out, and may
        # still be running (aws/aws-cdk#26139). Its image, if it makes one, carries this resource's ownership tag.
        logs.event(f"the physical id {physical_id[:120]} is CloudFormation's own: looking for this resource's image",
                   image=declared, phase="delete")  # fmt: skip
        target = declared
        if _makes_images(props):  # a copy, update or import may yet start: wait as long as a run waits for a slot
            not_gone_before = timing.now + clock.IN_FLIGHT
        caller.stop_polling(declared)
    elif declared == physical_id and "AvailableSignal" in props and caller.stop_polling(physical_id):
        # The image's own polling (after a Create's answer) is stopped; a run of it already under way may still
        # start the copy it waited for, so an absent image counts as gone only once such a run has ended.
        not_gone_before = timing.now + clock.IN_FLIGHT
    job = deletion.Deletion(
        target,
        in_use=_choice_or_default(props, "InUse", IN_USE_MODES, DEFAULT_IN_USE),
        shared_on_delete=_choice_or_default(props, "SharedOnDelete", SHARED_ON_DELETE_MODES, DEFAULT_SHARED_ON_DELETE),
        not_gone_before=not_gone_before,
        stops_polling=target != physical_id,
        deletes=deletion.on_delete(props),
        never_answered=target != physical_id,
    )
    job.keep, job.keep_sharing = retirement.retention(props)
    return _delete(client, request, job, clock.deadline_for(_timeout_or_default(props), timing.now), timing, caller)


def _delete_resumed(
    client: AppStreamClient, request: Request, resume: Resume, timing: Timing, caller: Caller
) -> Outcome:
    target, physical_id = resume.image, request.physical_id
    job = deletion.Deletion(
        target,
        in_use=resume.in_use,
        shared_on_delete=resume.shared_on_delete,
        revoked={share.account_id: share for share in map(Share.from_compact, resume.revoked)},
        not_gone_before=resume.not_gone_before,
        stops_polling=target == _declared(request.properties) and target != physical_id,
        deletes=deletion.on_delete(request.properties),
        never_answered=target != physical_id and not resume.retired,
        then_delete=list(resume.then_delete),
        retired=resume.retired,
    )
    job.keep, job.keep_sharing = retirement.retention(request.properties)
    return _delete(client, request, job, resume.deadline, timing, caller)


def _delete(  # noqa: PLR0917 - the request's parts, passed through
    client: AppStreamClient, request: Request, job: deletion.Deletion, deadline: float, timing: Timing, caller: Caller
) -> Outcome:
    budget = _budget(timing.window(deadline), timing)
    props, owner = request.properties, request.owner
    if deletion.delete(client, physical_id=job.name, props=props, owner=owner, job=job, budget=budget, caller=caller):
        return Done(request.physical_id)
    return Continue(
        Resume(
            deadline=deadline,
            image=job.name,
            phase=Phase.DELETE,
            in_use=job.in_use,
            revoked=tuple(share.compact() for share in job.revoked.values()),
            shared_on_delete=job.shared_on_delete,
            not_gone_before=job.not_gone_before,
            then_delete=tuple(job.then_delete),
            retired=job.retired,
        )
    )


def _makes_images(props: Any) -> bool:
    source = props.get("Source") if isinstance(props, Mapping) else None
    return isinstance(source, Mapping) and source.get("Type") in ("Copy", "Update", "Import")


def _declared(props: Any) -> str:
    name = props.get("ImageName") if isinstance(props, Mapping) else None
    return name if isinstance(name, str) else ""


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


# -- Create and Update ----------------------------------------------------------------------------------------------


def _create_or_update(client: AppStreamClient, request: Request, timing: Timing, caller: Caller) -> Outcome:
    """A first delivery. With AvailableSignal the answer comes once the work has started (each wait looks once),
    and the wait goes on after it up to the wait condition's Timeout; else within ServiceTimeout."""
    new = parse(request.properties)
    wanted = _signal_for(request, new)
    if wanted is None:
        deadline = clock.deadline_for(new.service_timeout, timing.now)
        window = timing.window(deadline)
    else:
        deadline = clock.signal_deadline(wanted.timeout, wanted.handle, new.image_name, timing.now)
        window = timing.answer_soon(min(deadline, clock.deadline_for(new.service_timeout, timing.now)))
    progress, stray = _work(client, request, new, _budget(window, timing), caller)
    state = _state(new, progress, deadline, stray, signal=wanted.handle if wanted is not None else "")
    return _finish(client, request, progress, state, timing, caller)


def _start_resumed(
    client: AppStreamClient, request: Request, resume: Resume, timing: Timing, caller: Caller
) -> Outcome:
    """A scheduled run of a request that waited for a copy or update slot starts it now, from the full properties;
    an answered one stays answered."""
    new = parse(request.properties)
    progress, stray = _work(client, request, new, _budget(timing.window(resume.deadline), timing), caller)
    state = _state(new, progress, resume.deadline, stray, answered=resume.answered, signal=resume.signal)
    return _finish(client, request, progress, state, timing, caller)


def _work(
    client: AppStreamClient, request: Request, new: ImageProperties, budget: Budget, caller: Caller
) -> tuple[Progress, str]:
    """The Create or Update, and the image a rollback Update abandons ("" for none)."""
    if request.request_type == "Create":
        return creation.create(client, new, request.owner, budget, caller), ""
    physical_id, old_props = request.physical_id, request.old_properties
    progress = creation.update(
        client, physical_id=physical_id, new=new, old_props=old_props, owner=request.owner, budget=budget, caller=caller
    )
    stray = creation.abandoned(old_props, physical_id) if new.image_name == physical_id else ""
    if stray:
        caller.stop_polling(stray)  # a replacement's wait that went on after its answer: the rollback removes its image
    return progress, stray


def _state(
    new: ImageProperties, progress: Progress, deadline: float, discard: str, *, answered: bool = False, signal: str = ""
) -> Resume:
    return Resume(
        deadline=deadline,
        image=new.image_name,
        phase=Phase.SETTLE if progress.started else Phase.START,
        wait=new.wait_for_available,
        in_use=new.in_use,
        shares=tuple(share.compact() for share in new.shared_with),
        made=progress.made,
        discard=discard,
        answered=answered,  # a queued start continues after its answer
        signal=signal,
        export_task=progress.export_task,
    )


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


def _settle(client: AppStreamClient, request: Request, resume: Resume, timing: Timing, caller: Caller) -> Outcome:
    """A scheduled invocation waits for AVAILABLE; a replacement that fails there is deleted, as inline."""
    shares = tuple(map(Share.from_compact, resume.shares))
    export = export_or_none(request.properties)  # the polling input keeps Export
    target = ImageProperties(resume.image, shared_with=shares, wait_for_available=resume.wait, export=export)
    physical_id = request.physical_id
    try:
        try:
            budget = _budget(timing.window(resume.deadline), timing)
            progress = states.settle(client, target, budget, export_task=resume.export_task)
        except DeadlineExceeded as err:
            raise clock.expired(err, resume) from err
    except ProviderError as err:
        # After its answer, CloudFormation owns the outcome: the wait condition fails, the rollback deletes.
        if request.request_type != "Update" or not resume.made or resume.image == physical_id or resume.answered:
            raise
        creation.discard(client, resume.image)
        raise ProviderError(f"{err} (image {physical_id} is kept; image {resume.image} is deleted)") from err
    return _finish(client, request, progress, resume, timing, caller)


def _finish(  # noqa: PLR0917 - the state of one request, passed through
    client: AppStreamClient, request: Request, progress: Progress, state: Resume, timing: Timing, caller: Caller
) -> Outcome:
    state = replace(state, export_task=progress.export_task or state.export_task)
    if progress.done and state.discard:
        return _discard(client, request, replace(state, phase=Phase.DISCARD), timing, caller, stopped=True)
    if progress.done:
        return Done(state.image, progress.attributes, signal=state.signal if not state.answered else "")
    if state.signal and not state.answered:  # answer now; scheduled polling waits on, then signals the handle
        logs.event(
            "answering now: the wait for AVAILABLE goes on after the answer and ends with a signal to the wait "
            "condition",
            image=state.image,
            phase="hand-over",
            state=progress.state,
        )
        attributes = progress.attributes or images.expected_attributes(state.image, request.stack_id, progress.state)
        return AnsweredThenContinue(state.image, attributes, replace(state, answered=True))
    logs.event("handing over to scheduled polling", image=state.image, phase="hand-over", state=progress.state)
    return Continue(state)


def _discard(
    client: AppStreamClient, request: Request, state: Resume, timing: Timing, caller: Caller, *, stopped: bool = False
) -> Outcome:
    """A rollback Update abandons a failed replacement: delete the image it made once it settles.

    The resource itself is already back where it was, so this never fails the rollback (that would
    leave the stack UPDATE_ROLLBACK_FAILED): an image that cannot be removed is logged by name.
    `stopped`: its polling was stopped earlier in this invocation.
    """
    name = state.discard
    if not stopped:
        caller.stop_polling(name)
    # A rollback: the failed replacement's image is deleted if it made it, given back if it adopted it.
    job = deletion.Deletion(name, in_use="Fail", deletes=True, undoes_create=True)
    budget = _budget(timing.window(state.deadline), timing)
    try:
        done = deletion.delete(
            client, physical_id=name, props={"ImageName": name}, owner=request.owner, job=job, budget=budget,
            caller=caller,
        )  # fmt: skip
    except ProviderError as err:
        logs.logger.error(
            "left image %s, which the abandoned replacement made: %s. Delete it by hand once it settles",
            name,
            err,
            extra={"image": name, "phase": "discard"},
        )
        done = True
    if not done:
        return Continue(state)
    logs.event("removed the image the abandoned replacement made", image=name, phase="discard", state=GONE)
    image = images.describe(client, state.image)
    return Done(state.image, images.attributes(image) if image else {})

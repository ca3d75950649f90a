"""One invocation of Custom::AppStreamImage: dispatch, deadlines, and the hand-over to scheduled polling.

`handle` returns the physical id when the request is finished, or None to hand over to
scheduled polling, plus the Data to keep (attributes, and `_Resume` while polling).
"""

from __future__ import annotations

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
    IN_USE_MODES,
    MAX_TIMEOUT,
    SHARED_ON_DELETE_MODES,
)
from .errors import AccessDenied, InvalidProperties, ProviderError
from .ownership import owner_value
from .properties import ImageProperties, Share, parse, service_timeout
from .states import GONE, Budget, Phase, Progress

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

HAND_OVER_MARGIN = 10.0  # seconds kept back to set up polling and send the response
POLL_SLICE = 40.0  # a scheduled invocation waits at most this long, well inside the 1-minute rate
POLL_PERIOD = 60.0  # the polling rule's rate(1 minute)
NEXT_RUN_SLACK = 10.0  # EventBridge's delivery and the next invocation's start, on top of the period
# ServiceTimeout runs from CloudFormation's send, not from the handler's start (cloudformation-lambda-rules.md):
# asynchronous queueing and a cold start come first, so the deadline keeps back up to a minute for them.
SEND_MARGIN = 60.0
RESUME = "_Resume"

Outcome = tuple[str | None, dict[str, Any]]


def _encode_share(share: Share) -> str:
    """`<account>:<f|->` `<b|->`: compact, so that 100 of them fit the 8192-character polling input."""
    return f"{share.account_id}:{'f' if share.allow_fleet else '-'}{'b' if share.allow_image_builder else '-'}"


def _decode_share(text: str) -> Share:
    account, _, flags = str(text).partition(":")
    return Share(account, "f" in flags, "b" in flags)


@dataclass(frozen=True)
class Resume:
    """What a scheduled invocation needs to continue, kept in the polling input (at most 8192 characters)."""

    deadline: float
    image: str
    phase: Phase = Phase.SETTLE
    wait: bool = True
    in_use: str = DEFAULT_IN_USE
    shares: tuple[Share, ...] = ()  # the sharing to apply once AVAILABLE
    made: bool = False  # this request made the image: a failure deletes it (Update) or names it (Create)
    revoked: tuple[Share, ...] = ()  # Delete: sharing revoked for a DeleteImage that has not gone ahead yet
    shared_on_delete: str = DEFAULT_SHARED_ON_DELETE
    discard: str = ""  # an image a failed replacement made, removed once it settles (a rollback Update)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "deadline": self.deadline,
            "image": self.image,
            "phase": Phase(self.phase).value,
            "wait": self.wait,
            "in_use": self.in_use,
            "shares": [_encode_share(s) for s in self.shares],
            "made": self.made,
            "revoked": [_encode_share(s) for s in self.revoked],
            "shared_on_delete": self.shared_on_delete,
            "discard": self.discard,
        }
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Resume:
        return cls(
            deadline=float(data["deadline"]),
            image=str(data["image"]),
            phase=Phase(data.get("phase", Phase.SETTLE.value)),
            wait=bool(data.get("wait", True)),
            in_use=str(data.get("in_use", DEFAULT_IN_USE)),
            shares=tuple(_decode_share(s) for s in data.get("shares", ())),
            made=bool(data.get("made")),
            revoked=tuple(_decode_share(s) for s in data.get("revoked", ())),
            shared_on_delete=str(data.get("shared_on_delete", DEFAULT_SHARED_ON_DELETE)),
            discard=str(data.get("discard", "")),
        )


def resume_of(event: Mapping[str, Any]) -> Resume | None:
    """The Resume a scheduled invocation carries (None on a first delivery)."""
    data = event.get("CrHelperData")
    if not event.get("CrHelperPoll") or not isinstance(data, Mapping) or RESUME not in data:
        return None
    return Resume.from_data(data[RESUME])


def deadline_for(timeout: int, start: float) -> float:
    """Answer before CloudFormation's own ServiceTimeout fires, which started counting before this invocation."""
    return start + timeout - min(SEND_MARGIN, timeout / 10)


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


def handle(
    client: AppStreamClient,
    event: Mapping[str, Any],
    remaining_ms: int,
    *,
    claim: Callable[[str], None] = lambda _: None,
    scope: str = "",
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """One invocation: a first delivery, or a scheduled one carrying `_Resume` in CrHelperData.

    `claim(name)` is told the image a Create made, so that any FAILED answer (a Lambda timeout too)
    names it. `scope` says which images the provider's role may manage, for AccessDenied reasons.
    """
    now = clock()
    resume = resume_of(event)
    owner = owner_value(str(event["StackId"]), str(event["LogicalResourceId"]))
    timing = Timing(now, remaining_ms, resume is not None, clock, sleep)
    kind = str(event["RequestType"])
    if resume is not None and resume.made and kind == "Create":
        claim(resume.image)
    image = str((event.get("ResourceProperties") or {}).get("ImageName", "")) if resume is None else resume.image
    # botocore's retries sleep on the real clock: they end by this invocation's hand-over time.
    images.CALL_DEADLINE.set(time.time() + remaining_ms / 1000 - HAND_OVER_MARGIN)
    try:
        if kind == "Delete":
            return _delete(client, event, owner, resume, timing)
        if resume is not None and resume.phase is Phase.DISCARD:
            return _discard(client, resume, owner, timing)
        if resume is not None and resume.phase is Phase.SETTLE:
            return _settle(client, event, owner, resume, timing)
        return _create_or_update(client, event, owner, resume, timing=timing, claim=claim)
    except ClientError as err:
        if images.error_code(err) in ("AccessDeniedException", "AccessDenied"):
            raise access_denied(err, image, scope) from err
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
    client: AppStreamClient, event: Mapping[str, Any], owner: str, resume: Resume | None, timing: Timing
) -> Outcome:
    physical_id = str(event.get("PhysicalResourceId") or "")
    props = event.get("ResourceProperties") or {}
    deadline = resume.deadline if resume else deadline_for(_timeout_or_default(props), timing.now)
    job = deletion.Deletion(
        physical_id,
        in_use=resume.in_use if resume else _choice_or_default(props, "InUse", IN_USE_MODES, DEFAULT_IN_USE),
        shared_on_delete=resume.shared_on_delete
        if resume
        else _choice_or_default(props, "SharedOnDelete", SHARED_ON_DELETE_MODES, DEFAULT_SHARED_ON_DELETE),
        revoked={s.account_id: s for s in resume.revoked} if resume else {},
    )
    done = deletion.delete(
        client, physical_id=physical_id, props=props, owner=owner, job=job, budget=timing.budget(deadline)
    )
    if done:
        return physical_id, {}
    state = Resume(
        deadline,
        physical_id,
        Phase.DELETE,
        in_use=job.in_use,
        revoked=tuple(job.revoked.values()),
        shared_on_delete=job.shared_on_delete,
    )
    return None, {RESUME: state.to_data()}


def _create_or_update(
    client: AppStreamClient,
    event: Mapping[str, Any],
    owner: str,
    resume: Resume | None,
    *,
    timing: Timing,
    claim: Callable[[str], None],
) -> Outcome:
    new = parse(event.get("ResourceProperties") or {})
    deadline = resume.deadline if resume else deadline_for(new.service_timeout, timing.now)
    budget = timing.budget(deadline)
    made: list[str] = []

    def claimed(name: str) -> None:
        made.append(name)
        claim(name)

    stray = ""
    if event["RequestType"] == "Create":
        progress = creation.create(client, new, owner, budget, claimed)
    else:
        physical_id = str(event.get("PhysicalResourceId") or "")
        old_props = event.get("OldResourceProperties") or {}
        progress = creation.update(
            client, physical_id=physical_id, new=new, old_props=old_props, owner=owner, budget=budget, claim=claimed
        )
        stray = creation.abandoned(old_props, physical_id) if new.image_name == physical_id else ""
    state = Resume(
        deadline,
        new.image_name,
        progress.phase,
        new.wait_for_available,
        new.in_use,
        new.shared_with,
        made=bool(made),
        discard=stray,
    )
    return _finish(client, progress, state, owner, timing)


def _settle(client: AppStreamClient, event: Mapping[str, Any], owner: str, resume: Resume, timing: Timing) -> Outcome:
    """A scheduled invocation waits for AVAILABLE; a replacement that fails there is deleted, as inline."""
    target = ImageProperties(resume.image, shared_with=resume.shares, wait_for_available=resume.wait)
    physical_id = str(event.get("PhysicalResourceId") or "")
    try:
        progress = creation.settle(client, target, timing.budget(resume.deadline))
    except ProviderError as err:
        if event["RequestType"] != "Update" or not resume.made or resume.image == physical_id:
            raise
        creation.discard(client, resume.image)
        raise ProviderError(f"{err} (image {physical_id} is kept; image {resume.image} is deleted)") from err
    return _finish(client, progress, resume, owner, timing)


def _finish(client: AppStreamClient, progress: Progress, resume: Resume, owner: str, timing: Timing) -> Outcome:
    if progress.done and resume.discard:
        return _discard(client, replace(resume, phase=Phase.DISCARD), owner, timing)
    if progress.done:
        return resume.image, dict(progress.attributes)
    logs.event("handing over to scheduled polling", image=resume.image, phase="hand-over", state=progress.state)
    return None, {RESUME: resume.to_data()}


def _discard(client: AppStreamClient, resume: Resume, owner: str, timing: Timing) -> Outcome:
    """A rollback Update abandons a failed replacement: delete the image it made once it settles.

    The resource itself is already back where it was, so this never fails the rollback (that would
    leave the stack UPDATE_ROLLBACK_FAILED): an image that cannot be removed is logged by name.
    """
    name = resume.discard
    job = deletion.Deletion(name, in_use="Fail")
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

"""One invocation of Custom::AppStreamImage: dispatch, deadlines, and the hand-over to scheduled polling.

`handle` returns the physical id when the request is finished, or None to hand over to
scheduled polling, plus the Data to keep (attributes, and `_Resume` while polling).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import creation, deletion, images, logs
from .contract import DEFAULT_IN_USE, MAX_TIMEOUT
from .errors import AccessDenied, InvalidProperties
from .ownership import owner_value
from .properties import ImageProperties, Share, parse, service_timeout
from .states import Budget, Progress

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

HAND_OVER_MARGIN = 10.0  # seconds kept back to set up polling and send the response
POLL_SLICE = 40.0  # a scheduled invocation waits at most this long, well inside the 1-minute rate
POLL_PERIOD = 60.0  # the polling rule's rate(1 minute)
NEXT_RUN_SLACK = 10.0  # EventBridge's delivery and the next invocation's start, on top of the period
RESUME = "_Resume"

Outcome = tuple[str | None, dict[str, Any]]


@dataclass(frozen=True)
class Resume:
    """What a scheduled invocation needs to continue; compact, so the polling input stays small."""

    deadline: float
    image: str
    phase: str = "settle"  # "start": not made yet (needs the full properties); "settle"; "delete"
    wait: bool = True
    in_use: str = DEFAULT_IN_USE
    shares: tuple[str, ...] = ()  # "<account>:<fleet 0|1><builder 0|1>"
    made: bool = False  # this Create made the image: a failure answers with its name (the rollback deletes it)

    def to_data(self) -> dict[str, Any]:
        return {
            "d": self.deadline,
            "i": self.image,
            "p": self.phase,
            "w": self.wait,
            "u": self.in_use,
            "s": list(self.shares),
            "m": self.made,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Resume:
        return cls(
            float(data["d"]),
            str(data["i"]),
            str(data.get("p", "settle")),
            bool(data["w"]),
            str(data["u"]),
            tuple(data["s"]),
            bool(data.get("m")),
        )

    def share_list(self) -> tuple[Share, ...]:
        return tuple(Share(s[:12], s[13] == "1", s[14] == "1") for s in self.shares)


def resume_of(event: Mapping[str, Any]) -> Resume | None:
    """The Resume a scheduled invocation carries (None on a first delivery)."""
    data = event.get("CrHelperData")
    if not event.get("CrHelperPoll") or not isinstance(data, Mapping) or RESUME not in data:
        return None
    return Resume.from_data(data[RESUME])


def _encode_shares(shares: tuple[Share, ...]) -> tuple[str, ...]:
    return tuple(f"{s.account_id}:{int(s.allow_fleet)}{int(s.allow_image_builder)}" for s in shares)


def deadline_for(timeout: int, start: float) -> float:
    """Answer before CloudFormation's own ServiceTimeout fires."""
    return start + timeout - min(2.0, timeout / 10)


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
    if resume is not None and resume.made and event["RequestType"] == "Create":
        claim(resume.image)
    image = str((event.get("ResourceProperties") or {}).get("ImageName", "")) if resume is None else resume.image
    try:
        if event["RequestType"] == "Delete":
            return _delete(client, event, owner, resume, timing)
        if resume is not None and resume.phase == "settle":
            target = ImageProperties(resume.image, shared_with=resume.share_list(), wait_for_available=resume.wait)
            progress = creation.settle(client, target, timing.budget(resume.deadline))
            return _finish(progress, resume)
        return _create_or_update(client, event, owner, resume, timing=timing, claim=claim)
    except ClientError as err:
        if images.error_code(err) in ("AccessDeniedException", "AccessDenied"):
            raise access_denied(err, image, scope) from err
        raise


def access_denied(err: ClientError, image: str, scope: str) -> AccessDenied:
    granted = scope or "the images its stack declares"
    return AccessDenied(
        f"Access denied: the provider's role may not call appstream:{err.operation_name} for image {image}. "
        f"It may manage only {granted}; deploy the provider with a scope that includes this image"
    )


def _delete(
    client: AppStreamClient, event: Mapping[str, Any], owner: str, resume: Resume | None, timing: Timing
) -> Outcome:
    physical_id = str(event.get("PhysicalResourceId") or "")
    props = event.get("ResourceProperties") or {}
    in_use = resume.in_use if resume else _in_use_or_default(props)
    deadline = resume.deadline if resume else deadline_for(_timeout_or_default(props), timing.now)
    budget = timing.budget(deadline)
    done = deletion.delete(client, physical_id=physical_id, props=props, owner=owner, in_use=in_use, budget=budget)
    if done:
        return physical_id, {}
    return None, {RESUME: Resume(deadline, physical_id, "delete", in_use=in_use).to_data()}


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

    if event["RequestType"] == "Create":
        progress = creation.create(client, new, owner, budget, claimed)
    else:
        progress = creation.update(
            client,
            physical_id=str(event.get("PhysicalResourceId") or ""),
            new=new,
            old_props=event.get("OldResourceProperties") or {},
            owner=owner,
            budget=budget,
        )
    state = Resume(
        deadline, new.image_name, progress.phase, new.wait_for_available, new.in_use, _encode_shares(new.shared_with)
    )
    return _finish(progress, replace(state, made=bool(made)))


def _finish(progress: Progress, resume: Resume) -> Outcome:
    if progress.done:
        return resume.image, dict(progress.attributes)
    logs.event("handing over to scheduled polling", image=resume.image, phase="hand-over", state=progress.state)
    return None, {RESUME: resume.to_data()}


def _timeout_or_default(props: Any) -> int:
    """Delete must answer even when its properties are broken: fall back to the default timeout."""
    try:
        return service_timeout(props.get("ServiceTimeout", MAX_TIMEOUT))
    except (InvalidProperties, AttributeError):
        return MAX_TIMEOUT


def _in_use_or_default(props: Any) -> str:
    value = props.get("InUse", DEFAULT_IN_USE) if isinstance(props, Mapping) else DEFAULT_IN_USE
    return value if value in ("Wait", "Fail") else DEFAULT_IN_USE

"""EventBridge Scheduler, offline: one-time schedules invoke their Lambda targets through their execution role.

moto stores schedules and schedule groups (moto_strict makes its answers strict); nothing there fires them.
`Schedules` does, as EventBridge Scheduler does (EventBridge Scheduler user guide):

- an `at(yyyy-mm-ddThh:mm:ss)` schedule fires once, in its ScheduleExpressionTimezone (UTC by default), within
  the minute it names ("Schedule types": 60 second precision; here at its last second, the stricter end) and
  within a FLEXIBLE window's MaximumWindowInMinutes (here at its end); the delay from when the schedule was
  set is multiplied by `scale`, as scheduler.py shortens rule periods. Rate and cron schedules do not fire here.
- it invokes the target asynchronously ("Target types": Lambda Invoke, InvocationType Event) with the target's
  Input as the event, after assuming the target's RoleArn: the role's trust policy must let
  scheduler.amazonaws.com call sts:AssumeRole (with aws:SourceAccount and aws:SourceArn, the schedule group's
  ARN: "Confused deputy prevention"), and its policies must allow lambda:InvokeFunction on the target.
  Otherwise nothing is invoked and the refusal is reported (`report`: the engine's violations).
- ActionAfterCompletion DELETE removes the schedule after its invocation ("Deleting a schedule after
  completion").

Roles come from the stacks (an AWS::IAM::Role, its inline Policies, and AWS::IAM::Policy or
AWS::IAM::ManagedPolicy resources naming it, as functions.py reads a function's role), or else from moto's IAM.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import fnmatch
import json
import math
import re
import threading
import time
import urllib.parse
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import JsonRESTError, ServiceException
from moto.iam.models import iam_backends
from moto.scheduler.models import EventBridgeSchedulerBackend, Schedule, scheduler_backends

from appstream_image_local.cfn.model import ACCOUNT, REGION, Stack
from appstream_image_local.iam import Principal, condition_holds

PRINCIPAL = "scheduler.amazonaws.com"  # the service principal a schedule's execution role must trust
AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
PRECISION = 60.0  # seconds: a schedule fires within the minute it names (user guide, "Schedule types")
Deliver = Callable[[str, dict[str, Any]], bool]  # (target ARN, event) -> whether a function took it
REFUSED = "EventBridge Scheduler did not invoke"  # how each reported refusal starts
HISTORY = 10_000  # firings kept in `Schedules.fired`


def backend(region: str = REGION) -> EventBridgeSchedulerBackend:
    """moto's EventBridge Scheduler of this account in `region` (in this process, as the local moto runs)."""
    return scheduler_backends[ACCOUNT][region]


@dataclass(frozen=True)
class Role:
    """An execution role: its trust policy and its permission policies."""

    arn: str
    trust: dict[str, Any]
    policies: list[dict[str, Any]]


def _document(raw: Any) -> dict[str, Any]:
    """A policy document as CloudFormation or IAM holds it (an object, JSON, or URL-encoded JSON)."""
    if isinstance(raw, dict):
        return raw
    text = str(raw or "")
    for candidate in (text, urllib.parse.unquote(text)):
        with contextlib.suppress(ValueError):
            found = json.loads(candidate)
            if isinstance(found, dict):
                return found
    return {}


def stack_role(stacks: Mapping[str, Stack], arn: str) -> Role | None:
    """The role `arn` as a stack declares it, with the policies the stack attaches to it now."""
    for stack in list(stacks.values()):
        resources = list(stack.resources.values())
        role = next((r for r in resources if r.type == "AWS::IAM::Role" and r.attributes.get("Arn") == arn), None)
        if role is None:
            continue
        documents = [_document(p.get("PolicyDocument")) for p in role.properties.get("Policies", []) or []]
        documents += [
            _document(r.properties.get("PolicyDocument"))
            for r in resources
            if r.type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
            and role.physical_id in (r.properties.get("Roles") or [])
        ]
        return Role(arn, _document(role.properties.get("AssumeRolePolicyDocument")), documents)
    return None


def moto_role(arn: str) -> Role | None:
    """The role `arn` as moto's IAM holds it (made with the IAM API), with its inline and attached policies."""
    iam = iam_backends[ACCOUNT]["aws"]
    try:
        role = iam.get_role_by_arn(arn)
    except ServiceException:  # NoSuchEntity
        return None
    documents = [_document(document) for document in list(role.policies.values())]
    for policy in list(role.managed_policies.values()):
        documents += [_document(v.document) for v in policy.versions if v.is_default]
    return Role(arn, _document(role.assume_role_policy_document), documents)


def _statements(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    body = document.get("Statement", [])
    yield from body if isinstance(body, list) else [body]


def listed(value: Any) -> list[str]:
    """A policy element that may be one value or a list, as a list."""
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def names_service(principal: Any, service: str) -> bool:
    """Whether a statement's Principal names the service principal (or everyone)."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return service in listed(principal.get("Service", []))


def conditions_hold(statement: Mapping[str, Any], context: dict[str, list[str]]) -> bool:
    """The statement's Condition block; keys are matched case-insensitively, as IAM matches them."""
    by_lower = {key.lower(): key for key in context}
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, wanted in dict(pairs).items():
            if not condition_holds(operator, by_lower.get(str(key).lower(), str(key)), wanted, context):
                return False
    return True


def trusts(trust: Mapping[str, Any], service: str, context: dict[str, list[str]]) -> bool:
    """Whether the trust policy lets `service` assume the role (an explicit Deny wins; NotAction and NotPrincipal
    statements are not read: stricter)."""
    allowed = False
    for statement in _statements(trust):
        actions = listed(statement.get("Action", []))
        if not any(fnmatch.fnmatchcase("sts:assumerole", a.lower()) for a in actions):
            continue
        if not names_service(statement.get("Principal"), service) or not conditions_hold(statement, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


@dataclass
class _Plan:
    version: tuple[str, float]  # (schedule ARN, LastModificationDate): a change re-arms a one-time schedule
    due: float  # on the monotonic clock
    set_at: float  # when it was set, on the monotonic clock
    aws_delay: float  # seconds from its setting to when AWS would fire it (unscaled)


@dataclass(frozen=True)
class Fired:
    """One firing (or refusal) of a one-time schedule: how long it waited here, and how long AWS would have."""

    name: str  # GROUP/NAME
    waited: float  # seconds from its setting to its firing, on this machine's clock (the scaled delay, and a round)
    aws_delay: float  # seconds from its setting to the latest AWS fires it (the minute it names, its window)


class Schedules:
    """Fires the one-time schedules moto holds (see the module's docstring); `scale` shortens their delays."""

    def __init__(
        self,
        stacks: Mapping[str, Stack],
        *,
        scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        region: str = REGION,
    ) -> None:
        self._stacks = stacks
        self.region = region
        self.scale = scale
        self._clock = clock
        self._wall = wall
        self._plans: dict[tuple[str, float], _Plan] = {}
        self._done: set[tuple[str, float]] = set()  # fired or refused: a one-time schedule fires once
        #: the latest firings, oldest first (refused ones too): what the scheduled runs waited
        self.fired: collections.deque[Fired] = collections.deque(maxlen=HISTORY)
        self._lock = threading.Lock()  # one round at a time: a due schedule fires once
        #: refused invocations, unless `report` is replaced (the engine reports them as violations)
        self.refused: list[str] = []
        self.report: Callable[[str], None] = self.refused.append

    def schedules(self) -> list[Schedule]:
        """Every schedule of every group of this region (newest first)."""
        groups = list(backend(self.region).schedule_groups.values())
        return [s for group in groups for s in list(group.schedules.values())]

    def targets(self) -> dict[str, dict[str, Any]]:
        """GROUP/NAME -> the input event of its target, for every schedule."""
        return {f"{s.group_name}/{s.name}": _input(s) or {} for s in self.schedules()}

    def fire(self, deliver: Deliver) -> int:
        """Invoke every due one-time schedule's target through `deliver` (which says whether a function took it);
        returns how many were delivered."""
        with self._lock:
            due = self._due()
            return sum(1 for schedule in due if self._fire(schedule, deliver))

    def _due(self) -> list[Schedule]:
        now, wall = self._clock(), self._wall()
        found: list[Schedule] = []
        current: set[tuple[str, float]] = set()
        for schedule in self.schedules():
            version = (str(schedule.arn), float(schedule.last_modified_date))
            current.add(version)
            # State defaults to ENABLED (CreateSchedule, UpdateSchedule API reference); moto's update leaves it unset.
            if version in self._done or (schedule.state or "ENABLED") != "ENABLED":
                continue
            plan = self._plans.get(version)
            if plan is None:
                fires_at = _fires_at(schedule)
                if fires_at is None:  # rate() and cron(): not fired offline
                    continue
                set_at = now - max(wall - version[1], 0.0)  # when it was set, on the monotonic clock
                aws_delay = max(fires_at - version[1], 0.0)
                plan = self._plans[version] = _Plan(version, set_at + aws_delay * self.scale, set_at, aws_delay)
            if plan.due <= now:
                found.append(schedule)
                self.fired.append(Fired(f"{schedule.group_name}/{schedule.name}", now - plan.set_at, plan.aws_delay))
        self._plans = {v: p for v, p in self._plans.items() if v in current}
        self._done &= current
        return found

    def _fire(self, schedule: Schedule, deliver: Deliver) -> bool:
        version = (str(schedule.arn), float(schedule.last_modified_date))
        self._done.add(version)
        self._plans.pop(version, None)
        name = f"{schedule.group_name}/{schedule.name}"
        problem = self._refusal(schedule)
        event = _input(schedule)
        if not problem and event is None:
            problem = "its target Input is not a JSON object (the local Lambda takes events that are objects)"
        if not problem and not deliver(str(schedule.target["Arn"]), event or {}):
            problem = f"its target {schedule.target['Arn']} is not a function in this account"
        if problem:
            self.report(f"{REFUSED} schedule {name}: {problem}")
            return False
        if schedule.action_after_completion == "DELETE":
            self._delete(schedule, version)
        return True

    def _refusal(self, schedule: Schedule) -> str:
        """Why EventBridge Scheduler would not invoke the target ("" when it would)."""
        try:
            group = backend(self.region).get_schedule_group(schedule.group_name)
        except JsonRESTError:
            return f"its schedule group {schedule.group_name} does not exist"
        target = str(schedule.target.get("Arn", ""))
        role_arn = str(schedule.target.get("RoleArn", ""))
        role = stack_role(self._stacks, role_arn) or moto_role(role_arn)
        if role is None:
            return f"its execution role {role_arn} does not exist"
        context = {"aws:SourceAccount": [ACCOUNT], "aws:SourceArn": [str(group.arn)]}
        if not trusts(role.trust, PRINCIPAL, context):
            return f"the trust policy of {role_arn} does not let {PRINCIPAL} assume it (sts:AssumeRole)"
        decision = Principal(role_arn, role.policies).decide("lambda:InvokeFunction", target, {})
        if not decision.allowed:
            return f"{role_arn} is not authorized to perform: lambda:InvokeFunction on resource: {target}"
        return ""

    def _delete(self, schedule: Schedule, version: tuple[str, float]) -> None:
        """ActionAfterCompletion DELETE: the schedule goes, unless it was changed meanwhile."""
        with contextlib.suppress(JsonRESTError):
            current = backend(self.region).get_schedule(schedule.group_name, schedule.name)
            if (str(current.arn), float(current.last_modified_date)) == version:
                backend(self.region).delete_schedule(schedule.group_name, schedule.name)


def _input(schedule: Schedule) -> dict[str, Any] | None:
    """The target's Input as an event ({} when it has none); None when it is not a JSON object."""
    raw = schedule.target.get("Input")
    if raw is None:
        return {}
    try:
        event = json.loads(str(raw))
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _fires_at(schedule: Schedule) -> float | None:
    """When a one-time schedule fires, in epoch seconds: the last second of the minute it names, plus a FLEXIBLE
    window's length (both the latest AWS may take); None for rate() and cron() schedules."""
    match = AT.match(str(schedule.schedule_expression))
    if match is None:
        return None
    try:
        zone = zoneinfo.ZoneInfo(str(schedule.schedule_expression_timezone or "UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    named = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=zone).timestamp()
    fires = math.floor(named / PRECISION) * PRECISION + PRECISION - 1
    window = schedule.flexible_time_window or {}
    if window.get("Mode") == "FLEXIBLE":
        fires += float(window.get("MaximumWindowInMinutes", 0)) * 60
    return fires

"""The polling schedule's names, times and input: a chain of EventBridge Scheduler one-time schedules per request.

Each run that does not finish makes its successor, a one-time schedule a minute or two ahead (clock.py) whose Input
carries the run's current state; nothing runs twice at once and the provider function's resource policy never
changes. Names share a prefix per chain (stack instance, resource, and image, or request for a Delete's own chain),
so that a Delete finds a chain with ListSchedules NamePrefix; each name ends in the request and a sequence number,
so that a duplicate delivery of one request meets its twin's name (ConflictException) and stops.

Rules of the old scheme (one EventBridge rate rule and one Lambda permission per request) are only removed now:
`rule_name` and `image_rule` name them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from ..contract import RULE_PREFIX
from .clock import PRECISION, SCHEDULE_AHEAD
from .resume import RESUME, Resume

# EventBridge Scheduler API reference, CreateSchedule: Name and NamePrefix are 1-64 of [0-9a-zA-Z-_.]
# (EventBridge rule names: 1-64 of [.\-_A-Za-z0-9], the same bound).
MAX_NAME = 64
NAME = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
# EventBridge's target Input holds at most 8192 characters (EventBridge quotas). Scheduler's Target.Input documents
# no maximum (API reference, Target: minimum length 1): the stricter bound is kept for both.
MAX_TARGET_INPUT = 8192
SUFFIX = 8  # the old rules' suffix
SUBJECT = 8  # hex digits naming a chain's stack instance, resource and image (or request)
REQUEST = 6  # hex digits naming the request, so that only a duplicate delivery meets a chain's names
SEQUENCE = 6  # digits of the sequence number: a 12-hour wait makes a few hundred runs
MAX_SEQUENCE = 10**SEQUENCE - 1
# Scheduler retries a target invocation Lambda did not accept (throttled, unavailable): no run took place, so a retry
# never overlaps one, and a run that never comes leaves the request unanswered (CloudFormation waits its whole
# ServiceTimeout) and revoked sharing not given back. Scheduler's maxima (its defaults too): 185 tries within 24 h.
RETRY_POLICY: Final = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
# And the Source's Type: a Delete's ending reads them; a wait for AVAILABLE reads Export (it exports then).
KEEP_IN_POLL_INPUT = ("ServiceToken", "ImageName", "OnDelete", "Export")
# The polling input's own keys: crhelper's (CrHelperPoll marks a scheduled run, CrHelperData carries the state), the
# schedule that ran it (its successor follows in the chain), and an old rule's (its ARN and permission statement id).
SCHEDULE = "CrHelperSchedule"
OLD_RULE_KEYS = ("CrHelperRule", "CrHelperPermission")


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def chain_prefix(stack_id: str, logical_id: str, subject: str) -> str:
    """`<logical id, cut>-<digest>-`: every schedule of one chain starts with it, and no other chain's does (the
    logical id part holds no `-`, the digest has a fixed length)."""
    room = MAX_NAME - SUBJECT - REQUEST - SEQUENCE - 3
    safe = "".join(c for c in logical_id if c.isascii() and c.isalnum())[:room]
    digest = _digest(f"{stack_id}\n{logical_id}\n{subject}", SUBJECT)
    return f"{safe}-{digest}-"


def image_chain(stack_id: str, logical_id: str, image: str) -> str:
    """The prefix of a Create's or Update's polling: named by stack instance, resource and image, so that a Delete
    (a rollback's, also one CloudFormation sends while a cancelled Create still runs) finds it and stops it."""
    return chain_prefix(stack_id, logical_id, f"image {image}")


def request_chain(stack_id: str, logical_id: str, request_id: str) -> str:
    """The prefix of a Delete's own polling: named by its request."""
    return chain_prefix(stack_id, logical_id, f"request {request_id}")


def schedule_name(prefix: str, request_id: str, sequence: int) -> str:
    """`<prefix><request digest>-<sequence>`: within 64 characters of [0-9a-zA-Z-_.]."""
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"polling sequence number {sequence} is outside 1-{MAX_SEQUENCE}")
    name = f"{prefix}{_digest(request_id, REQUEST)}-{sequence}"
    if not NAME.match(name):
        raise ValueError(f"schedule name {name!r} is not 1-{MAX_NAME} of [0-9a-zA-Z-_.]")
    return name


def first_name(event: Mapping[str, Any], image: str) -> str:
    """A chain's first schedule: a Create's or Update's by its image (a Delete finds it), a Delete's by request."""
    stack_id, logical_id, request_id = (
        str(event.get(key) or "") for key in ("StackId", "LogicalResourceId", "RequestId")
    )
    if event.get("RequestType") in ("Create", "Update"):
        prefix = image_chain(stack_id, logical_id, image)
    else:  # a Delete's own polling
        prefix = request_chain(stack_id, logical_id, request_id)
    return schedule_name(prefix, request_id, 1)


def successor(name: str) -> str:
    """The name of the schedule that follows `name` in its chain: the same, with the next sequence number."""
    head, _, number = name.rpartition("-")
    if not head or not number.isdigit():
        raise ValueError(f"{name!r} is not a polling schedule's name")
    following = int(number) + 1
    if not 1 < following <= MAX_SEQUENCE:
        raise ValueError(f"polling sequence number {following} is outside 1-{MAX_SEQUENCE}")
    return f"{head}-{following}"


def at_expression(now: float) -> str:
    """A one-time schedule's expression, in UTC: SCHEDULE_AHEAD from `now`, rounded up to a whole minute (AWS
    runs it within the minute it names, so the run never comes sooner than that)."""
    moment = math.ceil((now + SCHEDULE_AHEAD) / PRECISION) * PRECISION
    return f"at({datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


def rule_name(logical_id: str, suffix: str) -> str:
    """An old polling rule's name: `AppStreamImagePoll-<logical id, cut>-<suffix>`, within 64 characters."""
    room = MAX_NAME - len(RULE_PREFIX) - len(suffix) - 1
    safe = "".join(c for c in logical_id if c.isalnum())[:room]
    return f"{RULE_PREFIX}{safe}-{suffix}"


def image_rule(stack_id: str, logical_id: str, image: str) -> str:
    """The old rule of a Create's or Update's polling (by stack instance, resource and image; its permission's
    statement id is the same name)."""
    digest = hashlib.sha256(f"{stack_id}\n{logical_id}\n{image}".encode()).hexdigest()[:SUFFIX].upper()
    return rule_name(logical_id, digest)


def polling_input(event: Mapping[str, Any], state: Resume, name: str) -> str:
    """The Input of schedule `name`: the event, marked as a scheduled run of that schedule, carrying `state`, without
    what polling does not need (the old properties; an old rule's names, removed by the run that came from it).

    A request still waiting to start its copy or update keeps all its properties: the scheduled invocation starts
    it from them.
    """
    slim = {k: v for k, v in event.items() if k not in ("OldResourceProperties", *OLD_RULE_KEYS)}
    slim |= {"CrHelperData": {RESUME: state.to_data()}, "CrHelperPoll": True, SCHEDULE: name}
    props = event.get("ResourceProperties")
    if isinstance(props, dict) and not state.needs_properties:
        slim["ResourceProperties"] = {k: props[k] for k in KEEP_IN_POLL_INPUT if k in props}
        source = props.get("Source")
        if isinstance(source, dict) and "Type" in source:
            slim["ResourceProperties"]["Source"] = {"Type": source["Type"]}
    text = json.dumps(slim)
    if len(text) > MAX_TARGET_INPUT:
        raise ValueError(
            f"the polling input would be {len(text)} characters; the schedule's target allows {MAX_TARGET_INPUT} "
            "(shorten the Tags to wait for a copy or update slot across invocations, or Export's TagSpecifications)"
        )
    return text

"""Where moto forgives what AWS refuses, for the calls the provider makes: made to answer as AWS does.

Lambda:
- AddPermission with a statement id the function's policy already has: AWS answers
  ResourceConflictException ("The statement id (...) provided already exists. Please provide a new
  statement id, or remove the existing statement."); moto 5.2 adds a second statement.
- A function's resource-based policy is at most 20 KB: AddPermission beyond it answers
  PolicyLengthExceededException; moto has no limit.
- An update of a function (AddPermission, RemovePermission, UpdateFunctionConfiguration,
  UpdateFunctionCode) is in progress for a moment (`UPDATE_WINDOW` seconds here): another update of that
  function meanwhile answers ResourceConflictException (HTTP 409); moto serves them all at once.

EventBridge: at most `RULES_PER_BUS` rules per event bus; PutRule of a new name beyond it answers
LimitExceededException; moto has no limit.

S3: a presigned URL used after its expiry (SigV4 X-Amz-Date + X-Amz-Expires, SigV2 Expires) answers
403 AccessDenied "Request has expired"; moto never expires one.

EventBridge Scheduler: a taken schedule name answers ConflictException with HTTP 409 (moto: 400); a
schedule in a group that does not exist, ResourceNotFoundException (moto: HTTP 500); names are 1-64
of [0-9a-zA-Z-_.] (moto takes any); at() expressions must name a time; CreateScheduleGroup of a taken
name answers ConflictException (moto replaced the group and dropped its schedules); DeleteScheduleGroup
of an unknown group, ResourceNotFoundException (moto: HTTP 500).

`clock` (monotonic, for update windows) and `wall_clock` (epoch seconds, for URL expiry) are module
attributes so that tests can drive them.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend
from moto.awslambda.policy import Policy
from moto.core.exceptions import JsonRESTError
from moto.events.models import EventsBackend
from moto.s3.responses import S3Response
from moto.scheduler.exceptions import ScheduleExists, ScheduleGroupNotFound, ValidationException
from moto.scheduler.models import EventBridgeSchedulerBackend

_PATCHED = "_appstream_image_local_strict"
POLICY_LIMIT = 20480  # bytes of a function's resource-based policy (Lambda developer guide: "Lambda quotas")
UPDATE_WINDOW = 0.2  # seconds a function's update stays "in progress" here (AWS: until LastUpdateStatus settles)
RULES_PER_BUS = 300  # rules per event bus, the default quota (EventBridge user guide: "Amazon EventBridge quotas")
# Schedule and schedule group names (EventBridge Scheduler API reference: CreateSchedule, CreateScheduleGroup).
SCHEDULER_NAME = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")  # one-time schedules (user guide: "Schedule types")

clock: Callable[[], float] = time.monotonic
wall_clock: Callable[[], float] = time.time
_updates = threading.Lock()  # one function update decided at a time: overlapping ones conflict
_busy_until: dict[str, float] = {}  # function ARN -> when its update in progress ends (on `clock`)


class ResourceConflict(LambdaClientError):
    code = 409  # Lambda's status for ResourceConflictException

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


class PolicyLengthExceeded(LambdaClientError):
    code = 400  # Lambda's status for PolicyLengthExceededException (AddPermission API reference)

    def __init__(self, size: int) -> None:
        message = f"The final policy size ({size}) is bigger than the limit ({POLICY_LIMIT})."
        super().__init__("PolicyLengthExceededException", message)


class LimitExceeded(JsonRESTError):
    code = 400  # EventBridge's LimitExceededException (PutRule API reference)

    def __init__(self) -> None:
        super().__init__("LimitExceededException", "The requested resource exceeds the maximum number allowed.")


class SchedulerConflict(JsonRESTError):
    code = 409  # the ConflictException shape's status in the EventBridge Scheduler API model

    def __init__(self, message: str) -> None:
        super().__init__("ConflictException", message)


def policy_size(policy: Policy) -> int:
    """The policy document's size as GetPolicy returns it (compact JSON)."""
    document = {"Version": "2012-10-17", "Id": "default", "Statement": policy.statements}
    return len(json.dumps(document, separators=(",", ":")))


def forget_updates() -> None:
    """No function update in progress (a new offline cloud starts with none)."""
    with _updates:
        _busy_until.clear()


def apply() -> None:
    """Patch moto's in-process backends (idempotent): every moto server of this process answers strictly."""
    if getattr(Policy, _PATCHED, False):
        return
    _strict_policies()
    _strict_function_updates()
    _strict_rules()
    _strict_presigned_urls()
    _strict_scheduler()
    setattr(Policy, _PATCHED, True)


def _strict_policies() -> None:
    original = Policy.add_statement

    def add_statement(self: Policy, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
        statement, revision = original(self, raw, qualifier)
        sid = statement.get("Sid")
        if sid and sum(1 for s in self.statements if s.get("Sid") == sid) > 1:
            self.statements.pop()  # the one just added
            raise ResourceConflict(
                f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
                "or remove the existing statement."
            )
        size = policy_size(self)
        if size > POLICY_LIMIT:  # Lambda developer guide, "Lambda quotas": 20 KB, not adjustable
            self.statements.pop()
            raise PolicyLengthExceeded(size)
        return statement, revision

    Policy.add_statement = add_statement  # type: ignore[method-assign]


def _in_progress(backend: LambdaBackend, function_name: str, qualifier: str | None, update: Callable[[], Any]) -> Any:
    """Run one update of the function; refused while the last one is still in progress (ResourceConflictException:
    "The operation cannot be performed at this time. An update is in progress for resource: <arn>")."""
    arn = ":".join(str(backend.get_function(function_name, qualifier).function_arn).split(":")[:7])
    with _updates:
        if clock() < _busy_until.get(arn, float("-inf")):
            raise ResourceConflict(
                f"The operation cannot be performed at this time. An update is in progress for resource: {arn}"
            )
        result = update()  # a refused update (a taken statement id, a full policy) starts nothing
        _busy_until[arn] = clock() + UPDATE_WINDOW
        return result


def _strict_function_updates() -> None:
    add_permission, remove_permission = LambdaBackend.add_permission, LambdaBackend.remove_permission
    update_code, update_configuration = LambdaBackend.update_function_code, LambdaBackend.update_function_configuration

    def add(self: LambdaBackend, function_name: str, qualifier: str, raw: str) -> dict[str, Any]:
        result: dict[str, Any] = _in_progress(
            self, function_name, qualifier, lambda: add_permission(self, function_name, qualifier, raw)
        )
        return result

    def remove(self: LambdaBackend, function_name: str, sid: str, revision: str = "") -> None:
        _in_progress(self, function_name, None, lambda: remove_permission(self, function_name, sid, revision))

    def code(self: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]) -> dict[str, Any] | None:
        result: dict[str, Any] | None = _in_progress(
            self, function_name, qualifier, lambda: update_code(self, function_name, qualifier, body)
        )
        return result

    def configuration(
        self: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        result: dict[str, Any] | None = _in_progress(
            self, function_name, qualifier, lambda: update_configuration(self, function_name, qualifier, body)
        )
        return result

    LambdaBackend.add_permission = add  # type: ignore[method-assign]
    LambdaBackend.remove_permission = remove  # type: ignore[method-assign]
    LambdaBackend.update_function_code = code  # type: ignore[method-assign]
    LambdaBackend.update_function_configuration = configuration  # type: ignore[method-assign]


def _strict_rules() -> None:
    put_rule = EventsBackend.put_rule

    def put(self: EventsBackend, name: str, *args: Any, **kwargs: Any) -> Any:
        bus = self._get_event_bus(self._normalize_event_bus_arn(kwargs.get("event_bus_arn")))
        if name not in bus.rules and len(bus.rules) >= RULES_PER_BUS:  # a new rule; an existing one may change
            raise LimitExceeded
        return put_rule(self, name, *args, **kwargs)

    EventsBackend.put_rule = put  # type: ignore[method-assign]


def url_expiry(url: str) -> float | None:
    """A presigned URL's expiry in epoch seconds: SigV4 X-Amz-Date + X-Amz-Expires, or SigV2 Expires; None: not one."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    try:
        if "X-Amz-Date" in query and "X-Amz-Expires" in query:
            signed = datetime.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
            return signed.timestamp() + int(query["X-Amz-Expires"][0])
        if "AWSAccessKeyId" in query and "Expires" in query:
            return float(int(query["Expires"][0]))
    except ValueError:
        return None
    return None


def expired_answer(expiry: float, now: float) -> tuple[int, dict[str, str], str]:
    """S3's answer to a presigned URL used too late (HTTP 403, AccessDenied, "Request has expired")."""
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired'
        f"</Message><Expires>{datetime.datetime.fromtimestamp(expiry, datetime.UTC).strftime(stamp)}</Expires>"
        f"<ServerTime>{datetime.datetime.fromtimestamp(now, datetime.UTC).strftime(stamp)}</ServerTime></Error>"
    )
    return 403, {"Content-Type": "application/xml"}, body


def _strict_presigned_urls() -> None:
    key_response = S3Response.key_response

    def answer(self: S3Response, request: Any, full_url: str, headers: dict[str, Any]) -> Any:
        expiry, now = url_expiry(full_url), wall_clock()
        if expiry is not None and now > expiry:  # Amazon S3 user guide: "Sharing objects with presigned URLs"
            return expired_answer(expiry, now)
        return key_response(self, request, full_url, headers)

    S3Response.key_response = answer  # type: ignore[method-assign]


def _valid_name(member: str, name: str | None) -> None:
    if name is None or not SCHEDULER_NAME.match(name):
        raise ValidationException(
            f"1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: [0-9a-zA-Z-_.]+ and have length between 1 and 64"
        )


def _valid_expression(expression: str | None) -> None:
    text = str(expression or "")
    if text.startswith("at("):
        match = AT.match(text)
        try:
            if match is None:
                raise ValueError(text)
            datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
        except ValueError as error:  # EventBridge Scheduler user guide, "Schedule types": at(yyyy-mm-ddThh:mm:ss)
            raise ValidationException(f"Invalid Schedule Expression {text}.") from error


def _strict_scheduler() -> None:
    ScheduleExists.code = 409  # the ConflictException shape's status in the EventBridge Scheduler API model
    create_schedule = EventBridgeSchedulerBackend.create_schedule
    create_group, delete_group = (
        EventBridgeSchedulerBackend.create_schedule_group,
        EventBridgeSchedulerBackend.delete_schedule_group,
    )

    def create(self: EventBridgeSchedulerBackend, **kwargs: Any) -> Any:
        _valid_name("name", kwargs.get("name"))
        self.get_schedule_group(kwargs.get("group_name"))  # ResourceNotFoundException for an unknown group
        _valid_expression(kwargs.get("schedule_expression"))
        return create_schedule(self, **kwargs)

    def create_schedule_group(self: EventBridgeSchedulerBackend, name: str, tags: list[dict[str, str]]) -> Any:
        _valid_name("name", name)
        if name in self.schedule_groups:
            raise SchedulerConflict(f"Schedule group {name} already exists.")
        return create_group(self, name, tags)

    def delete_schedule_group(self: EventBridgeSchedulerBackend, name: str | None) -> None:
        if (name or "default") not in self.schedule_groups:
            raise ScheduleGroupNotFound(name or "default")
        if (name or "default") == "default":  # stricter: the default group is not the caller's to delete
            raise ValidationException("The default schedule group cannot be deleted.")
        delete_group(self, name)

    EventBridgeSchedulerBackend.create_schedule = create  # type: ignore[method-assign,assignment]
    EventBridgeSchedulerBackend.create_schedule_group = create_schedule_group  # type: ignore[method-assign]
    EventBridgeSchedulerBackend.delete_schedule_group = delete_schedule_group  # type: ignore[method-assign]

"""A thin crhelper subclass that fixes its traps for this provider (crhelper==2.0.12, pinned).

Built by crhelper's own constructor (with sleep_on_delete=0: no sleep before Delete responses). It overrides six
of crhelper's methods, and tests pin that set:

- `_polling_init`: scheduled polling is a chain of EventBridge Scheduler one-time schedules (provider/schedule.py),
  not crhelper's rate rule with a Lambda permission per request (the function's policy is capped at 20 KB, a
  concurrent AddPermission answers 409, a rule's Input is frozen, its runs overlap). A run that does not finish makes
  its successor, whose Input carries the run's current state; a finished one answers, and an answer whose work goes
  on after it (a wait condition to signal) schedules that work first (if it cannot, the answer is FAILED, naming the
  image). A function that finished inline answers at once. A run that still comes from an old rule removes the rule
  and its permission statement, then goes on with schedules. Schedule names fit 64 characters and the Input 8192 for
  any event; a duplicate delivery's chain stops where it meets its twin's schedule;
- `_remove_polling`: removes what this invocation made (its successor) and an old rule with its permission; it
  never raises (the answer must go out);
- `generate_physical_id`: a failed Create answers with the image it made (the rollback deletes it), else a fixed
  marker, never a random id;
- `_set_timeout` and `_timeout`: a timer started early enough for the answer; a timeout answers first (naming a
  Create's image), then removes the schedule the invocation made (crhelper does neither);
- `_send`: exactly one answer per invocation, owned here (the handler's and the timer's answers both go through it;
  a lock lets the first through), as the CDK provider framework's safeHandler owns its one response; every response
  is at most 4096 bytes, keeps the event's physical id, leaves out private Data, and is retried on HTTP errors; no
  presigned URL is logged.

`__call__` checks the envelope before crhelper reads it. crhelper's rule-making `_setup_polling` is left unused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from crhelper import CfnResource, resource_helper

from . import response
from .contract import FAILED_CREATE_ID, SCHEDULE_GROUP_ENV, SCHEDULER_ROLE_ENV
from .request import envelope_problem
from .response import SIGNAL_PUT_TIME, url_expiry
from .schedule import (
    LATEST_RUN,
    RETRY_POLICY,
    at_expression,
    image_chain,
    image_rule,
    polling_input,
    request_chain,
    schedule_name,
    successor,
)
from .states import Phase

PRIVATE_DATA = ("CrHelperPoll", "CrHelperRule", "CrHelperPermission", "PhysicalResourceId")
SCHEDULE = "CrHelperSchedule"  # in the polling input: the name of the schedule that ran it (its successor follows)
RESPONSE_RESERVE = 0.5  # seconds of the Lambda's time kept back when sending the response
# crhelper's timer fires 0.5 s before the end: ours fires early enough for the PUT and its retries.
TIMER_RESERVE = 6.0
# Lambda answers RemovePermission with ResourceConflictException (409) while another update of the function is in
# progress (cloudformation-lambda-rules.md, "Quotas and concurrency"): tried again after these delays, each up to
# twice as long (a jitter), at most 2.8 s in all, well inside the hand-over's margin; then the statement is left
# (it names a rule that is gone) and logged.
PERMISSION_RETRY_DELAYS = (0.2, 0.4, 0.8)
# Lambda's Python runtime (awslambdaric) reads AWS_LAMBDA_LOG_LEVEL with TRACE as DEBUG; Python knows the rest.
LAMBDA_LOG_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "ERROR": "ERROR",
                     "FATAL": "CRITICAL"}  # fmt: skip

logger = logging.getLogger("provider.cfn")


def lambda_log_level(level: str) -> str:
    """The Python level for Lambda's application log level (unknown or unset: INFO)."""
    return LAMBDA_LOG_LEVELS.get(level.upper(), "INFO")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _LazyClient:
    """A boto3 client made on its first use: crhelper's constructor makes three at import (lambda, events,
    logs), and a request needs them (and EventBridge Scheduler's) only when it polls or stops polling."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = boto3.client(*self._args, **self._kwargs)
        return getattr(self._client, name)


@contextlib.contextmanager
def _lazy_clients() -> Iterator[None]:
    """crhelper's constructor, with its `boto3.client` calls made lazy (no copy of its code: it still runs)."""
    namespace = vars(resource_helper)  # the module's `boto3` (its stubs leave the import out)
    real = namespace["boto3"]
    namespace["boto3"] = types.SimpleNamespace(client=_LazyClient)
    try:
        yield
    finally:
        namespace["boto3"] = real


class ImageResource(CfnResource):
    """crhelper's CfnResource, built by its own constructor; each override below fixes one trap (reason inline).

    `clock` gives "now" for the schedules' times; `sleep` waits between tries of a removal Lambda refuses meanwhile.
    """

    _lambda_client: Any  # built by crhelper's constructor
    _events_client: Any
    _init_failed: Exception | None

    def __init__(self, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        with _lazy_clients():
            self._build()
        self._scheduler_client: Any = _LazyClient("scheduler", region_name=os.environ.get("AWS_REGION"))
        self._clock, self._sleep = clock, sleep
        self._claimed = ""
        self._answered = threading.Lock()  # exactly one answer per invocation: the timer's or the handler's
        self._polling = threading.Lock()  # the successor's making and the timer's removal of it, one at a time
        self._timed_out = threading.Event()
        self._after_answer, self._signal_url = False, ""  # see response.after_answer
        self._made = ""  # the schedule this invocation made
        self._stopping: set[str] = set()  # the chains this invocation stopped: stopped again at its end

    def _build(self) -> None:
        super().__init__(
            json_logging=False,
            log_level=lambda_log_level(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")),
            boto_level="WARNING",
            polling_interval=1,
            sleep_on_delete=0,  # crhelper sleeps 120 s before answering a Delete
        )

    def claim(self, physical_id: str) -> None:
        """A Create made this image: a FAILED answer (a timeout too) names it, so the rollback deletes it."""
        self._claimed = physical_id

    # -- the envelope: checked before crhelper reads it --------------------------------------------

    def __call__(self, event: Any, context: Any) -> None:
        """Override: crhelper reads the envelope unchecked and would answer a warm container's previous URL."""
        self._event = event if isinstance(event, dict) else {}
        self._context = context
        self._response_url = url if isinstance(url := self._event.get("ResponseURL"), str) else ""
        self.PhysicalResourceId, self.Status, self.Reason, self.Data = "", "", "", {}
        self.StackId = self.RequestId = self.LogicalResourceId = ""
        self._claimed, self._made, self._stopping = "", "", set()
        self._answered = threading.Lock()
        self._polling, self._timed_out = threading.Lock(), threading.Event()
        self._after_answer, self._signal_url = response.after_answer(self._event)
        problem = envelope_problem(event)
        if problem:
            logger.error("malformed request: %s", problem)
            self._send("FAILED", problem)
            return
        if event["RequestType"] == "Create" and "PhysicalResourceId" in event:
            # CloudFormation sends none on Create; crhelper would echo a stray one.
            event = {k: v for k, v in event.items() if k != "PhysicalResourceId"}
            self._event = event
        super().__call__(event, context)
        if self._init_failed is not None and "CrHelperPoll" in event:
            self._remove_polling()  # crhelper answered its init failure; an old rule must not fire again
        for prefix in sorted(self._stopping):  # a run under way when its chain was stopped made a successor since
            self._stop_again(prefix)

    # -- the hand-over: a chain of one-time schedules ----------------------------------------------

    def generate_physical_id(self, event: Any) -> str:
        """A failed Create answers with the image it made (the rollback deletes it), else a fixed marker."""
        return self._claimed or FAILED_CREATE_ID

    def _polling_init(self, event: Any) -> None:
        """Override: a run that does not finish makes its successor (crhelper's rule fired again with the Input it
        was made with); a finished one answers, scheduling first the work that goes on after the answer."""
        self._retire_rule()
        if not self.PhysicalResourceId and self.Status != "FAILED":
            self._schedule_next()
            return
        found = (self.Data or {}).get("_Resume")
        state: dict[str, Any] = found if isinstance(found, dict) else {}
        if state.get("answered") and "CrHelperPoll" not in event and self.Status != "FAILED":
            try:
                self._schedule_next()
            except (ClientError, BotoCoreError, ValueError) as err:  # no schedule, no wait: fail, naming the image
                self.Status = "FAILED"
                self.Reason = f"Could not schedule the wait for image {state.get('image')}: {err}"
                self._claimed = self._claimed or str(self.PhysicalResourceId or "")
        self._send_response = True

    def _schedule_next(self) -> None:
        """The successor, unless the timer has answered (its removal waits for a making under way: no interleaving)."""
        with self._polling:
            if self._timed_out.is_set():
                logger.error("not scheduling the next run: the invocation timed out and answered FAILED")
                return
            self._make_schedule()

    def _make_schedule(self) -> None:
        """One one-time schedule whose Input is this run's event with its current state; a taken name means a
        duplicate delivery of this request polls already, and this chain stops there."""
        group, role = _setting(SCHEDULE_GROUP_ENV), _setting(SCHEDULER_ROLE_ENV)
        own = self._event.get(SCHEDULE)
        name = successor(own) if isinstance(own, str) else self._first_name()
        self._event["CrHelperData"] = self.Data
        self._event["CrHelperPoll"] = True
        self._event[SCHEDULE] = name
        expression = at_expression(self._clock())
        description = f"Custom::AppStreamImage {self._event.get('RequestType')} of {self.LogicalResourceId}"
        target = {
            "Arn": self._function_arn(),
            "RoleArn": role,
            "Input": polling_input(self._event),
            "RetryPolicy": dict(RETRY_POLICY),
        }
        try:
            self._scheduler_client.create_schedule(
                Name=name,
                GroupName=group,
                ScheduleExpression=expression,
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},  # one-time schedules run within the minute they name
                ActionAfterCompletion="DELETE",  # the schedule goes once it has invoked the function
                Target=target,
                Description=description[:512],  # CreateSchedule: Description is at most 512 characters
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ConflictException":  # a name taken: ConflictException
                raise
            logger.warning("schedule %s exists already: another delivery of this request polls; this one stops", name)
            return
        self._made = name
        logger.info("the next run is scheduled: %s, %s UTC", name, expression)

    def _first_name(self) -> str:
        """A chain's first schedule: a Create's or Update's by its image (a Delete finds it), a Delete's by request."""
        stack_id, logical_id = str(self._event.get("StackId", "")), str(self._event.get("LogicalResourceId", ""))
        request_id = str(self._event.get("RequestId", ""))
        state = self.Data.get("_Resume") if isinstance(self.Data, dict) else None
        if isinstance(state, dict) and self._event.get("RequestType") in ("Create", "Update"):
            prefix = image_chain(stack_id, logical_id, str(state.get("image", "")))
        else:  # a Delete's own polling
            prefix = request_chain(stack_id, logical_id, request_id)
        return schedule_name(prefix, request_id, 1)

    def _function_arn(self) -> str:
        """The unqualified function ARN, which the scheduler role may invoke."""
        return ":".join(str(self._context.invoked_function_arn).split(":")[:7])

    def stop_polling(self, image: str) -> bool:
        """Stop the polling of `image` by this resource (a chain of schedules, or an old rule): True, it may have run.

        A pending schedule is deleted. None pending is also how a run under way looks (its schedule went once it
        ran), and that run may still make a successor: the caller waits out such a run, as for a stopped one, and
        the chain is stopped again when this invocation ends. Only calls the provider's role may make anyway."""
        stack_id, logical_id = str(self._event.get("StackId", "")), str(self._event.get("LogicalResourceId", ""))
        prefix = image_chain(stack_id, logical_id, image)
        self._stopping.add(prefix)
        stopped = self._stop_chain(prefix)
        if stopped:
            logger.info("stopped the polling that waited for image %s (schedules %s)", image, ", ".join(stopped))
        self._stop_rule(image)
        return True

    def _stop_chain(self, prefix: str) -> list[str]:
        """Delete every schedule of the chain (ListSchedules NamePrefix in the provider's group); one that ran
        meanwhile (not found) is gone already."""
        group = _setting(SCHEDULE_GROUP_ENV)
        pages = self._scheduler_client.get_paginator("list_schedules").paginate(GroupName=group, NamePrefix=prefix)
        names = [str(found["Name"]) for page in pages for found in page.get("Schedules", [])]
        for name in names:
            self._delete_schedule(group, name, strict=True)
        return names

    def _stop_again(self, prefix: str) -> None:
        try:
            stopped = self._stop_chain(prefix)
        except (ClientError, BotoCoreError, ValueError) as err:
            logger.error("could not stop polling schedules %s* again: %s", prefix, err)
            return
        if stopped:
            logger.info("stopped the successor a run under way made: %s", ", ".join(stopped))

    def _delete_schedule(self, group: str, name: str, *, strict: bool = False) -> None:
        """DeleteSchedule; not found is done. Other failures raise when `strict`, else are logged."""
        try:
            self._scheduler_client.delete_schedule(Name=name, GroupName=group)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            if strict:
                raise
            logger.error("polling cleanup: could not delete schedule %s: %s", name, err)
        except BotoCoreError as err:
            if strict:
                raise
            logger.error("polling cleanup: could not delete schedule %s: %s", name, err)

    def _stop_rule(self, image: str) -> None:
        """An old rule of this image's polling (named by image: its statement id is the same name), if one is left."""
        name = image_rule(str(self._event.get("StackId", "")), str(self._event.get("LogicalResourceId", "")), image)
        try:
            self._events_client.remove_targets(Rule=name, Ids=["1"])
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            raise
        logger.info("stopped the old polling rule %s of image %s", name, image)
        self._remove_rule(name, name)

    def _remove_polling(self) -> None:
        """Override: an invocation that ends early (a timeout, a load failure) leaves no polling: its old rule and
        the schedule it made go; failures are logged, never raised (the answer must go out)."""
        self._retire_rule()
        if self._made:
            with contextlib.suppress(ValueError):  # no group configured: nothing was made
                self._delete_schedule(_setting(SCHEDULE_GROUP_ENV), self._made)
            self._made = ""

    def _retire_rule(self) -> None:
        """A run that still comes from an old EventBridge rule (crhelper's scheme, before the upgrade): its rule and
        its permission statement go, so that the rule never fires again and the function's policy only shrinks."""
        rule_arn, sid = self._event.pop("CrHelperRule", None), self._event.pop("CrHelperPermission", None)
        if rule_arn or sid:
            rule = str(rule_arn).split("/")[-1] if rule_arn else None
            logger.info("removing the old polling rule %s and its permission %s", rule, sid)
            self._remove_rule(rule, sid)

    def _remove_rule(self, rule: str | None, sid: Any) -> None:
        """Target, permission and rule, each if named; failures are logged, never raised."""
        function = self._context.function_name if self._context is not None else ""
        steps: list[tuple[str, Callable[[], object], object]] = [
            ("remove targets", lambda: self._events_client.remove_targets(Rule=rule, Ids=["1"]), rule),
            ("remove permission", lambda: self._remove_statement(function, str(sid)), sid),
            ("delete rule", lambda: self._events_client.delete_rule(Name=rule), rule),
        ]
        for what, call, needed in steps:
            if not needed:
                continue
            try:
                call()
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    logger.error("polling cleanup: could not %s: %s", what, err)
            except BotoCoreError as err:
                logger.error("polling cleanup: could not %s: %s", what, err)

    def _remove_statement(self, function: str, sid: str) -> None:
        """RemovePermission, tried again while Lambda answers that another update of the function is in progress."""
        for delay in (*PERMISSION_RETRY_DELAYS, None):
            try:
                self._lambda_client.remove_permission(FunctionName=function, StatementId=sid)
                return
            except ClientError as err:
                if delay is None or err.response.get("Error", {}).get("Code") != "ResourceConflictException":
                    raise
                self._sleep(delay * (1 + random.random()))  # apart: the other updates may be retrying too

    def _set_timeout(self) -> None:
        """Override: fire TIMER_RESERVE seconds before the end, not 0.5 s: the answer needs time to get out."""
        seconds = max(0.0, self._context.get_remaining_time_in_millis() / 1000 - TIMER_RESERVE)
        self._timer = threading.Timer(seconds, self._timeout)
        self._timer.daemon = True
        self._timer.start()

    def _timeout(self) -> None:
        """Override: answer first (with the claimed image), then remove the schedule made (crhelper does neither)."""
        logger.error("the invocation is about to time out; answering FAILED")
        self._timed_out.set()
        self._send("FAILED", "Execution timed out before the provider could finish")
        with self._polling:  # a successor being made is made first, so that it is removed here
            if "CrHelperPoll" in self._event:
                self._remove_polling()

    # -- the response ------------------------------------------------------------------------------

    def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
        """Override: a body within 4096 bytes, retried on HTTP errors, never a random or private id."""
        url = self._response_url
        if not url:
            logger.error("the event has no ResponseURL; there is nowhere to answer")
            return
        if not self._answered.acquire(blocking=False):
            logger.warning("already answered this request; not sending a second response")
            return
        final_status, final_reason = status or self.Status or "FAILED", str(reason if status else self.Reason)
        if self._after_answer:  # CloudFormation had its answer: the outcome goes to the wait condition, if any
            self._deliver_outcome(final_status == "SUCCESS", final_reason)
            return
        given = self._event.get("PhysicalResourceId") if self._event.get("RequestType") != "Create" else None
        fallback = given if isinstance(given, str) and given else self._claimed or FAILED_CREATE_ID
        physical_id = self.PhysicalResourceId or fallback
        data = {k: v for k, v in (self.Data or {}).items() if k not in PRIVATE_DATA and not str(k).startswith("_")}
        body = response.build_body(
            status=final_status,
            reason=final_reason,
            physical_id=str(physical_id),
            stack_id=self.StackId or _text(self._event.get("StackId")),
            request_id=self.RequestId or _text(self._event.get("RequestId")),
            logical_id=self.LogicalResourceId or _text(self._event.get("LogicalResourceId")),
            data=data,
            no_echo=bool(self.NoEcho),
        )
        response.put(url, body, deadline=self._send_deadline())
        handle = (self.Data or {}).get("_Signal")
        if final_status == "SUCCESS" and isinstance(handle, str) and handle:  # done inline: signal too
            reason = f"Image {physical_id} is AVAILABLE"
            if not self._signal(handle, success=True, image=str(physical_id), reason=reason):
                state = {"deadline": self._clock(), "image": str(physical_id), "answered": True, "signal": handle}
                self._signal_later(handle, state, success=True, reason=reason)

    def _send_deadline(self) -> float:
        if self._context is None:
            return time.time() + 30.0
        return time.time() + float(self._context.get_remaining_time_in_millis()) / 1000 - RESPONSE_RESERVE

    def _deliver_outcome(self, success: bool, reason: str) -> None:
        """The end of work that went on after the answer: a signal to its wait condition handle, and a log line."""
        state = (self._event.get("CrHelperData") or self.Data or {}).get("_Resume") or {}
        image = str(self.PhysicalResourceId or state.get("image") or self._event.get("PhysicalResourceId") or "")
        if success:
            logger.info("finished the work on image %s that went on after the answer", image)
        else:
            logger.error("the work on image %s that went on after the answer failed: %s", image, reason)
        if not self._signal_url:
            return
        reason = reason or f"Image {image} is AVAILABLE"
        if not self._signal(self._signal_url, success=success, image=image, reason=reason):
            self._signal_later(self._signal_url, state, success=success, reason=reason)

    def _signal_later(self, handle: str, state: dict[str, Any], *, success: bool, reason: str) -> None:
        """A signal that could not be delivered is tried again by a next run, while the handle's URL still takes it
        (it expires: properties.url_expiry); after that, nothing can deliver it and the wait condition times out."""
        expires = url_expiry(handle)
        if expires is not None and expires < self._clock() + LATEST_RUN + SIGNAL_PUT_TIME:
            logger.error("the signal could not be delivered, and the handle's URL expires before a next run")
            return
        retry = {**state, "phase": Phase.SIGNAL.value, "outcome": "SUCCESS" if success else "FAILURE",
                 "reason": reason}  # fmt: skip
        self.Data = {**(self.Data or {}), "_Resume": retry}
        try:
            self._schedule_next()
        except (ClientError, BotoCoreError, ValueError) as err:
            logger.error("the signal could not be delivered, nor its next try scheduled: %s", err)
            return
        logger.warning("the signal could not be delivered: a next run tries again")

    def _signal(self, handle: str, *, success: bool, image: str, reason: str) -> bool:
        body = response.signal_body(success=success, unique_id=image, data=image if success else "", reason=reason)
        logger.info("signalling the wait condition: %s for image %s", "SUCCESS" if success else "FAILURE", image)
        return response.put(handle, body, deadline=self._send_deadline(), sleep=self._sleep)


def _setting(name: str) -> str:
    """One of the provider function's environment variables that polling needs (its template sets them)."""
    value = os.environ.get(name, "")
    if not value:
        raise ValueError(f"the provider function has no {name} environment variable: deploy the provider again")
    return value

"""A thin crhelper subclass that fixes its traps for this provider (crhelper==2.0.12, pinned).

Built by crhelper's own constructor; tests pin the set of methods it overrides.

- no sleep before Delete responses;
- a function that finished inline answers at once; only a None result hands over to polling;
- rule and statement names fit 64 characters for any logical id; the polling input stays
  within 8192 characters; a half-made schedule is removed; cleanup never raises;
- exactly one answer per invocation is owned by one place, `_send` (the handler's and the timer's
  answers both go through it; a lock lets the first through), as the CDK provider framework's
  safeHandler owns its one response;
- every response is at most 4096 bytes, keeps the event's physical id (never a random one),
  leaves out private Data, and is retried on HTTP errors; no presigned URL is logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import string
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from crhelper import CfnResource, resource_helper

from . import response
from .contract import FAILED_CREATE_ID
from .request import envelope_problem
from .schedule import SUFFIX, image_rule, polling_input, rule_name

PRIVATE_DATA = ("CrHelperPoll", "CrHelperRule", "CrHelperPermission", "PhysicalResourceId")
RESPONSE_RESERVE = 0.5  # seconds of the Lambda's time kept back when sending the response
# crhelper's timer fires 0.5 s before the end: ours fires early enough for the PUT and its retries.
TIMER_RESERVE = 6.0
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
    logs), and a request needs the first two only when it polls, the third never."""

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
    """crhelper's CfnResource, built by its own constructor; each override below fixes one trap (reason inline)."""

    _lambda_client: Any  # built by crhelper's constructor
    _events_client: Any
    _init_failed: Exception | None

    def __init__(self) -> None:
        with _lazy_clients():
            self._build()
        self._claimed = ""
        self._answered = threading.Lock()  # exactly one answer per invocation: the timer's or the handler's
        self._polling = threading.Lock()  # the schedule's setup and the timer's removal of it, one at a time
        self._timed_out = threading.Event()
        self._after_answer, self._signal_url = False, ""  # see response.after_answer

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
        self._claimed = ""
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
            self._remove_polling()  # crhelper answered its init failure; the schedule must not fire again

    # -- deciding whether to poll -------------------------------------------------------------------

    def _poll_enabled(self) -> bool:
        """Override: crhelper polls whenever a poll function exists, even when the request finished inline."""
        if not getattr(self, f"_poll_{str(self._event.get('RequestType', '')).lower()}_func", None):
            return False
        if "CrHelperPoll" in self._event:
            return True
        return not self.PhysicalResourceId and self.Status != "FAILED"

    def generate_physical_id(self, event: Any) -> str:
        """A failed Create answers with the image it made (the rollback deletes it), else a fixed marker."""
        return self._claimed or FAILED_CREATE_ID

    def _cfn_response(self, event: Any) -> None:
        """Override: an answer whose work goes on after it (a wait condition to signal) schedules that work first;
        if the schedule cannot be made, the answer is FAILED instead (naming the image, so the rollback removes it)."""
        state = (self.Data or {}).get("_Resume")
        if (
            isinstance(state, dict)
            and state.get("answered")
            and "CrHelperPoll" not in event
            and self.Status != "FAILED"
        ):
            try:
                self._setup_polling()
            except (ClientError, BotoCoreError, ValueError) as err:
                self.Status, self.Reason = (
                    "FAILED",
                    f"Could not schedule the wait for image {state.get('image')}: {err}",
                )
                self._claimed = self._claimed or str(self.PhysicalResourceId or "")
        super()._cfn_response(event)  # type: ignore[misc]  # crhelper's own method; its stubs leave it out

    def stop_polling(self, image: str) -> bool:
        """Stop the polling that outlives the answer for `image` of this resource; True if it was running.

        Only calls the provider's role may make anyway (RemoveTargets first: a missing rule answers not found)."""
        stack_id, logical_id = str(self._event.get("StackId", "")), str(self._event.get("LogicalResourceId", ""))
        name = image_rule(stack_id, logical_id, image)
        try:
            self._events_client.remove_targets(Rule=name, Ids=["1"])
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        logger.info("stopped the polling that waited for image %s (rule %s)", image, name)
        self._remove_rule(name, name)
        return True

    # -- the schedule ------------------------------------------------------------------------------

    def _suffix(self) -> str:
        return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(SUFFIX))

    def _setup_polling(self) -> None:
        """Override: bounded rule names and input, a half-made schedule removed (crhelper leaks it), and none made
        once the timer has answered (its removal waits for a setup under way, so the two cannot interleave)."""
        with self._polling:
            if self._timed_out.is_set():
                logger.error("not setting up polling: the invocation timed out and answered FAILED")
                return
            self._make_schedule()

    def _make_schedule(self) -> None:
        self._event["CrHelperData"] = self.Data
        self._event["CrHelperPoll"] = True
        logical_id = str(self._event.get("LogicalResourceId", ""))
        state = self.Data.get("_Resume") if isinstance(self.Data, dict) else None
        named = isinstance(state, dict) and self._event.get("RequestType") in ("Create", "Update")
        if named and isinstance(state, dict):
            name = image_rule(str(self._event.get("StackId", "")), logical_id, str(state.get("image", "")))
        else:  # a Delete's own polling
            name = rule_name(logical_id, self._suffix())
        function = self._context.function_name
        try:
            rule_arn = self._events_client.put_rule(Name=name, ScheduleExpression="rate(1 minute)", State="ENABLED")[
                "RuleArn"
            ]
            self._event["CrHelperRule"] = rule_arn
            try:
                self._lambda_client.add_permission(
                    FunctionName=function,
                    StatementId=name,
                    Action="lambda:InvokeFunction",
                    Principal="events.amazonaws.com",
                    SourceArn=rule_arn,
                )
            except ClientError as err:  # a duplicate delivery of the same request: its schedule is this one
                if not named or err.response.get("Error", {}).get("Code") != "ResourceConflictException":
                    raise
            self._event["CrHelperPermission"] = name
            self._events_client.put_targets(
                Rule=name,
                Targets=[{"Id": "1", "Arn": self._function_arn(), "Input": polling_input(self._event)}],
            )
        except (ClientError, BotoCoreError, ValueError):
            logger.exception("could not set up polling; removing what was made")
            self._remove_polling()
            raise
        logger.info("polling every minute with rule %s", name)

    def _function_arn(self) -> str:
        """The unqualified function ARN, which the permission above covers."""
        return ":".join(str(self._context.invoked_function_arn).split(":")[:7])

    def _remove_polling(self) -> None:
        """Override: remove target, permission and rule; log failures, never raise (the response must go out)."""
        self._event.pop("CrHelperData", None)
        self.Data.pop("PhysicalResourceId", None)
        rule_arn = self._event.get("CrHelperRule")
        sid = self._event.get("CrHelperPermission")
        self._remove_rule(str(rule_arn).split("/")[-1] if rule_arn else None, sid)

    def _remove_rule(self, rule: str | None, sid: Any) -> None:
        """Target, permission and rule, each if named; failures are logged, never raised."""
        function = self._context.function_name if self._context is not None else ""
        steps: list[tuple[str, Callable[[], object], object]] = [
            ("remove targets", lambda: self._events_client.remove_targets(Rule=rule, Ids=["1"]), rule),
            (
                "remove permission",
                lambda: self._lambda_client.remove_permission(FunctionName=function, StatementId=sid),
                sid,
            ),
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

    def _set_timeout(self) -> None:
        """Override: fire TIMER_RESERVE seconds before the end, not 0.5 s: the answer needs time to get out."""
        seconds = max(0.0, self._context.get_remaining_time_in_millis() / 1000 - TIMER_RESERVE)
        self._timer = threading.Timer(seconds, self._timeout)
        self._timer.daemon = True
        self._timer.start()

    def _timeout(self) -> None:
        """Override: answer first (with the claimed image), then remove the schedule (crhelper does neither)."""
        logger.error("the invocation is about to time out; answering FAILED")
        self._timed_out.set()
        self._send("FAILED", "Execution timed out before the provider could finish")
        with self._polling:  # a setup under way finishes first, so what it made is removed here
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
            self._signal(handle, success=True, image=str(physical_id), reason=f"Image {physical_id} is AVAILABLE")

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
        if self._signal_url:
            self._signal(self._signal_url, success=success, image=image, reason=reason or f"Image {image} is AVAILABLE")

    def _signal(self, handle: str, *, success: bool, image: str, reason: str) -> None:
        body = response.signal_body(success=success, unique_id=image, data=image if success else "", reason=reason)
        logger.info("signalling the wait condition: %s for image %s", "SUCCESS" if success else "FAILURE", image)
        response.put(handle, body, deadline=self._send_deadline())

"""Scheduled polling's AWS calls: one-time schedules (EventBridge Scheduler) made and stopped, and the old scheme's
rules (an EventBridge rate rule and a Lambda permission statement per request), which are only removed now.

What to schedule, and when, is answer.py's; the names and the input are schedule.py's. A removal that must not stop
the answer (after a timeout, an old rule's) logs its failures and never raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import types
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..contract import SCHEDULE_GROUP_ENV, SCHEDULER_ROLE_ENV
from .schedule import RETRY_POLICY

logger = logging.getLogger("provider.polling")

# Lambda answers RemovePermission with ResourceConflictException (409) while another update of the function is in
# progress (cloudformation-lambda-rules.md, "Quotas and concurrency"): tried again after these delays, each up to
# twice as long (a jitter), at most 2.8 s in all, well inside clock.SCHEDULE_SETUP; then the statement is left
# (it names a rule that is gone) and logged.
PERMISSION_RETRY_DELAYS = (0.2, 0.4, 0.8)


class LazyClient:
    """A boto3 client made on its first use: a request needs EventBridge's, Lambda's and Scheduler's clients only
    when it polls or stops polling (the endpoint as boto3 reads it: AWS_ENDPOINT_URL_SCHEDULER, ...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = boto3.client(*self._args, **self._kwargs)
        return getattr(self._client, name)


@contextlib.contextmanager
def lazy_clients(module: types.ModuleType) -> Iterator[None]:
    """Within this block, `module`'s `boto3.client` makes LazyClients (crhelper's constructor makes three)."""
    namespace = vars(module)  # the module's `boto3` (crhelper's stubs leave the import out)
    real = namespace["boto3"]
    namespace["boto3"] = types.SimpleNamespace(client=LazyClient)
    try:
        yield
    finally:
        namespace["boto3"] = real


def _setting(name: str) -> str:
    """One of the provider function's environment variables that polling needs (its template sets them)."""
    value = os.environ.get(name, "")
    if not value:
        raise ValueError(f"the provider function has no {name} environment variable: deploy the provider again")
    return value


def _not_found(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


class Polling:
    """The calls, through clients made on first use; `sleep` waits between tries of a removal Lambda refuses."""

    def __init__(self, scheduler: Any, events: Any, lambda_: Any, *, sleep: Callable[[float], None]) -> None:
        self._scheduler, self._events, self._lambda, self._sleep = scheduler, events, lambda_, sleep

    # -- EventBridge Scheduler ---------------------------------------------------------------------------------------

    def make(self, name: str, *, at: str, function_arn: str, input_text: str, description: str) -> bool:
        """One one-time schedule in the provider's group; False when the name is taken (ConflictException): a
        duplicate delivery of this request polls already, and this chain stops there."""
        group, role = _setting(SCHEDULE_GROUP_ENV), _setting(SCHEDULER_ROLE_ENV)
        target = {"Arn": function_arn, "RoleArn": role, "Input": input_text, "RetryPolicy": dict(RETRY_POLICY)}
        try:
            self._scheduler.create_schedule(
                Name=name,
                GroupName=group,
                ScheduleExpression=at,
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
            return False
        logger.info("the next run is scheduled: %s, %s UTC", name, at)
        return True

    def stop_chain(self, prefix: str) -> list[str]:
        """Delete every schedule of the chain (ListSchedules NamePrefix in the provider's group); one that ran
        meanwhile (not found) is gone already. Failures raise."""
        group = _setting(SCHEDULE_GROUP_ENV)
        pages = self._scheduler.get_paginator("list_schedules").paginate(GroupName=group, NamePrefix=prefix)
        names = [str(found["Name"]) for page in pages for found in page.get("Schedules", [])]
        for name in names:
            self._delete(group, name, strict=True)
        return names

    def stop_chain_again(self, prefix: str) -> None:
        """At an invocation's end: a run under way when its chain was stopped may have made a successor since."""
        try:
            stopped = self.stop_chain(prefix)
        except (ClientError, BotoCoreError, ValueError) as err:
            logger.error("could not stop polling schedules %s* again: %s", prefix, err)
            return
        if stopped:
            logger.info("stopped the successor a run under way made: %s", ", ".join(stopped))

    def remove(self, name: str) -> None:
        """The schedule this invocation made, after its timeout answered: logged, never raised."""
        try:
            self._delete(_setting(SCHEDULE_GROUP_ENV), name)
        except ValueError:  # no group configured: nothing was made
            return

    def _delete(self, group: str, name: str, *, strict: bool = False) -> None:
        """DeleteSchedule; not found is done. Other failures raise when `strict`, else are logged."""
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=group)
        except ClientError as err:
            if _not_found(err):
                return
            if strict:
                raise
            logger.error("polling cleanup: could not delete schedule %s: %s", name, err)
        except BotoCoreError as err:
            if strict:
                raise
            logger.error("polling cleanup: could not delete schedule %s: %s", name, err)

    # -- the old scheme's rules: only removed ----------------------------------------------------------------------

    def stop_rule(self, name: str, function: str) -> bool:
        """An old rule of an image's polling, if one is left (its permission's statement id is the same name):
        True when there was one. Failures other than not found raise."""
        try:
            self._events.remove_targets(Rule=name, Ids=["1"])
        except ClientError as err:
            if _not_found(err):
                return False
            raise
        self.remove_rule(name, name, function)
        return True

    def remove_rule(self, rule: str | None, sid: str | None, function: str) -> None:
        """Target, permission and rule, each if named; failures are logged, never raised."""
        steps: list[tuple[str, Callable[[], object], object]] = [
            ("remove targets", lambda: self._events.remove_targets(Rule=rule, Ids=["1"]), rule),
            ("remove permission", lambda: self._remove_statement(function, str(sid)), sid),
            ("delete rule", lambda: self._events.delete_rule(Name=rule), rule),
        ]
        for what, call, needed in steps:
            if not needed:
                continue
            try:
                call()
            except ClientError as err:
                if not _not_found(err):
                    logger.error("polling cleanup: could not %s: %s", what, err)
            except BotoCoreError as err:
                logger.error("polling cleanup: could not %s: %s", what, err)

    def _remove_statement(self, function: str, sid: str) -> None:
        """RemovePermission, tried again while Lambda answers that another update of the function is in progress."""
        for delay in (*PERMISSION_RETRY_DELAYS, None):
            try:
                self._lambda.remove_permission(FunctionName=function, StatementId=sid)
                return
            except ClientError as err:
                if delay is None or err.response.get("Error", {}).get("Code") != "ResourceConflictException":
                    raise
                self._sleep(delay * (1 + random.random()))  # apart: the other updates may be retrying too

"""The answer's one owner, and crhelper as the front door to it.

An Answer is one request's CloudFormation side: exactly one response, its timer, the hand-over to scheduled polling,
the signal to a wait condition, and the AppStream side's Caller (appstream/caller.py). As the CDK provider
framework's safeHandler owns its one response, the answer after the work and the timer's both go through
`Answer.send`, where a lock lets the first through: at most 4096 bytes (response.build_body), the event's physical
id kept, only the outcome's attributes as Data, retried on HTTP errors, no presigned URL logged. A scheduled run of a
request already answered sends its outcome to the wait condition handle instead. Every request gets a new Answer.

crhelper stays the front door (ImageResource), pinned to crhelper==2.0.12 (provider/requirements.txt and
requirements.txt pin it; a test checks that both pins name the version named here). An upgrade re-reads crhelper's
resource_helper.py against each point below.

Kept from crhelper: its constructor and log set-up, its decorators (`create`, `update`, `delete` and their `poll_`
twins: a scheduled run carries CrHelperPoll and its state in CrHelperData, so runs made by earlier versions still
resume), and the dispatch of its `__call__`: read the event, start the timer, run the function, take an exception
as FAILED with its message, answer crhelper's own failures through `_send`, cancel the timer.

Replaced, each by one line that hands over to the request's Answer:
- `__call__` (extended): a new Answer for every request, which checks the envelope before crhelper reads it
  (crhelper would answer a warm container's previous ResponseURL) and drops a Create's stray PhysicalResourceId;
  at the end, the chains this request stopped are stopped again;
- `_set_timeout`: the Answer's timer, clock.TIMER_LEAD before the end, not 0.5 s: the answer needs time to get out,
  and a timeout answers first (naming a Create's image), then removes the schedule the invocation made;
- `_polling_init`: crhelper's hook after the function, where it would make an EventBridge rate rule with a Lambda
  permission per request (a function's policy is capped at 20 KB, a concurrent AddPermission answers 409, a rule's
  Input is frozen, its runs overlap). The Answer acts on the outcome instead: it answers, or makes the successor
  schedule (EventBridge Scheduler, one-time: schedule.py), or both. It sends the answer itself, so crhelper's
  `_cfn_response` and `generate_physical_id` (a random id for a failed Create) are never reached;
- `_send`: crhelper's own failures (its init, an exception) go to `Answer.send`.
crhelper's three clients (lambda, events, logs) are made on first use: its constructor runs with a stand-in for
`boto3.client`, so that a cold start makes none (Lambda's and EventBridge's remove the old scheme's rules).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from crhelper import CfnResource, resource_helper

from .. import logs
from ..contract import FAILED_CREATE_ID
from . import response
from .clock import LATEST_RUN, RESPONSE_RESERVE, SIGNAL_PUT_TIME, TIMER_LEAD
from .outcome import AnsweredThenContinue, Continue, Done, Outcome
from .polling import LazyClient, Polling, lazy_clients
from .request import LambdaContext, envelope_problem
from .response import url_expiry
from .resume import Phase, Resume, resume_of
from .schedule import SCHEDULE, at_expression, first_name, image_chain, image_rule, polling_input, successor
from .stacks import CloudFormationStacks, StackLookup, Unknown

CRHELPER = "2.0.12"  # the version ImageResource's overrides were read against
SUCCESS, FAILED = "SUCCESS", "FAILED"
TIMED_OUT = "Execution timed out before the provider could finish"

logger = logging.getLogger("provider.answer")


class Answer:
    """One request's CloudFormation side. `stacks` answers DescribeStacks' questions (stacks.Unknown: none);
    `clock` gives "now" for the schedules' times; `sleep` waits between tries of a signal."""

    def __init__(
        self,
        event: Any,
        context: LambdaContext | None,
        polling: Polling,
        stacks: StackLookup | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.event: dict[str, Any] = event if isinstance(event, dict) else {}
        self.problem = envelope_problem(event)  # "" when the envelope is sound
        if not self.problem and self.event["RequestType"] == "Create" and "PhysicalResourceId" in self.event:
            # CloudFormation sends none on Create; crhelper would echo a stray one.
            self.event = {k: v for k, v in self.event.items() if k != "PhysicalResourceId"}
        self._context, self._polling, self._stacks = context, polling, stacks or Unknown()
        self._clock, self._sleep = clock, sleep
        self._url = url if isinstance(url := self.event.get("ResponseURL"), str) else ""
        self._after_answer, self._signal_url = response.after_answer(self.event)
        self._answered = threading.Lock()  # exactly one answer: the timer's or the one after the work
        self._scheduling = threading.Lock()  # the successor's making and the timer's removal of it, one at a time
        self._timed_out = threading.Event()
        self.outcome: Outcome | None = None
        self.claimed = ""  # the image a Create made: a FAILED answer names it, so the rollback deletes it
        self._made = ""  # the schedule this invocation made
        self._stopping: set[str] = set()  # the chains this invocation stopped: stopped again at its end

    # -- the AppStream side's Caller -----------------------------------------------------------------------------------

    def claim(self, image: str) -> None:
        """A Create made this image: a FAILED answer (a timeout's too) names it, so the rollback deletes it."""
        self.claimed = image

    def stop_polling(self, image: str) -> bool:
        """Stop the polling of `image` by this resource (a chain of schedules, or an old rule): True, it may have run.

        A pending schedule is deleted. None pending is also how a run under way looks (its schedule went once it
        ran), and that run may still make a successor: the caller waits out such a run, as for a stopped one, and
        the chain is stopped again when this invocation ends. Only calls the provider's role may make anyway."""
        stack_id, logical_id = self._text("StackId"), self._text("LogicalResourceId")
        prefix = image_chain(stack_id, logical_id, image)
        self._stopping.add(prefix)
        stopped = self._polling.stop_chain(prefix)
        if stopped:
            logger.info("stopped the polling that waited for image %s (schedules %s)", image, ", ".join(stopped))
        rule = image_rule(stack_id, logical_id, image)
        if self._polling.stop_rule(rule, self._function_name()):
            logger.info("stopped the old polling rule %s of image %s", rule, image)
        return True

    def rolling_back(self) -> bool | None:
        """Whether this request's stack is rolling back (DescribeStacks): a Delete then undoes its Create."""
        return self._stacks.rolling_back(self._text("StackId"))

    def owner_gone(self, owner: str) -> bool | None:
        """Whether the stack instance an ownership tag's value names no longer exists (DescribeStacks)."""
        return self._stacks.owner_gone(owner)

    def accept(self, outcome: Outcome) -> str | None:
        """The work's outcome; the physical id crhelper expects back (None: no answer yet)."""
        self.outcome = outcome
        return None if isinstance(outcome, Continue) else outcome.physical_id

    # -- the invocation's course ------------------------------------------------------------------------------------

    def refused(self) -> bool:
        """A malformed envelope is answered FAILED at once (crhelper would read it unchecked, or answer the
        previous request's ResponseURL in a warm container)."""
        if not self.problem:
            return False
        logger.error("malformed request: %s", self.problem)
        self.send(FAILED, self.problem)
        return True

    def start_timer(self) -> threading.Timer:
        """A timer that answers FAILED TIMER_LEAD seconds before the end, early enough for the answer to get out."""
        if self._context is None:
            raise ValueError("the timer needs the Lambda context: crhelper starts it with one")
        seconds = max(0.0, self._context.get_remaining_time_in_millis() / 1000 - TIMER_LEAD)
        timer = threading.Timer(seconds, self.time_out)
        timer.daemon = True
        timer.start()
        return timer

    def time_out(self) -> None:
        """Answer first (with the claimed image), then remove the schedule made and an old rule."""
        logger.error("the invocation is about to time out; answering FAILED")
        self._timed_out.set()
        self.send(FAILED, TIMED_OUT)
        with self._scheduling:  # a successor being made is made first, so that it is removed here
            self._remove_polling()

    def conclude(self, *, failed: bool, reason: str) -> None:
        """After the work: answer, hand over to a scheduled run, or both (the scheduling first: without it there is
        no wait, and the answer is FAILED, naming the image). A run from an old rule removes that rule first."""
        self._retire_rule()
        outcome = self.outcome
        if failed:
            self.send(FAILED, reason)
        elif outcome is None:  # crhelper ran no function: none is registered for this request type
            self.send(FAILED, "The provider has no function for this request")
        elif isinstance(outcome, Continue):
            self._schedule(outcome.state)  # a failure raises: crhelper answers FAILED with it
        elif isinstance(outcome, AnsweredThenContinue):
            try:
                self._schedule(outcome.state)
            except (ClientError, BotoCoreError, ValueError) as err:
                self.send(FAILED, f"Could not schedule the wait for image {outcome.state.image}: {err}")
                return
            self.send(SUCCESS, "")
        else:
            self.send(SUCCESS, "")

    def finish(self, *, init_failed: bool) -> None:
        """The invocation's end: after crhelper answered its own init failure, an old rule must not fire again; a
        run under way when its chain was stopped may have made a successor since."""
        if init_failed and "CrHelperPoll" in self.event:
            self._remove_polling()
        for prefix in sorted(self._stopping):
            self._polling.stop_chain_again(prefix)

    # -- the response ------------------------------------------------------------------------------------------------

    def send(self, status: str, reason: str) -> None:
        """The one answer: the first call sends it, any later one is logged and dropped."""
        if not self._url:
            logger.error("the event has no ResponseURL; there is nowhere to answer")
            return
        if not self._answered.acquire(blocking=False):
            logger.warning("already answered this request; not sending a second response")
            return
        if self._after_answer:  # CloudFormation had its answer: the outcome goes to the wait condition, if any
            self._deliver_outcome(status == SUCCESS, reason)
            return
        physical_id = self.physical_id()
        outcome = self.outcome
        attributes = dict(outcome.attributes) if isinstance(outcome, Done | AnsweredThenContinue) else {}
        body = response.build_body(
            status=status,
            reason=reason,
            physical_id=physical_id,
            stack_id=self._text("StackId"),
            request_id=self._text("RequestId"),
            logical_id=self._text("LogicalResourceId"),
            data=attributes,
        )
        response.put(self._url, body, deadline=self._send_deadline())
        handle = outcome.signal if isinstance(outcome, Done) else ""
        if status == SUCCESS and handle:  # its wait was done inline: signal too
            reason = f"Image {physical_id} is AVAILABLE"
            if not self._signal(handle, success=True, image=physical_id, reason=reason):
                state = Resume(deadline=self._clock(), image=physical_id, answered=True, signal=handle)
                self._signal_later(handle, state, success=True, reason=reason)

    def physical_id(self) -> str:
        """The outcome's; else the event's (never changed by a Delete or Update); else a Create's claimed image
        (the rollback deletes it); else a fixed marker, never a random id."""
        if isinstance(self.outcome, Done | AnsweredThenContinue):
            return self.outcome.physical_id
        given = self.event.get("PhysicalResourceId") if self.event.get("RequestType") != "Create" else None
        return given if isinstance(given, str) and given else self.claimed or FAILED_CREATE_ID

    def _send_deadline(self) -> float:
        if self._context is None:
            return time.time() + 30.0
        return time.time() + float(self._context.get_remaining_time_in_millis()) / 1000 - RESPONSE_RESERVE

    # -- the signal to a wait condition -----------------------------------------------------------------------------

    def _deliver_outcome(self, success: bool, reason: str) -> None:
        """The end of work that went on after the answer: a signal to its wait condition handle, and a log line."""
        state = self._carried()
        outcome = self.outcome
        given = outcome.physical_id if isinstance(outcome, Done | AnsweredThenContinue) else ""
        image = given or (state.image if state else "") or self._text("PhysicalResourceId")
        if success:
            logger.info("finished the work on image %s that went on after the answer", image)
        else:
            logger.error("the work on image %s that went on after the answer failed: %s", image, reason)
        if not self._signal_url:
            return
        reason = reason or f"Image {image} is AVAILABLE"
        if not self._signal(self._signal_url, success=success, image=image, reason=reason):
            state = state or Resume(deadline=self._clock(), image=image, answered=True)
            self._signal_later(self._signal_url, state, success=success, reason=reason)

    def _carried(self) -> Resume | None:
        """The state this scheduled run carries (None for one that cannot be read: the signal still goes out)."""
        try:
            return resume_of(self.event)
        except (KeyError, TypeError, ValueError):
            return None

    def _signal_later(self, handle: str, state: Resume, *, success: bool, reason: str) -> None:
        """A signal that could not be delivered is tried again by a next run, while the handle's URL still takes it
        (it expires: response.url_expiry); after that, nothing can deliver it and the wait condition times out."""
        expires = url_expiry(handle)
        if expires is not None and expires < self._clock() + LATEST_RUN + SIGNAL_PUT_TIME:
            logger.error("the signal could not be delivered, and the handle's URL expires before a next run")
            return
        outcome = "SUCCESS" if success else "FAILURE"
        retry = replace(state, phase=Phase.SIGNAL, answered=True, signal=handle, outcome=outcome, reason=reason)
        try:
            self._schedule(retry)
        except (ClientError, BotoCoreError, ValueError) as err:
            logger.error("the signal could not be delivered, nor its next try scheduled: %s", err)
            return
        logger.warning("the signal could not be delivered: a next run tries again")

    def _signal(self, handle: str, *, success: bool, image: str, reason: str) -> bool:
        body = response.signal_body(success=success, unique_id=image, data=image if success else "", reason=reason)
        logger.info("signalling the wait condition: %s for image %s", "SUCCESS" if success else "FAILURE", image)
        return response.put(handle, body, deadline=self._send_deadline(), sleep=self._sleep)

    # -- scheduled polling ------------------------------------------------------------------------------------------

    def _schedule(self, state: Resume) -> None:
        """The successor, unless the timer has answered (its removal waits for a making under way: no interleaving):
        one one-time schedule whose Input is this run's event with `state`."""
        with self._scheduling:
            if self._timed_out.is_set():
                logger.error("not scheduling the next run: the invocation timed out and answered FAILED")
                return
            own = self.event.get(SCHEDULE)
            name = successor(own) if isinstance(own, str) else first_name(self.event, state.image)
            description = f"Custom::AppStreamImage {self._text('RequestType')} of {self._text('LogicalResourceId')}"
            made = self._polling.make(
                name,
                at=at_expression(self._clock()),
                function_arn=self._function_arn(),
                input_text=polling_input(self.event, state, name),
                description=description,
            )
            if made:
                self._made = name

    def _remove_polling(self) -> None:
        """An invocation that ends early (a timeout, crhelper's init failure) leaves no polling: its old rule and the
        schedule it made go; failures are logged, never raised (the answer must go out)."""
        self._retire_rule()
        if self._made:
            self._polling.remove(self._made)
            self._made = ""

    def _retire_rule(self) -> None:
        """A run that still comes from an old EventBridge rule (crhelper's scheme, before the upgrade): its rule and
        its permission statement go, so that the rule never fires again and the function's policy only shrinks."""
        rule_arn, sid = self.event.pop("CrHelperRule", None), self.event.pop("CrHelperPermission", None)
        if rule_arn or sid:
            rule = str(rule_arn).split("/")[-1] if rule_arn else None
            logger.info("removing the old polling rule %s and its permission %s", rule, sid)
            self._polling.remove_rule(rule, str(sid) if sid else None, self._function_name())

    def _function_arn(self) -> str:
        """The unqualified function ARN, which the scheduler role may invoke."""
        arn = self._context.invoked_function_arn if self._context is not None else ""
        return ":".join(str(arn).split(":")[:7])

    def _function_name(self) -> str:
        return self._context.function_name if self._context is not None else ""

    def _text(self, key: str) -> str:
        value = self.event.get(key)
        return value if isinstance(value, str) else ""


class ImageResource(CfnResource):
    """crhelper's CfnResource, built by its own constructor, as the front door; `answer` is the request under way's.

    `stacks` answers what CloudFormation says of stacks (its client is made on first use: most requests never ask);
    `clock` gives "now" for the schedules' times; `sleep` waits between tries (a signal's PUT, a removal Lambda
    refuses meanwhile).
    """

    _lambda_client: Any  # built by crhelper's constructor
    _events_client: Any
    _init_failed: Exception | None

    def __init__(
        self,
        *,
        stacks: StackLookup | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        with lazy_clients(resource_helper):  # crhelper's constructor still runs: no copy of its code
            super().__init__(
                json_logging=False,
                log_level=logs.lambda_log_level(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")),
                boto_level="WARNING",
                sleep_on_delete=0,  # crhelper sleeps 120 s before answering a Delete
            )
        self._scheduler_client: Any = LazyClient("scheduler", region_name=os.environ.get("AWS_REGION"))
        self.stacks = stacks or CloudFormationStacks()
        self._clock, self._sleep = clock, sleep
        self.answer = self._answer({}, None)

    def _answer(self, event: Any, context: Any) -> Answer:
        polling = Polling(self._scheduler_client, self._events_client, self._lambda_client, sleep=self._sleep)
        return Answer(event, context, polling, self.stacks, clock=self._clock, sleep=self._sleep)

    def __call__(self, event: Any, context: Any) -> None:
        """Extended: the envelope is checked before crhelper reads it; the end stops stopped chains again."""
        self.answer = self._answer(event, context)
        if self.answer.refused():
            return
        super().__call__(self.answer.event, context)
        self.answer.finish(init_failed=self._init_failed is not None)

    def _set_timeout(self) -> None:
        """Replaced: the Answer's timer (crhelper cancels it when the invocation ends)."""
        self._timer = self.answer.start_timer()

    def _polling_init(self, event: Any) -> None:
        """Replaced: the Answer answers, hands over to a scheduled run, or both."""
        self.answer.conclude(failed=self.Status == FAILED, reason=str(self.Reason))

    def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
        """Replaced: crhelper's own failures (its init, an exception) go to the Answer's one send."""
        self.answer.send(status or self.Status or FAILED, str(reason if status else self.Reason))

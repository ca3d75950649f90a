"""The custom resource protocol as CloudFormation speaks it: the request event, the wait, the checks on the answer."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from appstream_image_local.cfn.functions import Functions
from appstream_image_local.cfn.lambda_runner import Function, LambdaRunner
from appstream_image_local.cfn.model import RequestStats, ResourceFailed, Stack, bucket_location, suffix
from appstream_image_local.cfn.scheduler import REFUSED, Scheduler, allows_invoke
from appstream_image_local.cfn.schedules import Schedules

PUMP_EVERY = 0.1  # seconds between the background rounds of Lambda's queue and EventBridge's schedules
logger = logging.getLogger(__name__)
PROGRESS_EVERY = 30.0  # seconds: a long wait for a response prints that it is still waiting
MAX_RESPONSE = 4096
MAX_PHYSICAL_ID = 1024
DEFAULT_SERVICE_TIMEOUT = 3600


def response_bucket(region: str) -> str:
    """Where a region's custom resources answer (as AWS names it: cloudformation-custom-resource-response-useast1)."""
    return f"cloudformation-custom-resource-response-{region.replace('-', '')}"


def cfn_strings(value: Any) -> Any:
    """CloudFormation hands every scalar property to a custom resource as a string."""
    if isinstance(value, dict):
        return {k: cfn_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cfn_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def service_timeout(props: dict[str, Any]) -> int:
    """The resource's ServiceTimeout as CloudFormation validates it (1-3600 s); a bad one fails the resource."""
    raw = props.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT)
    try:
        seconds = int(str(raw))
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= DEFAULT_SERVICE_TIMEOUT:
        raise ResourceFailed(
            f"Properties validation failed for resource: ServiceTimeout {raw!r} must be an integer "
            f"between 1 and {DEFAULT_SERVICE_TIMEOUT}"
        )
    return seconds


def request_event(
    *,
    request_type: str,
    token: str,
    url: str,
    stack_id: str,
    request_id: str,
    logical_id: str,
    kind: str,
    props: dict[str, Any],
    physical_id: str = "",
    old_props: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": token,
        "ResponseURL": url,
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": kind,
        "ResourceProperties": cfn_strings(props),
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = physical_id
    if old_props is not None:
        event["OldResourceProperties"] = cfn_strings(old_props)
    return event


def check_response(body: bytes, event: dict[str, Any]) -> str:
    """What CloudFormation would reject in this response ("" when nothing), plus the physical id rules."""
    if len(body) > MAX_RESPONSE:
        return f"Response object is too long ({len(body)} bytes)"
    try:
        response = json.loads(body)
    except ValueError:
        return "the body is not JSON"
    if not isinstance(response, dict):
        return "the body is not a JSON object"
    physical_id = response.get("PhysicalResourceId")
    checks = [
        (response.get("Status") not in ("SUCCESS", "FAILED"), f"Status {response.get('Status')!r}"),
        *(
            (response.get(name) != event[name], f"{name} {response.get(name)!r} does not match the request")
            for name in ("StackId", "RequestId", "LogicalResourceId")
        ),
        (
            not isinstance(physical_id, str) or not physical_id or len(physical_id) > MAX_PHYSICAL_ID,
            "PhysicalResourceId must be a non-empty string of at most 1 KB",
        ),
        (response.get("Status") == "FAILED" and not response.get("Reason"), "a FAILED response needs a Reason"),
        (
            event["RequestType"] == "Delete" and physical_id != event["PhysicalResourceId"],
            f"Delete answered with physical id {physical_id}, not {event.get('PhysicalResourceId')}",
        ),
        (not isinstance(response.get("Data") or {}, dict), "Data must be an object"),
    ]
    return next((problem for failed, problem in checks if failed), "")


class Requests:
    """Sends custom resources CloudFormation's events and waits for their answers, as CloudFormation does:
    a presigned S3 ResponseURL, the ServiceTimeout, the response checks.

    Lambda's asynchronous queue, EventBridge's rules and EventBridge Scheduler's schedules run on their own
    thread, as those services run beside CloudFormation: polling that goes on after an answer keeps firing
    between stack operations, and requests sent at once (independent resources) all wait at once.
    """

    def __init__(
        self,
        s3: Any,
        functions: Functions,
        scheduler: Scheduler,
        runner: LambdaRunner,
        printer: Callable[[str], None],
        *,
        schedules: Schedules | None = None,
        handle_scale: float | None = None,
    ) -> None:
        """`schedules`: EventBridge Scheduler's side (default: one over the stacks `functions` reads roles from,
        on the rules' scale). `handle_scale`: how much shorter a wait condition handle's URL lives (None: the
        rules' scale)."""
        self.handle_scale = scheduler.scale if handle_scale is None else handle_scale
        self.leaks: list[str] = []
        self.violations: list[str] = []
        self.stats: list[RequestStats] = []
        self._s3 = s3
        self._functions = functions
        self._scheduler = scheduler
        self.schedules = schedules if schedules is not None else Schedules({}, scale=scheduler.scale)
        self.schedules.report = self._refused
        self._refused_rules: set[str] = set()  # rules whose invocation was refused (reported once each)
        self._runner = runner
        self._print = printer
        self._bucket_ready = False
        self._bucket = response_bucket(str(s3.meta.region_name))
        self._lock = threading.Lock()
        self._open: dict[str, RequestStats] = {}  # RequestId -> its statistics, while it waits for its answer
        self._cancelled: set[str] = set()  # stacks whose operation failed: what is still in progress is cancelled
        self._stop = threading.Event()
        self._pump: threading.Thread | None = None

    def send(
        self,
        stack: Stack,
        request_type: str,
        logical_id: str,
        kind: str,
        props: dict[str, Any],
        *,
        physical_id: str = "",
        old_props: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Send one event to the ServiceToken's function and wait for its response, as CloudFormation does."""
        token = str(props.get("ServiceToken", ""))
        timeout = service_timeout(props)
        function = self._functions.find(token)
        if function is None:
            raise ResourceFailed(f"ServiceToken {token} is not a function in this account", physical_id)
        request_id = str(uuid.uuid4())
        key = f"{stack.name}/{logical_id}/{request_id}"
        event = request_event(
            request_type=request_type,
            token=token,
            url=self._response_url(key),
            stack_id=stack.stack_id,
            request_id=request_id,
            logical_id=logical_id,
            kind=kind,
            props=props,
            physical_id=physical_id,
            old_props=old_props,
        )
        stats = RequestStats()
        with self._lock:
            self.stats.append(stats)
            self._open[request_id] = stats
        started = time.monotonic()
        self._functions.invoke(function, event)
        stats.invocations += 1
        what = f"{stack.name} {logical_id} {request_type}"
        try:
            body = self._await_response(key, started, timeout, stats, what, cancellable=stack.name)
        except Cancelled as cancelled:
            # CloudFormation stops waiting and rolls back; the function runs on. The rollback's Delete carries
            # an id it invents (aws/aws-cdk#26139: "onDelete is called before onCreate is done"; PR #36951).
            verb = "creation" if request_type == "Create" else "update"
            invented = physical_id or f"{stack.name}-{logical_id}-{suffix()}"[:MAX_PHYSICAL_ID]
            raise ResourceFailed(f"Resource {verb} cancelled", invented) from cancelled
        finally:
            with self._lock:
                self._open.pop(request_id, None)
        stats.seconds = time.monotonic() - started
        self._functions.invoker.wait_for(request_id)  # the answering process exits (its billed time is counted)
        self._check_cleanup(function, request_id)
        if body is None:
            invented = physical_id or f"{stack.name}-{logical_id}-{suffix()}"[:MAX_PHYSICAL_ID]
            raise ResourceFailed(
                f"CloudFormation did not receive a response from your Custom Resource within {timeout:.0f}s "
                f"(RequestId {request_id})",
                invented,
            )
        response = self.validate(body, event)
        new_id = str(response["PhysicalResourceId"])
        if response["Status"] == "FAILED":
            raise ResourceFailed(str(response.get("Reason") or "no reason given"), new_id)
        return new_id, {str(k): str(v) for k, v in (response.get("Data") or {}).items()}

    @property
    def schedule_scale(self) -> float:
        """How much shorter EventBridge's periods run here (and the waits measured in them)."""
        return self._scheduler.scale

    def validate(self, body: bytes, event: dict[str, Any]) -> dict[str, Any]:
        """The response, if CloudFormation would accept it; otherwise the resource fails (and it is recorded)."""
        problem = check_response(body, event)
        if problem:
            self.violations.append(f"{event['LogicalResourceId']} {event['RequestType']}: {problem}")
            raise ResourceFailed(f"Invalid response: {problem}", str(event.get("PhysicalResourceId", "")))
        return dict(json.loads(body))

    def _response_url(self, key: str) -> str:
        with self._lock:
            if not self._bucket_ready:
                with contextlib.suppress(self._s3.exceptions.BucketAlreadyOwnedByYou):  # another Cloud made it
                    self._s3.create_bucket(Bucket=self._bucket, **bucket_location(self._s3.meta.region_name))
                self._bucket_ready = True
        params = {"Bucket": self._bucket, "Key": key}
        return str(self._s3.generate_presigned_url("put_object", Params=params, ExpiresIn=7200))

    def _await_response(
        self, key: str, started: float, timeout: float, stats: RequestStats, what: str, *, cancellable: str
    ) -> bytes | None:
        """Poll for the response; say so now and then, never wait silently."""
        found: list[bytes] = []

        def answered() -> bool:
            try:
                found.append(bytes(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()))
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                    raise
            return bool(found)

        self.pump_until(answered, started, timeout, what, stats=stats, cancellable=cancellable)
        return found[0] if found else None

    def pump_until(
        self,
        done: Callable[[], bool],
        started: float,
        timeout: float,
        what: str,
        *,
        stats: RequestStats | None = None,
        awaited: str = "the response",
        cancellable: str = "",
        every: float = 0.1,
    ) -> bool:
        """Until `done()` or the timeout; Lambda's queue and EventBridge's due rules run meanwhile (and after).

        Raises Cancelled when the operation of stack `cancellable` fails meanwhile (see `cancel`)."""
        self._start_pump()
        told = started
        while time.monotonic() < started + timeout:
            if done():
                return True
            if cancellable and cancellable in self._cancelled:
                raise Cancelled(cancellable)
            if time.monotonic() - told >= PROGRESS_EVERY:
                told = time.monotonic()
                waited = told - started
                self._print(f"        ... {what}: still waiting for {awaited} ({waited:.0f} s of {timeout:.0f} s)")
            time.sleep(every)
        return False

    def _start_pump(self) -> None:
        with self._lock:
            if self._pump is None:
                self._pump = threading.Thread(target=self._pump_loop, name="lambda-and-eventbridge", daemon=True)
                self._pump.start()

    def _pump_loop(self) -> None:
        while not self._stop.wait(PUMP_EVERY):
            try:
                self.pump_once()
            except Exception:  # a round that fails (moto going away, say) must not end the services
                logger.exception("Lambda/EventBridge round failed")

    def pump_once(self) -> None:
        """One round: kill timed-out invocations, start due deliveries and retries, fire due rules and schedules."""
        self._runner.reap()
        self._functions.invoker.pump()
        for rule, arn, scheduled in self._scheduler.due():
            if self._permitted(rule, arn):
                self._deliver(arn, scheduled)
        self.schedules.fire(self._deliver)

    def _permitted(self, rule: str, arn: str) -> bool:
        """Whether EventBridge may invoke the target function for the rule: its resource-based policy says so."""
        function = self._functions.find(arn)
        if function is None or allows_invoke(self._functions.policy_statements(function), function.arn, rule):
            return True
        if rule not in self._refused_rules:
            self._refused_rules.add(rule)
            self._refused(
                f"{REFUSED} rule {rule.rsplit('/', 1)[-1]}: the resource-based policy of {function.name} does not let "
                "events.amazonaws.com invoke it for this rule"
            )
        return False

    def _deliver(self, arn: str, scheduled: dict[str, Any]) -> bool:
        """A scheduled event to its function, invoked asynchronously (False: no such function)."""
        function = self._functions.find(arn)
        if function is None:
            return False
        self._functions.invoke(function, scheduled)
        with self._lock:
            stats = self._open.get(str(scheduled.get("RequestId", "")))
        if stats is not None:
            stats.scheduled += 1
        return True

    def _refused(self, problem: str) -> None:
        """An invocation AWS would refuse (a rule's or a schedule's): printed, and kept with the violations."""
        self._print(f"        ! {problem}")
        with self._lock:
            self.violations.append(problem)

    def cancel(self, stack: str) -> None:
        """A resource of `stack` failed: CloudFormation cancels what is still in progress there."""
        with self._lock:
            self._cancelled.add(stack)

    def resume(self, stack: str) -> None:
        """The stack's rollback (or next operation) waits again."""
        with self._lock:
            self._cancelled.discard(stack)

    def close(self) -> None:
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=5)
        self._runner.close()

    def _check_cleanup(self, function: Function, request_id: str) -> None:
        """After an answer, no polling rule or schedule of that request may remain, unless its work goes on after
        the answer."""
        found = [
            f"{kind} {name} left behind"
            for kind, targets in (("rule", self._scheduler.targets()), ("schedule", self.schedules.targets()))
            for name, scheduled in targets.items()
            if scheduled.get("RequestId") == request_id and not _after_answer(scheduled)
        ]
        self._report(found)

    def check_quiet(self) -> None:
        """At the end of a stack operation: every rule and schedule left is polling after an answer, and every
        permission on a function belongs to a rule that exists."""
        targets = self._scheduler.targets()
        found = [f"rule {name} left behind" for name, scheduled in targets.items() if not _after_answer(scheduled)]
        found += [
            f"schedule {name} left behind"
            for name, scheduled in self.schedules.targets().items()
            if not _after_answer(scheduled)
        ]
        found += [f"rule {r['Name']} has no target" for r in self._scheduler.rules() if r["Name"] not in targets]
        for function in list(self._functions.by_arn.values()):
            found += [
                f"permission {s.get('Sid')} left on {function.name}"
                for s in self._functions.policy_statements(function)
                if s.get("Sid") not in targets
            ]
        self._report(found)

    def _report(self, found: list[str]) -> None:
        for leak in found:
            self._print(f"        ! {leak}")
        with self._lock:
            self.leaks.extend(found)


class Cancelled(Exception):
    """The stack operation failed elsewhere while this wait was in progress."""


def _after_answer(scheduled: dict[str, Any]) -> bool:
    """A scheduled event whose request was answered already: its polling outlives the answer by design."""
    data = scheduled.get("CrHelperData")
    state = data.get("_Resume") if isinstance(data, dict) else None
    return isinstance(state, dict) and bool(state.get("answered"))

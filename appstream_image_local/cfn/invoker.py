"""Lambda's asynchronous invocation, which CloudFormation and EventBridge use: a queue, retries, event age.

Lambda developer guide ("Asynchronous invocation", "Error handling and automatic retries"): an event
waits in a queue before the function runs; a function error or timeout is retried twice by default,
about one minute after the first attempt and two minutes after the second; AWS::Lambda::EventInvokeConfig
sets MaximumRetryAttempts (0-2) and MaximumEventAgeInSeconds (60-21600). `retry_scale` shortens the
delays in tests (the default is AWS's); `queue_delay` is the time from the send to the handler's start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appstream_image_local.cfn.lambda_runner import Function, Invocation

RETRY_DELAYS = (60.0, 120.0)  # seconds after the first and the second attempt
DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE = 21600.0
QUEUE_DELAY = 0.3  # seconds from the send to the start, by default (queueing; a cold start comes on top)


@dataclass(frozen=True)
class InvokeConfig:
    maximum_retry_attempts: int = DEFAULT_RETRIES
    maximum_event_age: float = DEFAULT_MAX_AGE


@dataclass
class Delivery:
    function: Function
    event: dict[str, Any]
    sent: float
    due: float
    attempt: int = 0
    invocation: Invocation | None = None


@dataclass
class Attempt:
    """One run of a function for one event, for tests and the request statistics."""

    function: str
    attempt: int
    failed: bool = False


@dataclass
class AsyncInvoker:
    start: Callable[[Function, dict[str, Any]], Invocation]
    queue_delay: float = QUEUE_DELAY
    retry_scale: float = 1.0
    clock: Callable[[], float] = time.monotonic
    configs: dict[str, InvokeConfig] = field(default_factory=dict)  # by function name ($LATEST)
    attempts: list[Attempt] = field(default_factory=list)
    _queue: list[Delivery] = field(default_factory=list)
    _pumping: list[Delivery] = field(default_factory=list)  # taken off the queue by the round under way
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, function: Function, event: dict[str, Any]) -> None:
        """Queue the event; it runs `queue_delay` seconds later (see `pump`)."""
        now = self.clock()
        with self._lock:
            self._queue.append(Delivery(function, event, now, now + self.queue_delay))

    def pump(self) -> None:
        """Start due deliveries; a failed attempt is retried as Lambda does, within the event's age."""
        now = self.clock()
        with self._lock:
            queue, self._queue = self._queue, []
            self._pumping = queue
        keep: list[Delivery] = []
        for delivery in queue:
            if delivery.invocation is None:
                if delivery.due <= now:
                    delivery.invocation = self.start(delivery.function, delivery.event)
                    self.attempts.append(Attempt(delivery.function.name, delivery.attempt))
                keep.append(delivery)
                continue
            if delivery.invocation.running:
                keep.append(delivery)
                continue
            if not delivery.invocation.failed:
                continue
            self.attempts[self._index(delivery)].failed = True
            retry = self._retry(delivery, now)
            if retry is not None:
                keep.append(retry)
        with self._lock:
            self._queue = keep + self._queue
            self._pumping = []

    def wait_for(self, request_id: str, timeout: float = 30.0) -> None:
        """Until no delivery of that request (its RequestId) is queued or running, or `timeout`."""
        ends = time.monotonic() + timeout  # real time: the processes run on it whatever `clock` is
        while time.monotonic() < ends:
            with self._lock:
                busy = any(d.event.get("RequestId") == request_id for d in [*self._queue, *self._pumping])
            if not busy:
                return
            time.sleep(0.05)

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._queue

    def _index(self, delivery: Delivery) -> int:
        for n in range(len(self.attempts) - 1, -1, -1):
            found = self.attempts[n]
            if found.function == delivery.function.name and found.attempt == delivery.attempt:
                return n
        return -1

    def _retry(self, delivery: Delivery, now: float) -> Delivery | None:
        config = self.configs.get(delivery.function.name, InvokeConfig())
        if delivery.attempt >= min(config.maximum_retry_attempts, len(RETRY_DELAYS)):
            return None
        due = now + RETRY_DELAYS[delivery.attempt] * self.retry_scale
        if due - delivery.sent > config.maximum_event_age * self.retry_scale:
            return None  # too old: Lambda discards it
        return Delivery(delivery.function, delivery.event, delivery.sent, due, delivery.attempt + 1)

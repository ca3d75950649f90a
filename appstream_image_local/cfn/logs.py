"""CloudWatch Logs for the local Lambda: what each execution environment writes, as Lambda ships it.

Lambda sends a function's stdout and stderr to CloudWatch Logs, a line per log event, in the log group
/aws/lambda/<function name> (or the function's LoggingConfig.LogGroup), one log stream per execution
environment named YYYY/MM/DD/[$LATEST]<environment id> (Lambda developer guide, "Sending Lambda function
logs to CloudWatch Logs": https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html).
Here the events go into moto's CloudWatch Logs, which serves FilterLogEvents and GetLogEvents (the CDK CLI
reads a failed custom resource's function logs with FilterLogEvents), and the same bytes go to the function's
log file (`LambdaRunner.log_path`).

One thread reads every environment's output pipe as it is written; `LogSource.drain` reads it on demand
too, so an invocation's output is in the file and in CloudWatch Logs by the time its end is seen.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
import selectors
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from moto.logs.exceptions import ResourceAlreadyExistsException
from moto.logs.models import LogsBackend, logs_backends

log = logging.getLogger(__name__)
LogEvent = tuple[int, str]  # timestamp (epoch milliseconds) and message
Ship = Callable[[str, str, list[LogEvent]], None]  # log group, log stream, events
READ_SIZE = 65536


def stream_name(now: datetime.datetime | None = None) -> str:
    """A new execution environment's log stream: 2026/11/03/[$LATEST]0123456789abcdef0123456789abcdef."""
    day = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{uuid.uuid4().hex}"


class CloudWatchLogs:
    """moto's CloudWatch Logs of one account and region, in this process (what the moto server answers from)."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self._lock = threading.Lock()  # moto's log streams are not safe for concurrent writers
        interleave_filtered_events()

    def put(self, group: str, stream: str, events: list[LogEvent]) -> None:
        """The events into the stream, both made if missing (Lambda creates them on its first write)."""
        backend: LogsBackend = logs_backends[self.account][self.region]
        with self._lock:
            if group not in backend.groups:
                with contextlib.suppress(ResourceAlreadyExistsException):
                    backend.create_log_group(group, tags={})
            if stream not in backend.groups[group].streams:
                with contextlib.suppress(ResourceAlreadyExistsException):
                    backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, [{"timestamp": t, "message": m} for t, m in events])


@dataclass
class LogSource:
    """One process's output: the read end of its stdout and stderr pipe (non-blocking), its log file, its stream."""

    fd: int
    file: IO[bytes]
    group: str
    stream: str
    ship: Ship
    wake: Callable[[], None]
    ended: bool = False  # the pipe reached its end (the process and whatever shared its output are gone)
    _partial: bytes = b""  # the start of a line whose newline has not come yet
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def drain(self) -> None:
        """Everything written so far: appended to the log file, and each whole line to CloudWatch Logs."""
        with self._lock:
            if self.ended:
                return
            data, ended = self._read()
            if data:
                self.file.write(data)
            lines = (self._partial + data).split(b"\n")
            self._partial = b"" if ended else lines.pop()
            self.ended = ended
            stamp = int(time.time() * 1000)
            events = [(stamp, text) for text in (line.decode(errors="replace").rstrip("\r") for line in lines) if text]
            if events:
                try:
                    self.ship(self.group, self.stream, events)
                except Exception:  # CloudWatch Logs going away (moto reset, say) must not lose the file's copy
                    log.exception("could not ship %d log events to %s", len(events), self.group)
        if ended:
            self.wake()  # the collector's thread lets go of the pipe

    def _read(self) -> tuple[bytes, bool]:
        """What the pipe holds now, and whether it has ended."""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return b"".join(chunks), False
            except OSError:  # closed under us: treated as the end
                chunk = b""
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)

    def close(self) -> None:
        with self._lock:
            self.ended = True
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.file.close()


class LogCollector:
    """Reads the output of every process it is given, in one daemon thread (started with the first), until each
    pipe ends; `close` reads what is left and stops it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added: list[LogSource] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self._wake_read = self._wake_write = -1  # the thread's wake-up pipe, made with it

    def attach(self, fd: int, path: Path, group: str, stream: str, ship: Ship) -> LogSource:
        """Collect from `fd` (the read end of a process's stdout and stderr), which this collector now owns: into
        the file at `path`, and the events to `ship` (CloudWatch Logs)."""
        os.set_blocking(fd, False)
        source = LogSource(fd, path.open("ab", buffering=0), group, stream, ship, self._wake)
        with self._lock:
            if self._closing:
                source.close()
                raise RuntimeError("the log collector is closed")
            self._added.append(source)
            if self._thread is None:
                self._wake_read, self._wake_write = os.pipe()
                os.set_blocking(self._wake_read, False)
                os.set_blocking(self._wake_write, False)
                self._thread = threading.Thread(target=self._run, name="lambda-logs", daemon=True)
                self._thread.start()
        self._wake()
        return source

    def close(self, timeout: float = 2.0) -> None:
        """Read what is left (the processes have ended), close every pipe and stop the thread."""
        with self._lock:
            self._closing = True
            thread = self._thread
        if thread is None:
            return
        self._wake()
        thread.join(timeout)
        if thread.is_alive():  # still shipping: its wake-up pipe stays open for it
            return
        with self._lock:
            wake, self._wake_read, self._wake_write = (self._wake_read, self._wake_write), -1, -1
        for fd in wake:
            if fd >= 0:
                os.close(fd)

    def _wake(self) -> None:
        with self._lock:  # never written once closed: the number may belong to another file by then
            if self._wake_write >= 0:
                with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                    os.write(self._wake_write, b".")

    def _run(self) -> None:
        sources: list[LogSource] = []
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                with self._lock:
                    added, self._added = self._added, []
                    closing = self._closing
                for source in added:
                    selector.register(source.fd, selectors.EVENT_READ, source)
                sources += added
                if closing:
                    break
                for key, _ in selector.select():
                    if isinstance(key.data, LogSource):
                        key.data.drain()
                    else:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_read, READ_SIZE)
                for source in [s for s in sources if s.ended]:
                    selector.unregister(source.fd)
                    source.close()
                    sources.remove(source)
        for source in sources:
            source.drain()
            source.close()


def interleave_filtered_events() -> None:
    """FilterLogEvents returns the events of all streams sorted by time: its `interleaved` parameter is
    deprecated and taken as true (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/
    API_FilterLogEvents.html); moto 5.2 sorts only when asked, and otherwise answers stream after stream."""
    original: Any = LogsBackend.filter_log_events
    if getattr(original, "interleaved", False):
        return

    @functools.wraps(original)
    def filter_log_events(self: LogsBackend, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 8:  # positional, as moto's LogsResponse passes them: interleaved is the last
            args = (*args[:7], True)
        else:
            kwargs["interleaved"] = True
        return original(self, *args, **kwargs)

    filter_log_events.interleaved = True  # type: ignore[attr-defined]
    LogsBackend.filter_log_events = filter_log_events  # type: ignore[method-assign]

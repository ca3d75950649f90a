"""One Lambda execution environment in this process, as the Python runtime runs it.

Started as a script (not a module), so the project's source tree is not on sys.path: the
handler is imported from the function's asset directory, given in LAMBDA_TASK_ROOT.
With LOCAL_RESULT_FD set it serves invocations one at a time, as long as it lives: an event per line on
stdin, and after each one its outcome on that descriptor ("ok", or "error" when the handler raised, which
the runtime reports and survives). Without it, it runs the one event that stdin holds and exits.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

# -- Lambda's log formats, as its Python runtime (awslambdaric) writes them ---------------------------
# JSON: timestamp, level, message, logger, requestId, error fields and every extra attribute of the
# record; Text: "[LEVEL]\ttimestamp\trequestId\tmessage". The application log level comes from
# AWS_LAMBDA_LOG_LEVEL (TRACE is DEBUG).

RESERVED = frozenset(
    {
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info", "exc_text",
        "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
        "processName", "process", "aws_request_id", "tenant_id", "taskName", "message",
    }
)  # fmt: skip


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RuntimeJsonFormatter(logging.Formatter):
    """The fields and order of the runtime's JSON format."""

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info
        line: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc[2]) if exc else None,
            "errorType": exc[0].__name__ if exc and exc[0] else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
        }
        line.update((k, v) for k, v in record.__dict__.items() if k not in RESERVED and k not in line)
        return json.dumps({k: v for k, v in line.items() if v is not None}, default=str, ensure_ascii=False)


class RuntimeTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request = getattr(record, "aws_request_id", "")
        return f"[{record.levelname}]\t{_timestamp(record)}\t{request}\t{record.getMessage()}"


class RequestId(logging.Filter):
    """The runtime stamps each record with the invocation's request id."""

    def __init__(self) -> None:
        super().__init__()
        self.request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def install(log_format: str, level: str) -> RequestId:
    """Set up the root logger as the runtime does; returns the filter to stamp request ids with."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RuntimeJsonFormatter() if log_format.upper() == "JSON" else RuntimeTextFormatter())
    stamp = RequestId()
    handler.addFilter(stamp)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel({"": "INFO", "TRACE": "DEBUG"}.get(level.upper(), level.upper()))
    return stamp


class Context:
    """What Lambda passes as `context`: remaining time counts down from the function's timeout."""

    def __init__(
        self, function_name: str, function_arn: str, timeout_s: float, *, memory_mb: str = "128", started: float = 0.0
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        # The environment's log group and stream, as Lambda sets them (lambda_runner.py and logs.py name them).
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{function_name}")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._ends = (started or time.time()) + timeout_s

    @classmethod
    def from_environment(cls, started: float) -> Context:
        """As the runtime builds it, from the function's settings."""
        return cls(
            os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            os.environ["LOCAL_FUNCTION_ARN"],
            float(os.environ["LOCAL_FUNCTION_TIMEOUT"]),
            memory_mb=os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            started=started,
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.time()) * 1000))


def serve(handler: Any, stamp: RequestId, results_fd: int, init_started: float) -> None:
    """Invocations one after another in this environment, until stdin ends (the local Lambda is done with it).

    The first one's time counts from the start of the Init phase: the local Lambda's clock for the timeout
    starts when it sends the event, which it does as it starts the environment.
    """
    first = True
    with os.fdopen(results_fd, "w", buffering=1) as results:
        for line in sys.stdin:
            context = Context.from_environment(init_started if first else time.time())
            first = False
            stamp.request_id = context.aws_request_id
            outcome = "ok"
            try:
                handler(json.loads(line), context)
            except Exception:  # the runtime reports a function error and keeps the environment
                traceback.print_exc()
                outcome = "error"
            sys.stdout.flush()
            sys.stderr.flush()
            results.write(outcome + "\n")


def main() -> None:
    root = os.environ["LAMBDA_TASK_ROOT"]
    here = os.path.dirname(os.path.abspath(__file__))
    # The runtime does not buffer what the function prints (awslambdaric's bootstrap wraps stdout and stderr):
    # lines reach the log in the order they were written, stdout's and stderr's alike.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    # The runtime's log format and level come first, before the function's module loads.
    stamp = install(os.environ.get("AWS_LAMBDA_LOG_FORMAT", "Text"), os.environ.get("AWS_LAMBDA_LOG_LEVEL", ""))
    sys.path[:] = [root] + [p for p in sys.path if os.path.abspath(p or ".") != here]
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    started = time.time()
    # Init phase first, as Lambda does: the module's import-time work happens before the event arrives.
    handler = getattr(importlib.import_module(module_name), function_name)
    ready_dir = os.environ.get("LOCAL_READY_DIR")
    if ready_dir:
        with open(os.path.join(ready_dir, str(os.getpid())), "w"):
            pass
    results = os.environ.get("LOCAL_RESULT_FD")
    if results:
        serve(handler, stamp, int(results), started)
        return
    event = json.loads(sys.stdin.read())
    if ready_dir:  # a pre-warmed invocation: its time counts from the event's arrival
        started = time.time()
    context = Context.from_environment(started)
    stamp.request_id = context.aws_request_id
    handler(event, context)
    report = os.environ.get("LOCAL_MEMORY_REPORT")
    if report:  # Lambda's "Max Memory Used": this process image's peak resident set (VmHWM)
        with open("/proc/self/status") as status, open(report, "w") as out:
            out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])


if __name__ == "__main__":
    main()

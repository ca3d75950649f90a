"""Runs one Lambda invocation in this process, as the Python runtime would.

Started as a script (not a module), so the project's source tree is not on sys.path: the
handler is imported from the function's asset directory, given in LAMBDA_TASK_ROOT.
Reads the event as JSON on stdin.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import uuid


class Context:
    def __init__(self, timeout_s: float, started: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ["LOCAL_FUNCTION_ARN"]
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.aws_request_id
        self._ends = started + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.time()) * 1000))


def main() -> None:
    root = os.environ["LAMBDA_TASK_ROOT"]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [root] + [p for p in sys.path if os.path.abspath(p or ".") != here]
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    started = time.time()
    # Init phase first, as Lambda does: the module's import-time work happens before the event arrives.
    handler = getattr(importlib.import_module(module_name), function_name)
    ready_dir = os.environ.get("LOCAL_READY_DIR")
    if ready_dir:
        with open(os.path.join(ready_dir, str(os.getpid())), "w"):
            pass
    event = json.loads(sys.stdin.read())
    if ready_dir:  # a pre-warmed invocation: its time counts from the event's arrival
        started = time.time()
    handler(event, Context(float(os.environ["LOCAL_FUNCTION_TIMEOUT"]), started))
    report = os.environ.get("LOCAL_MEMORY_REPORT")
    if report:  # Lambda's "Max Memory Used": this process image's peak resident set (VmHWM)
        with open("/proc/self/status") as status, open(report, "w") as out:
            out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])


if __name__ == "__main__":
    main()

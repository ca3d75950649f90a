"""Lambda, locally: each invocation is a fresh process running the function's asset code.

The process gets what the Lambda runtime gives: the handler string, the configured timeout
(enforced: the process is killed when it runs out), function name and ARN, region, and the
environment that points boto3 at the local AppStream service and moto.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")


@dataclass
class Function:
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: float
    memory: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    role_arn: str = ""  # the execution role (its policies are enforced by the local AppStream service)
    stack: str = ""  # the stack that declares the function


@dataclass
class Invocation:
    function: Function
    process: subprocess.Popen[bytes]
    started: float
    killed: bool = False

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def send(self, event: dict[str, Any]) -> None:
        """Deliver the event; the function's timeout counts from here."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(event).encode())
        self.process.stdin.close()
        self.started = time.monotonic()


class LambdaRunner:
    """Starts invocations asynchronously (as CloudFormation and EventBridge do) and reaps them."""

    def __init__(self, base_env: dict[str, str], log_dir: Path) -> None:
        self._base_env = base_env
        self.log_dir = log_dir
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self.durations: list[float] = []  # seconds from event to exit, per finished invocation (±0.1 s)
        log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, function: Function) -> Path:
        return self.log_dir / f"{function.name}.log"

    def invoke(self, function: Function, event: dict[str, Any]) -> Invocation:
        invocation = self.start(function)
        invocation.send(event)
        return invocation

    def start(self, function: Function, extra_env: dict[str, str] | None = None) -> Invocation:
        """A process that initializes the function and then waits for its event (see Invocation.send)."""
        env = {
            **self._base_env,
            **function.environment,
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "_HANDLER": function.handler,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "LOCAL_FUNCTION_ARN": function.arn,
            "LOCAL_FUNCTION_TIMEOUT": str(function.timeout),
            "PYTHONDONTWRITEBYTECODE": "1",
            **(extra_env or {}),
        }
        env.pop("PYTHONPATH", None)
        log = self.log_path(function).open("ab")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(BOOTSTRAP)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=function.code_dir,
        )
        log.close()
        invocation = Invocation(function, process, time.monotonic())
        with self._lock:
            self.invocations.append(invocation)
        return invocation

    def reap(self) -> None:
        """Kill invocations that ran past their function's timeout, as Lambda does."""
        with self._lock:
            for invocation in self.invocations:
                if invocation.running and time.monotonic() - invocation.started > invocation.function.timeout:
                    invocation.process.kill()
                    invocation.killed = True
            finished = [i for i in self.invocations if not i.running]
            self.durations += [time.monotonic() - i.started for i in finished]
            self.invocations = [i for i in self.invocations if i.running]

    def wait_all(self, timeout: float = 30.0) -> None:
        ends = time.monotonic() + timeout
        for invocation in list(self.invocations):
            try:
                invocation.process.wait(timeout=max(0.1, ends - time.monotonic()))
            except subprocess.TimeoutExpired:
                invocation.process.kill()
        self.reap()


def default_environment(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: no real AWS credentials or profiles leak into the function."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    return {
        **keep,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **extra,
    }

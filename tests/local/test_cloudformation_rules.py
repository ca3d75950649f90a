"""The local CloudFormation and Lambda keep AWS's rules, shown through the CloudFormation API with boto3:
failed rollbacks and ContinueUpdateRollback, failed deletes and RetainResources, Lambda's asynchronous
retries and EventInvokeConfig, and the ServiceToken that cannot change (CloudFormation user guide,
Lambda developer guide)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from appstream_image_local.cloud import LocalCloud

# A custom resource function whose behaviour the resource's properties choose.
HANDLER = """
import json, os, urllib.request

def handler(event, context):
    props = event["ResourceProperties"]
    kind, mode, marker = event["RequestType"], props.get("Mode", "ok"), props.get("Marker", "")
    if marker:
        with open(marker, "a") as out:
            out.write(kind + "\\n")
    if mode == "crash" or (mode == "crash-once" and open(marker).read().count(kind) == 1):
        raise RuntimeError("this attempt crashes")
    failed = (mode == "fail-update" and kind == "Update") or (props.get("FailDelete") == "true" and kind == "Delete")
    body = json.dumps({
        "Status": "FAILED" if failed else "SUCCESS", "Reason": kind + " refused",
        "PhysicalResourceId": event.get("PhysicalResourceId") or "thing-1", "StackId": event["StackId"],
        "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"], "Data": {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=10).close()
"""
BUCKET = "functions"


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(tmp_path, printer=lambda _line: None, retry_scale=0.02, queue_delay=0.2) as cloud:
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", HANDLER)
        assert cloud.cloud is not None
        cloud.cloud.s3.create_bucket(Bucket=BUCKET)
        cloud.cloud.s3.put_object(Bucket=BUCKET, Key="thing.zip", Body=code.getvalue())
        yield cloud


@pytest.fixture
def cfn(local: LocalCloud) -> Any:
    env = local.env()
    return boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL_CLOUDFORMATION"], region_name="us-east-1")


def template(retries: int | None = None, **props: Any) -> str:
    resources: dict[str, Any] = {
        "Function": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "index.handler",
                "Timeout": 30,
                "Role": "arn:aws:iam::123456789012:role/thing",
                "Code": {"S3Bucket": BUCKET, "S3Key": "thing.zip"},
            },
        },
        "Thing": {
            "Type": "Custom::Thing",
            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Function", "Arn"]}, "ServiceTimeout": 8, **props},
        },
    }
    if retries is not None:
        resources["Retries"] = {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": "Function"},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": retries,
            },
        }
        resources["Thing"]["DependsOn"] = "Retries"
    return json.dumps({"Resources": resources})


def settled(cfn: Any, stack: str = "Things") -> str:
    # Four looks a second: each costs the test process a few milliseconds (its half and the local service's), and
    # the waits here are seconds long (ServiceTimeout 8 s, Lambda's retry), so 20 a second cost CPU for nothing.
    for _ in range(240):
        status = str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])
        if not status.endswith("IN_PROGRESS"):
            return status
        time.sleep(0.25)
    raise AssertionError(f"{stack} did not settle")


def reasons(cfn: Any, status: str, stack: str = "Things") -> list[str]:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return [str(e.get("ResourceStatusReason", "")) for e in events if e["ResourceStatus"] == status]


def test_a_rollback_that_fails_ends_update_rollback_failed_and_continue_update_rollback_completes_it(
    cfn: Any, tmp_path: Path
) -> None:
    cfn.create_stack(StackName="Things", TemplateBody=template(Mode="fail-update", Value="1"))
    assert settled(cfn) == "CREATE_COMPLETE"
    cfn.update_stack(StackName="Things", TemplateBody=template(Mode="fail-update", Value="2"))
    assert settled(cfn) == "UPDATE_ROLLBACK_FAILED"  # the rollback's Update failed too
    assert any("Thing" in r for r in reasons(cfn, "UPDATE_ROLLBACK_FAILED"))
    with pytest.raises(ClientError, match="UPDATE_ROLLBACK_FAILED state and can not be updated"):
        cfn.update_stack(StackName="Things", TemplateBody=template(Mode="ok", Value="3"))
    cfn.continue_update_rollback(StackName="Things")  # retried, and it fails again
    assert settled(cfn) == "UPDATE_ROLLBACK_FAILED"
    with pytest.raises(ClientError, match="cannot be skipped"):
        cfn.continue_update_rollback(StackName="Things", ResourcesToSkip=["Function"])
    cfn.continue_update_rollback(StackName="Things", ResourcesToSkip=["Thing"])
    assert settled(cfn) == "UPDATE_ROLLBACK_COMPLETE"
    with pytest.raises(ClientError, match="can not continue update rollback"):
        cfn.continue_update_rollback(StackName="Things")
    cfn.update_stack(StackName="Things", TemplateBody=template(Mode="ok", Value="4"))
    assert settled(cfn) == "UPDATE_COMPLETE"


def test_a_delete_that_fails_leaves_delete_failed_and_retain_resources_completes(cfn: Any) -> None:
    cfn.create_stack(StackName="Things", TemplateBody=template(FailDelete="true"))
    assert settled(cfn) == "CREATE_COMPLETE"
    with pytest.raises(ClientError, match="RetainResources can only be specified"):
        cfn.delete_stack(StackName="Things", RetainResources=["Thing"])
    cfn.delete_stack(StackName="Things")
    assert settled(cfn) == "DELETE_FAILED"
    with pytest.raises(ClientError, match="DELETE_FAILED state and can not be updated"):
        cfn.update_stack(StackName="Things", TemplateBody=template())
    stack_id = cfn.describe_stacks(StackName="Things")["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName="Things", RetainResources=["Thing"])
    assert settled(cfn, stack_id) == "DELETE_COMPLETE"
    assert any("retained" in r for r in reasons(cfn, "DELETE_SKIPPED", stack_id))


def test_a_failed_create_whose_rollback_delete_fails_leaves_rollback_failed(cfn: Any, tmp_path: Path) -> None:
    body = json.loads(template(FailDelete="true"))
    body["Resources"]["Broken"] = {
        "Type": "Custom::Thing",
        "DependsOn": "Thing",
        "Properties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:nowhere"},
    }
    cfn.create_stack(StackName="Things", TemplateBody=json.dumps(body))
    assert settled(cfn) == "ROLLBACK_FAILED"
    cfn.delete_stack(StackName="Things")
    assert settled(cfn) == "DELETE_FAILED"
    stack_id = cfn.describe_stacks(StackName="Things")["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName="Things", RetainResources=["Thing"])
    assert settled(cfn, stack_id) == "DELETE_COMPLETE"


def test_a_function_that_fails_once_completes_after_lambdas_retry(local: LocalCloud, cfn: Any, tmp_path: Path) -> None:
    marker = tmp_path / "crash-once.log"
    cfn.create_stack(StackName="Things", TemplateBody=template(Mode="crash-once", Marker=str(marker)))
    assert settled(cfn) == "CREATE_COMPLETE"
    assert marker.read_text().splitlines() == ["Create", "Create"]  # the first run crashed; Lambda retried it
    assert local.cloud is not None
    attempts = [(a.attempt, a.failed) for a in local.cloud.functions.invoker.attempts]
    assert attempts[:2] == [(0, True), (1, False)]


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_a_function_with_maximum_retry_attempts_0_is_invoked_once(local: LocalCloud, cfn: Any, tmp_path: Path) -> None:
    marker = tmp_path / "crash.log"
    # ServiceTimeout 4 s: Lambda's first retry would come 1.2 s after the crash (its 1 minute at retry_scale 0.02).
    body = template(retries=0, Mode="crash", Marker=str(marker), ServiceTimeout=4)
    cfn.create_stack(StackName="Things", TemplateBody=body)
    # No answer within the ServiceTimeout and no retry; the rollback's Delete gets no answer either, so the
    # stack ends ROLLBACK_FAILED, as it does on AWS.
    assert settled(cfn) == "ROLLBACK_FAILED"
    assert marker.read_text().splitlines() == ["Create", "Delete"]
    assert any("did not receive a response" in r for r in reasons(cfn, "CREATE_FAILED"))


def test_a_changed_service_token_is_refused_as_cloudformation_refuses_it(cfn: Any) -> None:
    cfn.create_stack(StackName="Things", TemplateBody=template())
    assert settled(cfn) == "CREATE_COMPLETE"
    body = json.loads(template())
    body["Resources"]["Other"] = dict(body["Resources"]["Function"])
    body["Resources"]["Thing"]["Properties"]["ServiceToken"] = {"Fn::GetAtt": ["Other", "Arn"]}
    cfn.update_stack(StackName="Things", TemplateBody=json.dumps(body))
    assert settled(cfn) == "UPDATE_ROLLBACK_COMPLETE"
    assert "Modifying service token is not allowed." in reasons(cfn, "UPDATE_FAILED")


def _wait_template(timeout: int = 30, count: int = 1) -> str:
    return json.dumps(
        {
            "Resources": {
                "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
                "Wait": {
                    "Type": "AWS::CloudFormation::WaitCondition",
                    "Properties": {"Handle": {"Ref": "Handle"}, "Timeout": timeout, "Count": count},
                },
            },
            "Outputs": {"Data": {"Value": {"Fn::GetAtt": ["Wait", "Data"]}}, "Url": {"Value": {"Ref": "Handle"}}},
        }
    )


def _signal(cfn: Any, local: LocalCloud, stack: str, *signals: dict[str, str]) -> None:
    """PUT each signal to the handle's URL once the handle exists, as a provider would, from another thread."""
    import ssl
    import threading
    import urllib.request

    def run() -> None:
        for _ in range(600):
            resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
            url = next((r.get("PhysicalResourceId") for r in resources if r["LogicalResourceId"] == "Handle"), None)
            if url:
                break
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=local.env()["AWS_CA_BUNDLE"])
        for signal in signals:
            body = json.dumps(signal).encode()
            request = urllib.request.Request(str(url), data=body, method="PUT", headers={"Content-Type": ""})
            urllib.request.urlopen(request, timeout=10, context=context).close()

    threading.Thread(target=run, daemon=True).start()


def _outputs(cfn: Any, stack: str) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}


def test_a_wait_condition_completes_on_count_success_signals_with_their_data(cfn: Any, local: LocalCloud) -> None:
    cfn.create_stack(StackName="Waits", TemplateBody=_wait_template(count=2))
    image = {"Status": "SUCCESS", "UniqueId": "image", "Data": "AVAILABLE", "Reason": "ok"}
    fleet = {"Status": "SUCCESS", "UniqueId": "fleet", "Data": "RUNNING", "Reason": "ok"}
    _signal(cfn, local, "Waits", image, fleet)
    assert settled(cfn, "Waits") == "CREATE_COMPLETE"
    outputs = _outputs(cfn, "Waits")
    assert json.loads(outputs["Data"]) == {"image": "AVAILABLE", "fleet": "RUNNING"}
    assert " " not in outputs["Data"]  # compact, as the user guide shows it: {"Signal1":"..."}
    assert "X-Amz-Signature=" in outputs["Url"]  # the handle's Ref is a presigned URL


def test_a_failure_signal_fails_the_wait_condition_with_its_reason(cfn: Any, local: LocalCloud) -> None:
    cfn.create_stack(StackName="Waits", TemplateBody=_wait_template())
    _signal(cfn, local, "Waits", {"Status": "FAILURE", "UniqueId": "image", "Data": "", "Reason": "Image x FAILED"})
    assert settled(cfn, "Waits") == "ROLLBACK_COMPLETE"
    assert any("Image x FAILED" in r for r in reasons(cfn, "CREATE_FAILED", "Waits"))


@pytest.mark.parametrize(("timeout", "problem"), [(1, "timed out. Received 0 conditions"), (43201, "1-43200")])
def test_a_wait_condition_times_out_and_its_timeout_is_at_most_12_hours(cfn: Any, timeout: int, problem: str) -> None:
    cfn.create_stack(StackName="Waits", TemplateBody=_wait_template(timeout=timeout))
    assert settled(cfn, "Waits") == "ROLLBACK_COMPLETE"
    assert any(problem in r for r in reasons(cfn, "CREATE_FAILED", "Waits"))


def test_a_wait_condition_cannot_be_updated(cfn: Any, local: LocalCloud) -> None:
    cfn.create_stack(StackName="Waits", TemplateBody=_wait_template())
    _signal(cfn, local, "Waits", {"Status": "SUCCESS", "UniqueId": "1", "Data": "d", "Reason": "r"})
    assert settled(cfn, "Waits") == "CREATE_COMPLETE"
    cfn.update_stack(StackName="Waits", TemplateBody=_wait_template(timeout=60))
    assert settled(cfn, "Waits") == "UPDATE_ROLLBACK_COMPLETE"
    assert any("WaitCondition is not supported" in r for r in reasons(cfn, "UPDATE_FAILED", "Waits"))

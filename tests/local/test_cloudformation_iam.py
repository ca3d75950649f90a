"""The local CloudFormation API as a function reaches it: its endpoint in the function's environment, and IAM
deciding requests signed with the function role's key against the role's policies, worded as AWS words them."""

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
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local.cfn.driver import NO_API, Cloud
from appstream_image_local.cfn.lambda_runner import Function
from appstream_image_local.cfn.model import ACCOUNT, REGION
from appstream_image_local.cloud import LocalCloud
from appstream_image_local.kit import OfflineCloud
from appstream_image_local.moto_tls import MotoTls
from appstream_image_local.tls import make_certificate

BUCKET = "probe-code"
STACKS = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/*/*"
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
FUNCTION_KEY = "ASIAFUNCTION0000001"  # a function's key, as functions.py makes them
ROLE_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/probe-role/probe"

# What the provider does (boto3's own endpoint setting, the role's credentials from the environment), and reports.
PROBE = """
import json, os
import boto3
from botocore.config import Config

def handler(event, context):
    client = boto3.client("cloudformation", config=Config(retries={"total_max_attempts": 1}))
    found = {"endpoint": os.environ.get("AWS_ENDPOINT_URL_CLOUDFORMATION")}
    for name in event["stacks"]:
        try:
            stack = client.describe_stacks(StackName=name)["Stacks"][0]
            found[name] = {"status": stack["StackStatus"], "id": stack["StackId"]}
        except Exception as error:
            response = getattr(error, "response", {})
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            found[name] = {"error": response.get("Error"), "http": status}
    with open(event["out"] + ".tmp", "w") as out:
        json.dump(found, out)
    os.rename(event["out"] + ".tmp", event["out"])
"""
PARAMETER = {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "v"}}


def _role(*statements: dict[str, Any]) -> dict[str, Any]:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {},
            "Policies": [{"PolicyName": "probe", "PolicyDocument": document}],
        },
    }


def _function(role: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.13",
            "Handler": "probe.handler",
            "Timeout": 60,
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Code": {"S3Bucket": BUCKET, "S3Key": "probe.zip"},
        },
    }


PROBES = {
    "Resources": {
        "Reader": _role(
            {
                "Effect": "Allow",
                "Action": "cloudformation:DescribeStacks",
                "Resource": {
                    "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/*/*"
                },
            }
        ),
        "Other": _role({"Effect": "Allow", "Action": "appstream:DescribeImages", "Resource": "*"}),
        "ReaderProbe": _function("Reader"),
        # One after the other: two functions unzipping the same code at once race (handlers.py _unzipped).
        "OtherProbe": {**_function("Other"), "DependsOn": "ReaderProbe"},
    },
    "Outputs": {"Reader": {"Value": {"Ref": "ReaderProbe"}}, "Other": {"Value": {"Ref": "OtherProbe"}}},
}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(tmp_path / "cloud", printer=lambda _line: None) as cloud:
        yield cloud


@pytest.fixture
def kit(local: LocalCloud, tmp_path: Path) -> OfflineCloud:
    return OfflineCloud(local, tmp_path)


def _deploy(kit: OfflineCloud, tmp_path: Path, name: str, template: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(template))
    return kit.deploy_template(name, path)


def _probe(cloud: Cloud, function_name: str, stacks: list[str], out: Path) -> dict[str, Any]:
    """Invoke the function as Lambda does (asynchronously) and read what it found."""
    function = cloud.functions.find(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}")
    assert function is not None
    cloud.functions.invoke(function, {"stacks": stacks, "out": str(out)})
    deadline = time.monotonic() + 60
    while not out.exists():
        assert time.monotonic() < deadline, cloud.runner.log_path(function).read_text()
        cloud.requests.pump_once()  # Lambda's queue (the driver pumps it while a custom resource waits)
        time.sleep(0.05)
    return dict(json.loads(out.read_text()))


def test_a_function_whose_role_allows_describe_stacks_reads_stacks_and_one_without_is_denied(
    local: LocalCloud, kit: OfflineCloud, tmp_path: Path
) -> None:
    assert local.cloud is not None
    assert local.cloudformation is not None
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as archive:
        archive.writestr("probe.py", PROBE)
    local.cloud.s3.create_bucket(Bucket=BUCKET)
    local.cloud.s3.put_object(Bucket=BUCKET, Key="probe.zip", Body=body.getvalue())
    probes = _deploy(kit, tmp_path, "Probes", PROBES)
    _deploy(kit, tmp_path, "Gone", {"Resources": {"Setting": PARAMETER}})
    gone_id = kit.client("cloudformation").describe_stacks(StackName="Gone")["Stacks"][0]["StackId"]
    kit.delete_stack("Gone")
    probes_id = kit.client("cloudformation").describe_stacks(StackName="Probes")["Stacks"][0]["StackId"]

    found = _probe(local.cloud, probes["Reader"], ["Probes", probes_id, "Nowhere", "Gone", gone_id], tmp_path / "r")

    assert found["endpoint"] == local.cloudformation.url
    assert found["Probes"] == {"status": "CREATE_COMPLETE", "id": probes_id}
    assert found[probes_id] == {"status": "CREATE_COMPLETE", "id": probes_id}
    # By name only live stacks; by StackId deleted ones too (API reference, DescribeStacks).
    for name in ("Nowhere", "Gone"):
        missing = {"Type": "Sender", "Code": "ValidationError", "Message": f"Stack with id {name} does not exist"}
        assert found[name] == {"error": missing, "http": 400}
    assert found[gone_id] == {"status": "DELETE_COMPLETE", "id": gone_id}

    denied = _probe(local.cloud, probes["Other"], ["Probes", "Nowhere"], tmp_path / "o")

    principal = f"arn:aws:sts::{ACCOUNT}:assumed-role/{_role_name(local, 'Other')}/{probes['Other']}"
    nowhere = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Nowhere/*"  # by a name no live stack has
    for name, resource in (("Probes", probes_id), ("Nowhere", nowhere)):
        message = (
            f"User: {principal} is not authorized to perform: cloudformation:DescribeStacks on resource: {resource} "
            "because no identity-based policy allows the cloudformation:DescribeStacks action"
        )
        assert denied[name] == {"error": {"Type": "Sender", "Code": "AccessDenied", "Message": message}, "http": 403}
    assert [d.resource for d in local.cloud.functions.iam.denials] == [probes_id, nowhere]


def _role_name(local: LocalCloud, logical_id: str) -> str:
    assert local.cloud is not None
    return local.cloud.stacks["Probes"].resources[logical_id].physical_id


@pytest.fixture
def signed(local: LocalCloud) -> Any:
    """A CloudFormation client signing with a function's key, whose role `local.cloud.functions.iam` knows."""
    env = local.env()
    session = boto3.session.Session(aws_access_key_id=FUNCTION_KEY, aws_secret_access_key="x", region_name=REGION)
    return session.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL_CLOUDFORMATION"], config=NO_RETRY)


@pytest.fixture
def cfn(local: LocalCloud) -> Any:
    env = local.env()
    return boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL_CLOUDFORMATION"], region_name=REGION)


def _allow(local: LocalCloud, resource: str, **condition: Any) -> None:
    assert local.cloud is not None
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": resource}
    if condition:
        statement["Condition"] = condition
    local.cloud.functions.iam.register(FUNCTION_KEY, ROLE_ARN, [{"Statement": [statement]}])


def test_the_decision_is_on_the_stacks_arn_and_its_tags(local: LocalCloud, cfn: Any, signed: Any) -> None:
    cfn.create_stack(StackName="Tagged", TemplateBody=json.dumps({"Resources": {"Setting": PARAMETER}}),
                     Tags=[{"Key": "team", "Value": "euc"}])  # fmt: skip
    stack_id = cfn.describe_stacks(StackName="Tagged")["Stacks"][0]["StackId"]
    _allow(local, stack_id)
    assert signed.describe_stacks(StackName="Tagged")["Stacks"][0]["StackId"] == stack_id
    _allow(local, f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Other/*")
    with pytest.raises(ClientError, match="AccessDenied"):
        signed.describe_stacks(StackName="Tagged")
    _allow(local, STACKS, StringEquals={"aws:ResourceTag/team": "euc"})
    assert signed.describe_stacks(StackName=stack_id)["Stacks"][0]["StackName"] == "Tagged"
    _allow(local, STACKS, StringEquals={"aws:ResourceTag/team": "vdi"})
    with pytest.raises(ClientError, match="AccessDenied"):
        signed.describe_stacks(StackName=stack_id)


def test_other_keys_are_served_unchecked(local: LocalCloud, cfn: Any) -> None:
    _allow(local, f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Other/*")  # the function's key only
    cfn.create_stack(StackName="Plain", TemplateBody=json.dumps({"Resources": {"Setting": PARAMETER}}))
    assert cfn.describe_stacks(StackName="Plain")["Stacks"][0]["StackName"] == "Plain"
    assert local.cloud is not None
    assert local.cloud.functions.iam.denials == []


PRINT_ENDPOINT = """
import os

def handler(event, context):
    with open(event["out"], "w") as out:
        out.write(os.environ.get("AWS_ENDPOINT_URL_CLOUDFORMATION", "unset"))
"""


def test_the_driver_alone_points_the_endpoint_at_nothing_and_an_api_in_front_of_it_sets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "https://cloudformation.example")  # never leaks in
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text(PRINT_ENDPOINT)
    function = Function("probe", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:probe", code, "index.handler", 30)
    cert, key = make_certificate(tmp_path / "tls")
    with MotoTls(cert, key) as moto:  # the driver's own services; no CloudFormation API
        cloud = Cloud(appstream_url="http://127.0.0.1:9", moto=moto, workdir=tmp_path, printer=print)

        def endpoint(name: str) -> str:
            cloud.runner.invoke(function, {"out": str(tmp_path / name)}).wait(30)
            return (tmp_path / name).read_text()

        try:
            assert endpoint("alone") == NO_API  # a closed loopback port: never AWS's own endpoint
            cloud.serve_api("http://127.0.0.1:4581")
            assert endpoint("served") == "http://127.0.0.1:4581"  # the warm environment lacked it: a new one
            cloud.serve_api(None)
            assert endpoint("stopped") == NO_API
        finally:
            cloud.close()


def test_a_stack_deployed_with_the_driver_itself_is_described_too(local: LocalCloud, cfn: Any, tmp_path: Path) -> None:
    """An API in front of a driver that tests drive directly (`Cloud.deploy`): its functions can still ask."""
    assert local.cloud is not None
    template = tmp_path / "direct.json"
    template.write_text(json.dumps({"Resources": {"Setting": PARAMETER}}))
    stack_id = local.cloud.deploy("Direct", template).stack_id
    assert cfn.describe_stacks(StackName="Direct")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    local.cloud.destroy("Direct")
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    with pytest.raises(ClientError, match="Stack with id Direct does not exist"):
        cfn.describe_stacks(StackName="Direct")

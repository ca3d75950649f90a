"""The driver itself: templates, intrinsics, response rules, ServiceTimeout, and scheduled polling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.appstream import LocalAppStream
from appstream_image_local.cfn.driver import Cloud, ResourceFailed, StackFailed
from appstream_image_local.cfn.intrinsics import Scope, resolve
from appstream_image_local.cfn.protocol import cfn_strings
from appstream_image_local.cfn.template import Template, TemplateError
from bench import long_wait
from tests.conftest import ROOT

MakeCloud = Callable[..., tuple[Cloud, LocalAppStream, list[str]]]


def test_yaml_short_tags_are_read_as_intrinsics() -> None:
    template = Template.load(ROOT / "examples" / "images.yaml")
    golden = template.resources["GoldenImage"]["Properties"]
    assert golden["ImageName"] == {"Ref": "GoldenImageName"}
    assert golden["ServiceToken"] == {"Fn::ImportValue": {"Fn::Sub": "${ServiceTokenExport}"}}
    assert template.body["Outputs"]["GoldenImageArn"]["Value"] == {"Fn::GetAtt": ["GoldenImage", "Arn"]}
    assert template.order().index("GoldenImage") < template.order().index("Fleet")


def test_order_follows_ref_getatt_sub_and_depends_on() -> None:
    template = Template(
        {
            "Resources": {
                "A": {"Type": "T", "Properties": {"X": {"Fn::Sub": "${B.Arn}-${C}"}}},
                "B": {"Type": "T", "DependsOn": "D"},
                "C": {"Type": "T", "Properties": {"Y": {"Ref": "D"}}},
                "D": {"Type": "T"},
            }
        }
    )
    order = template.order()
    assert order.index("D") < order.index("B") < order.index("A")
    assert order.index("C") < order.index("A")


def test_cycles_and_unknown_references_are_errors() -> None:
    with pytest.raises(TemplateError, match="cycle"):
        Template({"Resources": {"A": {"Type": "T", "DependsOn": "B"}, "B": {"Type": "T", "DependsOn": "A"}}}).order()
    with pytest.raises(TemplateError, match="unknown resources"):
        Template({"Resources": {"A": {"Type": "T", "DependsOn": "Z"}}}).order()


def test_intrinsics_resolve() -> None:
    scope = Scope(
        {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"},
        {"Name": "golden"},
        {"Res": "phys-1"},
        lambda lid, attr: f"{lid}.{attr}",
        {"Token": "arn:fn"},
    )
    value = {
        "A": {"Fn::Join": ["-", [{"Ref": "Name"}, {"Ref": "Res"}]]},
        "B": {"Fn::Sub": "${AWS::Region}:${Res.Arn}:${Name}:${!Literal}"},
        "C": {"Fn::Sub": ["${X}/${Name}", {"X": {"Ref": "AWS::AccountId"}}]},
        "D": {"Fn::ImportValue": "Token"},
        "E": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
        "F": {"Ref": "AWS::NoValue"},
        "G": [{"Ref": "AWS::NoValue"}, "kept"],
    }
    assert resolve(value, scope) == {
        "A": "golden-phys-1",
        "B": "us-east-1:Res.Arn:golden:${Literal}",
        "C": "123456789012/golden",
        "D": "arn:fn",
        "E": "b",
        "G": ["kept"],
    }
    with pytest.raises(TemplateError, match="no stack exports"):
        resolve({"Fn::ImportValue": "Missing"}, scope)


def test_properties_reach_custom_resources_as_strings() -> None:
    assert cfn_strings({"A": True, "B": 600, "C": [{"D": False}], "E": "x"}) == {
        "A": "true",
        "B": "600",
        "C": [{"D": "false"}],
        "E": "x",
    }


def silent_assembly(directory: Path, timeout: int) -> Path:
    """A cloud assembly whose custom resource provider never answers."""
    asset = directory / "asset.silent"
    asset.mkdir(parents=True)
    (asset / "silent.py").write_text("def handler(event, context):\n    return None\n")
    template: dict[str, Any] = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "silent.handler",
                    "Timeout": 5,
                    "Code": {"S3Bucket": "cdk-hnb659fds-assets-123456789012-us-east-1", "S3Key": "silent.zip"},
                },
            },
            "Thing": {
                "Type": "Custom::Thing",
                "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}, "ServiceTimeout": timeout},
            },
        }
    }
    path = directory / "Silent.template.json"
    path.write_text(json.dumps(template))
    return path


def test_service_timeout_fails_the_resource_and_rolls_back(make_cloud: MakeCloud, tmp_path: Path) -> None:
    cloud, _, lines = make_cloud()
    with pytest.raises(StackFailed, match="did not receive a response from your Custom Resource within 2s"):
        cloud.deploy("Silent", silent_assembly(tmp_path / "silent", timeout=2))
    failed = [line for line in lines if "CREATE_FAILED" in line and "Thing" in line]
    assert failed
    # The rollback's Delete carries the id CloudFormation invents after a timeout, and also times out.
    assert any("DELETE_FAILED" in line and "Thing" in line for line in lines)
    # A delete that fails while a failed create rolls back leaves the stack ROLLBACK_FAILED, as on AWS.
    assert cloud.stacks["Silent"].status == "ROLLBACK_FAILED"
    assert any("ROLLBACK_FAILED" in line and "AWS::CloudFormation::Stack" in line for line in lines)


def test_responses_are_validated(make_cloud: MakeCloud) -> None:
    cloud, _, _ = make_cloud()
    event = {
        "RequestType": "Delete",
        "StackId": "s",
        "RequestId": "r",
        "LogicalResourceId": "L",
        "PhysicalResourceId": "p",
    }
    good = {"Status": "SUCCESS", "StackId": "s", "RequestId": "r", "LogicalResourceId": "L", "PhysicalResourceId": "p"}
    assert cloud.requests.validate(json.dumps(good).encode(), event)["Status"] == "SUCCESS"
    for change, problem in [
        ({"PhysicalResourceId": "other"}, "Delete answered with physical id other"),
        ({"PhysicalResourceId": ""}, "non-empty"),
        ({"Status": "FAILED"}, "needs a Reason"),
        ({"RequestId": "x"}, "RequestId"),
        ({"Data": {"k": "v" * 5000}}, "too long"),
        ({"Status": "MAYBE"}, "Status"),
    ]:
        with pytest.raises(ResourceFailed, match=problem):
            cloud.requests.validate(json.dumps(good | change).encode(), event)
    assert len(cloud.violations) == 6


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
@pytest.mark.toolchain  # bench/long_wait.py deploys the synthesized provider stack (tools/synth.py: jsii)
def test_a_deletion_that_outlasts_the_invocation_completes_through_scheduled_polling() -> None:
    """Also the smoke test of bench/long_wait.py, which runs exactly this through the driver."""
    # A 20 s function timeout: the provider hands over about 5 s in (15 s before the timeout). The rule's
    # 1-minute schedule runs ten times faster here (schedule_scale): the first scheduled run comes after 6 s.
    result = long_wait.run(delete_seconds=12, function_timeout=20, schedule_scale=0.1)
    assert result["gone"]
    assert result["scheduled"] >= 1  # completed by a scheduled invocation, on the rule's schedule
    assert result["invocations"] == 1 + result["scheduled"]
    assert result["latency"] >= 12  # not before AppStream says the image is gone
    assert result["rules_left"] == 0
    assert result["leaks"] == 0
    # Billed time is measured; no bound against the latency: under load a scheduled run (up to 40 s inline)
    # can overlap the next one the 6 s schedule starts, so billed time may exceed the wall time.
    assert result["billed_seconds"] > 0


def assembly_with(directory: Path, function: dict[str, Any], thing: dict[str, Any]) -> Path:
    asset = directory / "asset.silent"
    asset.mkdir(parents=True, exist_ok=True)
    (asset / "silent.py").write_text("def handler(event, context):\n    return None\n")
    template = {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": function},
            "Thing": {"Type": "Custom::Thing", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}, **thing}},
        }
    }
    path = directory / "Odd.template.json"
    path.write_text(json.dumps(template))
    return path


PYTHON_FUNCTION = {
    "Runtime": "python3.13",
    "Handler": "silent.handler",
    "Timeout": 5,
    "Code": {"S3Bucket": "cdk-hnb659fds-assets-123456789012-us-east-1", "S3Key": "silent.zip"},
}


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        ({**PYTHON_FUNCTION, "Runtime": "nodejs22.x"}, "runs Python functions only; "),
        ({**PYTHON_FUNCTION, "Code": {"ZipFile": "def handler(e, c): pass"}}, "not inline ZipFile code"),
    ],
)
def test_a_function_the_driver_cannot_run_fails_at_once_saying_why(
    make_cloud: MakeCloud, tmp_path: Path, function: dict[str, Any], reason: str
) -> None:
    cloud, _, lines = make_cloud()
    with pytest.raises(StackFailed, match=reason):
        cloud.deploy("Odd", assembly_with(tmp_path, function, {"ServiceTimeout": 600}))
    assert cloud.stats == []  # no request was sent, so nothing waited for a timeout
    assert any("CREATE_FAILED" in line and "Fn" in line for line in lines)


def test_a_malformed_service_timeout_fails_the_resource_as_cloudformation_does(
    make_cloud: MakeCloud, tmp_path: Path
) -> None:
    cloud, _, lines = make_cloud()
    with pytest.raises(StackFailed, match=r"ServiceTimeout 'abc' must be an integer between 1 and 3600"):
        cloud.deploy("Odd", assembly_with(tmp_path, PYTHON_FUNCTION, {"ServiceTimeout": "abc"}))
    assert any("CREATE_FAILED" in line and "Thing" in line for line in lines)
    assert "Odd" not in cloud.stacks


def test_a_long_wait_for_a_response_says_so(
    make_cloud: MakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appstream_image_local.cfn import protocol

    monkeypatch.setattr(protocol, "PROGRESS_EVERY", 0.5)
    cloud, _, lines = make_cloud()
    with pytest.raises(StackFailed):
        cloud.deploy("Odd", assembly_with(tmp_path, PYTHON_FUNCTION, {"ServiceTimeout": 2}))
    assert any("Odd Thing Create: still waiting for the response" in line for line in lines)


def slow_assembly(directory: Path, seconds: float) -> Path:
    """Two independent custom resources whose provider takes `seconds` to answer, and one that needs both."""
    asset = directory / "asset.slow"
    asset.mkdir(parents=True)
    (asset / "slow.py").write_text(
        "import json, time, urllib.request\n"
        "def handler(event, context):\n"
        f"    time.sleep({seconds} if event['RequestType'] == 'Create' else 0)\n"
        "    body = {key: event[key] for key in ('StackId', 'RequestId', 'LogicalResourceId')}\n"
        "    body |= {'Status': 'SUCCESS', 'PhysicalResourceId': event['LogicalResourceId']}\n"
        "    request = urllib.request.Request(event['ResponseURL'], data=json.dumps(body).encode(), method='PUT',\n"
        "                                     headers={'Content-Type': ''})\n"
        "    urllib.request.urlopen(request, timeout=10)\n"
    )
    token = {"Fn::GetAtt": ["Fn", "Arn"]}
    template: dict[str, Any] = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "slow.handler",
                    "Timeout": 60,
                    "Code": {"S3Bucket": "cdk-hnb659fds-assets-123456789012-us-east-1", "S3Key": "slow.zip"},
                },
            },
            "Left": {"Type": "Custom::Thing", "Properties": {"ServiceToken": token}},
            "Right": {"Type": "Custom::Thing", "Properties": {"ServiceToken": token}},
            "Both": {
                "Type": "Custom::Thing",
                "Properties": {"ServiceToken": token, "L": {"Ref": "Left"}, "R": {"Ref": "Right"}},
            },
        }
    }
    path = directory / "Slow.template.json"
    path.write_text(json.dumps(template))
    return path


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_independent_resources_are_worked_on_at_once_and_dependents_wait(make_cloud: MakeCloud, tmp_path: Path) -> None:
    """CloudFormation "creates, updates, and deletes resources in parallel to the extent possible" (DependsOn)."""
    cloud, _, lines = make_cloud()
    cloud.deploy("Slow", slow_assembly(tmp_path / "slow", seconds=3))

    def index(status: str, logical_id: str) -> int:
        return next(n for n, line in enumerate(lines) if f"| {status}" in line and line.rstrip().endswith(logical_id))

    # Each one started before the other finished: neither waited for the other's 3 s.
    assert index("CREATE_IN_PROGRESS", "Right") < index("CREATE_COMPLETE", "Left")
    assert index("CREATE_IN_PROGRESS", "Left") < index("CREATE_COMPLETE", "Right")
    # What needs both starts only after both.
    assert index("CREATE_IN_PROGRESS", "Both") > max(
        index("CREATE_COMPLETE", "Left"), index("CREATE_COMPLETE", "Right")
    )
    cloud.destroy("Slow")
    assert index("DELETE_COMPLETE", "Both") < min(
        index("DELETE_IN_PROGRESS", "Left"), index("DELETE_IN_PROGRESS", "Right")
    )
    assert index("DELETE_COMPLETE", "Left") < index("DELETE_IN_PROGRESS", "Fn")  # the function goes last

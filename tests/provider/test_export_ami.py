"""Export: once the image is AVAILABLE, CreateExportImageTask makes an EC2 AMI of it; the request waits through
EXPORTING (across scheduled runs when it is long) and answers AmiId once COMPLETED; FAILED and TIMED_OUT fail it with
their ErrorDetails. An Update that changes only Export exports again in place; the AMI is never deleted."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from appstream_image_local.appstream.exports import add_export_task, fail_exports
from provider.appstream.creation import Made
from provider.appstream.properties import parse
from provider.cloudformation.outcome import AnsweredThenContinue, Continue, Outcome
from provider.cloudformation.resume import Phase, Resume, resume_of
from provider.cloudformation.schedule import polling_input
from provider.contract import SOURCE_TAG
from provider.errors import AccessDenied, DeadlineExceeded, ImageFailed, InvalidProperties
from tests.conftest import FakeClock
from tests.provider.conftest import NO_RETRY, event, finished, handle, owned_image, scheduled

ROLE = "arn:aws:iam::123456789012:role/appstream-export"
EXPORT = {
    "AmiName": "golden-2026-11-ami",
    "IamRoleArn": ROLE,
    "AmiDescription": "Golden image, November",
    "TagSpecifications": [{"Key": "team", "Value": "euc"}],
}
COPY = {"Type": "Copy", "SourceImageName": "golden-base"}
HANDLE = (
    "https://cloudformation-waitcondition-us-east-1.s3.amazonaws.com/arn%3Aaws%3Acloudformation%3Aus-east-1%3A"
    "123456789012%3Astack%2Fimages%2F5b6c%2FGoldenAvailableHandle?Expires=4102444800&AWSAccessKeyId=AKIAEXAMPLE"
    "&Signature=ik1twT6hpS4cgNAw7wyOoRejVoo%3D"
)


def _ami(backend: AppStreamBackend, ami_name: str) -> str:
    [task] = [t for t in backend.exports.tasks.values() if t.ami_name == ami_name and t.state == "COMPLETED"]
    return task.ami_id


def _until_done(client: Any, clock: FakeClock, body: dict[str, Any], state: Resume, runs: int = 400) -> Outcome:
    """Scheduled runs a minute apart, each from the polling input the last one wrote, until one does not continue."""
    for _ in range(runs):
        clock.advance(60)
        carried = json.loads(polling_input(body, state, "s-1"))
        assert resume_of(carried) == state  # what the next run gets is what this one kept
        result = handle(client, clock, carried)
        if not isinstance(result, Continue):
            return result
        state = result.state
    raise AssertionError("still exporting")


def test_a_create_exports_once_available_and_answers_the_ami_id(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    backend.durations.export = 120  # within one invocation
    body = event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)
    done = finished(handle(client, clock, body))
    assert done.physical_id == "golden-2026-11"
    assert done.attributes["State"] == "AVAILABLE"
    assert done.attributes["AmiId"] == _ami(backend, "golden-2026-11-ami")
    assert done.attributes["AmiId"].startswith("ami-")
    [call] = service.audit.calls("CreateExportImageTask")
    assert call["params"] == {
        "ImageName": "golden-2026-11",
        "AmiName": "golden-2026-11-ami",
        "IamRoleArn": ROLE,
        "AmiDescription": "Golden image, November",
        "TagSpecifications": {"team": "euc"},
    }
    # Started only once the copy was AVAILABLE: AppStream refused nothing (ResourceNotAvailable for a COPYING image).
    assert all(c.get("error") is None for c in service.audit.calls("CreateExportImageTask"))


def test_without_export_the_ami_id_is_empty_and_nothing_is_exported(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    done = finished(handle(client, clock, event("create", ImageName="golden-2026-11", Source=COPY)))
    assert done.attributes["AmiId"] == ""
    assert service.audit.calls("CreateExportImageTask") == []
    assert service.audit.calls("ListExportImageTasks") == []


def test_a_long_export_goes_on_in_scheduled_runs_that_follow_the_task_they_started(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    backend.durations.export = 2400  # 40 minutes: longer than one invocation, within the ServiceTimeout
    body = event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)
    first = handle(client, clock, body)
    assert isinstance(first, Continue)
    assert first.state.phase is Phase.SETTLE
    [task] = backend.exports.tasks.values()
    assert first.state.export_task == task.task_id
    done = finished(_until_done(client, clock, body, first.state))
    assert done.attributes["AmiId"] == task.ami_id
    assert len(service.audit.calls("CreateExportImageTask")) == 1
    assert {c["params"]["TaskId"] for c in service.audit.calls("GetExportImageTask")} == {task.task_id}


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_with_available_signal_the_answer_comes_first_and_the_export_is_waited_for_after_it(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base")
    backend.durations.copy, backend.durations.export = 600, 4 * 3600  # hours: the wait condition's path
    body = event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT, AvailableSignal={"Handle": HANDLE})
    answered = handle(client, clock, body)
    assert isinstance(answered, AnsweredThenContinue)
    assert answered.attributes["AmiId"] == ""  # not made yet: the AMI is found by its AmiName meanwhile
    done = finished(_until_done(client, clock, body, answered.state, runs=400))
    assert done.attributes["AmiId"] == _ami(backend, "golden-2026-11-ami")


def test_a_failed_export_fails_the_create_with_its_error_details_and_names_the_image_for_the_rollback(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base")
    fail_exports(backend, "golden-2026-11", "IAM_ROLE_ERROR", "The role cannot copy the snapshot.")
    body = event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)
    with pytest.raises(Made) as failed:
        handle(client, clock, body)
    assert failed.value.image == "golden-2026-11"
    reason = str(failed.value)
    assert "export of image golden-2026-11 to AMI golden-2026-11-ami" in reason
    assert "is FAILED: IAM_ROLE_ERROR The role cannot copy the snapshot." in reason
    assert "Export.IamRoleArn" in reason  # what to do


def test_a_timed_out_export_fails_the_scheduled_run_that_follows_it(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11")
    task = add_export_task(
        backend,
        "golden-2026-11",
        "golden-2026-11-ami",
        seconds=600,
        then="TIMED_OUT",
        failure=[{"ErrorCode": "EXPORT_TIMEOUT", "ErrorMessage": "The export took too long."}],
    )
    body = event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)
    state = Resume(deadline=clock.now + 3600, image="golden-2026-11", made=True, export_task=task.task_id)
    clock.advance(601)
    with pytest.raises(ImageFailed, match=r"is TIMED_OUT: EXPORT_TIMEOUT The export took too long\."):
        handle(client, clock, scheduled(body, state))


def test_an_export_that_outlasts_the_service_timeout_fails_naming_its_task(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base")
    backend.durations.export = 3 * 3600
    body = event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT, ServiceTimeout="1800")
    first = handle(client, clock, body)
    assert isinstance(first, Continue)
    with pytest.raises(DeadlineExceeded, match=r"and be exported: the last observed state was EXPORTING \(export "):
        _until_done(client, clock, body, first.state)


def test_an_update_of_export_alone_exports_again_in_place_and_an_unchanged_one_does_not(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    backend.durations.export = 60
    created = finished(handle(client, clock, event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)))
    changed = {**EXPORT, "AmiName": "golden-2026-11-ami-v2"}
    body = event("update", ImageName="golden-2026-11", Source=COPY, Export=changed)
    body["OldResourceProperties"] = {"ImageName": "golden-2026-11", "Source": COPY, "Export": EXPORT}
    body["PhysicalResourceId"] = "golden-2026-11"
    updated = finished(handle(client, clock, body))
    assert updated.physical_id == "golden-2026-11"  # not replaced
    assert len(service.audit.calls("CopyImage")) == 1
    assert updated.attributes["AmiId"] == _ami(backend, "golden-2026-11-ami-v2") != created.attributes["AmiId"]
    # Unchanged (a tag update, say): the completed task is picked up, no second AMI of the same name.
    body["OldResourceProperties"]["Export"] = changed
    again = finished(handle(client, clock, body))
    assert again.attributes["AmiId"] == updated.attributes["AmiId"]
    assert len(service.audit.calls("CreateExportImageTask")) == 2


def test_a_failed_export_update_rolls_back_to_the_old_export_and_keeps_the_image(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("golden-base")
    backend.durations.export = 60
    created = finished(handle(client, clock, event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)))
    fail_exports(backend, "golden-2026-11")
    changed = {**EXPORT, "AmiName": "golden-2026-11-ami-v2"}
    update = event("update", ImageName="golden-2026-11", Source=COPY, Export=changed)
    update["OldResourceProperties"] = {"ImageName": "golden-2026-11", "Source": COPY, "Export": EXPORT}
    update["PhysicalResourceId"] = "golden-2026-11"
    with pytest.raises(ImageFailed, match="is FAILED: INTERNAL_ERROR"):
        handle(client, clock, update)
    assert backend.images["golden-2026-11"].state == "AVAILABLE"  # in place: the image stays
    rollback = event("update", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)
    rollback["OldResourceProperties"] = {"ImageName": "golden-2026-11", "Source": COPY, "Export": changed}
    rollback["PhysicalResourceId"] = "golden-2026-11"
    back = finished(handle(client, clock, rollback))
    assert back.attributes["AmiId"] == created.attributes["AmiId"]


def test_an_export_another_delivery_started_is_followed_not_started_twice(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11")
    running = add_export_task(backend, "golden-2026-11", "golden-2026-11-ami", seconds=120)
    body = event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)
    done = finished(handle(client, clock, body))
    assert done.attributes["AmiId"] == running.ami_id
    assert service.audit.calls("CreateExportImageTask") == []


def test_an_export_waits_while_another_export_of_the_image_runs(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    owned_image(backend, "golden-2026-11")
    other = add_export_task(backend, "golden-2026-11", "someone-elses-ami", seconds=90)
    done = finished(handle(client, clock, event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)))
    assert done.attributes["AmiId"] == _ami(backend, "golden-2026-11-ami") != other.ami_id
    codes = [c.get("error") for c in service.audit.calls("CreateExportImageTask")]
    assert codes[0] == "ConcurrentModificationException"
    assert codes[-1] is None


def test_an_ami_name_another_image_exported_to_is_refused_with_what_to_do(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11")
    backend.add_image("other-image")
    add_export_task(backend, "other-image", "golden-2026-11-ami", state="COMPLETED")
    with pytest.raises(Made, match=r"already used by export image task [-0-9a-f]+\. An AmiName must be unique in the"):
        handle(client, clock, event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT))


def test_a_role_appstream_refuses_fails_naming_the_property(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11")
    foreign = {**EXPORT, "IamRoleArn": "arn:aws:iam::210987654321:role/elsewhere"}
    with pytest.raises(Made, match=r"Invalid property Export\.IamRoleArn: AppStream refused role .*of this account\. "):
        handle(client, clock, event("create", ImageName="golden-2026-11", Source=COPY, Export=foreign))


def test_a_delete_never_touches_the_ami(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_image("golden-base")
    backend.durations.export = 60
    finished(handle(client, clock, event("create", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)))
    made = len(service.audit.mutations())
    body = event("delete", ImageName="golden-2026-11", Source=COPY, Export=EXPORT)
    body["PhysicalResourceId"] = "golden-2026-11"
    finished(handle(client, clock, body))
    assert "golden-2026-11" not in backend.images
    # What the Delete changed: the image alone (the provider has no EC2 client; its IAM has no ec2: action).
    assert {c["operation"] for c in service.audit.mutations()[made:]} <= {"DeleteImage", "UntagResource"}
    [task] = backend.exports.tasks.values()
    assert task.state == "COMPLETED"  # the AMI it made is the user's
    assert len(service.audit.calls("CreateExportImageTask")) == 1
    assert [c["operation"] for c in service.audit.entries() if "Export" in c["operation"]].count(
        "CreateExportImageTask"
    ) == 1


@pytest.mark.parametrize(
    ("export", "problem"),
    [
        ({"IamRoleArn": ROLE}, "Export.AmiName: required"),
        ({"AmiName": "golden-ami"}, "Export.IamRoleArn: required"),
        ({**EXPORT, "AmiName": "ab"}, "Export.AmiName: 'ab' does not match"),
        ({**EXPORT, "AmiName": "golden ami"}, "Export.AmiName: 'golden ami' does not match"),
        ({**EXPORT, "IamRoleArn": "arn:aws:iam::123456789012:user/x"}, "Export.IamRoleArn: .* is not an IAM role ARN"),
        ({**EXPORT, "AmiDescription": "d" * 257}, "Export.AmiDescription: at most 256 characters"),
        ({**EXPORT, "Encrypted": True}, "Export: unknown keys 'Encrypted'"),
        (
            {**EXPORT, "TagSpecifications": [{"Key": "appstream-image-provider:owner", "Value": "x"}]},
            r"Export.TagSpecifications\[0\].Key: appstream-image-provider:owner is reserved",
        ),
        ("golden-ami", "Export: expected an object"),
    ],
)
def test_export_properties_are_checked_against_the_model(export: Any, problem: str) -> None:
    with pytest.raises(InvalidProperties, match=problem):
        parse({"ImageName": "golden-2026-11", "Export": export})


def test_export_needs_the_wait_for_available() -> None:
    with pytest.raises(InvalidProperties, match="WaitForAvailable: false does not go with Export"):
        parse({"ImageName": "golden-2026-11", "Export": EXPORT, "WaitForAvailable": "false"})


def test_the_role_must_be_passable_to_appstream_or_the_export_is_denied_naming_what_to_grant(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, _ = fake
    owned_image(backend, "golden-2026-11", tags={SOURCE_TAG: "Existing"})
    backend.durations.export = 60
    anything = {"Effect": "Allow", "Action": "appstream:*", "Resource": "*"}
    passing = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": ROLE,
        "Condition": {"StringEquals": {"iam:PassedToService": "appstream.amazonaws.com"}},
    }
    body = event("create", ImageName="golden-2026-11", Export=EXPORT)
    for key, statements in (("ASIANOPASS", [anything]), ("ASIAPASS", [anything, passing])):
        service.iam.register(key, "arn:aws:sts::123456789012:assumed-role/provider/fn", [{"Statement": statements}])
    session = boto3.session.Session(aws_access_key_id="ASIANOPASS", aws_secret_access_key="x", region_name="us-east-1")
    denied = session.client("appstream", endpoint_url=service.url, config=NO_RETRY)
    with pytest.raises(AccessDenied, match=rf"may not export image golden-2026-11 to an AMI with role {ROLE}"):
        handle(denied, clock, body)
    assert [(d.action, d.resource) for d in service.iam.denials] == [("iam:PassRole", ROLE)]
    session = boto3.session.Session(aws_access_key_id="ASIAPASS", aws_secret_access_key="x", region_name="us-east-1")
    allowed = session.client("appstream", endpoint_url=service.url, config=NO_RETRY)
    assert finished(handle(allowed, clock, body)).attributes["AmiId"] == _ami(backend, "golden-2026-11-ami")

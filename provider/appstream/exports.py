"""Export image tasks: those that hold an image (why DeleteImage refused it, for the Reason), and Export's own.

CreateExportImageTask exports an image to an EC2 AMI; while a task is EXPORTING, DeleteImage may refuse
the image. ListExportImageTasks names those tasks. Best effort: when the call is denied, unknown to the
endpoint or to the runtime's botocore, or fails, there is nothing to name ([]) and the caller keeps its
generic refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import logs
from ..errors import AccessDenied, ImageFailed, InvalidProperties
from .properties import Export

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

# ExportImageTaskState (botocore's appstream model): EXPORTING, then COMPLETED, FAILED or TIMED_OUT.
EXPORTING = "EXPORTING"
# ListExportImageTasks' MaxResults: "The valid range is 1-500, with a default of 50" (API reference): fewest calls.
PAGE_SIZE = 500
MAX_PAGES = 20  # 10,000 tasks; a token that never ends must not hold the invocation
# Denied (no appstream:ListExportImageTasks; the model lists OperationNotPermitted) or not served by the endpoint.
UNAVAILABLE = frozenset(
    {"AccessDeniedException", "AccessDenied", "OperationNotPermittedException", "UnknownOperationException"}
)


def exports_in_progress(client: AppStreamClient, image_arn: str) -> list[str]:
    """Each EXPORTING task of the image, as "<task id> (AMI <AMI name>)"; [] when they cannot be listed.

    AWS documents no filter name for ListExportImageTasks' Filters, so every page is read and the tasks are
    matched here, by ImageArn. Only error codes are logged (a denial's message names the role).
    """
    if not hasattr(client, "list_export_image_tasks"):  # a runtime botocore that predates the operation
        logs.event("export tasks not listed: this botocore has no ListExportImageTasks", state="UNKNOWN")
        return []
    try:
        tasks = _image_tasks(client, image_arn)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in UNAVAILABLE:
            logs.event(f"export tasks not listed: {code}", state="UNKNOWN")
        else:
            logs.logger.warning("export tasks not listed: %s", code or type(err).__name__)
        return []
    except BotoCoreError as err:
        logs.logger.warning("export tasks not listed: %s", type(err).__name__)
        return []
    return [f"{task['TaskId']} (AMI {task['AmiName']})" for task in tasks if task.get("State") == EXPORTING]


def _image_tasks(client: AppStreamClient, image_arn: str) -> list[Mapping[str, Any]]:
    """The image's export tasks, every page read: no filter names are documented for ListExportImageTasks."""
    found: list[Mapping[str, Any]] = []
    token = ""
    for _ in range(MAX_PAGES):  # ListExportImageTasks has no boto3 paginator
        page = (
            client.list_export_image_tasks(MaxResults=PAGE_SIZE, NextToken=token)
            if token
            else client.list_export_image_tasks(MaxResults=PAGE_SIZE)
        )
        found += [t for t in page.get("ExportImageTasks", []) if t.get("ImageArn") == image_arn]
        following = page.get("NextToken", "")
        if not following or following == token:
            break
        token = following
    return found


# -- Export: this resource's own export to an AMI -------------------------------------------------------------------

# CreateExportImageTask's model lists these; each is read here once, with what the user can do about it.
ENDED_BADLY = ("FAILED", "TIMED_OUT")  # ErrorDetails "only populated when the task fails" (API reference)
BUSY = frozenset({"ConcurrentModificationException", "LimitExceededException"})


def _failure(name: str, ami_name: str, task: Mapping[str, Any]) -> ImageFailed:
    details = "; ".join(
        f"{e.get('ErrorCode', '')} {e.get('ErrorMessage', '')}".strip() for e in task.get("ErrorDetails") or []
    )
    return ImageFailed(
        f"The export of image {name} to AMI {ami_name} (task {task.get('TaskId')}) is {task.get('State')}"
        f"{': ' + details if details else ''}. Check that Export.IamRoleArn lets appstream.amazonaws.com copy, "
        "describe and tag images, then deploy again (a new export starts), or remove Export"
    )


def _own_tasks(client: AppStreamClient, image_arn: str, ami_name: str) -> list[Mapping[str, Any]]:
    """The image's tasks that make AMI `ami_name`, newest first."""
    found = [t for t in _image_tasks(client, image_arn) if t.get("AmiName") == ami_name]
    return sorted(found, key=lambda t: str(t.get("CreatedDate", "")), reverse=True)


def _start(client: AppStreamClient, name: str, export: Export) -> Mapping[str, Any] | None:
    """CreateExportImageTask; None when AppStream is busy (another export of the image, a quota): look again."""
    params: dict[str, Any] = {"ImageName": name, "AmiName": export.ami_name, "IamRoleArn": export.iam_role_arn}
    if export.ami_description:
        params["AmiDescription"] = export.ami_description
    if export.tags:
        params["TagSpecifications"] = dict(export.tags)
    try:
        task = client.create_export_image_task(**params)["ExportImageTask"]
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        message = str(err.response.get("Error", {}).get("Message", "")).rstrip(".")
        if code in BUSY:
            logs.event(f"export not started yet: {code}", image=name, phase="export", state="QUEUED")
            return None
        if code in ("AccessDeniedException", "AccessDenied"):  # CreateExportImageTask, or iam:PassRole of the role
            raise AccessDenied(
                f"Access denied: the provider's role may not export image {name} to an AMI with role "
                f"{export.iam_role_arn} ({message}). It needs appstream:CreateExportImageTask on the images it owns "
                "and iam:PassRole of that role to appstream.amazonaws.com: the AppStreamImage construct grants both "
                "for its export; a standalone provider grants them once its ExportRoleArn parameter names this role"
            ) from err
        if code == "InvalidRoleException":
            raise InvalidProperties(
                f"Invalid property Export.IamRoleArn: AppStream refused role {export.iam_role_arn}: {message}. Give "
                "a role of this account that appstream.amazonaws.com may assume",
                "Export.IamRoleArn",
                message,
            ) from err
        if code == "OperationNotPermittedException":
            raise ImageFailed(
                f"AppStream does not permit exporting image {name} to AMI {export.ami_name}: {message}. An AmiName "
                "must be unique in the account and region: give Export another AmiName"
            ) from err
        raise
    logs.event(f"started export {task.get('TaskId')} to AMI {export.ami_name}", image=name, phase="export")
    return task


@dataclass(frozen=True)
class Look:
    """What one look at the export found: its state, its task (followed by later runs), and the AMI once made."""

    state: str
    task_id: str = ""
    ami_id: str = ""
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.state == "COMPLETED"


def follow(client: AppStreamClient, name: str, image_arn: str, export: Export, task_id: str = "") -> Look:
    """One look at this resource's export of AVAILABLE image `name`: started if there is none, done once COMPLETED
    (attributes: AmiId), failed with its ErrorDetails once FAILED or TIMED_OUT.

    `task_id`: the task this request follows (from an earlier run). Without it, a COMPLETED or EXPORTING task of
    this image making the same AMI is picked up (an Update with the same Export, a duplicate delivery); a failed
    one is not: a new request exports again.
    """
    task: Mapping[str, Any]
    if task_id:
        task = client.get_export_image_task(TaskId=task_id)["ExportImageTask"]
    else:
        tasks = [t for t in _own_tasks(client, image_arn, export.ami_name) if t.get("State") not in ENDED_BADLY]
        started = tasks[0] if tasks else _start(client, name, export)
        if started is None:
            return Look("QUEUED", detail="waiting to start the export")
        task = started
    state, found = str(task.get("State")), str(task.get("TaskId", ""))
    logs.event(f"export {found}", image=name, phase="export", state=state)
    if state in ENDED_BADLY:
        raise _failure(name, export.ami_name, task)
    if state == "COMPLETED":
        return Look(state, found, str(task.get("AmiId", "")))
    return Look(state, found, detail=f"export {found} to AMI {export.ami_name}")  # EXPORTING (or a state yet unknown)

"""Export image tasks: CreateExportImageTask, GetExportImageTask and ListExportImageTasks.

botocore's appstream model (2016-12-01, as pinned): CreateExportImageTask takes ImageName, AmiName and
IamRoleArn (required), TagSpecifications and AmiDescription, and lists LimitExceeded, InvalidRole,
InvalidAccountStatus, OperationNotPermitted, ResourceNotFound, ConcurrentModification and
ResourceNotAvailable; GetExportImageTask takes TaskId and lists OperationNotPermitted and ResourceNotFound;
ListExportImageTasks takes Filters, MaxResults and NextToken, lists OperationNotPermitted, and has no
boto3 paginator. A task (ExportImageTask) starts EXPORTING and ends COMPLETED, with the AmiId it made, or
FAILED, with ErrorDetails; the image itself stays AVAILABLE (ImageState has no exporting state).
Where neither the model nor the API reference settles a detail, the stricter choice is made, and said.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appstream_image_local.appstream.errors import ApiError, not_found
from appstream_image_local.appstream.records import Image, page

if TYPE_CHECKING:
    from appstream_image_local.appstream.model import AppStreamBackend

EXPORTING = "EXPORTING"
# ExportImageTaskState (botocore's model): EXPORTING, COMPLETED, FAILED, TIMED_OUT (the API reference lists
# only the first three; TIMED_OUT can be seeded, and ends a task as FAILED does).
ENDS = frozenset({"COMPLETED", "FAILED", "TIMED_OUT"})
# ListExportImageTasks' MaxResults: "The valid range is 1-500, with a default of 50" (API reference; the model's
# min is 0: 0 is refused, the stricter reading).
PAGE_DEFAULT, PAGE_MAX = 50, 500
DEFAULT_FAILURE = {"ErrorCode": "INTERNAL_ERROR", "ErrorMessage": "The image could not be exported to an AMI."}


@dataclass
class ExportTask:
    """One export (ExportImageTask's members); `until`: the service-clock time EXPORTING ends, then `then`."""

    task_id: str
    image_arn: str
    ami_name: str
    created: float
    state: str = EXPORTING
    until: float | None = None
    then: str = "COMPLETED"
    ami_description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # PhotonAmiId's pattern (^ami-[a-z0-9]{8,17}$); shown once COMPLETED ("only populated when the task completes").
    ami_id: str = field(default_factory=lambda: f"ami-{uuid.uuid4().hex[:17]}")
    # ErrorDetails: "only populated when the task fails" (API reference, ExportImageTask).
    failure: list[dict[str, str]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TaskId": self.task_id,
            "ImageArn": self.image_arn,
            "AmiName": self.ami_name,
            "CreatedDate": self.created,
            "State": self.state,
        }
        if self.ami_description:
            out["AmiDescription"] = self.ami_description
        if self.tags:
            out["TagSpecifications"] = dict(self.tags)
        if self.state == "COMPLETED":
            out["AmiId"] = self.ami_id
        if self.state in ("FAILED", "TIMED_OUT"):
            out["ErrorDetails"] = [dict(e) for e in self.failure]
        return out


@dataclass
class Exports:
    """The account's export tasks (in creation order), and the images whose next exports are to fail."""

    tasks: dict[str, ExportTask] = field(default_factory=dict)
    failing: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # image name -> ErrorDetails


# -- seeding and control (not AppStream operations) ------------------------------------


def add_export_task(
    backend: AppStreamBackend,
    image_name: str,
    ami_name: str,
    *,
    state: str = EXPORTING,
    seconds: float | None = None,
    then: str = "COMPLETED",
    failure: list[dict[str, str]] | None = None,
) -> ExportTask:
    """A task as a test or scenario wants it: EXPORTING for `seconds` (default: Durations.export), then `then`."""
    if state not in ENDS | {EXPORTING} or then not in ENDS:
        raise ValueError(f"export task states are {EXPORTING} then one of {sorted(ENDS)}")
    with backend._lock:
        image = backend.images.get(image_name)
        task = ExportTask(
            task_id=str(uuid.uuid4()),
            image_arn=image.arn if image else backend.image_arn(image_name),
            ami_name=ami_name,
            created=time.time(),
            state=state,
            then=then,
            failure=list(failure or ([DEFAULT_FAILURE] if "FAILED" in (state, then) else [])),
        )
        if state == EXPORTING:
            span = backend.durations.export if seconds is None else seconds
            task.until = backend.now() + backend.scaled(span)
        backend.exports.tasks[task.task_id] = task
        return task


def fail_exports(
    backend: AppStreamBackend,
    image_name: str,
    code: str = DEFAULT_FAILURE["ErrorCode"],
    message: str = DEFAULT_FAILURE["ErrorMessage"],
) -> None:
    """Exports of `image_name` created from now on end FAILED with this ErrorDetails entry."""
    with backend._lock:
        backend.exports.failing[image_name] = [{"ErrorCode": code, "ErrorMessage": message}]


def _advance(backend: AppStreamBackend) -> None:
    now = backend.now()
    for task in backend.exports.tasks.values():
        if task.until is not None and now >= task.until:
            task.state, task.until = task.then, None


def running_exports(backend: AppStreamBackend, image: Image) -> list[ExportTask]:
    """The image's EXPORTING tasks, oldest first."""
    with backend._lock:
        _advance(backend)
        return [t for t in backend.exports.tasks.values() if t.image_arn == image.arn and t.state == EXPORTING]


def refuse_delete(backend: AppStreamBackend, image: Image) -> None:
    """DeleteImage's hook: an image with an EXPORTING task is not deleted.

    AWS documents no error for this; ResourceInUseException (in DeleteImage's model: "You cannot delete an
    image when it is in use") is the stricter choice, the export using the image, with the task named.
    """
    running = running_exports(backend, image)
    if running:
        tasks = ", ".join(f"{t.task_id} (AMI {t.ami_name})" for t in running)
        raise ApiError(
            "ResourceInUseException",
            f"The image {image.name} is in use by export image task {tasks}. Try again when the export ends.",
        )


# -- operations ---------------------------------------------------------------------------


def _check_role(backend: AppStreamBackend, arn: str) -> None:
    """An IAM role of this account (the API reference: the role lets appstream.amazonaws.com create the AMI).

    The model accepts any ARN; anything but a role of this account is refused (the stricter choice).
    """
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "iam" or parts[4] != backend.account or not parts[5].startswith("role/"):
        raise ApiError("InvalidRoleException", f"The role {arn} is not an IAM role of this account.")


def create_export_image_task(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    _check_role(backend, params["IamRoleArn"])
    ami_name = params["AmiName"]
    with backend._lock:
        _advance(backend)
        image = backend._image(params["ImageName"])  # ResourceNotFoundException, as the model lists it
        # "The image must be in an available state and owned by your account" (API reference, ImageName).
        backend._own_private(image, "exported", "OperationNotPermittedException")
        if image.state != "AVAILABLE":
            raise ApiError("ResourceNotAvailableException", f"The image {image.name} is {image.state}.")
        # Undocumented: one export of an image at a time (stricter); ConcurrentModification is in the model.
        running = running_exports(backend, image)
        if running:
            raise ApiError(
                "ConcurrentModificationException",
                f"The image {image.name} is being exported by task {running[0].task_id}. Try again later.",
            )
        # "AmiName ... must be unique within your account and region" (API reference). Whether AWS refuses at once
        # or fails the task is undocumented: refused at once (stricter), with OperationNotPermitted from the model.
        taken = [t for t in backend.exports.tasks.values() if t.ami_name == ami_name and t.state != "FAILED"]
        if taken:
            raise ApiError(
                "OperationNotPermittedException",
                f"The AMI name {ami_name} is already used by export image task {taken[0].task_id}.",
            )
        failure = backend.exports.failing.get(image.name)
        task = add_export_task(
            backend,
            image.name,
            ami_name,
            then="FAILED" if failure else "COMPLETED",
            failure=failure,
        )
        task.ami_description = str(params.get("AmiDescription", ""))
        task.tags = dict(params.get("TagSpecifications") or {})
        return {"ExportImageTask": task.wire()}


def get_export_image_task(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    task_id = params.get("TaskId")
    if not task_id:  # optional in the model; a call without it names no task (refused: the stricter choice)
        raise ApiError("ValidationException", "TaskId is required.")
    with backend._lock:
        _advance(backend)
        task = backend.exports.tasks.get(task_id)
        if task is None:
            raise not_found("export image task", task_id)
        return {"ExportImageTask": task.wire()}


def list_export_image_tasks(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Filters"):  # AWS documents no filter name ("Valid filter names depend on the operation")
        raise ApiError("ValidationException", "The local service knows no ListExportImageTasks filter names.")
    size = params.get("MaxResults")
    if size is not None and not 1 <= size <= PAGE_MAX:
        raise ApiError("ValidationException", f"MaxResults must be between 1 and {PAGE_MAX}.")
    with backend._lock:
        _advance(backend)
        items = [t.wire() for t in backend.exports.tasks.values()]
        token = params.get("NextToken")
        # ListExportImageTasks' model lists no InvalidParameterCombination (page's answer to a bad token).
        if token is not None and not (token.isdigit() and int(token) < len(items)):
            raise ApiError("ValidationException", "The NextToken is not valid.")
        return page(items, params, "ExportImageTasks", limit=PAGE_DEFAULT)

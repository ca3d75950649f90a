"""CreateImportedImage: an image made from an EC2 AMI (or a WorkSpaces image), with the model's rules.

The model (botocore appstream, CreateImportedImage) takes Name (required), SourceAmiId or
WorkspaceImageId, IamRoleArn, Description, DisplayName, Tags, RuntimeValidationConfig,
AgentSoftwareVersion, AppCatalogConfig and DryRun, and lists these errors: LimitExceeded,
InvalidAccountStatus, InvalidRole, OperationNotPermitted, ResourceAlreadyExists, ResourceNotFound,
IncompatibleImage, DryRunOperation, InvalidParameterCombination. The admin guide: the image runs
through IMPORTING and a runtime validation; an AMI that does not meet AppStream's requirements
(UEFI boot, one volume, ...) is refused, and failures are listed in the image's ImageErrors.
When nothing settles a detail, the stricter choice is made (an AMI import needs its IamRoleArn).
"""

from __future__ import annotations

import time
from typing import Any

from appstream_image_local.appstream.errors import ApiError
from appstream_image_local.appstream.model import AppStreamBackend


def create_imported_image(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Name"]
    ami, workspace = params.get("SourceAmiId"), params.get("WorkspaceImageId")
    if bool(ami) == bool(workspace):
        raise ApiError(
            "InvalidParameterCombinationException", "Specify exactly one of SourceAmiId and WorkspaceImageId."
        )
    if ami and not params.get("IamRoleArn"):
        raise ApiError("InvalidParameterCombinationException", "IamRoleArn is required to import an AMI.")
    if str(params.get("IamRoleArn", "")).split(":")[4:5] not in ([backend.account], []):
        raise ApiError("InvalidRoleException", f"The role {params['IamRoleArn']} is not in this account.")
    with backend._lock:
        backend._advance()
        source_id = str(ami or workspace)
        source = backend.amis.get(source_id)
        if source is None:
            raise ApiError("ResourceNotFoundException", f"The image {source_id} does not exist.")
        if not source.get("compatible", True):
            raise ApiError(
                "IncompatibleImageException",
                f"The image {source_id} does not meet the requirements for import (UEFI boot, a single volume).",
            )
        if name in backend.images:
            raise ApiError("ResourceAlreadyExistsException", f"The image {name} already exists.")
        if sum(1 for i in backend.images.values() if i.visibility == "PRIVATE") >= backend.limits.images:
            raise ApiError("LimitExceededException", f"The limit of {backend.limits.images} images was reached.")
        if params.get("DryRun"):
            raise ApiError("DryRunOperationException", "The request would have succeeded, but DryRun was set.")
        tags = dict(params.get("Tags") or {})
        if len(tags) > backend.limits.tags:
            raise ApiError("LimitExceededException", f"The limit of {backend.limits.tags} tags was reached.")
        image = backend.add_image(
            name,
            state="IMPORTING",
            settle_seconds=backend.durations.import_,
            then="VALIDATING",
            description=params.get("Description", ""),
            display_name=params.get("DisplayName", ""),
            agent_version=str(params.get("AgentSoftwareVersion", "CURRENT_LATEST")),
            tags=tags,
        )
        fails = bool(source.get("fails"))
        image.later = [(backend.durations.validate, "FAILED" if fails else "AVAILABLE")]
        if fails:  # set when the validation ends (the last step)
            image.next_reason = {"Code": "INTERNAL_ERROR", "Message": "The image failed its runtime validation."}
            image.next_errors = [
                {
                    "ErrorCode": "INTERNAL_SERVICE_ERROR",
                    "ErrorMessage": f"The runtime validation of {source_id} failed: the AppStream agent did not start.",
                    "ErrorTimestamp": time.time(),
                }
            ]
        image.visible_at = backend.now() + backend.scaled(backend.limits.visibility_lag)
        return {"Image": image.wire()}

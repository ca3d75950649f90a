"""Export image tasks that hold an image: why DeleteImage refused it, for the Reason.

CreateExportImageTask exports an image to an EC2 AMI; while a task is EXPORTING, DeleteImage may refuse
the image. ListExportImageTasks names those tasks. Best effort: when the call is denied, unknown to the
endpoint or to the runtime's botocore, or fails, there is nothing to name ([]) and the caller keeps its
generic refusal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from .. import logs

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
    found: list[str] = []
    token = ""
    try:
        for _ in range(MAX_PAGES):  # ListExportImageTasks has no boto3 paginator
            page = (
                client.list_export_image_tasks(MaxResults=PAGE_SIZE, NextToken=token)
                if token
                else client.list_export_image_tasks(MaxResults=PAGE_SIZE)
            )
            found += [
                f"{task['TaskId']} (AMI {task['AmiName']})"
                for task in page.get("ExportImageTasks", [])
                if task.get("ImageArn") == image_arn and task.get("State") == EXPORTING
            ]
            following = page.get("NextToken", "")
            if not following or following == token:
                break
            token = following
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
    return found

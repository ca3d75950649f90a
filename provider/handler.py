"""Lambda entry point for Custom::AppStreamImage: wiring only (crhelper's front door -> step.handle -> the Answer).

Only the stdlib-only response module is imported unguarded: any failure while loading the rest
(an import, the AppStream client) is kept and answered as FAILED, so no stack waits for a timeout.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from .cloudformation import response

if TYPE_CHECKING:
    from .cloudformation.request import LambdaContext

LOAD_FAILURE: Exception | None = None
try:
    from . import logs, step
    from .appstream.images import appstream_client
    from .cloudformation.answer import ImageResource
    from .contract import SCOPE_ENV

    logs.setup()
    helper = ImageResource()  # DescribeStacks' client is made on first use: most requests never ask
    run = functools.partial(step.handle, client=appstream_client(), front=helper, scope=os.environ.get(SCOPE_ENV, ""))
    # crhelper's own decorators: every request type, first deliveries and scheduled ones, runs step.handle.
    for decorator in (helper.create, helper.update, helper.delete, helper.poll_create, helper.poll_update,
                      helper.poll_delete):  # fmt: skip
        decorator(run)

except Exception as exc:  # whatever failed while loading, CloudFormation must hear about it
    LOAD_FAILURE = exc


def handler(event: dict[str, Any], context: LambdaContext) -> None:
    if LOAD_FAILURE is not None:
        response.answer_load_failure(event, context, LOAD_FAILURE)
        return
    fields = event if isinstance(event, dict) else {}
    props = fields.get("ResourceProperties")
    logs.bind(
        request_id=str(fields.get("RequestId", ""))[:64],
        logical_id=str(fields.get("LogicalResourceId", ""))[:255],
        request_type=str(fields.get("RequestType", ""))[:16],
        image=str(props.get("ImageName", ""))[:101] if isinstance(props, dict) else None,
        poll=bool(fields.get("CrHelperPoll")) or None,
    )
    helper(event, context)

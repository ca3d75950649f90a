"""Lambda entry point for Custom::AppStreamImage: wiring only (crhelper -> provider.lifecycle).

Only the stdlib-only response module is imported unguarded: any failure while loading the rest
(an import, the AppStream client) is kept and answered as FAILED, so no stack waits for a timeout.
"""

from __future__ import annotations

import os
from typing import Any

from . import response

LOAD_FAILURE: Exception | None = None
try:
    from . import lifecycle, logs
    from .cfn import ImageResource
    from .contract import SCOPE_ENV
    from .images import appstream_client
    from .request import LambdaContext
    from .stacks import CloudFormationStacks

    logs.setup()
    helper = ImageResource()
    client = appstream_client()
    stacks = CloudFormationStacks()  # its client is made on first use: most requests never ask
    SCOPE = os.environ.get(SCOPE_ENV, "")

    # crhelper's own decorators: every request type, first deliveries and scheduled ones, runs lifecycle.handle.
    @helper.create
    @helper.update
    @helper.delete
    @helper.poll_create
    @helper.poll_update
    @helper.poll_delete
    def run(event: dict[str, Any], context: LambdaContext) -> str | None:
        """Returns the physical id when finished; None hands the request over to scheduled polling."""
        physical_id, data = lifecycle.handle(
            client,
            event,
            context.get_remaining_time_in_millis(),
            claim=helper.claim,
            stop_polling=helper.stop_polling,
            scope=SCOPE,
            stacks=stacks,
        )
        helper.Data.update(data)
        return physical_id

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

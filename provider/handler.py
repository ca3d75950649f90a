"""Lambda entry point for Custom::AppStreamImage: wiring only (crhelper -> provider.lifecycle)."""

from __future__ import annotations

from typing import Any

from provider import lifecycle, logs
from provider.cfn import ImageResource
from provider.errors import CreateFailed

logs.setup()
helper = ImageResource()
try:
    from provider.images import appstream_client

    client = appstream_client()
except Exception as exc:  # any import or set-up failure must still reach CloudFormation as FAILED
    helper.init_failure(exc)


@helper.create
@helper.update
@helper.delete
@helper.poll_create
@helper.poll_update
@helper.poll_delete
def run(event: dict[str, Any], context: Any) -> str | None:
    """Returns the physical id when finished; None hands the request over to scheduled polling."""
    try:
        physical_id, data = lifecycle.handle(client, event, context.get_remaining_time_in_millis())
    except CreateFailed as err:  # the FAILED response names the image, so the rollback's Delete removes it
        helper.PhysicalResourceId = err.physical_id
        raise
    helper.Data.update(data)
    return physical_id


def handler(event: dict[str, Any], context: Any) -> None:
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

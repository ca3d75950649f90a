"""One CloudFormation request, read once right after the envelope check, and the Lambda context.

Modelled on Powertools' CloudFormationCustomResourceEvent: a frozen, typed view of the event, so
the rest of the provider never reads the raw dictionary (cfn.envelope_problem has checked it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

from .ownership import owner_value
from .resume import Resume, resume_of

RequestType = Literal["Create", "Update", "Delete"]


class LambdaContext(Protocol):
    """What the Lambda runtime passes as `context` (the parts the provider reads)."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Request:
    request_type: RequestType
    stack_id: str
    logical_id: str
    physical_id: str  # "" on a Create: CloudFormation sends none
    properties: Mapping[str, Any] = field(default_factory=dict)
    old_properties: Mapping[str, Any] = field(default_factory=dict)
    resume: Resume | None = None  # set on a scheduled invocation

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Request:
        props = event.get("ResourceProperties")
        old = event.get("OldResourceProperties")
        return cls(
            request_type=cast("RequestType", str(event["RequestType"])),
            stack_id=str(event["StackId"]),
            logical_id=str(event["LogicalResourceId"]),
            physical_id=str(event.get("PhysicalResourceId") or ""),
            properties=props if isinstance(props, Mapping) else {},
            old_properties=old if isinstance(old, Mapping) else {},
            resume=resume_of(event),
        )

    @property
    def owner(self) -> str:
        """The ownership tag's value for this resource (stack instance and logical id)."""
        return owner_value(self.stack_id, self.logical_id)

    @property
    def image(self) -> str:
        """The image this request is about, for messages."""
        return self.resume.image if self.resume is not None else str(self.properties.get("ImageName", ""))

"""One CloudFormation request, read once right after the envelope check, and the Lambda context.

Modelled on Powertools' CloudFormationCustomResourceEvent: a frozen, typed view of the event, so
the rest of the provider never reads the raw dictionary (envelope_problem below has checked it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, get_args

from ..contract import owner_value
from .resume import Resume, resume_of

RequestType = Literal["Create", "Update", "Delete"]

ENVELOPE = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")
REQUEST_TYPES: tuple[str, ...] = get_args(RequestType)


def envelope_problem(event: Any) -> str:
    """What is wrong with the request's CloudFormation fields ("" when nothing is)."""
    if not isinstance(event, dict):
        return f"the request is a {type(event).__name__}, not an object"
    missing = [k for k in ENVELOPE if not isinstance(event.get(k), str) or not event[k]]
    if missing:
        return f"the request lacks {', '.join(missing)} (or they are not strings)"
    kind = event["RequestType"]
    checks = [
        (kind not in REQUEST_TYPES, f"Unknown RequestType {kind[:40]!r}; expected Create, Update or Delete"),
        (
            kind != "Create" and not (isinstance(event.get("PhysicalResourceId"), str) and event["PhysicalResourceId"]),
            f"a {kind[:40]} request needs a non-empty PhysicalResourceId string",
        ),
        (not isinstance(event.get("ResourceProperties", {}), dict), "ResourceProperties must be an object"),
        (
            kind == "Update" and not isinstance(event.get("OldResourceProperties", {}), dict),
            "OldResourceProperties must be an object",
        ),
    ]
    return next((message for failed, message in checks if failed), "")


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

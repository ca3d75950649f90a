"""What the local CloudFormation API keeps of stacks (records, change sets, events), and its
checks of a submitted template (capabilities, resource changes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from appstream_image_local.cfn.query import ApiError
from appstream_image_local.cfn.template import Template

IAM_TYPES = (
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::InstanceProfile",
    "AWS::IAM::AccessKey",
    "AWS::IAM::UserToGroupAddition",
)
NAMES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Event:
    event_id: str
    logical_id: str
    physical_id: str
    resource_type: str
    status: str
    reason: str
    timestamp: datetime


@dataclass
class ChangeSet:
    change_set_id: str
    name: str
    kind: str  # CREATE or UPDATE
    template_body: str
    template: Template
    parameters: dict[str, str]
    tags: list[dict[str, str]]
    capabilities: list[str]
    changes: list[dict[str, str]]
    created: datetime
    status: str = "CREATE_COMPLETE"
    reason: str = ""

    @property
    def execution_status(self) -> str:
        return "AVAILABLE" if self.status == "CREATE_COMPLETE" else "UNAVAILABLE"


@dataclass
class Record:
    """What CloudFormation shows of one stack (its resources live in the driver)."""

    name: str
    stack_id: str
    created: datetime
    status: str = "REVIEW_IN_PROGRESS"
    reason: str = ""
    updated: datetime | None = None
    template_body: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    change_sets: dict[str, ChangeSet] = field(default_factory=dict)

    @property
    def deleted(self) -> bool:
        return self.status == "DELETE_COMPLETE"

    @property
    def busy(self) -> bool:
        return self.status.endswith("_IN_PROGRESS") and self.status != "REVIEW_IN_PROGRESS"


def check_capabilities(template: Template, given: list[str]) -> None:
    needed = ""
    for resource in template.resources.values():
        kind = str(resource.get("Type"))
        if kind in NAMES and NAMES[kind] in resource.get("Properties", {}):
            needed = "CAPABILITY_NAMED_IAM"
        elif kind in IAM_TYPES and not needed:
            needed = "CAPABILITY_IAM"
    enough = {
        "CAPABILITY_IAM": {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"},
        "CAPABILITY_NAMED_IAM": {"CAPABILITY_NAMED_IAM"},
    }
    if needed and not enough[needed] & set(given):
        raise ApiError("InsufficientCapabilitiesException", f"Requires capabilities : [{needed}]")


def resource_changes(template: Template, record: Record | None, resolved: dict[str, Any]) -> list[dict[str, str]]:
    old: dict[str, Any] = {}
    if record is not None and record.template_body:
        old = Template.parse(record.template_body).resources
    changes = []
    for logical_id, resource in template.resources.items():
        action = "Add" if logical_id not in old else ("Modify" if old[logical_id] != resource else "")
        if action:
            physical = resolved.get(logical_id, "")
            changes.append(
                {
                    "Action": action,
                    "LogicalResourceId": logical_id,
                    "PhysicalResourceId": physical,
                    "ResourceType": str(resource.get("Type")),
                }
            )
    for logical_id in sorted(set(old) - set(template.resources)):
        changes.append(
            {
                "Action": "Remove",
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": resolved.get(logical_id, ""),
                "ResourceType": str(old[logical_id].get("Type")),
            }
        )
    return changes

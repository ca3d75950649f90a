"""The stack model: stacks, live resources, request statistics, and the failures the engine raises."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from appstream_image_local.account import ACCOUNT, REGION
from appstream_image_local.cfn.template import Template

__all__ = [
    "ACCOUNT",
    "REGION",
    "Live",
    "Pending",
    "RequestStats",
    "ResourceFailed",
    "Stack",
    "StackFailed",
    "bucket_location",
    "suffix",
]


class ResourceFailed(Exception):
    """A resource operation failed; `physical_id` is what CloudFormation would keep for it."""

    def __init__(self, reason: str, physical_id: str = "", *, untouched: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.physical_id = physical_id
        self.untouched = untouched  # refused by CloudFormation's own checks: nothing was sent, nothing to undo


class StackFailed(Exception):
    """A deploy, update or destroy did not complete (after rolling back where CloudFormation would)."""


@dataclass
class Live:
    logical_id: str
    type: str
    physical_id: str
    properties: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"


@dataclass
class Pending:
    """A rollback step that failed: retried (or skipped) by ContinueUpdateRollback."""

    logical_id: str
    action: str  # "delete": a resource the failed update created; "update": back to `target`'s properties
    live: Live
    target: Live | None = None


@dataclass
class Stack:
    name: str
    stack_id: str
    template: Template
    parameters: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Live] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)  # output key -> its export name
    conditions: dict[str, bool] = field(default_factory=dict)
    status: str = "CREATE_IN_PROGRESS"
    pending: list[Pending] = field(default_factory=list)  # UPDATE_ROLLBACK_FAILED: what is left to roll back

    @property
    def region(self) -> str:
        """The stack's region, from its id (arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID)."""
        return self.stack_id.split(":")[3]


@dataclass
class RequestStats:
    invocations: int = 0
    scheduled: int = 0
    seconds: float = 0.0


def bucket_location(region: str) -> dict[str, Any]:
    """CreateBucket's arguments for a bucket in `region`: outside us-east-1 it names the region (S3 API reference,
    CreateBucket: CreateBucketConfiguration.LocationConstraint; moto refuses it otherwise, as S3 does)."""
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}


def suffix(length: int = 12) -> str:
    """The random part CloudFormation gives generated names."""
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))

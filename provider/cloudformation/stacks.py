"""What CloudFormation says of a stack (DescribeStacks): is it rolling back, does an owner's stack instance live on.

Each answer is True, False, or None when CloudFormation could not be asked (denied, unreachable): callers then
choose what loses nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..contract import same_stack, stack_of

logger = logging.getLogger("provider.stacks")

# The statuses in which CloudFormation deletes what a failed operation created (user guide, stack status codes):
# a Delete then undoes a Create, and must leave the account as that Create found it.
ROLLBACK_STATUSES = frozenset(
    {
        "ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "IMPORT_ROLLBACK_IN_PROGRESS",
    }
)
CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=5, read_timeout=10)


class StackLookup(Protocol):
    """The two questions the AppStream side asks of CloudFormation (through the Answer: appstream/caller.py)."""

    def rolling_back(self, stack_id: str) -> bool | None: ...

    def owner_gone(self, owner: str) -> bool | None: ...


class Unknown:
    """Asks nothing: every answer is None (a caller without CloudFormation)."""

    def rolling_back(self, stack_id: str) -> bool | None:
        return None

    def owner_gone(self, owner: str) -> bool | None:
        return None


class CloudFormationStacks:
    """DescribeStacks through a client made on first use (the endpoint as boto3 reads it:
    AWS_ENDPOINT_URL_CLOUDFORMATION)."""

    def __init__(self, make_client: Callable[[], Any] | None = None) -> None:
        self._make = make_client or (
            lambda: boto3.client("cloudformation", region_name=os.environ.get("AWS_REGION"), config=CONFIG)
        )
        self._client: Any = None

    def _describe(self, stack: str) -> dict[str, Any] | None:
        """The stack, or None when CloudFormation says it does not exist (by name: only live stacks)."""
        if self._client is None:
            self._client = self._make()
        try:
            stacks = self._client.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as err:
            error = err.response.get("Error", {})
            if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
                return None
            raise
        return dict(stacks[0]) if stacks else None

    def rolling_back(self, stack_id: str) -> bool | None:
        try:
            stack = self._describe(stack_id)
        except (ClientError, BotoCoreError) as err:
            logger.warning("could not ask CloudFormation for stack %s's status: %s", stack_id, err)
            return None
        if stack is None:  # its own stack, by StackId, always answers on AWS: a stand-in that knows it not says nothing
            return None
        return str(stack.get("StackStatus")) in ROLLBACK_STATUSES

    def owner_gone(self, owner: str) -> bool | None:
        """True when the stack instance an ownership tag names no longer exists (deleted, or its name reused)."""
        named = stack_of(owner)
        if named is None:
            return None
        name, digest = named
        try:
            stack = self._describe(name)
        except (ClientError, BotoCoreError) as err:
            logger.warning("could not ask CloudFormation whether stack %s exists: %s", name, err)
            return None
        if stack is None:
            return True
        alive = same_stack(str(stack.get("StackId", "")), digest) and stack.get("StackStatus") != "DELETE_COMPLETE"
        return not alive

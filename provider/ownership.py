"""The ownership tag: which resource (stack instance and logical id) owns an image."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .contract import MAX_TAG_VALUE, OWNER_TAG, tag_safe

STACK_DIGEST = 8
LONG_DIGEST = 16


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def stack_name_of(stack_id: str) -> str:
    """The stack name from a StackId ARN (`arn:...:stack/<name>/<uuid>`); the id itself otherwise."""
    parts = stack_id.split("/")
    return parts[1] if len(parts) > 1 and stack_id.startswith("arn:") else stack_id


def owner_value(stack_id: str, logical_id: str) -> str:
    """`<stack name>/<logical id>/<8 hex of the StackId>`: only characters AppStream's TagValue allows.

    The StackId (unique per stack instance) keeps a late duplicate Delete from a deleted stack
    away from the image of a re-created stack of the same name. The `<stack name>/` prefix is what
    the IAM statement that retires a stack's images matches (contract.owner_pattern). A value longer
    than a tag value allows keeps its head and ends with a hash of the whole.
    """
    value = tag_safe(f"{stack_name_of(stack_id)}/{logical_id}/{_digest(stack_id, STACK_DIGEST)}")
    if len(value) <= MAX_TAG_VALUE:
        return value
    return f"{value[: MAX_TAG_VALUE - LONG_DIGEST - 1]}/{_digest(value, LONG_DIGEST)}"


def owner_of(tags: Mapping[str, str]) -> str | None:
    return tags.get(OWNER_TAG)

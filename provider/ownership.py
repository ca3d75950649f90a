"""The ownership tag: which resource (stack instance and logical id) owns an image."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

OWNER_TAG = "appstream-image-provider:owner"
MAX_TAG_VALUE = 256
STACK_DIGEST = 8


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def owner_value(stack_id: str, logical_id: str) -> str:
    """`<stack name>/<logical id>#<8 hex of the StackId>`.

    The StackId (unique per stack instance) keeps a late duplicate Delete from a deleted stack
    away from the image of a re-created stack of the same name. Hashed at the end when longer
    than a tag value allows.
    """
    parts = stack_id.split("/")
    stack_name = parts[1] if len(parts) > 1 and stack_id.startswith("arn:") else stack_id
    value = f"{stack_name}/{logical_id}#{_digest(stack_id, STACK_DIGEST)}"
    if len(value) <= MAX_TAG_VALUE:
        return value
    return f"{value[: MAX_TAG_VALUE - 17]}#{_digest(value, 16)}"


def owner_of(tags: Mapping[str, str]) -> str | None:
    return tags.get(OWNER_TAG)

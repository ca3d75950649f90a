"""The ownership tag: which resource (stack and logical id) owns an image."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

OWNER_TAG = "appstream-image-provider:owner"
MAX_TAG_VALUE = 256


def owner_value(stack_id: str, logical_id: str) -> str:
    """`<stack name>/<logical id>`; hashed at the end when longer than a tag value allows."""
    parts = stack_id.split("/")
    stack_name = parts[1] if len(parts) > 1 and stack_id.startswith("arn:") else stack_id
    value = f"{stack_name}/{logical_id}"
    if len(value) <= MAX_TAG_VALUE:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{value[: MAX_TAG_VALUE - 17]}#{digest}"


def owner_of(tags: Mapping[str, str]) -> str | None:
    return tags.get(OWNER_TAG)

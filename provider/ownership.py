"""The ownership tag: which resource (stack instance and logical id) owns an image."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

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


def moved_within(found: str, owner: str) -> bool:
    """Whether ownership tag `found` names another resource of the same stack instance as `owner` (a construct
    renamed or moved: a new logical id, same ImageName)."""
    named = stack_of(found)
    return found != owner and named is not None and named == stack_of(owner)


def stack_of(owner: str) -> tuple[str, str] | None:
    """(stack name, 8 hex of its StackId) from an ownership tag; None for a value that was shortened."""
    parts = owner.split("/")
    if len(parts) != 3 or len(parts[2]) != STACK_DIGEST:
        return None
    return parts[0], parts[2]


def same_stack(stack_id: str, digest: str) -> bool:
    """Whether `digest` (from an ownership tag) is that of stack instance `stack_id`."""
    return _digest(stack_id, STACK_DIGEST) == digest


@dataclass(frozen=True)
class Before:
    """An adopted image's tags and sharing before the adoption changed them: a rollback of that Create puts them
    back. Only what the adoption touched: each tag key it set (None: absent), each account it shared with (None:
    not shared; else `<f|-><b|->`)."""

    tags: Mapping[str, str | None] = field(default_factory=dict)
    shares: Mapping[str, str | None] = field(default_factory=dict)

    def encode(self) -> str:
        """Compressed JSON in base64, whose characters a tag value allows ("" when there is nothing to keep)."""
        if not self.tags and not self.shares:
            return ""
        text = json.dumps({"t": dict(self.tags), "s": dict(self.shares)}, separators=(",", ":"), sort_keys=True)
        return base64.b64encode(zlib.compress(text.encode(), 9)).decode()

    @classmethod
    def decode(cls, value: str | None) -> Before | None:
        """None when the value is absent or not ours to read."""
        if not value:
            return None
        try:
            data = json.loads(zlib.decompress(base64.b64decode(value, validate=True)))
            return cls(dict(data.get("t", {})), dict(data.get("s", {})))
        except (ValueError, TypeError, AttributeError, zlib.error):
            return None


def share_flags(allow_fleet: bool, allow_image_builder: bool) -> str:
    return f"{'f' if allow_fleet else '-'}{'b' if allow_image_builder else '-'}"

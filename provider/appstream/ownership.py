"""The ownership tag: which resource owns an image (its value: contract.owner_value), and what an adoption
changed (the adopted tag's record)."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..contract import OWNER_TAG, stack_of


def owner_of(tags: Mapping[str, str]) -> str | None:
    return tags.get(OWNER_TAG)


def moved_within(found: str, owner: str) -> bool:
    """Whether ownership tag `found` names another resource of the same stack instance as `owner` (a construct
    renamed or moved: a new logical id, same ImageName)."""
    named = stack_of(found)
    return found != owner and named is not None and named == stack_of(owner)


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

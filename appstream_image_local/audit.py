"""Reading the local service's audit log: which images were changed, by which calls."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# For each mutating operation: the parameter that names the image it changes.
TARGET = {
    "DeleteImage": "Name",
    "CopyImage": "DestinationImageName",
    "CreateUpdatedImage": "newImageName",
    "UpdateImagePermissions": "Name",
    "DeleteImagePermissions": "Name",
    "TagResource": "ResourceArn",
    "UntagResource": "ResourceArn",
}


def mutated_images(entries: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Image name -> the successful mutating calls made on it, in order."""
    changed: dict[str, list[str]] = {}
    for entry in entries:
        key = TARGET.get(entry["operation"])
        if key is None or entry.get("status") != 200:
            continue
        target = str(entry["params"].get(key, ""))
        name = target.rsplit("/", 1)[-1] if target.startswith("arn:") else target
        changed.setdefault(name, []).append(entry["operation"])
    return changed


def outside(entries: Iterable[dict[str, Any]], allowed: Iterable[str]) -> dict[str, list[str]]:
    """Mutations of images that are not in `allowed` (should be empty)."""
    allowed_set = set(allowed)
    return {name: ops for name, ops in mutated_images(entries).items() if name not in allowed_set}

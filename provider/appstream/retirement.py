"""Keep: the image a rotation replaced is retired instead of deleted, for a fleet to roll back to by name.

Retired: tagged `appstream-image-provider:retired` (the time, ISO 8601 UTC) and still owned (the ownership tag names
the same stack instance and logical id across rotations: contract.owner_value), its sharing revoked unless
KeepSharing. A resource's images are found by DescribeImages (PRIVATE, paged) and ListTagsForResource, bounded.
deletion.py decides when to retire (RETIREMENTS) and deletes those beyond the Keep most recent, waiting for each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import logs
from ..contract import OWNER_TAG, RETIRED_TAG
from ..errors import InvalidProperties
from . import images
from .properties import keep

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

# Private images looked at for this resource's own (one ListTagsForResource each): well above AppStream's
# images-per-region quota, which is on the order of tens (reference/appstream-images.md, Quotas).
MAX_SCANNED = 500


@dataclass(frozen=True)
class Family:
    """This resource's other images: those in use by the stack (a replacement's new image) and the retired ones."""

    live: tuple[str, ...] = ()
    retired: tuple[tuple[str, str], ...] = ()  # (retired at, name)
    complete: bool = True  # False: the look stopped at MAX_SCANNED images, so an image in use may be unseen

    def beyond(self, keep: int) -> list[str]:
        """The retired images past the `keep` most recent, the oldest first: deleted, each waited for."""
        newest_first = sorted(self.retired, reverse=True)
        return [name for _, name in reversed(newest_first[keep:])]


def family(client: AppStreamClient, owner: str, name: str) -> Family:
    """The images other than `name` whose ownership tag is `owner` (not those being deleted already)."""
    live: list[str] = []
    retired: list[tuple[str, str]] = []
    scanned = 0
    for page in client.get_paginator("describe_images").paginate(Type="PRIVATE"):
        for image in page.get("Images", []):
            other = str(image.get("Name", ""))
            if other == name or image.get("State") == "DELETING" or not image.get("Arn"):
                continue
            scanned += 1
            if scanned > MAX_SCANNED:
                logs.logger.warning(
                    "looked at %d private images for this resource's retired ones; the rest are not counted",
                    MAX_SCANNED,
                    extra={"image": name, "phase": "delete"},
                )
                return Family(tuple(live), tuple(retired), complete=False)
            tags = images.tags_of(client, str(image["Arn"]))
            if tags.get(OWNER_TAG) != owner:
                continue
            if RETIRED_TAG in tags:
                retired.append((tags[RETIRED_TAG], other))
            else:
                live.append(other)
    return Family(tuple(live), tuple(retired))


def stamp(now: float) -> str:
    """The retired tag's value: ISO 8601 UTC to the microsecond (they sort as they happened)."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def retire(client: AppStreamClient, image: images.Image, when: str, *, keep_sharing: bool) -> None:
    """Tag the image as retired (it keeps its ownership tag); revoke its sharing unless KeepSharing."""
    name, arn = str(image["Name"]), str(image["Arn"])
    images.tag(client, arn, {RETIRED_TAG: when})
    revoked = []
    if not keep_sharing:
        for account in sorted(images.shared_accounts(client, name)):
            images.unshare(client, name, account)  # their fleets on it drop to zero capacity (admin guide, sharing)
            revoked.append(account)
    sharing = "its sharing kept" if keep_sharing else f"sharing revoked ({', '.join(revoked) or 'none'})"
    logs.event(f"retired: kept for a fleet to roll back to by name; {sharing}", image=name, phase="delete",
               state=str(image.get("State")))  # fmt: skip


def retention(props: Any) -> tuple[int, bool]:
    """Keep and KeepSharing even from broken properties (a Delete must answer): a bad Keep means 0, as before Keep."""
    if not isinstance(props, Mapping):
        return 0, False
    try:
        count = keep(props.get("Keep", 0))
    except InvalidProperties:
        return 0, False
    return count, str(props.get("KeepSharing", "false")).lower() == "true"

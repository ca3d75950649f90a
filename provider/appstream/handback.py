"""Giving an image back instead of deleting it: release it, undo an adoption, or return it to a renamed resource.

- release: remove the provider's tags; the image keeps its user tags and sharing (OnDelete: Release).
- give back: an adoption undone (its Create failed or was rolled back): the tags and sharing that adoption set
  are put back as they were (the adopted tag's record), and the provider's tags removed.
- return: a rename undone (a new logical id's Create rolled back): the ownership goes back to the old one.
- restore sharing: what a Delete revoked, given back when DeleteImage did not go ahead.
Each logs what it did; none deletes anything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from .. import logs
from ..contract import ADOPTED_TAG, MAX_TAG_VALUE, MOVED_FROM_TAG, OWNER_TAG, PROVIDER_TAGS, SOURCE_TAG
from ..errors import NotPermitted
from . import images
from .ownership import Before, share_flags
from .properties import ImageProperties, Share

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient


def before_adoption(
    client: AppStreamClient, props: ImageProperties, current: Mapping[str, str], *, previous_owner: str | None
) -> Before:
    """What an adoption is about to change: the tags it sets and the accounts it shares with, as they are now
    (and, taking over from an owner whose stack is gone, that owner's tags)."""
    tags = {k: current.get(k) for k, v in props.tags if current.get(k) != v}
    if previous_owner is not None:
        tags |= {k: current[k] for k in (OWNER_TAG, SOURCE_TAG) if k in current}
    shared = images.shared_accounts(client, props.image_name) if props.shared_with else {}
    shares: dict[str, str | None] = {}
    for share in props.shared_with:
        was = shared.get(share.account_id)
        if was != share:
            shares[share.account_id] = share_flags(was.allow_fleet, was.allow_image_builder) if was else None
    before = Before(tags, shares)
    if len(before.encode()) > MAX_TAG_VALUE:
        raise NotPermitted(
            f"Adopting image {props.image_name} would change {len(tags)} of its tags and {len(shares)} of its "
            f"shares, too many to record for a rollback (a tag value of {MAX_TAG_VALUE} characters). "
            "Adopt it with fewer Tags and SharedWith entries that differ from what it has, and add them in an update"
        )
    return before


def release(client: AppStreamClient, image: images.Image, why: str) -> None:
    """Remove the provider's tags: the image is no longer this stack's, and keeps everything else."""
    images.untag(client, str(image["Arn"]), list(PROVIDER_TAGS))
    logs.event(f"released: {why}; the image is kept without the provider's tags", image=str(image["Name"]),
               phase="delete", state=str(image.get("State")))  # fmt: skip


def give_back(client: AppStreamClient, image: images.Image, tags: Mapping[str, str], why: str) -> None:
    """Undo an adoption: its tags and sharing as they were before it, then the provider's tags removed.

    Each step is tried even when another failed (logged by name): as much as possible is put back.
    """
    name, arn = str(image["Name"]), str(image["Arn"])
    before = Before.decode(tags.get(ADOPTED_TAG)) or Before()
    restore_tags = {k: v for k, v in before.tags.items() if v is not None}
    drop = [k for k, v in before.tags.items() if v is None and k in tags]
    drop += [k for k in PROVIDER_TAGS if k in tags and k not in restore_tags and k not in drop]
    steps: list[tuple[str, Callable[[], None]]] = [
        (f"sharing with {account}", functools.partial(_put_share_back, client, name, account, flags))
        for account, flags in before.shares.items()
    ]
    steps.append(("tags", functools.partial(images.untag, client, arn, drop)))
    if restore_tags:
        steps.append(("tag values", functools.partial(images.tag, client, arn, restore_tags)))
    failed = []
    for what, step in steps:
        try:
            step()
        except (ClientError, BotoCoreError) as err:
            failed.append(what)
            logs.logger.error("could not put back the %s of image %s: %s", what, name, err, extra={"image": name})
    logs.event(
        f"given back: {why}; its tags and sharing are as before the adoption "
        f"({len(before.tags)} tag(s), {len(before.shares)} share(s) put back"
        + (f"; not put back: {', '.join(failed)})" if failed else ")"),
        image=name,
        phase="delete",
        state=str(image.get("State")),
    )


def _put_share_back(client: AppStreamClient, name: str, account: str, flags: str | None) -> None:
    if flags is None:
        images.unshare(client, name, account)
    else:
        images.share(client, name, Share(account, "f" in flags, "b" in flags))


def return_to(client: AppStreamClient, image: images.Image, owner: str, why: str) -> None:
    """Undo a rename: the resource the image moved from owns it again."""
    arn = str(image["Arn"])
    images.tag(client, arn, {OWNER_TAG: owner})
    images.untag(client, arn, [MOVED_FROM_TAG])
    logs.event(f"returned to {owner}: {why}", image=str(image["Name"]), phase="delete", state=str(image.get("State")))


def restore_sharing(client: AppStreamClient, name: str, revoked: dict[str, Share]) -> None:
    """DeleteImage did not go ahead: give back the sharing a Delete revoked (each one given back leaves `revoked`;
    logged, never raises)."""
    for account, grant in list(revoked.items()):
        try:
            images.share(client, name, grant)
        except (ClientError, BotoCoreError) as err:
            logs.logger.error("could not give back sharing with %s on image %s: %s", account, name, err,
                              extra={"image": name})  # fmt: skip
            continue
        del revoked[account]
        logs.event(f"restored sharing with {account}: the image was not deleted", image=name, phase="delete")

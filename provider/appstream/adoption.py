"""Taking an image a Create did not make: adopting it (Source Existing), taking it over from an owner whose stack is
gone (Adopt: IfOwnerGone), or moving it to a renamed resource; and undoing that when the Create fails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError

from .. import logs
from ..contract import ADOPTED_TAG, MOVED_FROM_TAG, OWNER_TAG, PROVIDER_TAGS, RETIRED_TAG, SOURCE_TAG
from ..errors import NotOwned
from . import handback, images
from .ownership import moved_within, owner_of
from .properties import ImageProperties
from .sources import Source

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

    from .caller import Caller


def provider_tags(source: Source, owner: str) -> dict[str, str]:
    """The provider's own tags: who owns the image, and what it was made from."""
    return {OWNER_TAG: owner, SOURCE_TAG: source.fingerprint()}


Taken = Literal["adopted", "moved"] | None  # how this Create came to own an image it did not make


def gone_owner(found: str | None, owner: str, props: ImageProperties, caller: Caller) -> str | None:
    """With Adopt: IfOwnerGone, `found` (the image's owner, another stack's) when CloudFormation says its stack
    instance is gone; None otherwise (CloudFormation is asked only then)."""
    if props.adopt != "IfOwnerGone" or found in (None, owner) or moved_within(found or "", owner):
        return None
    return found if caller.owner_gone(str(found)) else None


def refused(name: str, arn: str, found: str, owner: str, adopt: str) -> str:
    """The Reason of a refused adoption: whose the image is, and exactly how to release it or take it over."""
    release = f"aws appstream untag-resource --resource-arn {arn} --tag-keys {' '.join(PROVIDER_TAGS)}"
    if adopt == "IfOwnerGone":
        return (
            f"Image {name} is owned by {found} ({OWNER_TAG}), whose stack still exists (or CloudFormation could not "
            f"say otherwise); it cannot be adopted by {owner} as well. Remove it from that stack, or release it "
            f"with: {release}"
        )
    return (
        f"Image {name} is owned by {found} ({OWNER_TAG}); it cannot be adopted by {owner} as well. If that stack "
        "no longer manages it (kept by DeletionPolicy Retain, or its stack is gone), set Adopt: IfOwnerGone to "
        f"take it over once that stack instance no longer exists, or release it with: {release}"
    )


def described(source: Source | str) -> str:
    """A Source for people: `Copy of plat-base`, without the source tag's digest."""
    text = source.fingerprint() if isinstance(source, Source) else source
    kind, _, rest = text.partition("/")
    origin = rest.rsplit("/", 1)[0] if "/" in rest else rest
    return f"{kind} of {origin}" if origin else kind


def apply_tags(  # noqa: PLR0917 - one call site passes what it already read
    client: AppStreamClient,
    image: images.Image,
    props: ImageProperties,
    old_keys: tuple[str, ...],
    owner: str,
    current: Mapping[str, str] | None = None,
    *,
    gone_owner: str | None = None,
) -> Taken:
    """The provider's and the user's tags; says how this call newly took the image (None: it was ours)."""
    arn = str(image["Arn"])
    current = images.tags_of(client, arn) if current is None else current
    found = owner_of(current)
    moving = found is not None and moved_within(found, owner)
    if found not in (None, owner, gone_owner) and not moving:
        raise NotOwned(refused(str(image["Name"]), arn, found or "", owner, props.adopt))
    desired: dict[str, str] = {**props.tag_map, **provider_tags(props.source, owner)}
    taken: Taken = None
    if moving and found is not None:
        desired[MOVED_FROM_TAG] = found
        taken = "moved"
    elif found != owner and props.source.type == "Existing":  # recorded before anything changes
        before = handback.before_adoption(client, props, current, previous_owner=found)
        if before.encode():
            desired[ADOPTED_TAG] = before.encode()
        taken = "adopted"
    stale = [k for k in (ADOPTED_TAG, MOVED_FROM_TAG) if k in current and k not in desired and taken is not None]
    stale += [RETIRED_TAG] if RETIRED_TAG in current and found == owner else []  # ours, kept, in use again
    images.untag(client, arn, [k for k in old_keys if k not in desired and k in current] + stale)
    images.tag(client, arn, {k: v for k, v in desired.items() if current.get(k) != v})
    return taken


def undo(client: AppStreamClient, image: images.Image, taken: Taken) -> None:
    """A Create that took an image and then failed gives it back as it found it (logged, never raises)."""
    try:
        tags = images.tags_of(client, str(image["Arn"]))
        moved_from = tags.get(MOVED_FROM_TAG)
        if taken == "moved" and moved_from:
            handback.return_to(client, image, moved_from, "the Create that moved it here failed")
        else:
            handback.give_back(client, image, tags, "the Create that adopted it failed")
    except (ClientError, BotoCoreError):
        logs.logger.exception("could not give image %s back after the failed Create", image["Name"])

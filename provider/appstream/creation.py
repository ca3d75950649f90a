"""Create and Update: adopt, copy or update into ImageName, mark it as owned, then wait (states.settle) and share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import logs
from ..contract import IMAGE_NAME, OWNER_TAG, RETIRED_TAG, SOURCE_TAG
from ..errors import (
    DeadlineExceeded,
    ImageFailed,
    InvalidProperties,
    NotOwned,
    NotPermitted,
    ProviderError,
    QuotaExceeded,
)
from . import adoption, images, states
from .ownership import moved_within, owner_of
from .properties import ImageProperties, parse
from .states import (
    DELETION_DELAYS,
    MAKING,
    QUOTA_DELAYS,
    Budget,
    Progress,
    delays,
    run,
)

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

    from .caller import Caller

IN_PROGRESS_STATE = {"Copy": "COPYING", "Update": "CREATING", "Import": "IMPORTING"}
VERBS = {"Copy": "copy", "Update": "update", "Import": "import"}
ALREADY_EXISTS = "ALREADY_EXISTS"
QUOTA_PROOF = 15.0  # seconds of "refused, yet nothing running" before concluding it is not a concurrency quota


class Made(ProviderError):
    """A Create failed after it made the image: its answer names the image, so the rollback deletes it."""

    def __init__(self, cause: str, image: str) -> None:
        super().__init__(f"{cause} (the rollback deletes image {image})")
        self.cause = cause
        self.image = image


def create(
    client: AppStreamClient,
    props: ImageProperties,
    owner: str,
    budget: Budget,
    caller: Caller,
) -> Progress:
    """Make or adopt `props.image_name`; `caller.claim(name)` is told once this request has made the image.

    `caller` also answers whether another owner's stack instance is gone (Adopt: IfOwnerGone).
    """
    name, source = props.image_name, props.source
    image = images.describe(client, name)
    moved, gone, current = False, None, None  # the tags are read once: whose it is, and what it has
    if image is not None:
        current, moved, gone = _whose(client, props, owner, image, caller)
        found = _existing(client, props, owner, image, budget, current, gone)
        if isinstance(found, Progress):
            return found  # the failed image is still being deleted: a scheduled invocation starts over
        if found is not image:  # made anew, or by another delivery: its tags are read again
            current, moved = None, False
        image = found
    if image is None and source.type == "Existing":
        raise ImageFailed(
            f"Image {name} does not exist. Source Type Existing adopts an image; use Copy or Update to make one"
        )
    made = image is None or (source.type != "Existing" and not moved)
    if image is None:
        started = _make(client, props, owner, budget, caller)
        if isinstance(started, Progress):
            return started  # waiting for a copy or update slot continues in a scheduled invocation
        image = started
    elif made:
        caller.claim(name)  # made by an earlier delivery of this same request
    taken: adoption.Taken = None
    try:
        taken = adoption.apply_tags(client, image, props, (), owner, current, gone_owner=gone)
        return replace(states.settle(client, props, budget, first=image), made=made)
    except (ProviderError, ClientError, BotoCoreError) as err:
        if made:
            raise Made(str(err), name) from err
        if taken is not None:
            adoption.undo(client, image, taken)
        raise


def _make(
    client: AppStreamClient, props: ImageProperties, owner: str, budget: Budget, caller: Caller
) -> images.Image | Progress:
    """CopyImage, CreateUpdatedImage or CreateImportedImage, then the new image once visible (claimed: a failure
    names it, so the rollback deletes it); Progress while waiting for a slot."""
    name = props.image_name
    started = _start(client, props, owner, budget)
    if not started.done:
        return started
    if started.state == ALREADY_EXISTS:
        image = _made_by_another_delivery(client, props, owner, budget.inline())
        caller.claim(name)
        return image
    caller.claim(name)
    try:
        return _appear(client, props, owner, budget.inline())
    except (ProviderError, ClientError, BotoCoreError) as err:
        raise Made(str(err), name) from err


def _whose(
    client: AppStreamClient, props: ImageProperties, owner: str, image: images.Image, caller: Caller
) -> tuple[Mapping[str, str], bool, str | None]:
    """A private image's tags, whether it moves here from a renamed resource, and its owner if that one's stack is
    gone (Adopt: IfOwnerGone); a public or shared image is refused."""
    if image.get("Visibility") != "PRIVATE":
        raise NotPermitted(
            f"Image {props.image_name} is {image.get('Visibility')}: only PRIVATE images this account owns can be "
            "managed"
        )
    current = images.tags_of(client, str(image["Arn"]))
    found = owner_of(current)
    return current, found is not None and moved_within(found, owner), adoption.gone_owner(found, owner, props, caller)


def _existing(  # noqa: PLR0917 - the request's parts
    client: AppStreamClient,
    props: ImageProperties,
    owner: str,
    image: images.Image,
    budget: Budget,
    current: Mapping[str, str],
    gone_owner: str | None,
) -> images.Image | Progress | None:
    """The image already there (a private one, with its tags `current`): adopt (Existing), take over from an owner
    whose stack is gone (`gone_owner`), pick up our own (a retry, a rename), or refuse. None: make it."""
    name, kind = props.image_name, props.source.type
    found = owner_of(current)
    if found is not None and moved_within(found, owner):  # a renamed construct: same stack instance, same image
        if kind != "Existing" and current.get(SOURCE_TAG) not in (None, props.source.fingerprint()):
            raise InvalidProperties(
                f"Invalid property Source: image {name} moves from {found} to {owner} (a renamed resource), but it "
                f"was made from {adoption.described(current.get(SOURCE_TAG, ''))}, "
                f"not from {adoption.described(props.source)}. "
                "Keep the Source as it was, or give the new Source a new ImageName"
            )
        logs.event(f"moving from {found} (a renamed or moved resource of this stack)", image=name, phase="create")
        return image
    if kind == "Existing":
        if found not in (None, owner, gone_owner):
            raise NotOwned(adoption.refused(name, str(image["Arn"]), found or "", owner, props.adopt))
        return image
    if found is None and str(image.get("State")) in MAKING:
        # CopyImage cannot tag: a duplicate delivery's fresh copy is untagged until it tags it (at least once).
        return _made_by_another_delivery(client, props, owner, budget.inline())
    if found != owner:
        raise NotOwned(
            f"Image {name} already exists and this resource did not make it (ownership tag: {found or 'none'}). "
            f"Source Type {kind} makes a new image and never adopts one: choose another ImageName, "
            "or adopt the image with Source Type Existing"
        )
    if RETIRED_TAG in current:  # a rename back to an image this resource kept (Keep): in use again, if the same
        if current.get(SOURCE_TAG) not in (None, props.source.fingerprint()):
            raise InvalidProperties(
                f"Invalid property ImageName: {name} is an image this resource retired (Keep), made from "
                f"{adoption.described(current.get(SOURCE_TAG, ''))}, not from {adoption.described(props.source)}. "
                "Give the Source it was made from to use it again, or choose another ImageName"
            )
        logs.event("back in use: an image this resource retired (Keep)", image=name, phase="create")
        return image
    state = str(image.get("State"))
    if state not in ("FAILED", "DELETING"):
        logs.event("picked up the image an earlier delivery of this request made", image=name, phase="create")
        return image
    if state == "FAILED":
        logs.event("deleting the FAILED image this resource made, to make it again", image=name, phase="create")
        images.start_delete(client, name)

    def gone() -> Progress:
        return Progress(images.describe(client, name) is None, "DELETING", started=False)

    progress = run(gone, budget, delays(*DELETION_DELAYS), f"the failed image {name} to be deleted")
    return None if progress.done else progress


def _start(client: AppStreamClient, props: ImageProperties, owner: str, budget: Budget) -> Progress:
    """CopyImage or CreateUpdatedImage; a concurrency quota is waited out, any other quota fails at once."""
    name, source = props.image_name, props.source
    verb = VERBS[source.type]
    unexplained: list[float] = []  # when a refusal with nothing running was first seen

    def step() -> Progress:
        try:
            if source.type == "Copy":  # CopyImage is called in the source's region, into this one
                origin = images.in_region(client, source.source_region or client.meta.region_name)
                images.copy(origin, source.source_image_name, name, source.description, into=client.meta.region_name)
            elif source.type == "Import":
                images.create_imported(client, name, source, {**props.tag_map, **adoption.provider_tags(source, owner)})
            elif not images.create_updated(
                client,
                source.source_image_name,
                name,
                display_name=source.display_name,
                description=source.description,
                tags={**props.tag_map, **adoption.provider_tags(source, owner)},
            ):
                raise ImageFailed(
                    f"AppStream will not update image {source.source_image_name} (canUpdateImage: false): it already "
                    f"has the latest agent and patches, so no image {name} was made. Keep using "
                    f"{source.source_image_name}, or try again after AWS releases new updates"
                )
        except ClientError as err:
            if images.error_code(err) == "ResourceAlreadyExistsException":  # not visible to our look before
                return Progress(True, ALREADY_EXISTS)
            if images.error_code(err) == images.NOT_FOUND and source.type in ("Copy", "Update"):
                where = f"region {source.source_region}" if source.source_region else "this account and region"
                raise InvalidProperties(
                    f"Invalid property Source.SourceImageName: image {source.source_image_name} does not exist in "
                    f"{where}, so there is nothing to {verb} into image {name}. Name an image "
                    "DescribeImages lists there (aws appstream describe-images --type PRIVATE)",
                    "Source.SourceImageName",
                    f"image {source.source_image_name} does not exist",
                ) from err
            if images.error_code(err) != "LimitExceededException":
                raise
            # LimitExceeded names no quota; only a running copy or update frees a slot by waiting.
            busy = images.in_progress(client, IN_PROGRESS_STATE[source.type])
            if not busy and (not unexplained or budget.clock() - unexplained[0] < QUOTA_PROOF):
                # A copy started a moment ago can still be invisible (read-after-write): look again shortly.
                unexplained[:1] = unexplained[:1] or [budget.clock()]
                return Progress(False, "QUEUED", f"{verb} refused for a quota; checking which", started=False)
            if not busy:
                raise QuotaExceeded(
                    f"AppStream refused to {verb} into image {name}: {err.response.get('Error', {}).get('Message')}. "
                    f"No {verb} is running, so waiting will not help: this is a quota such as the number of images "
                    "per account and region. Delete unused images or ask AWS to raise the quota"
                ) from err
            detail = f"{len(busy)} {verb}(s) running ({', '.join(busy[:3])}): waiting for a free {verb} slot"
            logs.event(detail, image=name, phase="create", state="QUEUED")
            return Progress(False, "QUEUED", detail, started=False)
        region = f" in {source.source_region}" if source.source_region else ""
        logs.event(f"started {source.type} from {source.source_image_name}{region}", image=name, phase="create")
        return Progress(True, "STARTED")

    # A Delete can stop the scheduled runs that wait on, not this invocation: it waits at most a slice.
    return run(step, budget.sliced(), delays(*QUOTA_DELAYS), f"a free {verb} slot for image {name}")


def _made_by_another_delivery(
    client: AppStreamClient, props: ImageProperties, owner: str, budget: Budget
) -> images.Image:
    """The name was taken after our look (read-after-write): only an image this resource owns is picked up.

    A duplicate delivery of this request may have just made it (and tags a copy once it sees it), so
    wait a while for it to appear with an ownership tag before deciding.
    """
    name = props.image_name
    found: list[images.Image] = []

    def step() -> Progress:
        image = images.describe(client, name)
        holder = owner_of(images.tags_of(client, str(image["Arn"]))) if image is not None else None
        if holder not in (None, owner):
            raise NotOwned(f"Image {name} was made meanwhile by {holder} ({OWNER_TAG}), not by this resource")
        if image is None or holder is None:
            return Progress(False, "NOT_YET_OWNED", "waiting for the image that took the name to show its owner")
        found.append(image)
        return Progress(True, str(image["State"]))

    try:
        run(step, budget.patient(), delays(*DELETION_DELAYS), f"image {name}, made meanwhile, to show its owner")
    except DeadlineExceeded as err:
        raise NotOwned(
            f"Image {name} was made meanwhile by someone else (no ownership tag after {budget.patience:.0f} s); "
            "Source Copy and Update never adopt an image they did not make"
        ) from err
    logs.event("picked up the image another delivery of this request made", image=name, phase="create")
    return found[-1]


def _appear(client: AppStreamClient, props: ImageProperties, owner: str, budget: Budget) -> images.Image:
    """Wait until the new image is visible (AppStream is eventually consistent), then mark it as owned."""
    name = props.image_name
    found: list[images.Image] = []

    def step() -> Progress:
        try:
            image = images.describe(client, name)
            if image is not None and props.source.type == "Copy":  # CopyImage takes no tags: tag at once
                images.tag(client, str(image["Arn"]), {**props.tag_map, **adoption.provider_tags(props.source, owner)})
        except ClientError as err:
            if images.error_code(err) not in images.TRANSIENT | {images.NOT_FOUND}:
                raise
            return Progress(False, "UNKNOWN", f"{err.operation_name} failed ({images.error_code(err)}); retrying")
        except BotoCoreError as err:
            return Progress(False, "UNKNOWN", f"{type(err).__name__}; retrying")
        if image is None:
            return Progress(False, "NOT_YET_VISIBLE", "the new image is not visible yet")
        found.append(image)
        return Progress(True, str(image["State"]))

    run(step, budget, delays(*DELETION_DELAYS), f"image {name} to appear after it was started")
    return found[-1]


def update(
    client: AppStreamClient,
    *,
    physical_id: str,
    new: ImageProperties,
    old_props: Any,
    owner: str,
    budget: Budget,
    caller: Caller,
) -> Progress:
    """A new ImageName is a replacement (CloudFormation then deletes the old one); the rest is in place.

    In place, the Source is compared with what the image was made from (its source tag), not with
    OldResourceProperties: a rollback Update carries the failed properties there (aws/aws-cdk#17040),
    and putting the resource back to the properties its image was made with must succeed.
    `caller.claim(name)` is told the image a replacement made, so that a later failure deletes it.
    """
    if new.image_name != physical_id:
        logs.event(f"replacing image {physical_id}", image=new.image_name, phase="update", state="REPLACING")
        try:
            return create(client, new, owner, budget, caller)
        except Made as err:  # the failed replacement is removed: the resource keeps its old image
            discard(client, err.image)
            raise ProviderError(f"{err.cause} (image {physical_id} is kept; image {err.image} is deleted)") from err
    try:
        old = parse(old_props)
    except InvalidProperties:
        old = ImageProperties(physical_id)
    image = images.describe(client, physical_id)
    if image is None:
        raise ImageFailed(f"Image {physical_id} no longer exists; give the resource a new ImageName to recreate it")
    current = images.tags_of(client, image["Arn"])
    found = owner_of(current)
    if found != owner:
        raise NotOwned(f"Image {physical_id} is owned by {found or 'no resource'} ({OWNER_TAG}), not by {owner}")
    made_from = current.get(SOURCE_TAG)
    if new.source.fingerprint() != (made_from or old.source.fingerprint()):
        was = adoption.described(made_from or old.source)
        raise InvalidProperties(
            f"Invalid property Source: it changed from {was} to {adoption.described(new.source)}, but ImageName stayed "
            f"{physical_id}. An image cannot be made again under its own name: give the new Source a new "
            f"ImageName (CloudFormation then replaces the image), or put the Source back. Image {physical_id} is "
            "kept as it is"
        )
    adoption.apply_tags(client, image, new, tuple(k for k, _ in old.tags), owner, current)
    kept = {s.account_id for s in new.shared_with}
    for share in old.shared_with:
        if share.account_id not in kept:
            images.unshare(client, physical_id, share.account_id)
            logs.event(f"revoked sharing with {share.account_id}", image=physical_id, phase="update")
    return states.settle(client, new, budget, first=image)


def abandoned(old_props: Any, physical_id: str) -> str:
    """The image a failed replacement was making, when this Update returns to `physical_id` (a rollback)."""
    name = old_props.get("ImageName") if isinstance(old_props, Mapping) else None
    return name if isinstance(name, str) and name != physical_id and IMAGE_NAME.match(name) else ""


def discard(client: AppStreamClient, name: str) -> None:
    """Start deleting an image a failed replacement made (FAILED images can be deleted at once)."""
    try:
        images.start_delete(client, name)
        logs.event("deleting the image the failed replacement made", image=name, phase="update", state="DELETING")
    except (ClientError, BotoCoreError, ProviderError) as err:
        logs.logger.error("could not delete image %s that the failed replacement made: %s", name, err)

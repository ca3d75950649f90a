"""Delete: only an image this resource owns; nothing changes unless DeleteImage goes ahead; wait until gone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import images, logs
from .contract import IMAGE_NAME, OWNER_TAG
from .errors import DeadlineExceeded, ImageInUse
from .ownership import owner_of
from .properties import Share
from .states import (
    DELETE_TABLE,
    DELETION_DELAYS,
    GONE,
    IN_USE_DELAY,
    Action,
    Budget,
    Progress,
    decide,
    delays,
    run,
)

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

IN_USE = "in use by "


def delete(client: AppStreamClient, *, physical_id: str, props: Any, owner: str, in_use: str, budget: Budget) -> bool:
    """True when nothing of this resource's is left; False to continue in a scheduled invocation."""
    declared = props.get("ImageName") if isinstance(props, Mapping) else None
    if not IMAGE_NAME.match(physical_id) or physical_id != declared:
        logs.event(
            "left in place: the physical id is not an image this resource created (failed or timed-out Create)",
            image=physical_id[:200],
            phase="delete",
            state="SKIPPED",
        )
        return True
    image = images.describe(client, physical_id)
    if image is None:
        logs.event("already gone", image=physical_id, phase="delete", state=GONE)
        return True
    found = owner_of(images.tags_of(client, image["Arn"])) if image.get("Visibility") == "PRIVATE" else None
    if found != owner:
        logs.event(
            f"left in place: the image is owned by {found or 'no resource'} ({OWNER_TAG}), not by {owner}",
            image=physical_id,
            phase="delete",
            state=str(image.get("State")),
        )
        return True

    seen = [image]  # the first step reuses this observation instead of describing again

    def step() -> Progress:
        return _step(client, physical_id, in_use, seen.pop() if seen else images.describe(client, physical_id))

    try:
        progress = run(step, budget, delays(*DELETION_DELAYS), f"image {physical_id} to be deleted")
    except DeadlineExceeded as err:
        last = err.progress
        if isinstance(last, Progress) and last.detail.startswith(IN_USE):
            raise give_up(physical_id, last.detail[len(IN_USE) :], waited=True) from err
        raise
    if progress.done:
        logs.event("deleted", image=physical_id, phase="delete", state=GONE)
    return progress.done


def give_up(name: str, users: str, *, waited: bool) -> ImageInUse:
    """The in-use failure: one log line and the Reason, both naming the image and what holds it."""
    how = "after waiting until the ServiceTimeout (InUse: Wait)" if waited else "at once (InUse: Fail)"
    message = (
        f"Gave up deleting image {name} {how}: it is in use by {users}. The image is kept, with its sharing; "
        "remove it from them (or delete them) and delete it again"
    )
    logs.logger.error(message, extra={"image": name, "phase": "delete", "state": "IN_USE"})
    return ImageInUse(message)


def _held(name: str, users: list[str], state: str, in_use: str) -> Progress:
    holders = ", ".join(users) or "another resource (AppStream says in use)"
    if in_use != "Wait":
        raise give_up(name, holders, waited=False)
    logs.event(f"waiting: {IN_USE}{holders}", image=name, phase="delete", state=state)
    return Progress(False, state, f"{IN_USE}{holders}", phase="delete", min_delay=IN_USE_DELAY)


def _step(client: AppStreamClient, name: str, in_use: str, image: images.Image | None) -> Progress:
    state = str(image["State"]) if image else GONE
    action = decide(DELETE_TABLE, state)
    logs.event("observed", image=name, phase="delete", state=state)
    if action is Action.DELETE and image is not None:
        return _attempt(client, name, str(image["Arn"]), state, in_use)
    return Progress(action is Action.DONE, state, phase="delete")


def _attempt(client: AppStreamClient, name: str, arn: str, state: str, in_use: str) -> Progress:
    """Check users, revoke sharing, DeleteImage; a refusal gives the sharing back."""
    users = images.users_of(client, name, arn)
    if users:  # nothing is revoked while fleets or builders hold the image: the delete would be refused
        return _held(name, users, state, in_use)
    revoked = images.shared_accounts(client, name)
    for account in revoked:
        images.unshare(client, name, account)
        logs.event(f"revoked sharing with {account}", image=name, phase="delete", state=state)
    try:
        images.start_delete(client, name)
    except ClientError as err:
        code = images.error_code(err)
        users = images.users_of(client, name, arn) if code == "ResourceInUseException" else []
        if code == "ResourceInUseException" and revoked and not users:
            # The revocations are not applied yet (eventual consistency): try again shortly.
            return Progress(False, state, "waiting for the revoked sharing to apply", phase="delete")
        _restore(client, name, revoked)
        if code == "ResourceInUseException":
            return _held(name, users, state, in_use)
        if code == "ConcurrentModificationException":
            return Progress(False, state, "concurrent modification, retrying", phase="delete")
        raise
    logs.event("DeleteImage accepted", image=name, phase="delete", state="DELETING")
    return Progress(False, "DELETING", phase="delete")


def _restore(client: AppStreamClient, name: str, revoked: Mapping[str, Share]) -> None:
    """DeleteImage did not go ahead: give back the sharing this step revoked."""
    for share in revoked.values():
        images.share(client, name, share)
        logs.event(f"restored sharing with {share.account_id}: the image was not deleted", image=name, phase="delete")

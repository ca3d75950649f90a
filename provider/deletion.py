"""Delete: only an image this resource owns; nothing changes unless DeleteImage goes ahead; wait until gone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import images, logs
from .contract import DEFAULT_IN_USE, DEFAULT_SHARED_ON_DELETE, IMAGE_NAME, OWNER_TAG
from .errors import DeadlineExceeded, ImageInUse, ImageShared, ProviderError
from .ownership import owner_of
from .properties import Share
from .states import (
    DELETE_TABLE,
    DELETION_DELAYS,
    GONE,
    IN_USE_DELAY,
    QUOTA_DELAYS,
    Action,
    Budget,
    Phase,
    Progress,
    decide,
    delays,
    run,
)

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient


@dataclass
class Deletion:
    """One Delete's settings and what it has changed so far (carried across scheduled invocations)."""

    name: str
    in_use: str = DEFAULT_IN_USE
    shared_on_delete: str = DEFAULT_SHARED_ON_DELETE
    revoked: dict[str, Share] = field(default_factory=dict)  # given back on every path that does not delete
    not_gone_before: float = 0.0  # an absent image counts as gone only from then (a stopped poller's last run)


def delete(client: AppStreamClient, *, physical_id: str, props: Any, owner: str, job: Deletion, budget: Budget) -> bool:
    """True when nothing of this resource's is left; False to continue in a scheduled invocation.

    Every failure (in use, refused, deadline) first gives back the sharing this Delete revoked.
    """
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
    if image is None and budget.clock() < job.not_gone_before:
        image = _appearing(client, job, budget)
        if image is None and budget.clock() < job.not_gone_before:
            return False  # the wait goes on in a scheduled invocation
    if image is None:
        logs.event("already gone", image=physical_id, phase="delete", state=GONE)
        return True
    found = owner_of(images.tags_of(client, image["Arn"])) if image.get("Visibility") == "PRIVATE" else None
    if found != owner:
        restore(client, job)  # an earlier step's revocations, should the image have changed hands meanwhile
        logs.event(
            f"left in place: the image is owned by {found or 'no resource'} ({OWNER_TAG}), not by {owner}",
            image=physical_id,
            phase="delete",
            state=str(image.get("State")),
        )
        return True

    seen = [image]  # the first step reuses this observation instead of describing again

    def step() -> Progress:
        return _step(client, job, seen.pop() if seen else images.describe(client, physical_id))

    try:
        progress = run(step, budget, delays(*DELETION_DELAYS), f"image {physical_id} to be deleted")
    except DeadlineExceeded as err:
        restore(client, job)
        last = err.progress
        if isinstance(last, Progress) and last.holders:
            raise give_up(physical_id, last.holders, waited=True) from err
        raise
    except (ProviderError, ClientError, BotoCoreError):
        restore(client, job)
        raise
    if progress.done:
        logs.event("deleted", image=physical_id, phase="delete", state=GONE)
    return progress.done


def _appearing(client: AppStreamClient, job: Deletion, budget: Budget) -> images.Image | None:
    """Until `not_gone_before`: an image the stopped polling may still start (a queued copy) is looked for."""
    found: list[images.Image] = []

    def step() -> Progress:
        image = images.describe(client, job.name)
        if image is not None:
            found.append(image)
        waiting = image is None and budget.clock() < job.not_gone_before
        return Progress(not waiting, "NOT_STARTED", "a stopped run may still start it", phase=Phase.DELETE)

    logs.event("waiting until a stopped run could no longer start the image", image=job.name, phase="delete")
    run(step, budget, delays(*QUOTA_DELAYS), f"image {job.name}, which a stopped run may still start")
    return found[-1] if found else None


def give_up(name: str, users: tuple[str, ...], *, waited: bool) -> ImageInUse:
    """The in-use failure: one log line and the Reason, both naming the image and what holds it."""
    how = "after waiting until the ServiceTimeout (InUse: Wait)" if waited else "at once (InUse: Fail)"
    message = (
        f"Gave up deleting image {name} {how}: it is in use by {', '.join(users)}. The image is kept, with its "
        "sharing; remove it from them (or delete them) and delete it again"
    )
    logs.logger.error(message, extra={"image": name, "phase": "delete", "state": "IN_USE"})
    return ImageInUse(message)


def _held(job: Deletion, users: list[str], state: str) -> Progress:
    holders = tuple(users) or ("another resource (AppStream says in use)",)
    if job.in_use != "Wait":
        raise give_up(job.name, holders, waited=False)
    logs.event(f"waiting: in use by {', '.join(holders)}", image=job.name, phase="delete", state=state)
    return Progress(False, state, "in use", phase=Phase.DELETE, min_delay=IN_USE_DELAY, holders=holders)


def _step(client: AppStreamClient, job: Deletion, image: images.Image | None) -> Progress:
    state = str(image["State"]) if image else GONE
    action = decide(DELETE_TABLE, state)
    logs.event("observed", image=job.name, phase="delete", state=state)
    if action is Action.DELETE and image is not None:
        return _attempt(client, job, str(image["Arn"]), state)
    return Progress(action is Action.DONE, state, phase=Phase.DELETE)


def _attempt(client: AppStreamClient, job: Deletion, arn: str, state: str) -> Progress:
    """Check fleets, revoke sharing, DeleteImage; a refusal gives the sharing back."""
    name = job.name
    # DeleteImage's documented blocker is use ("You cannot delete an image when it is in use", API reference),
    # which the admin guide spells out for fleets; an image builder is named only if AppStream refuses.
    fleets = images.fleets_using(client, name, arn)
    if fleets:  # nothing is revoked while fleets hold the image: the delete would be refused
        return _held(job, fleets, state)
    shared = images.shared_accounts(client, name)
    if shared and job.shared_on_delete == "Fail":
        restore(client, job)
        raise ImageShared(
            f"Gave up deleting image {name} at once (SharedOnDelete: Fail): it is shared with "
            f"{', '.join(sorted(shared))}. Revoking would set their fleets on this image to zero capacity; "
            "the image is kept with its sharing. Unshare it and delete it again, or set SharedOnDelete to Revoke"
        )
    if shared:
        fleet_users = sorted(a for a, s in shared.items() if s.allow_fleet)
        logs.logger.warning(
            "revoking sharing with %s before DeleteImage; %s",
            ", ".join(sorted(shared)),
            f"fleets of {', '.join(fleet_users)} that use this image drop to zero capacity"
            if fleet_users
            else "no account may use it for fleets",
            extra={"image": name, "phase": "delete", "state": state, "accounts": sorted(shared)},
        )
    for account, share in shared.items():
        images.unshare(client, name, account)
        job.revoked[account] = share
        logs.event(f"revoked sharing with {account}", image=name, phase="delete", state=state)
    try:
        images.start_delete(client, name)
    except ClientError as err:
        code = images.error_code(err)
        if code == "ResourceInUseException":
            users = images.users_of(client, name, arn)
            if job.revoked and not users:
                # The revocations are not applied yet (eventual consistency): try again shortly.
                return Progress(False, state, "waiting for the revoked sharing to apply", phase=Phase.DELETE)
            restore(client, job)
            return _held(job, users, state)
        if code == "ConcurrentModificationException":
            return Progress(False, state, "concurrent modification, retrying", phase=Phase.DELETE)
        raise
    job.revoked.clear()  # the image is going: nothing to give back
    logs.event("DeleteImage accepted", image=name, phase="delete", state="DELETING")
    return Progress(False, "DELETING", phase=Phase.DELETE)


def restore(client: AppStreamClient, job: Deletion) -> None:
    """DeleteImage did not go ahead: give back the sharing this Delete revoked (logged, never raises)."""
    for account, share in list(job.revoked.items()):
        try:
            images.share(client, job.name, share)
        except (ClientError, BotoCoreError) as err:
            logs.logger.error(
                "could not give back sharing with %s on image %s: %s", account, job.name, err, extra={"image": job.name}
            )
            continue
        del job.revoked[account]
        logs.event(f"restored sharing with {account}: the image was not deleted", image=job.name, phase="delete")

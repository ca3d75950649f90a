"""Delete: only an image this resource owns; nothing changes unless DeleteImage goes ahead; wait until gone."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import logs
from ..contract import (
    DEFAULT_IN_USE,
    DEFAULT_SHARED_ON_DELETE,
    IMAGE_NAME,
    MOVED_FROM_TAG,
    ON_DELETE_MODES,
    OWNER_TAG,
    SOURCE_TAG,
)
from ..errors import DeadlineExceeded, ImageInUse, ImageShared, ProviderError
from . import exports, handback, images
from .ownership import owner_of
from .properties import Share
from .states import (
    DELETE_TABLE,
    DELETION_DELAYS,
    GONE,
    IN_USE_DELAY,
    MAKING,
    QUOTA_DELAYS,
    Action,
    Budget,
    Progress,
    decide,
    delays,
    run,
)

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

    from .caller import Caller


class Ending(enum.Enum):
    """What a Delete does with an image this resource owns."""

    DELETE = "delete"
    RELEASE = "release"  # the provider's tags removed; the image kept as it is
    GIVE_BACK = "give back"  # an adoption undone: tags and sharing as before it, the provider's tags removed


# (made by this resource, the Delete undoes its Create, OnDelete deletes) -> the ending. "Undoes" is None when
# CloudFormation could not be asked: then nothing the stack did not make is deleted, and OnDelete decides the rest.
ENDINGS: dict[tuple[bool, bool | None, bool], Ending] = {
    (True, True, True): Ending.DELETE,  # a rolled-back Create leaves the account as it found it
    (True, True, False): Ending.DELETE,
    (True, False, True): Ending.DELETE,
    (True, False, False): Ending.RELEASE,
    (True, None, True): Ending.DELETE,
    (True, None, False): Ending.RELEASE,
    (False, True, True): Ending.GIVE_BACK,  # an adopted image is never deleted by a rollback
    (False, True, False): Ending.GIVE_BACK,
    (False, False, True): Ending.DELETE,  # OnDelete: Delete, asked for by the user
    (False, False, False): Ending.RELEASE,
    (False, None, True): Ending.RELEASE,
    (False, None, False): Ending.RELEASE,
}


def on_delete(props: Any) -> bool | None:
    """OnDelete even from broken properties: True for Delete, False for Release, None when not given (or unclear):
    then the default for what the image is decides (Delete for one the resource made, Release for one it adopted)."""
    value = props.get("OnDelete") if isinstance(props, Mapping) else None
    return value == "Delete" if value in ON_DELETE_MODES else None


@dataclass
class Deletion:
    """One Delete's settings and what it has changed so far (carried across scheduled invocations)."""

    name: str
    in_use: str = DEFAULT_IN_USE
    shared_on_delete: str = DEFAULT_SHARED_ON_DELETE
    revoked: dict[str, Share] = field(default_factory=dict)  # given back on every path that does not delete
    not_gone_before: float = 0.0  # an absent (or not yet owned) image counts as gone only from then
    stops_polling: bool = False  # a Create's polling may still make the image: stopped at each look for it
    deletes: bool | None = None  # OnDelete: Delete (True), Release (False), or the default for what the image is
    # Whether this Delete undoes the resource's Create (a rollback): None asks the caller, only when it matters.
    undoes_create: bool | None = None
    never_answered: bool = False  # a Create that never answered (CloudFormation's own physical id): a rollback


def delete(
    client: AppStreamClient, *, physical_id: str, props: Any, owner: str, job: Deletion, budget: Budget, caller: Caller
) -> bool:
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
    tags = _tags(client, image)  # read once: whose it is, and what the Delete keeps of it
    found = owner_of(tags)
    if found != owner and budget.clock() < job.not_gone_before:
        image, tags = _appearing(client, job, owner, budget, caller)
        found = owner_of(tags)
        if found != owner and budget.clock() < job.not_gone_before:
            return False  # the wait goes on in a scheduled invocation
    if image is None:
        logs.event("already gone", image=physical_id, phase="delete", state=GONE)
        return True
    if found != owner:
        restore(client, job)  # an earlier step's revocations, should the image have changed hands meanwhile
        if tags.get(MOVED_FROM_TAG) == owner:  # CloudFormation's cleanup after a rename: the move is final
            images.untag(client, str(image["Arn"]), [MOVED_FROM_TAG])
        logs.event(
            f"left in place: the image is owned by {found or 'no resource'} ({OWNER_TAG}), not by {owner}",
            image=physical_id,
            phase="delete",
            state=str(image.get("State")),
        )
        return True
    if _kept(client, job, image, tags, props, caller):
        return True

    seen = [image]  # the first step reuses this observation instead of describing again

    def step() -> Progress:
        return _step(client, job, seen.pop() if seen else images.describe(client, physical_id))

    try:
        progress = run(step, budget, delays(*DELETION_DELAYS), f"image {physical_id} to be deleted")
    except DeadlineExceeded as err:
        restore(client, job)
        raise _explained(err, physical_id, owner) from err
    except (ProviderError, ClientError, BotoCoreError):
        restore(client, job)
        raise
    if progress.done:
        logs.event("deleted", image=physical_id, phase="delete", state=GONE)
    return progress.done


def _kept(  # noqa: PLR0917 - what the Delete has read so far
    client: AppStreamClient, job: Deletion, image: images.Image, tags: Mapping[str, str], props: Any, caller: Caller
) -> bool:
    """An image this resource owns that the Delete keeps: returned after a rename, released or given back (ENDINGS)."""
    moved_from = tags.get(MOVED_FROM_TAG)
    if moved_from and _undoes_create(job, caller) is not False:  # the old logical id's cleanup has not come: a rollback
        handback.return_to(client, image, moved_from, "the rename that moved it here was rolled back")
        return True
    made_from = tags.get(SOURCE_TAG)
    if made_from is None and job.never_answered:
        logs.event("left in place: no source tag says this resource made it (an image from before that tag)",
                   image=job.name, phase="delete", state=str(image.get("State")))  # fmt: skip
        return True
    source = props.get("Source") if isinstance(props, Mapping) else None
    made = made_from != "Existing" if made_from is not None else isinstance(source, Mapping) and source.get(
        "Type", "Existing") != "Existing"  # fmt: skip
    deletes = made if job.deletes is None else job.deletes  # OnDelete's default: Delete what the resource made
    needs_answer = not (made and deletes)  # the only ending a rollback cannot change: deleting what it made
    undoes = True if job.never_answered else _undoes_create(job, caller) if needs_answer else None
    ending = ENDINGS[(made, undoes, deletes)]
    if ending is Ending.RELEASE:
        handback.release(client, image, "OnDelete is Release" if not deletes else "CloudFormation could not say "
                         "whether this Delete undoes its Create, so the image is kept")  # fmt: skip
    elif ending is Ending.GIVE_BACK:
        handback.give_back(client, image, tags, "the Create that adopted it was undone")
    return ending is not Ending.DELETE


def _undoes_create(job: Deletion, caller: Caller) -> bool | None:
    """Whether this Delete undoes the resource's Create: known (a discard), else CloudFormation is asked."""
    return caller.rolling_back() if job.undoes_create is None else job.undoes_create


def _explained(err: DeadlineExceeded, name: str, owner: str) -> ProviderError:
    """The deadline's failure, saying what held the image: its users, or AppStream still making it."""
    last = err.progress
    if isinstance(last, Progress) and last.holders:
        return give_up(name, last.holders, waited=True)
    if isinstance(last, Progress) and last.state in MAKING:
        return still_making(name, last.state, owner)
    return err


def _tags(client: AppStreamClient, image: images.Image | None) -> dict[str, str]:
    """A private image's tags ({} for none, or for a public or shared one: never this resource's)."""
    return images.tags_of(client, image["Arn"]) if image and image.get("Visibility") == "PRIVATE" else {}


def _appearing(
    client: AppStreamClient, job: Deletion, owner: str, budget: Budget, caller: Caller
) -> tuple[images.Image | None, dict[str, str]]:
    """Until `not_gone_before`: a Create that may still run (stopped, or cancelled by CloudFormation) may yet make
    the image, or tag it as this resource's; look for that, stopping its polling each time."""
    found: list[tuple[images.Image | None, dict[str, str]]] = [(None, {})]

    def step() -> Progress:
        if job.stops_polling:
            caller.stop_polling(job.name)
        image = images.describe(client, job.name)
        found[0] = (image, _tags(client, image))
        waiting = owner_of(found[0][1]) != owner and budget.clock() < job.not_gone_before
        return Progress(not waiting, "NOT_YET_MADE", "a Create that may still run may yet make it")

    logs.event("waiting until a Create that may still run could no longer make the image", image=job.name)
    run(step, budget, delays(*QUOTA_DELAYS), f"image {job.name}, which a Create that may still run may yet make")
    return found[0]


def still_making(name: str, state: str, owner: str) -> DeadlineExceeded:
    """AppStream deletes an image only once it has settled, and that outlasted this Delete: fail, naming it."""
    message = (
        f"Image {name} is still {state}: AppStream deletes an image only once it is AVAILABLE or FAILED, and it did "
        "not settle within the ServiceTimeout. It is kept, tagged as this resource's "
        f"({OWNER_TAG} = {owner}); delete the stack (or this resource) again once it has settled"
    )
    logs.logger.error(message, extra={"image": name, "phase": "delete", "state": state})
    return DeadlineExceeded(message)


def give_up(name: str, users: tuple[str, ...], *, waited: bool) -> ImageInUse:
    """The in-use failure: one log line and the Reason, both naming the image and what holds it."""
    how = "after waiting until the ServiceTimeout (InUse: Wait)" if waited else "at once (InUse: Fail)"
    message = (
        f"Gave up deleting image {name} {how}: it is in use by {', '.join(users)}. The image is kept, with its "
        "sharing; remove it from them (or delete them) and delete it again"
    )
    if any(user.startswith("export task ") for user in users):
        message += ". An export task ends by itself (GetExportImageTask shows its state): delete again once it has"
    logs.logger.error(message, extra={"image": name, "phase": "delete", "state": "IN_USE"})
    return ImageInUse(message)


def _held(job: Deletion, users: list[str], state: str) -> Progress:
    holders = tuple(users) or ("another resource (AppStream says in use)",)
    if job.in_use != "Wait":
        raise give_up(job.name, holders, waited=False)
    logs.event(f"waiting: in use by {', '.join(holders)}", image=job.name, phase="delete", state=state)
    return Progress(False, state, "in use", min_delay=IN_USE_DELAY, holders=holders)


def _step(client: AppStreamClient, job: Deletion, image: images.Image | None) -> Progress:
    state = str(image["State"]) if image else GONE
    action = decide(DELETE_TABLE, state)
    logs.event("observed", image=job.name, phase="delete", state=state)
    if action is Action.DELETE and image is not None:
        return _attempt(client, job, str(image["Arn"]), state)
    return Progress(action is Action.DONE, state)


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
            # An export to an AMI (CreateExportImageTask) holds the image too: named from ListExportImageTasks.
            users = images.users_of(client, name, arn) + [
                f"export task {task}" for task in exports.exports_in_progress(client, arn)
            ]
            if job.revoked and not users:
                # The revocations are not applied yet (eventual consistency): try again shortly.
                return Progress(False, state, "waiting for the revoked sharing to apply")
            restore(client, job)
            return _held(job, users, state)
        if code == "ConcurrentModificationException":
            return Progress(False, state, "concurrent modification, retrying")
        raise
    job.revoked.clear()  # the image is going: nothing to give back
    logs.event("DeleteImage accepted", image=name, phase="delete", state="DELETING")
    return Progress(False, "DELETING")


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

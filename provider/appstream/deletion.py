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
    RETIRED_TAG,
    SOURCE_TAG,
)
from ..errors import DeadlineExceeded, ImageInUse, ImageShared, ProviderError
from . import exports, handback, images, retirement
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
    RETIRE = "retire"  # Keep: tagged as retired and kept for a fleet to roll back to (retirement.py)
    DELETE_ALL = "delete all"  # Keep: deleted, and this resource's retired images with it


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


# Keep > 0, where ENDINGS deletes an image the resource made: (the Delete undoes its Create, another image of this
# resource is in use by the stack) -> the ending. CloudFormation's cleanup Delete after a replacement comes once the
# new image is this resource's (same logical id: contract.owner_value); a stack delete, or the resource removed from
# the template, leaves no other image. The cleanup runs in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS (user guide, stack
# status codes), a rollback's in a *ROLLBACK* status (stacks.ROLLBACK_STATUSES).
RETIREMENTS: dict[tuple[bool | None, bool], Ending] = {
    (True, True): Ending.DELETE,  # a rollback never retires: it deletes what it made, as with Keep 0
    (True, False): Ending.DELETE,
    (False, True): Ending.RETIRE,  # a rotation's cleanup: kept, and the retired ones past Keep deleted
    (False, False): Ending.DELETE_ALL,  # a stack delete (or the resource removed): nothing of it is left
    (None, True): Ending.RETIRE,  # not known whether a rollback: kept, which loses nothing
    (None, False): Ending.DELETE,  # not known: the retired images are kept
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
    keep: int = 0  # Keep: a rotation's cleanup retires the image; the retired ones past this many are deleted
    keep_sharing: bool = False  # KeepSharing: a retired image keeps its sharing
    then_delete: list[str] = field(default_factory=list)  # retired images to delete once `name` is done
    retired: bool = False  # `name` is a retired image being deleted (then_delete's): no ending to decide


def delete(
    client: AppStreamClient, *, physical_id: str, props: Any, owner: str, job: Deletion, budget: Budget, caller: Caller
) -> bool:
    """True when nothing of this resource's is left; False to continue in a scheduled invocation.

    Every failure (in use, refused, deadline) first gives back the sharing this Delete revoked.
    """
    if not job.retired and not _delete_this(client, physical_id, props, owner, job, budget, caller):
        return False
    return _then_delete(client, owner, job, budget)


def _delete_this(  # noqa: PLR0917 - delete's arguments, passed through
    client: AppStreamClient, physical_id: str, props: Any, owner: str, job: Deletion, budget: Budget, caller: Caller
) -> bool:
    """The Delete's own image: kept (ENDINGS, RETIREMENTS) or deleted and waited for."""
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
        # An earlier step's revocations, should the image have changed hands meanwhile.
        handback.restore_sharing(client, job.name, job.revoked)
        if tags.get(MOVED_FROM_TAG) == owner:  # CloudFormation's cleanup after a rename: the move is final
            images.untag(client, str(image["Arn"]), [MOVED_FROM_TAG])
        logs.event(
            f"left in place: the image is owned by {found or 'no resource'} ({OWNER_TAG}), not by {owner}",
            image=physical_id,
            phase="delete",
            state=str(image.get("State")),
        )
        return True
    if _kept(client, job, image, tags, props, caller, owner, budget.clock()):
        return True
    return _delete_image(client, job, image, owner, budget)


def _then_delete(client: AppStreamClient, owner: str, job: Deletion, budget: Budget) -> bool:
    """The retired images this Delete removes (past Keep, or all on a stack delete), one at a time, each waited for;
    False to go on in a scheduled invocation (its state: the image under way and those after it)."""
    while job.retired or job.then_delete:
        if not job.retired:
            job.name, job.then_delete = job.then_delete[0], job.then_delete[1:]
            job.retired, job.revoked, job.not_gone_before, job.stops_polling = True, {}, 0.0, False
        image = images.describe(client, job.name)
        tags = _tags(client, image)
        if image is not None and owner_of(tags) == owner and RETIRED_TAG in tags:
            logs.event("deleting a retired image (past Keep, or its resource is going)", image=job.name,
                       phase="delete", state=str(image.get("State")))  # fmt: skip
            if not _delete_image(client, job, image, owner, budget):
                return False
        else:
            logs.event("retired image already gone, or no longer this resource's", image=job.name, phase="delete")
        job.retired = False
    return True


def _delete_image(client: AppStreamClient, job: Deletion, image: images.Image, owner: str, budget: Budget) -> bool:
    """DeleteImage (sharing revoked first) and the wait until it is gone; False to continue in a scheduled run."""
    physical_id = job.name
    seen = [image]  # the first step reuses this observation instead of describing again

    def step() -> Progress:
        return _step(client, job, seen.pop() if seen else images.describe(client, physical_id))

    try:
        progress = run(step, budget, delays(*DELETION_DELAYS), f"image {physical_id} to be deleted")
    except DeadlineExceeded as err:
        handback.restore_sharing(client, job.name, job.revoked)
        raise _explained(err, physical_id, owner) from err
    except (ProviderError, ClientError, BotoCoreError):
        handback.restore_sharing(client, job.name, job.revoked)
        raise
    if progress.done:
        logs.event("deleted", image=physical_id, phase="delete", state=GONE)
    return progress.done


def _kept(  # noqa: PLR0917 - what the Delete has read so far
    client: AppStreamClient,
    job: Deletion,
    image: images.Image,
    tags: Mapping[str, str],
    props: Any,
    caller: Caller,
    owner: str,
    now: float,
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
    keeps = job.keep > 0 and made and deletes  # Keep: a rotation's cleanup retires what a rollback would delete
    needs_answer = not (made and deletes) or keeps  # else the only ending a rollback cannot change: deleting it
    undoes = True if job.never_answered else _undoes_create(job, caller) if needs_answer else None
    ending = ENDINGS[(made, undoes, deletes)]
    if ending is Ending.DELETE and keeps:
        ending = _retirement(client, job, image, owner, undoes, now)
    if ending is Ending.RELEASE:
        handback.release(client, image, "OnDelete is Release" if not deletes else "CloudFormation could not say "
                         "whether this Delete undoes its Create, so the image is kept")  # fmt: skip
    elif ending is Ending.GIVE_BACK:
        handback.give_back(client, image, tags, "the Create that adopted it was undone")
    return ending not in (Ending.DELETE, Ending.DELETE_ALL)


def _retirement(  # noqa: PLR0917 - what _kept knows
    client: AppStreamClient, job: Deletion, image: images.Image, owner: str, undoes: bool | None, now: float
) -> Ending:
    """RETIREMENTS: retire the image (then delete the retired ones past Keep), or delete it and every retired one."""
    family = retirement.family(client, owner, job.name) if undoes is not True else retirement.Family()
    # A look cut short may have missed the image in use: counted as one, the image is retired, which loses nothing.
    ending = RETIREMENTS[(undoes, bool(family.live) or not family.complete)]
    if ending is Ending.RETIRE:
        when = retirement.stamp(now)
        retirement.retire(client, image, when, keep_sharing=job.keep_sharing)
        job.then_delete = retirement.Family(family.live, (*family.retired, (when, job.name))).beyond(job.keep)
    elif ending is Ending.DELETE_ALL:
        job.then_delete = [name for _, name in sorted(family.retired)]
    return ending


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
        handback.restore_sharing(client, job.name, job.revoked)
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
            handback.restore_sharing(client, job.name, job.revoked)
            return _held(job, users, state)
        if code == "ConcurrentModificationException":
            return Progress(False, state, "concurrent modification, retrying")
        raise
    job.revoked.clear()  # the image is going: nothing to give back
    logs.event("DeleteImage accepted", image=name, phase="delete", state="DELETING")
    return Progress(False, "DELETING")

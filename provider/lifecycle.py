"""Create, Update and Delete of one Custom::AppStreamImage, as steps that can resume in a later invocation.

`handle` returns the physical id when the request is finished, or None to hand over to
scheduled polling, plus the Data to keep (attributes, and `_Resume` while polling).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from provider import images, logs
from provider.errors import (
    CreateFailed,
    ImageFailed,
    ImageInUse,
    InvalidProperties,
    NotOwned,
    NotPermitted,
    ProviderError,
)
from provider.ownership import OWNER_TAG, owner_of, owner_value
from provider.properties import IMAGE_NAME, MAX_TIMEOUT, ImageProperties, Share, parse, service_timeout
from provider.states import (
    AVAILABLE_TABLE,
    DELETE_TABLE,
    DELETION_DELAYS,
    GONE,
    SETTLE_DELAYS,
    Action,
    Budget,
    Progress,
    decide,
    delays,
    run,
)

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

HAND_OVER_MARGIN = 10.0  # seconds kept back to set up polling and send the response
POLL_SLICE = 40.0  # a scheduled invocation waits at most this long, well inside the 1-minute rate
RESUME = "_Resume"


@dataclass(frozen=True)
class Resume:
    """What a scheduled invocation needs to continue; compact, so the polling input stays small."""

    deadline: float
    image: str
    wait: bool = True
    in_use: str = "Fail"
    shares: tuple[str, ...] = ()  # "<account>:<fleet 0|1><builder 0|1>"
    made: bool = False  # this Create made the image: a failure hands it to the rollback

    def to_data(self) -> dict[str, Any]:
        return {
            "d": self.deadline,
            "i": self.image,
            "w": self.wait,
            "u": self.in_use,
            "s": list(self.shares),
            "m": self.made,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Resume:
        return cls(
            float(data["d"]), str(data["i"]), bool(data["w"]), str(data["u"]), tuple(data["s"]), bool(data.get("m"))
        )

    def share_list(self) -> tuple[Share, ...]:
        return tuple(Share(s[:12], s[13] == "1", s[14] == "1") for s in self.shares)


def _encode_shares(shares: tuple[Share, ...]) -> tuple[str, ...]:
    return tuple(f"{s.account_id}:{int(s.allow_fleet)}{int(s.allow_image_builder)}" for s in shares)


def deadline_for(timeout: int, start: float) -> float:
    """Answer before CloudFormation's own ServiceTimeout fires."""
    return start + timeout - min(2.0, timeout / 10)


Outcome = tuple[str | None, dict[str, Any]]


def handle(client: AppStreamClient, event: Mapping[str, Any], remaining_ms: int) -> Outcome:
    """One invocation: a first delivery, or a scheduled one carrying `_Resume` in CrHelperData."""
    now = time.time()
    polling = bool(event.get("CrHelperPoll"))
    hand_over_at = now + remaining_ms / 1000 - HAND_OVER_MARGIN
    if polling:
        hand_over_at = min(hand_over_at, now + POLL_SLICE)
    resume = Resume.from_data(event["CrHelperData"][RESUME]) if polling else None
    owner = owner_value(str(event["StackId"]), str(event["LogicalResourceId"]))
    if event["RequestType"] == "Delete":
        return _delete(client, event, owner, resume=resume, now=now, hand_over=hand_over_at)
    if resume is not None:
        return _resume_settle(client, event, resume, hand_over_at)
    return _create_or_update(client, event, owner, now, hand_over_at)


def _delete(
    client: AppStreamClient,
    event: Mapping[str, Any],
    owner: str,
    *,
    resume: Resume | None,
    now: float,
    hand_over: float,
) -> Outcome:
    physical_id = str(event.get("PhysicalResourceId") or "")
    props = event.get("ResourceProperties") or {}
    in_use = resume.in_use if resume else str(props.get("InUse", "Fail")) if isinstance(props, Mapping) else "Fail"
    deadline = resume.deadline if resume else deadline_for(_timeout_or_default(props), now)
    budget = Budget(deadline, hand_over)
    done = delete(client, physical_id=physical_id, props=props, owner=owner, in_use=in_use, budget=budget)
    if done:
        return physical_id, {}
    return None, {RESUME: Resume(deadline, physical_id, in_use=in_use).to_data()}


def _resume_settle(client: AppStreamClient, event: Mapping[str, Any], resume: Resume, hand_over: float) -> Outcome:
    target = ImageProperties(resume.image, shared_with=resume.share_list(), wait_for_available=resume.wait)
    try:
        progress = settle(client, target, Budget(resume.deadline, hand_over))
    except (ProviderError, ClientError, BotoCoreError) as err:
        if resume.made and event["RequestType"] == "Create":
            raise CreateFailed(str(err), resume.image) from err
        raise
    return _finish(progress, resume)


def _create_or_update(
    client: AppStreamClient, event: Mapping[str, Any], owner: str, now: float, hand_over: float
) -> Outcome:
    new = parse(event.get("ResourceProperties") or {})
    resume = Resume(
        deadline_for(new.service_timeout, now),
        new.image_name,
        new.wait_for_available,
        new.in_use,
        _encode_shares(new.shared_with),
    )
    budget = Budget(resume.deadline, hand_over)
    if event["RequestType"] == "Create":
        progress, made = create(client, new, owner, budget)
        return _finish(progress, replace(resume, made=made))
    progress = update(
        client,
        physical_id=str(event.get("PhysicalResourceId") or ""),
        new=new,
        old_props=event.get("OldResourceProperties") or {},
        owner=owner,
        budget=budget,
    )
    return _finish(progress, resume)


def _finish(progress: Progress, resume: Resume) -> tuple[str | None, dict[str, Any]]:
    if progress.done:
        return resume.image, dict(progress.attributes)
    logs.event("handing over to scheduled polling", image=resume.image, phase="hand-over", state=progress.state)
    return None, {RESUME: resume.to_data()}


def _timeout_or_default(props: Any) -> int:
    """Delete must answer even when its properties are broken: fall back to the default timeout."""
    try:
        return service_timeout(props.get("ServiceTimeout", MAX_TIMEOUT))
    except (InvalidProperties, AttributeError):
        return MAX_TIMEOUT


# -- Delete ---------------------------------------------------------------------------------------


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
        return _deletion_step(client, physical_id, in_use, seen.pop() if seen else images.describe(client, physical_id))

    progress = run(step, budget, delays(*DELETION_DELAYS), f"image {physical_id} to be deleted")
    if progress.done:
        logs.event("deleted", image=physical_id, phase="delete", state=GONE)
    return progress.done


def _deletion_step(client: AppStreamClient, name: str, in_use: str, image: images.Image | None) -> Progress:
    state = str(image["State"]) if image else GONE
    action = decide(DELETE_TABLE, state)
    logs.event("observed", image=name, phase="delete", state=state)
    if action is Action.DONE:
        return Progress(True, state)
    if action is not Action.DELETE or image is None:
        return Progress(False, state)
    for account in images.shared_accounts(client, name):
        images.unshare(client, name, account)
        logs.event(f"revoked sharing with {account}", image=name, phase="delete", state=state)
    try:
        images.start_delete(client, name)
    except ClientError as err:
        code = images.error_code(err)
        if code == "ConcurrentModificationException":
            return Progress(False, state, "concurrent modification, retrying")
        if code != "ResourceInUseException":
            raise
        users = ", ".join(images.users_of(client, name, str(image["Arn"]))) or "another resource"
        if in_use == "Wait":
            return Progress(False, state, f"in use by {users}")
        raise ImageInUse(
            f"Image {name} is in use by {users}. Remove it from them first, or set InUse: Wait to wait until released."
        ) from err
    logs.event("DeleteImage accepted", image=name, phase="delete", state="DELETING")
    return Progress(False, "DELETING")


# -- Create and Update ------------------------------------------------------------------------------


def create(client: AppStreamClient, props: ImageProperties, owner: str, budget: Budget) -> tuple[Progress, bool]:
    """Returns the progress and whether this request made the image (rather than adopting it)."""
    image, made = _ensure_image(client, props, owner)
    adopted = False
    try:
        adopted = _apply_tags(client, image, props.tag_map, (), owner)
        return settle(client, props, budget, first=image), made
    except (ProviderError, ClientError, BotoCoreError) as err:
        raise failed_create(client, err, image, made=made, adopted=adopted) from err


def failed_create(
    client: AppStreamClient, err: Exception, image: images.Image, *, made: bool, adopted: bool
) -> ProviderError:
    """What a failed Create leaves: an image it made is handed to the rollback; an adoption is undone."""
    name = str(image["Name"])
    if made:
        return CreateFailed(str(err), name)
    if adopted:
        try:
            images.untag(client, str(image["Arn"]), [OWNER_TAG])
            logs.event("released: removed the ownership tag after the failed adoption", image=name, phase="create")
        except (ClientError, BotoCoreError):
            logs.logger.exception("could not remove the ownership tag from %s", name)
    return err if isinstance(err, ProviderError) else ProviderError(str(err))


def update(
    client: AppStreamClient,
    *,
    physical_id: str,
    new: ImageProperties,
    old_props: Any,
    owner: str,
    budget: Budget,
) -> Progress:
    """A new ImageName is a replacement (CloudFormation then deletes the old one); the rest is in place."""
    if new.image_name != physical_id:
        logs.event(f"replacing image {physical_id}", image=new.image_name, phase="update", state="REPLACING")
        try:
            return create(client, new, owner, budget)[0]
        except CreateFailed as err:  # an Update never deletes: the new image stays, tagged, for a retry
            raise ProviderError(f"{err.cause} (image {err.physical_id} is kept)") from err
    try:
        old = parse(old_props)
    except InvalidProperties:
        old = ImageProperties(physical_id)
    if new.source != old.source:
        raise InvalidProperties(
            f"Invalid property Source: it changed but ImageName did not; a new Source needs a new ImageName "
            f"(image {physical_id} is kept as it is)"
        )
    image = images.describe(client, physical_id)
    if image is None:
        raise ImageFailed(f"Image {physical_id} no longer exists; give the resource a new ImageName to recreate it")
    found = owner_of(images.tags_of(client, image["Arn"]))
    if found != owner:
        raise NotOwned(f"Image {physical_id} is owned by {found or 'no resource'} ({OWNER_TAG}), not by {owner}")
    _apply_tags(client, image, new.tag_map, tuple(k for k, _ in old.tags), owner)
    kept = {s.account_id for s in new.shared_with}
    for share in old.shared_with:
        if share.account_id not in kept:
            images.unshare(client, physical_id, share.account_id)
            logs.event(f"revoked sharing with {share.account_id}", image=physical_id, phase="update")
    return settle(client, new, budget, first=image)


def _ensure_image(client: AppStreamClient, props: ImageProperties, owner: str) -> tuple[images.Image, bool]:
    """Adopt, copy or update into `props.image_name` (True when this call made it)."""
    name, source = props.image_name, props.source
    image = images.describe(client, name)
    made = False
    if image is None:
        if source.type == "Existing":
            raise ImageFailed(
                f"Image {name} does not exist. Source Type Existing adopts an image; use Copy or Update to make one"
            )
        try:
            if source.type == "Copy":
                images.copy(client, source.source_image_name, name, source.description)
            else:
                tags = {**props.tag_map, OWNER_TAG: owner}
                images.create_updated(
                    client,
                    source.source_image_name,
                    name,
                    display_name=source.display_name,
                    description=source.description,
                    tags=tags,
                )
            made = True
        except ClientError as err:
            if images.error_code(err) != "ResourceAlreadyExistsException":  # a duplicate delivery raced us
                raise
        logs.event(f"started {source.type} from {source.source_image_name}", image=name, phase="create")
        image = images.describe(client, name)
        if image is None:
            raise ImageFailed(f"Image {name} did not appear after {source.type} from {source.source_image_name}")
    if image.get("Visibility") != "PRIVATE":
        raise NotPermitted(
            f"Image {name} is {image.get('Visibility')}: only PRIVATE images this account owns can be managed"
        )
    return image, made


def _apply_tags(
    client: AppStreamClient, image: images.Image, wanted: Mapping[str, str], old_keys: tuple[str, ...], owner: str
) -> bool:
    """Ownership and user tags; True when this call newly claimed the image."""
    arn = str(image["Arn"])
    current = images.tags_of(client, arn)
    found = owner_of(current)
    if found not in (None, owner):
        raise NotOwned(
            f"Image {image['Name']} is owned by {found} ({OWNER_TAG}); it cannot be adopted by {owner} as well"
        )
    desired = {**wanted, OWNER_TAG: owner}
    images.untag(client, arn, [k for k in old_keys if k not in desired and k in current])
    images.tag(client, arn, {k: v for k, v in desired.items() if current.get(k) != v})
    return found is None


def settle(
    client: AppStreamClient, props: ImageProperties, budget: Budget, *, first: images.Image | None = None
) -> Progress:
    """Wait for AVAILABLE (or not, with WaitForAvailable false and no sharing), then share.

    `first` is an observation the caller just made: the first step uses it instead of describing again.
    """
    seen = [first] if first is not None else []

    def step() -> Progress:
        image = seen.pop() if seen else images.describe(client, props.image_name)
        state = str(image["State"]) if image else GONE
        action = decide(AVAILABLE_TABLE, state)
        logs.event("observed", image=props.image_name, phase="settle", state=state)
        if action is Action.FAIL or image is None:
            reason = image.get("StateChangeReason", {}) if image else {}
            why = f": {reason.get('Code', '')} {reason.get('Message', '')}".rstrip() if reason else ""
            raise ImageFailed(f"Image {props.image_name} is {state}{why}")
        if action is Action.WAIT:
            if not props.wait_for_available and not props.shared_with:
                return Progress(True, state, attributes=images.attributes(image))
            return Progress(False, state)
        _apply_shares(client, props)
        return Progress(True, state, attributes=images.attributes(image))

    return run(step, budget, delays(*SETTLE_DELAYS), f"image {props.image_name} to become AVAILABLE")


def _apply_shares(client: AppStreamClient, props: ImageProperties) -> None:
    if not props.shared_with:
        return
    current = images.shared_accounts(client, props.image_name)
    for share in props.shared_with:
        if current.get(share.account_id) != share:
            images.share(client, props.image_name, share)
            logs.event(f"shared with {share.account_id}", image=props.image_name, phase="share")

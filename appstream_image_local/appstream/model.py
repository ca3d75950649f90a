"""In-memory AppStream image state: images, fleets, builders, and the service's rules.

Every public method is one API operation; callers hold no locks. Transitions are
computed lazily from a clock, so the service needs no background threads. AWS's quotas and
its read-after-write lags are on by default (`Limits`), at small values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from appstream_image_local.appstream.errors import ApiError, not_found
from appstream_image_local.appstream.exports import Exports, refuse_delete
from appstream_image_local.appstream.records import (
    GONE,
    RESERVED_PREFIXES,
    TRANSITIONAL,
    Builder,
    Durations,
    Fleet,
    Image,
    Limits,
    page,
)


class AppStreamBackend:
    """The account's AppStream resources and the rules AWS enforces on them."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
        durations: Durations | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        limits: Limits | None = None,
    ) -> None:
        self.region = region
        self.account = account
        self.durations = durations or Durations()
        self.limits = limits or Limits()
        self.time_scale = time_scale
        self._clock = clock
        self._lock = threading.RLock()
        self.images: dict[str, Image] = {}
        self.fleets: dict[str, Fleet] = {}
        self.builders: dict[str, Builder] = {}
        self.amis: dict[str, dict[str, Any]] = {}  # AMIs CreateImportedImage can import: id -> {"compatible", "fails"}
        self.exports = Exports()  # CreateExportImageTask's tasks (exports.py)
        self.region_lookup: Callable[[str], AppStreamBackend] | None = None  # the account's other regions (regions.py)
        self.outbound_copies: list[float] = []  # when each copy this region sends to another region ends (copies.py)

    # -- seeding and control (not AppStream operations) --------------------------

    def image_arn(self, name: str, visibility: str = "PRIVATE") -> str:
        owner = "" if visibility == "PUBLIC" else self.account
        return f"arn:aws:appstream:{self.region}:{owner}:image/{name}"

    def now(self) -> float:
        return self._clock()

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def add_image(
        self,
        name: str,
        *,
        state: str = "AVAILABLE",
        settle_seconds: float = 0.0,
        then: str = "AVAILABLE",
        delete_seconds: float | None = None,
        **attrs: Any,
    ) -> Image:
        with self._lock:
            visibility = attrs.pop("visibility", "PRIVATE")
            image = Image(
                name=name,
                arn=attrs.pop("arn", self.image_arn(name, visibility)),
                state=state,
                visibility=visibility,
                created=time.time(),
                delete_seconds=delete_seconds,
                **attrs,
            )
            if state in TRANSITIONAL:
                image.state_until = self.now() + self.scaled(settle_seconds)
                image.next_state = then
                if then == "FAILED":
                    code = {"COPYING": "IMAGE_COPY_FAILURE", "CREATING": "IMAGE_UPDATE_FAILURE"}.get(state)
                    message = "The image could not be made." if code else "Seeded failure."
                    image.next_reason = {"Code": code or "INTERNAL_ERROR", "Message": message}
                    # A FAILED image also lists ImageErrors (DescribeImages' model: ErrorCode, ErrorMessage).
                    image.next_errors = [
                        {
                            "ErrorCode": "INTERNAL_SERVICE_ERROR",
                            "ErrorMessage": f"{name}: the image failed its qualification step.",
                            "ErrorTimestamp": time.time(),
                        }
                    ]
            self.images[name] = image
            return image

    def add_fleet(
        self,
        name: str,
        image_name: str,
        *,
        release_after: float | None = None,
        release_to: str = "",
        require_available: bool = False,
    ) -> Fleet:
        """A fleet on `image_name`; `require_available`: refuse an image that is not AVAILABLE, as CreateFleet does."""
        with self._lock:
            if require_available:
                self.require_available(image_name)
            fleet = Fleet(name, f"arn:aws:appstream:{self.region}:{self.account}:fleet/{name}", image_name)
            if release_after is not None:
                fleet.release_at = self.now() + self.scaled(release_after)
                fleet.release_to = release_to
            self.fleets[name] = fleet
            return fleet

    def require_available(self, image_name: str) -> None:
        """CreateFleet and UpdateFleet take an AVAILABLE image only."""
        with self._lock:
            self._advance()
            image = self.images.get(image_name)
            if image is None or image.state != "AVAILABLE":
                state = "does not exist" if image is None else f"is {image.state}"
                raise ApiError(
                    "InvalidParameterCombinationException",
                    f"The image {image_name} {state}: a fleet can use only an AVAILABLE image.",
                )

    def add_ami(self, ami_id: str, *, compatible: bool = True, fails: bool = False) -> None:
        """An AMI (or WorkSpaces image) CreateImportedImage can import; `fails`: its runtime validation fails."""
        with self._lock:
            self.amis[ami_id] = {"compatible": compatible, "fails": fails}

    def add_builder(self, name: str, image_name: str) -> Builder:
        with self._lock:
            builder = Builder(name, f"arn:aws:appstream:{self.region}:{self.account}:image-builder/{name}", image_name)
            self.builders[name] = builder
            return builder

    def set_fleet_image(self, name: str, image_name: str) -> None:
        """Point a fleet at another image ("" detaches it), as UpdateFleet would."""
        with self._lock:
            self.fleets[name].image_name = image_name
            self.fleets[name].release_at = None

    def switch_fleet_image(self, name: str, image_name: str, after_seconds: float) -> None:
        """Move a fleet to another image after a while, as UpdateFleet does once instances recycle."""
        with self._lock:
            fleet = self.fleets[name]
            fleet.release_at = self.now() + self.scaled(after_seconds)
            fleet.release_to = image_name

    def remove_fleet(self, name: str) -> None:
        with self._lock:
            self.fleets.pop(name, None)

    def snapshot(self) -> dict[str, Any]:
        """The account as a test asserts on it: each image's sharing once every accepted change has taken effect
        (DescribeImagePermissions shows a change only after `limits.permission_lag`; asserting right after a
        deploy must not depend on how soon the deploy ended after its last share)."""
        with self._lock:
            self._advance()
            return {
                "images": {
                    n: i.wire() | {"Tags": dict(i.tags), "Permissions": self._effective(i)}
                    for n, i in self.images.items()
                },
                "fleets": {n: f.image_name for n, f in self.fleets.items()},
                "builders": {n: b.image_name for n, b in self.builders.items()},
            }

    # -- time ----------------------------------------------------------------------

    def _advance(self) -> None:
        now = self.now()
        for image in self.images.values():
            while image.pending and image.pending[0][0] <= now:
                _, account, perms = image.pending.pop(0)
                if perms is None:
                    image.permissions.pop(account, None)
                else:
                    image.permissions[account] = perms
        for name, image in list(self.images.items()):
            if image.state_until is not None and now >= image.state_until:
                if image.next_state == GONE:
                    del self.images[name]
                    continue
                if image.later:  # one more step first (IMPORTING -> VALIDATING -> ...)
                    seconds, following = image.later.pop(0)
                    image.state, image.next_state = image.next_state, following
                    image.state_until += self.scaled(seconds)
                    if now < image.state_until:
                        continue
                image.state = image.next_state
                image.reason = image.next_reason
                image.image_errors = list(image.next_errors)
                image.state_until = None
        for fleet in self.fleets.values():
            if fleet.release_at is not None and now >= fleet.release_at:
                fleet.image_name = fleet.release_to
                fleet.release_at = None

    def _visible(self, image: Image) -> bool:
        return self.now() >= image.visible_at

    def _image(self, name: str) -> Image:
        """An image of this account (or a public one) by name: shared-with-us images are found by ARN only."""
        self._advance()
        image = self.images.get(name)
        if image is None or image.visibility == "SHARED" or not self._visible(image):
            raise not_found("image", name)
        return image

    def _image_by_arn(self, arn: str) -> Image:
        self._advance()
        for image in self.images.values():
            if image.arn == arn and self._visible(image):
                return image
        raise ApiError("ResourceNotFoundException", f"The resource {arn} does not exist.")

    def _own_private(self, image: Image, action: str, code: str) -> None:
        """Only this account's private images can be changed; `code` is what the operation's model allows."""
        if image.visibility != "PRIVATE":
            raise ApiError(code, f"The image {image.name} is {image.visibility.lower()} and cannot be {action}.")

    def tags_of_arn(self, arn: str) -> dict[str, str]:
        """An image's tags as IAM sees them (aws:ResourceTag), visible yet or not; {} when there is none."""
        with self._lock:
            return next((dict(i.tags) for i in self.images.values() if i.arn == arn), {})

    def accepted_permissions(self, name: str) -> dict[str, dict[str, bool]]:
        """An image's sharing once every accepted change has taken effect (for tests and the demo)."""
        with self._lock:
            return self._effective(self.images[name])

    def _effective(self, image: Image) -> dict[str, dict[str, bool]]:
        """The sharing once every accepted change has taken effect."""
        shares = dict(image.permissions)
        for _, account, perms in image.pending:
            if perms is None:
                shares.pop(account, None)
            else:
                shares[account] = perms
        return shares

    def _private_count(self) -> int:
        return sum(1 for i in self.images.values() if i.visibility == "PRIVATE")

    def _users(self, name: str) -> tuple[list[str], list[str]]:
        fleets = sorted(f.name for f in self.fleets.values() if f.image_name == name)
        builders = sorted(b.name for b in self.builders.values() if b.image_name == name)
        return fleets, builders

    # -- operations ------------------------------------------------------------------

    def describe_images(self, params: dict[str, Any]) -> dict[str, Any]:
        names, arns = params.get("Names"), params.get("Arns")
        if names and arns:
            raise ApiError("InvalidParameterCombinationException", "Names and Arns cannot both be specified.")
        with self._lock:
            self._advance()
            images = sorted((i for i in self.images.values() if self._visible(i)), key=lambda i: i.name)
            if names:
                images = [self._image(n) for n in names]
            elif arns:
                images = [i for i in images if i.arn in set(arns)]
            wanted = params.get("Type")
            if wanted:
                images = [i for i in images if i.visibility == wanted]
            return page([i.wire() for i in images], params, "Images")

    def delete_image(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            image = self._image(params["Name"])
            self._own_private(image, "deleted", "OperationNotPermittedException")
            if image.state == "DELETING":
                return {"Image": image.wire()}
            if image.state in TRANSITIONAL:
                raise ApiError(
                    "ConcurrentModificationException",
                    f"The image {image.name} is {image.state} and cannot be deleted now. Try again later.",
                )
            fleets, builders = self._users(image.name)
            if fleets or builders:
                users = ", ".join([f"fleet {f}" for f in fleets] + [f"image builder {b}" for b in builders])
                raise ApiError("ResourceInUseException", f"The image {image.name} is in use by {users}.")
            refuse_delete(self, image)  # an EXPORTING task uses the image (exports.py)
            if image.permissions:
                raise ApiError(
                    "ResourceInUseException",
                    f"The image {image.name} is shared with other accounts. Remove its image permissions first.",
                )
            seconds = image.delete_seconds if image.delete_seconds is not None else self.durations.delete
            image.state = "DELETING"
            image.state_until = self.now() + self.scaled(seconds)
            image.next_state = GONE
            return {"Image": image.wire()}

    def create_updated_image(self, params: dict[str, Any]) -> dict[str, Any]:
        new_name = params["newImageName"]
        if new_name.lower().startswith(RESERVED_PREFIXES):
            raise ApiError("ValidationException", "The new image name cannot start with Amazon, AWS or AppStream.")
        with self._lock:
            source = self._image(params["existingImageName"])
            self._own_private(source, "updated", "OperationNotPermittedException")
            if new_name in self.images:
                raise ApiError("ResourceAlreadyExistsException", f"The image {new_name} already exists.")
            if source.state != "AVAILABLE":
                raise ApiError(
                    "ConcurrentModificationException", f"The image {source.name} is {source.state}. Try again later."
                )
            if not source.updatable:  # already on the latest agent and patches: nothing is made
                return {"image": source.wire(), "canUpdateImage": False}
            if params.get("dryRun"):
                preview = Image(new_name, self.image_arn(new_name), "PENDING", platform=source.platform)
                return {"image": preview.wire(), "canUpdateImage": True}
            self._check_quotas("CREATING", self.limits.updates, "concurrent image updates")
            # A managed update runs on an image builder, counted against the image-builder quota (admin guide).
            running = len(self.builders) + sum(1 for i in self.images.values() if i.state == "CREATING")
            if running >= self.limits.builders:
                raise ApiError(
                    "LimitExceededException", f"The limit of {self.limits.builders} image builders was reached."
                )
            tags = params.get("newImageTags") or {}
            self._check_tags(tags, {})
            image = self.add_image(
                new_name,
                state="CREATING",
                settle_seconds=self.durations.update,
                then=source.copies_end,
                description=params.get("newImageDescription", ""),
                display_name=params.get("newImageDisplayName", ""),
                platform=source.platform,
                base_image_arn=source.arn,
                agent_version="LATEST",
                tags=dict(tags),
            )
            image.visible_at = self.now() + self.scaled(self.limits.visibility_lag)
            return {"image": image.wire(), "canUpdateImage": True}

    def _check_quotas(self, state: str, concurrent: int, what: str) -> None:
        """The per-region concurrency quota of this kind of transition, and the images-per-account quota."""
        if sum(1 for i in self.images.values() if i.state == state) >= concurrent:
            raise ApiError("LimitExceededException", f"The limit of {concurrent} {what} was reached.")
        if self._private_count() >= self.limits.images:
            raise ApiError("LimitExceededException", f"The limit of {self.limits.images} images was reached.")

    def _check_tags(self, tags: dict[str, str], existing: dict[str, str]) -> None:
        if len(set(existing) | set(tags)) > self.limits.tags:
            raise ApiError("LimitExceededException", f"A resource can have at most {self.limits.tags} tags.")

    def _arn_of(self, image_name: str) -> str:
        image = self.images.get(image_name)
        return image.arn if image else self.image_arn(image_name)

    def _describe_users(
        self, params: dict[str, Any], found: dict[str, Fleet] | dict[str, Builder], kind: str, key: str
    ) -> dict[str, Any]:
        """DescribeFleets / DescribeImageBuilders: the named ones (all by default), each with its image's ARN."""
        with self._lock:
            self._advance()
            names = params.get("Names") or sorted(found)
            missing = [n for n in names if n not in found]
            if missing:
                raise not_found(kind, missing[0])
            return page([found[n].wire(self._arn_of(found[n].image_name)) for n in names], params, key)

    def describe_fleets(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._describe_users(params, self.fleets, "fleet", "Fleets")

    def describe_image_builders(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._describe_users(params, self.builders, "image builder", "ImageBuilders")

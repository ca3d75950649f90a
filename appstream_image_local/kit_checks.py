"""The kit's checks of what a stack left in the account: `owned_images`, `made_images`, `changed_images`, and all of
them at once in `assert_clean` (every region the test used). OfflineCloud (kit.py) mixes this in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from appstream_image_local.audit import mutated_images, outside
from appstream_image_local.cfn.scheduler import REFUSED as RULE_REFUSED
from appstream_image_local.cfn.schedules import REFUSED
from appstream_image_local.cloud import LocalCloud
from appstream_image_provider._shared import contract


class AccountChecks:
    """What a test asserts on after its stacks ran: images owned, made, changed; nothing left behind."""

    local: LocalCloud

    @property
    def home_region(self) -> str:
        raise NotImplementedError  # kit.OfflineCloud

    def audit(self, operation: str = "") -> list[dict[str, Any]]:
        raise NotImplementedError  # kit.OfflineCloud

    def images(self, region: str = "") -> dict[str, dict[str, Any]]:
        raise NotImplementedError  # kit.OfflineCloud

    def client(self, service: str, region: str = "") -> Any:
        raise NotImplementedError  # kit.OfflineCloud

    def owned_images(self, stack: str, region: str | None = None) -> set[str]:
        """Every image this stack's resources made or adopted (from the audit log: the ownership tag they set), in
        `region` (None: in any region)."""
        owned: set[str] = set()
        for entry in self.audit():
            if entry.get("status") != 200 or region not in (None, entry.get("region")):
                continue
            params = entry["params"]
            tags = {**(params.get("Tags") or {}), **(params.get("newImageTags") or {})}
            if str(tags.get(contract.OWNER_TAG, "")).startswith(f"{stack}/"):
                target = params.get("ResourceArn") or params.get("newImageName") or params.get("Name") or ""
                owned.add(str(target).rsplit("/", 1)[-1])
        return owned

    def assert_clean(
        self, stack: str, *others: str, also_touched: Iterable[str] = (), kept: Iterable[str] = ()
    ) -> None:
        """After the stack is gone (with `others`, an app's other stacks: what any of them owns counts as theirs, in
        each region): nothing it owned is left, no image outside it was changed (`also_touched`
        names images the test changed itself), no polling rule, schedule (in any group) or permission is left,
        every rule and schedule could invoke its target, and every answer the provider sent was one CloudFormation
        accepts.
        Raises AssertionError saying what is wrong.

        Images that stay on purpose are not left behind: those named in `kept` (retained by RemovalPolicy.RETAIN,
        or released by OnDelete: Release), and images the stack adopted and released (OnDelete's default for
        Source Existing), once they carry none of the provider's tags."""
        made = self.made_images()
        who = ", ".join((stack, *others))
        problems: list[str] = []
        for region in sorted({self.home_region} | {_changed_in(e) for e in self.audit()}):
            owned = set().union(*(self.owned_images(name, region) for name in (stack, *others)))
            images = self.images(region)
            released = {
                n for n in owned & set(images)
                if n not in made and not set(images[n]["Tags"]) & set(contract.PROVIDER_TAGS)
            }  # fmt: skip
            where = "" if region == self.home_region else f" in {region}"
            left = owned & set(images) - set(kept) - released
            problems += [f"image {name}{where} (owned by {who}) is still there" for name in sorted(left)]
            changes = [e for e in self.audit() if _changed_in(e) == region]  # an image of that name elsewhere differs
            touched = outside(changes, owned | set(also_touched))
            problems += [f"image {name}{where} was changed, but {who} does not own it: {ops}"
                         for name, ops in touched.items()]  # fmt: skip
        for cloud in self.local.clouds:  # every region's CloudFormation, Lambda and EventBridge
            problems += [f"left behind: {leak}" for leak in cloud.leaks]
            problems += [f"rule {rule['Name']} is still scheduled" for rule in cloud.scheduler.rules()]
            schedules = self.client("scheduler", cloud.region).get_paginator("list_schedules").paginate()
            problems += [
                f"schedule {s['GroupName']}/{s['Name']} is still scheduled" for p in schedules for s in p["Schedules"]
            ]
            refused = [v for v in cloud.violations if v.startswith((REFUSED, RULE_REFUSED))]  # no invocation
            problems += [f"CloudFormation would reject an answer: {v}" for v in cloud.violations if v not in refused]
            problems += refused
        if problems:
            raise AssertionError(f"{who} did not leave the account clean:\n- " + "\n- ".join(problems))

    def made_images(self) -> set[str]:
        """Every image a CopyImage, CreateUpdatedImage or CreateImportedImage made (from the audit log)."""
        names = {
            "CopyImage": "DestinationImageName",
            "CreateUpdatedImage": "newImageName",
            "CreateImportedImage": "Name",
        }
        return {str(e["params"].get(names[e["operation"]])) for e in self.audit() if e["operation"] in names
                and e.get("status") == 200}  # fmt: skip

    def changed_images(self) -> dict[str, list[str]]:
        """Image -> the successful mutating calls made on it, in order."""
        return mutated_images(self.audit())


def _changed_in(entry: dict[str, Any]) -> str:
    """The region of the image an audited call changes: a CopyImage's destination, else where it was called."""
    if entry.get("operation") == "CopyImage":
        return str(entry.get("params", {}).get("DestinationRegion") or entry.get("region"))
    return str(entry.get("region"))

"""Nothing lost that the user did not ask to lose: what a Delete keeps, what a failed or rolled-back Create gives
back, renamed resources that keep their image, and images taken over from a stack that is gone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from appstream_image_local.appstream.exports import add_export_task
from provider.appstream import deletion
from provider.appstream.ownership import Before
from provider.cloudformation.outcome import Outcome
from provider.contract import ADOPTED_TAG, MOVED_FROM_TAG, OWNER_TAG, PROVIDER_TAGS, SOURCE_TAG, owner_value
from provider.errors import ImageInUse, NotOwned
from tests.conftest import FakeClock
from tests.provider.conftest import MADE_BY_COPY, OWNER, STACK_ID, event, finished, handle, owned_image

OTHER = "210987654321"
THIRD = "111122223333"
FLEET_AND_BUILDER = {"allowFleet": True, "allowImageBuilder": True}
OTHER_STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/old-images/0f0e0d0c-0000-11ef-9f00-0a1b2c3d4e5f"


@dataclass
class Stacks:
    """What CloudFormation says: whether the Delete's stack is rolling back, which owner stacks are gone."""

    rollback: bool | None = False
    gone: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def rolling_back(self, stack_id: str) -> bool | None:
        self.asked.append(stack_id)
        return self.rollback

    def owner_gone(self, owner: str) -> bool | None:
        self.asked.append(owner)
        return owner in self.gone


def adopt(client: Any, clock: FakeClock, stacks: Stacks, **props: Any) -> Outcome:
    body = event("create", ImageName="builder-output", **props)
    return handle(client, clock, body, stacks=stacks)


def delete(**props: Any) -> dict[str, Any]:
    """A Delete of the resource whose physical id is its ImageName (its Create answered)."""
    body = event("delete", **props)
    body["PhysicalResourceId"] = props["ImageName"]
    return body


def builder_output(backend: AppStreamBackend) -> None:
    """An image built by hand: someone's own tags, shared with one account for its image builders only."""
    backend.add_image(
        "builder-output",
        tags={"team": "euc", "cost-center": "42"},
        permissions={OTHER: {"allowFleet": False, "allowImageBuilder": True}},
    )


ADOPTION = {
    "Tags": [{"Key": "team", "Value": "platform"}, {"Key": "stage", "Value": "prod"}],
    "SharedWith": [{"AccountId": OTHER}, {"AccountId": THIRD}],
}


def settled(backend: AppStreamBackend, clock: FakeClock) -> Any:
    """The image once AppStream's sharing changes have applied (they lag)."""
    clock.advance(600)
    backend.describe_images({"Names": ["builder-output"]})
    return backend.images["builder-output"]


def as_found(backend: AppStreamBackend, clock: FakeClock) -> None:
    image = settled(backend, clock)
    assert image.state == "AVAILABLE"
    assert image.tags == {"team": "euc", "cost-center": "42"}
    assert image.permissions == {OTHER: {"allowFleet": False, "allowImageBuilder": True}}


def test_the_rollback_of_an_adoption_gives_the_image_back_as_it_was_found(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    builder_output(backend)
    assert finished(adopt(client, clock, Stacks(), **ADOPTION)).physical_id == "builder-output"
    image = settled(backend, clock)
    assert image.tags["team"] == "platform"
    assert set(image.permissions) == {OTHER, THIRD}
    assert Before.decode(image.tags[ADOPTED_TAG]) == Before({"team": "euc", "stage": None}, {OTHER: "-b", THIRD: None})
    for on_delete in ({}, {"OnDelete": "Delete"}):  # even when the user asked for deletion on the stack's Delete
        body = delete(ImageName="builder-output", **ADOPTION, **on_delete)
        assert finished(handle(client, clock, body, stacks=Stacks(rollback=True))).physical_id == "builder-output"
        as_found(backend, clock)
        assert "DeleteImage" not in [m["operation"] for m in service.audit.mutations()]
        adopt(client, clock, Stacks(), **ADOPTION)


def test_a_create_that_fails_after_adopting_gives_the_image_back(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    from appstream_image_local.appstream import Fault

    service, client = fake
    builder_output(backend)
    service.faults.add(Fault("error", "UpdateImagePermissions", count=1, code="AccessDeniedException"))
    with pytest.raises(Exception, match=r"UpdateImagePermissions|denied"):
        adopt(client, clock, Stacks(), **ADOPTION)
    service.faults.clear()
    as_found(backend, clock)


def test_the_stack_delete_releases_an_adopted_image_by_default_and_deletes_it_when_asked(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    builder_output(backend)
    adopt(client, clock, Stacks(), **ADOPTION)
    stacks = Stacks(rollback=False)
    handle(client, clock, delete(ImageName="builder-output", **ADOPTION), stacks=stacks)
    image = settled(backend, clock)
    assert not set(PROVIDER_TAGS) & set(image.tags)  # released: no longer any stack's
    assert image.tags["team"] == "platform"  # kept as the stack left it, sharing too
    assert set(image.permissions) == {OTHER, THIRD}

    adopt(client, clock, Stacks(), **ADOPTION)
    handle(client, clock, delete(ImageName="builder-output", OnDelete="Delete"), stacks=Stacks(False))
    assert "builder-output" not in backend.images or backend.images["builder-output"].state == "DELETING"


def test_an_adopted_image_is_kept_when_cloudformation_cannot_say_whether_the_delete_is_a_rollback(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    builder_output(backend)
    adopt(client, clock, Stacks(), **ADOPTION)
    handle(client, clock, delete(ImageName="builder-output", OnDelete="Delete"), stacks=Stacks(None))
    assert backend.images["builder-output"].state == "AVAILABLE"
    assert OWNER_TAG not in backend.images["builder-output"].tags
    assert "DeleteImage" not in [m["operation"] for m in service.audit.mutations()]


@pytest.mark.parametrize(
    ("on_delete", "rollback", "kept"),
    [
        ("Release", False, True),  # asked for: kept without the provider's tags
        ("Release", True, False),  # a rolled-back Create leaves nothing it made
        ("Release", None, True),  # not known: kept
        ("Delete", None, False),
    ],
)
def test_an_image_the_resource_made_follows_on_delete_and_a_rollback_removes_it(  # noqa: PLR0917 - fixtures
    fake: tuple[LocalAppStream, Any],
    backend: AppStreamBackend,
    clock: FakeClock,
    on_delete: str,
    rollback: bool | None,
    kept: bool,
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11", tags={SOURCE_TAG: MADE_BY_COPY, "team": "euc"})
    body = delete(ImageName="golden-2026-11", OnDelete=on_delete)
    handle(client, clock, body, stacks=Stacks(rollback))
    if kept:
        assert backend.images["golden-2026-11"].tags == {"team": "euc"}
    else:
        assert "golden-2026-11" not in backend.images or backend.images["golden-2026-11"].state == "DELETING"


def test_a_refused_adoption_says_how_to_release_the_image_and_if_owner_gone_takes_it_over(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    """A retained image (DeletionPolicy Retain: no Delete was ever sent) keeps the old stack instance's tag."""
    _, client = fake
    old_owner = owner_value(OTHER_STACK, "GoldenImage")
    backend.add_image("builder-output", tags={OWNER_TAG: old_owner, SOURCE_TAG: "Existing", "team": "euc"})
    arn = backend.images["builder-output"].arn
    with pytest.raises(NotOwned) as refused:
        adopt(client, clock, Stacks(gone={old_owner}))
    assert f"aws appstream untag-resource --resource-arn {arn} --tag-keys {OWNER_TAG}" in str(refused.value)
    assert "Adopt: IfOwnerGone" in str(refused.value)

    with pytest.raises(NotOwned, match="whose stack still exists"):  # its stack lives on: never taken
        adopt(client, clock, Stacks(gone=set()), Adopt="IfOwnerGone")
    assert backend.images["builder-output"].tags[OWNER_TAG] == old_owner

    assert finished(adopt(client, clock, Stacks(gone={old_owner}), Adopt="IfOwnerGone")).physical_id == "builder-output"
    assert backend.images["builder-output"].tags[OWNER_TAG] == OWNER
    # A rollback of that Create gives it back to the old owner's tags, as it was found.
    handle(client, clock, delete(ImageName="builder-output"), stacks=Stacks(rollback=True))
    assert backend.images["builder-output"].tags == {OWNER_TAG: old_owner, SOURCE_TAG: "Existing", "team": "euc"}


RENAMED = "GoldenImageRenamed"
NEW_OWNER = owner_value(STACK_ID, RENAMED)


def renamed(kind: str, **props: Any) -> dict[str, Any]:
    body = event(kind, ImageName="golden-2026-11", Source={"Type": "Copy", "SourceImageName": "plat-base"}, **props)
    body["LogicalResourceId"] = RENAMED
    body["PhysicalResourceId"] = "golden-2026-11"
    return body


@pytest.fixture
def copied(backend: AppStreamBackend) -> str:
    """An image the old logical id (GoldenImage) made by copying plat-base."""
    from provider.appstream.properties import parse

    made_from = parse({"ImageName": "x", "Source": {"Type": "Copy", "SourceImageName": "plat-base"}}).source
    owned_image(backend, "golden-2026-11", tags={SOURCE_TAG: made_from.fingerprint()})
    return made_from.fingerprint()


def test_a_renamed_resource_takes_its_image_and_the_old_ids_cleanup_leaves_it(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, copied: str
) -> None:
    service, client = fake
    create = renamed("create")
    del create["PhysicalResourceId"]
    assert finished(handle(client, clock, create, stacks=Stacks())).physical_id == "golden-2026-11"
    tags = backend.images["golden-2026-11"].tags
    assert (tags[OWNER_TAG], tags[MOVED_FROM_TAG], tags[SOURCE_TAG]) == (NEW_OWNER, OWNER, copied)
    assert not [m for m in service.audit.mutations() if m["operation"] in ("CopyImage", "DeleteImage")]
    # CloudFormation's cleanup Delete of the old logical id: the move is final, the image stays.
    cleanup = delete(ImageName="golden-2026-11", Source={"Type": "Copy", "SourceImageName": "plat-base"})
    assert finished(handle(client, clock, cleanup, stacks=Stacks())).physical_id == "golden-2026-11"
    assert backend.images["golden-2026-11"].tags == {OWNER_TAG: NEW_OWNER, SOURCE_TAG: copied}
    # A later stack delete removes it, once.
    handle(client, clock, renamed("delete"), stacks=Stacks(rollback=False))
    assert "golden-2026-11" not in backend.images or backend.images["golden-2026-11"].state == "DELETING"
    assert [m["operation"] for m in service.audit.mutations()].count("DeleteImage") == 1


def test_the_rollback_of_a_rename_gives_the_image_back_to_the_old_logical_id_and_deletes_nothing(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, copied: str
) -> None:
    service, client = fake
    create = renamed("create")
    del create["PhysicalResourceId"]
    handle(client, clock, create, stacks=Stacks())
    assert (
        finished(handle(client, clock, renamed("delete"), stacks=Stacks(rollback=True))).physical_id == "golden-2026-11"
    )
    assert backend.images["golden-2026-11"].tags == {OWNER_TAG: OWNER, SOURCE_TAG: copied}
    assert "DeleteImage" not in [m["operation"] for m in service.audit.mutations()]


def test_a_rename_with_another_source_is_refused_and_changes_nothing(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, copied: str
) -> None:
    service, client = fake
    create = renamed("create")
    del create["PhysicalResourceId"]
    create["ResourceProperties"]["Source"] = {"Type": "Copy", "SourceImageName": "other-base"}
    with pytest.raises(Exception, match="was made from Copy of plat-base, not from Copy of other-base"):
        handle(client, clock, create, stacks=Stacks())
    assert service.audit.mutations() == []


def test_an_export_task_that_holds_the_image_is_named_in_the_reason(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    owned_image(backend, "golden-2026-11")
    add_export_task(backend, "golden-2026-11", "golden-ami", seconds=10_000)
    with pytest.raises(ImageInUse) as refused:
        handle(client, clock, delete(ImageName="golden-2026-11", InUse="Fail"), stacks=Stacks())
    assert "in use by export task " in str(refused.value)
    assert "(AMI golden-ami)" in str(refused.value)
    assert "GetExportImageTask" in str(refused.value)


def test_the_ending_table_deletes_only_what_the_resource_made_or_what_the_user_asked_for() -> None:
    ending = deletion.ENDINGS
    assert {k for k, v in ending.items() if v is deletion.Ending.DELETE and not k[0]} == {(False, False, True)}
    assert all(v is deletion.Ending.GIVE_BACK for k, v in ending.items() if not k[0] and k[1])
    assert len(ending) == 12

"""Keep: a rotation's cleanup Delete retires the replaced image for a fleet to roll back to; the retired images past
Keep are deleted (waited for, across scheduled runs); a rollback never retires; a stack delete leaves nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from provider.appstream import deletion, retirement
from provider.appstream.properties import parse
from provider.cloudformation.outcome import Continue
from provider.contract import OWNER_TAG, RETIRED_TAG, SOURCE_TAG, owner_value
from provider.errors import InvalidProperties
from tests.conftest import FakeClock
from tests.provider.conftest import MADE_BY_COPY, OWNER, STACK_ID, event, finished, handle, owned_image, scheduled

OTHER = "210987654321"
SOURCE = {"Type": "Copy", "SourceImageName": "plat-base"}


@dataclass
class Stacks:
    """What DescribeStacks says of the Delete's stack: rolling back or not (None: it could not be asked)."""

    rollback: bool | None = False

    def rolling_back(self, stack_id: str) -> bool | None:
        return self.rollback

    def owner_gone(self, owner: str) -> bool | None:
        return False


def delete(name: str, **props: Any) -> dict[str, Any]:
    """CloudFormation's Delete of this resource's image `name` (its Create answered), with the old properties."""
    body = event("delete", ImageName=name, Source=SOURCE, **props)
    body["PhysicalResourceId"] = name
    return body


def retired(backend: AppStreamBackend, name: str, at: str, owner: str = OWNER, **attrs: Any) -> None:
    owned_image(backend, name, owner, tags={SOURCE_TAG: MADE_BY_COPY, RETIRED_TAG: at}, **attrs)


def images(backend: AppStreamBackend) -> dict[str, Any]:
    """The account's images as AppStream has them now (one being deleted is still there)."""
    return dict(backend.snapshot()["images"])


@pytest.mark.parametrize("keep_sharing", [False, True])
def test_a_rotations_cleanup_retires_the_replaced_image_still_owned_and_tagged_with_the_time(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, keep_sharing: bool
) -> None:
    _, client = fake
    owned_image(backend, "golden-1", permissions={OTHER: {"allowFleet": True, "allowImageBuilder": False}})
    owned_image(backend, "golden-2")  # the replacement: this resource's image now
    body = delete("golden-1", Keep="1", KeepSharing=str(keep_sharing).lower())
    assert finished(handle(client, clock, body, stacks=Stacks())).physical_id == "golden-1"
    image = images(backend)["golden-1"]
    assert image["State"] == "AVAILABLE"
    assert image["Tags"][OWNER_TAG] == OWNER
    assert datetime.fromisoformat(image["Tags"][RETIRED_TAG]) == datetime.fromtimestamp(clock.now, UTC)
    assert backend.accepted_permissions("golden-1") == (
        {OTHER: {"allowFleet": True, "allowImageBuilder": False}} if keep_sharing else {}
    )
    assert RETIRED_TAG not in images(backend)["golden-2"]["Tags"]


@pytest.mark.parametrize(("keep", "left"), [(1, {"golden-2", "golden-3"}), (2, {"golden-1", "golden-2", "golden-3"})])
def test_the_retirement_past_keep_deletes_the_oldest_and_waits_until_it_is_gone(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, keep: int, left: set[str]
) -> None:
    _, client = fake
    retired(backend, "golden-1", "1970-01-01T00:00:01.000000Z", delete_seconds=30)
    owned_image(backend, "golden-2")
    owned_image(backend, "golden-3")
    retired(backend, "theirs-1", "1970-01-01T00:00:00.000000Z", owner=owner_value(STACK_ID, "OtherImage"))
    started = clock.now
    finished(handle(client, clock, delete("golden-2", Keep=str(keep)), stacks=Stacks()))
    assert set(images(backend)) == left | {"theirs-1"}  # gone, not DELETING: the Delete waited
    assert RETIRED_TAG in images(backend)["golden-2"]["Tags"]
    assert (clock.now - started >= 30) == (keep == 1)


def test_keep_0_deletes_the_replaced_image_as_before(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    appstream, client = fake
    owned_image(backend, "golden-1")
    owned_image(backend, "golden-2")
    finished(handle(client, clock, delete("golden-1"), stacks=Stacks()))
    assert set(images(backend)) == {"golden-2"}
    assert appstream.audit.calls("TagResource") == []


@pytest.mark.parametrize("rollback", [True, None])
def test_a_rollback_never_retires_and_leaves_the_retired_images(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, rollback: bool | None
) -> None:
    _, client = fake
    retired(backend, "golden-0", "1970-01-01T00:00:01.000000Z")
    owned_image(backend, "golden-1")  # the image the update rolls back to
    owned_image(backend, "golden-2")  # what the failed replacement made
    finished(handle(client, clock, delete("golden-2", Keep="1"), stacks=Stacks(rollback)))
    if rollback:  # deleted, as with Keep 0
        assert set(images(backend)) == {"golden-0", "golden-1"}
    else:  # CloudFormation could not say: kept, which loses nothing
        assert RETIRED_TAG in images(backend)["golden-2"]["Tags"]
        assert set(images(backend)) == {"golden-1", "golden-2"}  # golden-0 is past Keep 1


@pytest.mark.parametrize("keep", ["1", "3"])
def test_a_stack_delete_deletes_the_image_and_every_retired_one(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, keep: str
) -> None:
    _, client = fake
    retired(backend, "golden-1", "1970-01-01T00:00:01.000000Z")
    retired(backend, "golden-2", "1970-01-01T00:00:02.000000Z")
    retired(backend, "theirs-1", "1970-01-01T00:00:00.000000Z", owner=owner_value(STACK_ID, "OtherImage"))
    owned_image(backend, "golden-3")
    finished(handle(client, clock, delete("golden-3", Keep=keep), stacks=Stacks()))
    assert set(images(backend)) == {"theirs-1"}


def test_a_multi_image_delete_goes_on_in_scheduled_runs_until_every_one_is_gone(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    retired(backend, "golden-1", "1970-01-01T00:00:01.000000Z", delete_seconds=80)
    retired(backend, "golden-2", "1970-01-01T00:00:02.000000Z", delete_seconds=80)
    owned_image(backend, "golden-3")
    body = delete("golden-3", Keep="2")
    outcome = handle(client, clock, body, remaining_ms=120_000, stacks=Stacks())
    assert isinstance(outcome, Continue), outcome
    state = outcome.state
    assert (state.image, state.retired, state.then_delete) == ("golden-2", True, ())
    assert "golden-1" not in images(backend)  # the first retired one is gone: waited for
    for _ in range(5):
        outcome = handle(client, clock, scheduled(body, state), remaining_ms=900_000, stacks=Stacks())
        if not isinstance(outcome, Continue):
            break
        state = outcome.state
    assert finished(outcome).physical_id == "golden-3"
    assert images(backend) == {}


def test_the_retirement_table_retires_only_outside_a_rollback_and_only_a_replaced_image() -> None:
    table = deletion.RETIREMENTS
    assert {k for k, v in table.items() if v is deletion.Ending.RETIRE} == {(False, True), (None, True)}
    assert table[(False, False)] is deletion.Ending.DELETE_ALL
    assert all(v is deletion.Ending.DELETE for k, v in table.items() if k[0] is True)


def test_a_rename_back_to_a_retired_image_puts_it_back_in_use_and_the_next_cleanup_retires_the_other(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    """golden-1 -> golden-2 -> golden-1 with Keep 1: the Create takes its kept golden-1 back (no longer retired,
    shared again) and the cleanup Delete of golden-2 retires golden-2; it once deleted golden-1, the stack's image."""
    _, client = fake
    made_from = parse({"ImageName": "golden-1", "Source": SOURCE}).source.fingerprint()
    backend.add_image("plat-base")
    owned_image(backend, "golden-1", tags={SOURCE_TAG: made_from, RETIRED_TAG: "2026-11-30T00:00:00.000000Z"})
    owned_image(backend, "golden-2", tags={SOURCE_TAG: made_from})  # the resource's image until the rename back
    share = [{"AccountId": OTHER, "AllowFleet": "true", "AllowImageBuilder": "false"}]
    create = event("create", ImageName="golden-1", Source=SOURCE, Keep="1", SharedWith=share)

    assert finished(handle(client, clock, create)).physical_id == "golden-1"
    assert RETIRED_TAG not in images(backend)["golden-1"]["Tags"]
    clock.advance(60)  # AppStream's sharing lag
    assert backend.accepted_permissions("golden-1") == {OTHER: {"allowFleet": True, "allowImageBuilder": False}}

    assert finished(handle(client, clock, delete("golden-2", Keep="1"), stacks=Stacks())).physical_id == "golden-2"
    assert images(backend)["golden-1"]["State"] == "AVAILABLE"
    assert RETIRED_TAG not in images(backend)["golden-1"]["Tags"]
    assert RETIRED_TAG in images(backend)["golden-2"]["Tags"]


def test_a_rename_back_to_a_retired_image_made_from_another_source_is_refused(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_image("plat-base")
    owned_image(backend, "golden-1", tags={SOURCE_TAG: MADE_BY_COPY, RETIRED_TAG: "2026-11-30T00:00:00.000000Z"})
    create = event("create", ImageName="golden-1", Source={"Type": "Copy", "SourceImageName": "plat-base"}, Keep="1")
    with pytest.raises(InvalidProperties, match="golden-1 is an image this resource retired"):
        handle(client, clock, create)
    assert images(backend)["golden-1"]["Tags"][RETIRED_TAG] == "2026-11-30T00:00:00.000000Z"  # left as it was


def test_a_look_cut_short_at_the_scan_cap_retires_rather_than_deleting_everything(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_SCANNED images the replacement may be unseen: the cleanup must not take it for a stack delete."""
    _, client = fake
    monkeypatch.setattr(retirement, "MAX_SCANNED", 2)
    for n in range(3):
        backend.add_image(f"other-team-{n}")  # looked at first, and the cap is reached before golden-2
    owned_image(backend, "golden-1")
    owned_image(backend, "golden-2")  # the replacement: this resource's image now
    assert finished(handle(client, clock, delete("golden-1", Keep="1"), stacks=Stacks())).physical_id == "golden-1"
    assert RETIRED_TAG in images(backend)["golden-1"]["Tags"]  # kept, not deleted with every retired image
    assert RETIRED_TAG not in images(backend)["golden-2"]["Tags"]

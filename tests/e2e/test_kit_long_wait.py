"""A user's kit test of a stack with `available_timeout`, on the kit's default options: the unmodified CDK CLI
deploys, rotates the image name and destroys; each wait condition is satisfied by the provider's signal from a
scheduled run (an EventBridge Scheduler one-time schedule set minutes ahead, fired within a second here), and
nothing is left. bench/kit_long_wait.py measures the same scenario (the figures are in the kit's docstrings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appstream_image_local.cfn.model import Live
from appstream_image_local.kit import DEFAULTS, OfflineCloud
from bench.kit_long_wait import BASE, STACK, write_app

pytestmark = pytest.mark.toolchain  # the CDK CLI, which synthesizes the app (jsii)
WAIT = "AWS::CloudFormation::WaitCondition"
IMAGE = "Custom::AppStreamImage"


def _live(cloud: OfflineCloud, kind: str) -> list[Live]:
    return [r for r in cloud.cloud.stacks[STACK].resources.values() if r.type == kind]


def _signalled(cloud: OfflineCloud, image: str) -> None:
    """The stack's one wait condition holds the provider's SUCCESS signal for `image`, and its output names it."""
    (wait,) = _live(cloud, WAIT)
    assert json.loads(wait.attributes["Data"]) == {image: image}  # UniqueId and Data: the image's name
    assert cloud.outputs(STACK)["ImageName"] == image  # read through the wait condition


def _chains(cloud: OfflineCloud, logical_id: str) -> set[str]:
    """The polling chains whose runs fired (the provider names a run `<logical id>-<chain>-<request>-<n>`)."""
    names = [f.name.split("/", 1)[1] for f in cloud.cloud.schedules.fired]
    return {name.split("-")[1] for name in names if name.startswith(f"{logical_id[:41]}-")}


@pytest.mark.long
def test_a_stack_with_available_timeout_deploys_rotates_and_destroys_through_scheduled_runs_by_default(
    offline_cloud: OfflineCloud, tmp_path: Path
) -> None:
    assert offline_cloud.cloud.schedules.scale == DEFAULTS["schedule_scale"]  # no marker: the kit's defaults
    app = write_app(tmp_path / "app")
    offline_cloud.add_image(BASE)
    offline_cloud.add_image("other-team-image")  # must stay untouched

    offline_cloud.deploy_app(app, STACK, imageName="user-2026-11", availableMinutes="60")
    (resource,) = _live(offline_cloud, IMAGE)
    assert offline_cloud.images()["user-2026-11"]["State"] == "AVAILABLE"
    _signalled(offline_cloud, "user-2026-11")
    assert len(_chains(offline_cloud, resource.logical_id)) == 1  # the Create answered; its scheduled run signalled
    assert all(f.aws_delay >= 60 for f in offline_cloud.cloud.schedules.fired)  # set a poll period ahead, or more

    offline_cloud.deploy_app(app, STACK, imageName="user-2026-12", availableMinutes="60")  # the rotation
    images = offline_cloud.images()
    assert "user-2026-11" not in images
    assert images["user-2026-12"]["State"] == "AVAILABLE"
    _signalled(offline_cloud, "user-2026-12")  # a new wait condition (a new logical id), signalled the same way
    assert len(_chains(offline_cloud, resource.logical_id)) == 2

    (app / "app.py").write_text("raise SystemExit('destroy ran the app')\n")  # the assembly deployed is read
    offline_cloud.destroy(STACK)
    offline_cloud.assert_clean(STACK)  # no image, schedule, rule or permission left; every answer acceptable
    assert set(offline_cloud.images()) == {BASE, "other-team-image"}
    assert offline_cloud.owned_images(STACK) == {"user-2026-11", "user-2026-12"}
    assert [c["params"]["DestinationImageName"] for c in offline_cloud.audit("CopyImage")] == [
        "user-2026-11",
        "user-2026-12",
    ]

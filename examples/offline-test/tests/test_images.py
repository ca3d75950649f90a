"""This app's images on the offline cloud: `offline_cloud` comes from appstream-image-provider[local]."""

from pathlib import Path

import pytest

from appstream_image_local.kit import OfflineCloud, StackFailed

APP = Path(__file__).resolve().parent.parent
STACK = "UserImages"


def test_the_monthly_rotation_deletes_last_months_image_and_leaves_nothing(offline_cloud: OfflineCloud) -> None:
    offline_cloud.add_image("user-base")  # what the account holds before the deploy
    offline_cloud.add_image("other-team-image")  # must stay untouched

    outputs = offline_cloud.deploy_app(APP, STACK, imageName="user-2026-11")  # cdk bootstrap, cdk deploy
    assert outputs["ImageArn"].endswith(":image/user-2026-11")
    image = offline_cloud.images()["user-2026-11"]
    assert image["State"] == "AVAILABLE"
    assert "210987654321" in image["Permissions"]

    offline_cloud.inject("throttle", operation="DeleteImage", count=2)  # AppStream throttles the cleanup
    offline_cloud.deploy_app(APP, STACK, imageName="user-2026-12")  # the rotation: a new copy, the old one deleted
    assert "user-2026-11" not in offline_cloud.images()
    assert offline_cloud.images()["user-2026-12"]["State"] == "AVAILABLE"
    assert [e["error"] for e in offline_cloud.audit("DeleteImage")][:2] == ["ThrottlingException"] * 2

    offline_cloud.destroy(STACK)  # cdk destroy
    offline_cloud.assert_clean(STACK)  # nothing it owned is left, nothing else was changed
    assert offline_cloud.owned_images(STACK) == {"user-2026-11", "user-2026-12"}


def test_a_missing_base_image_fails_the_deploy_naming_it(offline_cloud: OfflineCloud) -> None:
    with pytest.raises(StackFailed, match="user-base"):
        offline_cloud.deploy_app(APP, STACK, imageName="user-2026-11")
    assert offline_cloud.status(STACK) == "ROLLBACK_COMPLETE"

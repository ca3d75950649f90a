"""A user's own CDK app, tested with the `offline_cloud` fixture of appstream_image_local/pytest_plugin.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from appstream_image_local.cfn.driver import StackFailed
from provider.contract import OWNER_TAG
from tests.conftest import ROOT

USER_APP = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})  # this project's construct (until it is installed as a package)
from aws_cdk import App, CfnOutput, Stack
from appstream_image_provider.appstream_image import AppStreamImage, ImageSource

app = App()
stack = Stack(app, "UserImages")
image = AppStreamImage(stack, "Patched", image_name="user-patched-1", source=ImageSource.updated_from("user-base"))
CfnOutput(stack, "PatchedArn", value=image.image_arn)
app.synth()
"""


@pytest.mark.long
def test_a_user_app_deploys_and_destroys_offline_with_the_fixture(offline_cloud, tmp_path: Path) -> None:
    app_dir = tmp_path / "user-app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(USER_APP)
    offline_cloud.add_image("user-base")
    outputs = offline_cloud.deploy_app(app_dir, "UserImages")
    assert outputs["PatchedArn"].endswith(":image/user-patched-1")
    image = offline_cloud.images()["user-patched-1"]
    assert image["State"] == "AVAILABLE"
    assert image["Tags"][OWNER_TAG].startswith("UserImages/Patched")
    offline_cloud.destroy("UserImages")
    assert "user-patched-1" not in offline_cloud.images()
    assert "user-base" in offline_cloud.images()


def test_a_failing_user_deploy_raises_with_the_reason(offline_cloud, tmp_path: Path) -> None:
    app_dir = tmp_path / "user-app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(USER_APP)  # no user-base image: the update cannot start
    with pytest.raises(StackFailed, match="user-base"):
        offline_cloud.deploy_app(app_dir, "UserImages")

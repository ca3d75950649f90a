"""Source Type Import through the standalone provider (issue 30, item 4): the template `make dist` writes,
deployed offline with ImportRoleArn, serves a plain CloudFormation template that imports an AMI; the local
AppStream service checks every call against the function role's policies, as IAM would."""

from __future__ import annotations

from pathlib import Path

import pytest

from appstream_image_local.kit import OfflineCloud
from appstream_image_provider.standalone import LAMBDA_ZIP, TEMPLATE
from provider.contract import OWNER_TAG

pytestmark = pytest.mark.toolchain  # `make dist` (jsii, in a child process; tests/conftest.py's dist_dir) and at import

BUCKET = "platform-artifacts"
AMI = "ami-0123456789abcdef0"
IMPORT_ROLE = "arn:aws:iam::123456789012:role/appstream-import"

# A consumer stack, as a CloudFormation user writes it: its images are owned by it, not by the provider's stack.
IMAGES = f"""
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Imported:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ServiceTimeout: 600
      ImageName: team-imported
      Source: {{Type: Import, SourceAmiId: {AMI}, IamRoleArn: "{IMPORT_ROLE}", DisplayName: Imported}}
Outputs:
  ImportedArn:
    Value: !GetAtt Imported.Arn
"""


def test_a_consumer_stack_imports_an_ami_through_the_standalone_provider_and_deletes_it(
    offline_cloud: OfflineCloud, dist_dir: Path, tmp_path: Path
) -> None:
    s3 = offline_cloud.cloud.s3
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=LAMBDA_ZIP, Body=(dist_dir / LAMBDA_ZIP).read_bytes())
    parameters = {"CodeBucket": BUCKET, "ImageNamePrefix": "team-", "ImportRoleArn": IMPORT_ROLE}
    offline_cloud.deploy_template("AppStreamImageProvider", dist_dir / TEMPLATE, parameters)
    offline_cloud.add_ami(AMI)
    images = tmp_path / "images.yaml"
    images.write_text(IMAGES)

    outputs = offline_cloud.deploy_template("Images", images)

    assert outputs["ImportedArn"].endswith(":image/team-imported")
    imported = offline_cloud.images()["team-imported"]
    assert imported["State"] == "AVAILABLE"
    assert imported["Tags"][OWNER_TAG].startswith("Images/Imported/")  # the consumer's, not AppStreamImageProvider/
    assert [c["error"] for c in offline_cloud.audit("CreateImportedImage")] == [None]

    offline_cloud.delete_stack("Images")
    assert "team-imported" not in offline_cloud.images()
    assert [c["error"] for c in offline_cloud.audit("DeleteImage")] == [None]
    assert offline_cloud.local.appstream is not None
    assert offline_cloud.local.appstream.iam.denials == []
    offline_cloud.delete_stack("AppStreamImageProvider")

"""Images that take hours: an import from an AMI (exported back to an AMI of its own when asked) and a managed
update, each waited for up to 12 hours through a wait condition, and a fleet that starts only once the updated image
is AVAILABLE."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from appstream_image_provider import AppStreamImage, ImageExport, ImageSource
from stacks.fleet import streaming_fleet

TWELVE_HOURS = Duration.hours(12)  # CloudFormation's longest wait condition


class LongImagesStack(Stack):
    """`imported_image` is imported from `ami_id` (read by `import_role`); `updated_image` is a managed update of
    `update_source` (AppStream: "might take several hours"); the fleet streams the updated image. With `export_ami`,
    the imported image is exported to an AMI of that name once AVAILABLE, and its wait condition waits for that too."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ami_id: str = "ami-0123456789abcdef0",
        import_role: str = "",
        imported_image: str = "imported-2026-11",
        update_source: str = "golden-base",
        updated_image: str = "patched-2026-11",
        export_ami: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        role = import_role or f"arn:aws:iam::{self.account}:role/appstream-image-import"
        self.imported = AppStreamImage(
            self,
            "Imported",
            image_name=imported_image,
            source=ImageSource.imported(source_ami_id=ami_id, iam_role_arn=role, display_name="Imported"),
            available_timeout=TWELVE_HOURS,
            export=ImageExport(ami_name=export_ami, role=self._export_role()) if export_ami else None,
        )
        self.updated = AppStreamImage(
            self,
            "Updated",
            image_name=updated_image,
            source=ImageSource.updated_from(update_source, display_name="Patched"),
            available_timeout=TWELVE_HOURS,
        )
        # image_name comes from the wait condition: CloudFormation creates (or moves) the fleet once AVAILABLE.
        self.fleet = streaming_fleet(self, "Fleet", name=f"{construct_id}-fleet", image_name=self.updated.image_name)
        CfnOutput(self, "ImportedImageArn", value=self.imported.image_arn)
        CfnOutput(self, "UpdatedImageName", value=self.updated.image_name)

    def _export_role(self) -> iam.Role:
        """The role AppStream makes the AMI with: it copies, describes and tags EC2 images (API reference,
        CreateExportImageTask); the AMI's id is not known before, so the actions are on `*`."""
        role = iam.Role(self, "ExportRole", assumed_by=iam.ServicePrincipal("appstream.amazonaws.com"))
        actions = ["ec2:CopyImage", "ec2:DescribeImages", "ec2:CreateTags"]
        role.add_to_policy(iam.PolicyStatement(actions=actions, resources=["*"]))
        return role

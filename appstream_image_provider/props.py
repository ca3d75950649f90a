"""The values AppStreamImage takes: where the image comes from, whom it is shared with, what Delete does."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from aws_cdk import aws_iam as iam


class InUse(enum.Enum):
    """What Delete does while fleets or image builders still use the image."""

    WAIT = "Wait"  #: keep trying until they let go, up to the service timeout (default: rotations just work)
    FAIL = "Fail"  #: fail at once with a Reason naming them


class SharedOnDelete(enum.Enum):
    """What Delete does with an image that is still shared with other accounts."""

    REVOKE = "Revoke"  #: revoke the sharing, then delete (default); their fleets on the image drop to zero capacity
    FAIL = "Fail"  #: fail at once naming the accounts; nothing is changed


class OnDelete(enum.Enum):
    """What the stack's Delete of the resource does with the image (CloudFormation sends one unless
    `removal_policy` is RETAIN). Default (no value): RELEASE for `ImageSource.existing()`, DELETE for an image
    the resource makes (copy_of, updated_from, imported): nothing the stack did not make is deleted unless asked."""

    DELETE = "Delete"  #: delete the image (its sharing first, see SharedOnDelete), waiting until it is gone
    RELEASE = "Release"  #: remove the provider's own tags and keep the image, with its other tags and its sharing


class Adopt(enum.Enum):
    """Which existing image `ImageSource.existing()` may take over."""

    IF_UNOWNED = "IfUnowned"  #: only one that no other resource owns (default)
    #: also one whose ownership tag names a stack instance that no longer exists (e.g. one kept by RETAIN)
    IF_OWNER_GONE = "IfOwnerGone"


@dataclass(frozen=True)
class ImportedApplication:
    """One application of an imported image's catalog (CreateImportedImage's AppCatalogConfig)."""

    name: str
    absolute_app_path: str
    display_name: str = ""
    absolute_icon_path: str = ""
    absolute_manifest_path: str = ""
    working_directory: str = ""
    launch_parameters: str = ""

    def to_properties(self) -> dict[str, str]:
        fields = {
            "Name": self.name,
            "AbsoluteAppPath": self.absolute_app_path,
            "DisplayName": self.display_name,
            "AbsoluteIconPath": self.absolute_icon_path,
            "AbsoluteManifestPath": self.absolute_manifest_path,
            "WorkingDirectory": self.working_directory,
            "LaunchParameters": self.launch_parameters,
        }
        return {k: v for k, v in fields.items() if v}


@dataclass(frozen=True)
class ImageSource:
    """Where the image comes from. Use the static factories, not the constructor."""

    type: str
    source_image_name: str = ""
    description: str = ""
    display_name: str = ""
    iam_role_arn: str = ""
    agent_software_version: str = ""
    intended_instance_type: str = ""
    applications: tuple[ImportedApplication, ...] = ()
    region: str = ""  # Copy: the source's region ("" for the stack's own)

    @staticmethod
    def existing() -> ImageSource:
        """Adopt an image that already exists in this account (the default)."""
        return ImageSource("Existing")

    @staticmethod
    def copy_of(source_image_name: str, *, description: str = "", region: str = "") -> ImageSource:
        """CopyImage `source_image_name` into this region under the construct's image name. `region` (default: the
        stack's own) is the region the source image is in: CopyImage is called there, into the stack's region (the
        copy may then keep the source's name)."""
        return ImageSource("Copy", source_image_name, description, region=region)

    @staticmethod
    def updated_from(source_image_name: str, *, display_name: str = "", description: str = "") -> ImageSource:
        """CreateUpdatedImage from `source_image_name`: the latest agent and patches."""
        return ImageSource("Update", source_image_name, description, display_name)

    @staticmethod
    def imported(
        *,
        source_ami_id: str | None = None,
        workspace_image_id: str | None = None,
        iam_role_arn: str | None = None,
        description: str = "",
        display_name: str = "",
        agent_software_version: Literal["CURRENT_LATEST", "ALWAYS_LATEST"] | None = None,
        intended_instance_type: str = "",
        applications: list[ImportedApplication] | None = None,
    ) -> ImageSource:
        """CreateImportedImage from an EC2 AMI (`source_ami_id`, with `iam_role_arn`: the role AppStream uses to
        read it; the provider may pass only this role, and only to AppStream) or a WorkSpaces image
        (`workspace_image_id`). Defaults: no description or display name, AppStream's default agent version
        and instance type for the runtime validation, no application catalog. An import can take hours:
        give it `service_timeout` accordingly (at most one hour within CloudFormation)."""
        if (source_ami_id is None) == (workspace_image_id is None):
            raise ValueError("source: ImageSource.imported takes exactly one of source_ami_id and workspace_image_id")
        for n, app in enumerate(applications or []):
            if not isinstance(app, ImportedApplication):
                raise ValueError(f"source.applications[{n}]: expected ImportedApplication(...), got {app!r}")
        return ImageSource(
            "Import",
            str(source_ami_id or workspace_image_id),
            description,
            display_name,
            iam_role_arn=iam_role_arn or "",
            agent_software_version=agent_software_version or "",
            intended_instance_type=intended_instance_type,
            applications=tuple(applications or ()),
        )

    def to_properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {"Type": self.type}
        if self.type == "Import":
            origin = "SourceAmiId" if self.source_image_name.startswith("ami-") else "WorkspaceImageId"
            props[origin] = self.source_image_name
            optional = {
                "IamRoleArn": self.iam_role_arn,
                "AgentSoftwareVersion": self.agent_software_version,
                "IntendedInstanceType": self.intended_instance_type,
            }
            props |= {k: v for k, v in optional.items() if v}
            if self.applications:
                props["AppCatalogConfig"] = [a.to_properties() for a in self.applications]
        elif self.type != "Existing":
            props["SourceImageName"] = self.source_image_name
        if self.region:
            props["SourceRegion"] = self.region
        if self.description:
            props["Description"] = self.description
        if self.display_name:
            props["DisplayName"] = self.display_name
        return props


@dataclass(frozen=True)
class ImageShare:
    """Share the image with another account."""

    account_id: str
    allow_fleet: bool = True
    allow_image_builder: bool = True


@dataclass(frozen=True)
class ImageExport:
    """Export the image to an EC2 AMI once it is AVAILABLE (CreateExportImageTask); `AppStreamImage.ami_id` is
    the AMI's id. The AMI is yours: no Delete of the image (nor of the stack) deletes it.

    `role` lets AppStream make the AMI: appstream.amazonaws.com must be able to assume it, and it needs to copy,
    describe and tag EC2 images (API reference, CreateExportImageTask). `ami_name` (3-128 of letters, digits and
    ( ) . - / _) must be unique in the account and region. `tags` go on the AMI.
    """

    ami_name: str
    role: iam.IRole
    ami_description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def to_properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {"AmiName": self.ami_name, "IamRoleArn": self.role.role_arn}
        if self.ami_description:
            props["AmiDescription"] = self.ami_description
        if self.tags:
            props["TagSpecifications"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return props

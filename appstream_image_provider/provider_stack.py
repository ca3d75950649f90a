"""The provider for plain CloudFormation users: deploys it and exports its ServiceToken."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from .provider.contract import SCOPE_ENV
from .provider_function import ImageProvider, acknowledge

PREFIX = re.compile(r"^([a-zA-Z0-9][a-zA-Z0-9_.-]{0,99})?$")
DEFAULT_EXPORT = "AppStreamImageProvider-ServiceToken"


class AppStreamImageProviderStack(Stack):
    """One provider for any number of templates, which import its ServiceToken.

    Image actions are allowed on images whose names start with `image_name_prefix`
    (default "": every image of the account and region) and, with `resource_tag`
    (key, value), only on images that already carry that tag (CopyImage and
    CreateUpdatedImage, which make new images, are limited by the prefix alone).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image_name_prefix: str = "",
        resource_tag: tuple[str, str] | None = None,
        export_name: str = DEFAULT_EXPORT,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not PREFIX.match(image_name_prefix):
            raise ValueError(f"image_name_prefix: {image_name_prefix!r} must be empty or match {PREFIX.pattern}")
        if resource_tag is not None and (not resource_tag[0] or resource_tag[0].lower().startswith("aws:")):
            raise ValueError(f"resource_tag: {resource_tag!r} needs a key that does not start with aws:")
        if not export_name or len(export_name) > 255:
            raise ValueError("export_name: 1-255 characters")
        self.provider = ImageProvider.of(self)
        pattern = f"{image_name_prefix}*"
        self.provider.grant_images([pattern], sources=[pattern])
        if resource_tag is not None:
            self.provider.require_tag(*resource_tag)
        scope_text = f"images named {pattern}" + (
            f" that carry the tag {resource_tag[0]}={resource_tag[1]} (new images get it from their Tags)"
            if resource_tag
            else ""
        )
        self.provider.function.add_environment(SCOPE_ENV, scope_text)
        images_policy = self.provider.node.find_child("ImagesPolicy")
        acknowledge(
            images_policy,
            f"arn:<AWS::Partition>:appstream:<AWS::Region>:<AWS::AccountId>:image/{pattern}",
            f"a shared provider manages the images its templates declare: {scope_text}",
        )
        self.image_name_prefix = image_name_prefix
        CfnOutput(
            self,
            "ServiceToken",
            value=self.provider.service_token,
            export_name=export_name,
            description="ServiceToken for Custom::AppStreamImage resources",
        )
        self.role: iam.IRole = self.provider.role

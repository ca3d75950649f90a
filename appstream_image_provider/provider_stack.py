"""The provider for plain CloudFormation users: deploys it and exports its ServiceToken."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import CfnOutput, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ._shared import contract
from .provider_function import ImageProvider, acknowledge

PREFIX = re.compile(r"^([a-zA-Z0-9][a-zA-Z0-9_.-]{0,99})?$")
DEFAULT_EXPORT = "AppStreamImageProvider-ServiceToken"


class AppStreamImageProviderStack(Stack):
    """One provider for any number of templates, which import its ServiceToken.

    Image actions are allowed on images whose names start with `image_name_prefix`
    (default "": every image of the account and region) and, with `resource_tag`
    (key, value), only on images that already carry that tag (CopyImage and
    CreateUpdatedImage, which make new images, are limited by the prefix alone).
    DeleteImage also needs an ownership tag (any stack's: the stacks that use it own their images).
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
        self.provider = declare_shared_provider(
            self, image_name_prefix=image_name_prefix, resource_tag=resource_tag, export_name=export_name
        )
        self.image_name_prefix = image_name_prefix
        self.role: iam.IRole = self.provider.role


def declare_shared_provider(
    stack: Stack,
    *,
    image_name_prefix: str,
    resource_tag: tuple[str, str] | None,
    export_name: str,
    code: lambda_.Code | None = None,
) -> ImageProvider:
    """The stack's provider, scoped to a prefix (and a tag), with its ServiceToken exported.

    Values may be tokens (template parameters): those are checked by the template instead.
    """
    if not Token.is_unresolved(image_name_prefix) and not PREFIX.match(image_name_prefix):
        raise ValueError(f"image_name_prefix: {image_name_prefix!r} must be empty or match {PREFIX.pattern}")
    if resource_tag is not None and (not resource_tag[0] or resource_tag[0].lower().startswith("aws:")):
        raise ValueError(f"resource_tag: {resource_tag!r} needs a key that does not start with aws:")
    if not export_name or len(export_name) > 255:
        raise ValueError("export_name: 1-255 characters")
    provider = ImageProvider.of(stack, code=code)
    provider.owned_by_any_stack()  # its images are owned by the stacks that use it
    pattern = f"{image_name_prefix}*"
    provider.grant_images([pattern], sources=[pattern])
    # A cross-region copy (Source SourceRegion) calls CopyImage on its source in that region: any region's images
    # of the prefix may be copied here (the copy itself is made, and managed, in this region only).
    provider.grant_images([], sources=[pattern], source_region="*")
    if resource_tag is not None:
        provider.require_tag(*resource_tag)
    scope_text = f"images named {pattern}" + (
        f" that carry the tag {resource_tag[0]}={resource_tag[1]} (new images get it from their Tags)"
        if resource_tag
        else ""
    )
    provider.function.add_environment(contract.SCOPE_ENV, scope_text)
    if not Token.is_unresolved(pattern):  # an acknowledgment names a literal resource; a parameter is none
        acknowledge(
            provider.node.find_child("ImagesPolicy"),
            f"arn:<AWS::Partition>:appstream:<AWS::Region>:<AWS::AccountId>:image/{pattern}",
            f"a shared provider manages the images its templates declare: {scope_text}",
        )
        acknowledge(
            provider.node.find_child("ImagesPolicy"),
            f"arn:<AWS::Partition>:appstream:*:<AWS::AccountId>:image/{pattern}",
            f"a shared provider copies images named {pattern} from any region of this account into its own",
        )
    CfnOutput(
        stack,
        "ServiceToken",
        value=provider.service_token,
        export_name=export_name,
        description="ServiceToken for Custom::AppStreamImage resources",
    )
    return provider

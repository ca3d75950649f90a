"""ImagePromotion: one source image copied to several regions, each copy an AppStreamImage in its own stack.

A rotation is one change of `image_name`: every region's copy is replaced, and the fleets declared in that region's
stack (`stacks[region]`) using `image(region).image_name` move with it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from aws_cdk import Environment, Stack, Stage, Tags
from constructs import Construct

from ._shared import contract, sources
from .appstream_image import AppStreamImage
from .checks import expect, shares_of
from .props import ImageShare, ImageSource
from .provider_function import ProviderOptions

ACCOUNT = re.compile(r"^\d{12}$")
# CloudFormation's stack names: a letter, then letters, digits and hyphens, 128 at most (CreateStack, StackName:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html).
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
MAX_STACK_NAME = 128


def _check_region(value: Any, prop: str, served: frozenset[str]) -> str:
    expect(value, str, prop, "a region name (such as us-west-2)")
    if not contract.REGION.match(value):
        raise ValueError(f"{prop}: {value!r} is not a region name (such as us-west-2)")
    if served and value not in served:
        raise ValueError(f"{prop}: AppStream is not served in {value}; it is in {', '.join(sorted(served))}")
    return str(value)


def _check_regions(regions: Any, served: frozenset[str]) -> list[str]:
    if isinstance(regions, str) or not isinstance(regions, Sequence):
        raise ValueError(f"regions: expected a list of region names, got {type(regions).__name__} {regions!r}")
    if not regions:
        raise ValueError("regions: is empty; give at least one region to copy the image to (such as ['eu-west-1'])")
    seen: dict[str, int] = {}
    for n, region in enumerate(regions):
        _check_region(region, f"regions[{n}]", served)
        if region in seen:
            raise ValueError(f"regions[{n}]: {region} is already regions[{seen[region]}]; give each region once")
        seen[region] = n
    return list(regions)


def _check_tags(tags: Any) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise ValueError(f"tags: expected a mapping of strings to strings, got {type(tags).__name__} {tags!r}")
    for key, value in tags.items():
        expect(key, str, "tags", "a mapping of strings to strings")
        expect(value, str, f"tags[{key!r}]", "a string")
    return dict(tags)


def _check_names(image_name: Any, source_image_name: Any, stack_name_prefix: Any, regions: list[str]) -> None:
    expect(image_name, str, "image_name", "a string")
    expect(source_image_name, str, "source_image_name", "a string")
    expect(stack_name_prefix, str, "stack_name_prefix", "a string")
    longest = max(len(r) for r in regions)
    if not STACK_NAME.match(stack_name_prefix) or len(stack_name_prefix) + 1 + longest > MAX_STACK_NAME:
        raise ValueError(
            f"stack_name_prefix: {stack_name_prefix!r} does not make CloudFormation stack names "
            f"(<prefix>-<region>: a letter, then letters, digits and hyphens, at most {MAX_STACK_NAME} characters)"
        )


def _check_account(account: Any) -> str | None:
    if account is None:
        return os.environ.get("CDK_DEFAULT_ACCOUNT") or None
    expect(account, str, "account", "a 12-digit account id (a string), or None for the app's default")
    if not ACCOUNT.match(account):
        raise ValueError(f"account: {account!r} is not a 12-digit account id (or None for the app's default)")
    return str(account)


class ImagePromotion(Construct):
    """Copy one image (`source_image_name`, in `source_region`) to every region of `regions` under `image_name`: one
    stack per region (`<stack_name_prefix>-<region>`, `env=Environment(account=account, region=region)`), in each an
    AppStreamImage (`ImageSource.copy_of(source_image_name, region=source_region)`: CopyImage runs in the source
    region, the copy lives in the stack's), shared with `shared_with` and tagged with `tags`.

    A rotation is one change of `image_name`: each region's copy is replaced (the old one deleted, or retired with
    `keep`), and every fleet using it moves. Declare region r's fleets in `promotion.stacks[r]`, on
    `promotion.image(r).image_name` (or `promotion.image_names[r]`): CloudFormation then moves each fleet onto the
    new copy before its cleanup deletes or retires the old one. A fleet in another stack is refused at synth time: CDK
    would pass the name through a CloudFormation export, and CloudFormation refuses to change an export another stack
    imports, so the rotation would fail ("Export ... cannot be updated as it is in use by ...").
    """

    def __init__(
        self,
        scope: Stage,
        construct_id: str,
        *,
        image_name: str,
        source_image_name: str,
        source_region: str,
        regions: Sequence[str],
        account: str | None = None,
        shared_with: Sequence[ImageShare] = (),
        keep: int = 0,
        stack_name_prefix: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        provider_options: ProviderOptions | None = None,
    ) -> None:
        """
        :param scope: an App or a Stage (the promotion makes stacks, which cannot be inside a stack).
        :param image_name: the copies' name, the same in every region (required). A new name is a rotation.
        :param source_image_name: the image to copy, a private image of the account in `source_region` (required).
        :param source_region: the source image's region (required): CopyImage is called there.
        :param regions: the regions to copy to (required, at least one, each once). `source_region` may be one of
            them only if `image_name` differs from `source_image_name` (an image cannot be copied onto itself).
        :param account: default none: the app's CDK_DEFAULT_ACCOUNT (set by the CDK CLI), else an
            environment-agnostic account (resolved at deployment).
        :param shared_with: default none: the accounts each region's copy is shared with (at most 100).
        :param keep: default 0: a rotation deletes each region's old copy; 1 to 10 retire that many instead (see
            AppStreamImage's `keep`).
        :param stack_name_prefix: default the construct id: each stack is named `<stack_name_prefix>-<region>`.
        :param tags: default none: tags of every copy (`Tags.of(image).add(key, value)`).
        :param description: default none: the copies' description (CopyImage's DestinationImageDescription).
        :param provider_options: default `ProviderOptions()`: the settings of each stack's provider function.
        """
        super().__init__(scope, construct_id)
        try:  # every message names the prop; this adds the construct's path
            if not isinstance(scope, Stage):
                raise ValueError(
                    f"scope: expected an App or a Stage (the promotion makes one stack per region), got "
                    f"{type(scope).__name__} {scope.node.path or '(root)'}"
                )
            served = sources.appstream_regions()
            targets = _check_regions(regions, served)
            prefix = construct_id if stack_name_prefix is None else stack_name_prefix
            _check_names(image_name, source_image_name, prefix, targets)
            _check_region(source_region, "source_region", served)
            if source_region in targets and image_name == source_image_name:
                raise ValueError(
                    f"regions[{targets.index(source_region)}]: {source_region} is the source_region, where "
                    f"{image_name} already is: in the source region, image_name must differ from source_image_name "
                    f"(or leave {source_region} out of regions)"
                )
            shares = shares_of(shared_with)
            the_account = _check_account(account)
            the_tags = _check_tags({} if tags is None else tags)
            expect(keep, int, "keep", f"a whole number of images, 0 to {contract.MAX_KEEP}")
        except ValueError as err:
            raise ValueError(f"{self.node.path}: {err}") from None

        stacks: dict[str, Stack] = {}
        images: dict[str, AppStreamImage] = {}
        for region in targets:
            stack = Stack(
                self,
                region,
                stack_name=f"{prefix}-{region}",
                env=Environment(account=the_account, region=region),
                description=f"AppStream image {image_name}, copied from {source_image_name} in {source_region}",
            )
            # In the source region, a plain copy (no SourceRegion): the provider's own region.
            source = ImageSource.copy_of(
                source_image_name, description=description, region="" if region == source_region else source_region
            )
            image = AppStreamImage(
                stack,
                "Image",
                image_name=image_name,
                source=source,
                shared_with=list(shares),
                keep=keep,
                provider_options=provider_options,
            )
            for key, value in the_tags.items():
                Tags.of(image).add(key, value)
            stacks[region] = stack
            images[region] = image
        self._images = images
        self.stacks: Mapping[str, Stack] = MappingProxyType(stacks)
        """Region -> the stack that holds that region's copy."""
        self.image_names: Mapping[str, str] = MappingProxyType({r: i.image_name for r, i in images.items()})
        """Region -> the copy's name, a token of that region's stack (use it in that stack: `stacks[region]`)."""

    def image(self, region: str) -> AppStreamImage:
        """The AppStreamImage of `region` (one of `regions`)."""
        if region not in self._images:
            raise ValueError(
                f"{self.node.path}: image: {region!r} is not one of the promotion's regions ({', '.join(self._images)})"
            )
        return self._images[region]

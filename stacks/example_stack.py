"""An example: an adopted image, a shared and tagged copy, and a fleet that streams the copy."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack, Tags
from constructs import Construct

from appstream_image_provider import AppStreamImage, ImageShare, ImageSource, InUse
from stacks.fleet import streaming_fleet


class ExampleImagesStack(Stack):
    """`builder_image` is adopted (and kept when the stack is deleted); `golden_image` is copied from `golden_source`
    and shared (and deleted with the stack)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        builder_image: str = "builder-output-2026-11",
        golden_source: str = "golden-base",
        golden_image: str = "golden-2026-11",
        share_with: str = "210987654321",
        team: str = "euc",
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Adopted: deleting the stack releases it (the provider's tags removed, the image kept), as OnDelete.RELEASE
        # is the default for ImageSource.existing(); on_delete=OnDelete.DELETE would delete it.
        self.builder_image = AppStreamImage(self, "BuilderImage", image_name=builder_image)
        self.golden = AppStreamImage(
            self,
            "GoldenImage",
            image_name=golden_image,
            source=ImageSource.copy_of(golden_source, description="Monthly golden image"),
            shared_with=[ImageShare(share_with, allow_image_builder=False)],
            in_use=InUse.WAIT,
            service_timeout=Duration.minutes(30),
        )
        Tags.of(self.golden).add("team", team)
        Tags.of(self.golden).add("cost-center", "1234")
        # The Ref to the image makes CloudFormation create the fleet after the image and delete it first.
        self.fleet = streaming_fleet(self, "Fleet", name=f"{construct_id}-fleet", image_name=self.golden.image_name)
        CfnOutput(self, "GoldenImageArn", value=self.golden.image_arn)
        CfnOutput(self, "GoldenImageState", value=self.golden.state)

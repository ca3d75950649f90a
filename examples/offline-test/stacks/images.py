"""This month's image, copied from the team's base image and shared with the streaming account."""

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from appstream_image_provider import AppStreamImage, ImageShare, ImageSource


class ImagesStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, image_name: str) -> None:
        super().__init__(scope, construct_id)
        image = AppStreamImage(
            self,
            "Monthly",
            image_name=image_name,
            source=ImageSource.copy_of("user-base", description="This month's image"),
            shared_with=[ImageShare("210987654321", allow_image_builder=False)],
        )
        CfnOutput(self, "ImageArn", value=image.image_arn)

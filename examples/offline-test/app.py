"""The app: one stack of images; `-c imageName=...` names this month's image."""

from aws_cdk import App
from stacks.images import ImagesStack

app = App()
ImagesStack(app, "UserImages", image_name=str(app.node.try_get_context("imageName") or "user-2026-11"))
app.synth()

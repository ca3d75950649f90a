"""The CDK app: creates stacks from context values (see the README) and synthesizes."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from appstream_image_provider import AppStreamImageProviderStack
from stacks.example_stack import ExampleImagesStack

app = App()
context = app.node.try_get_context
stacks = str(context("stacks") or "provider,example").split(",")
if "provider" in stacks:
    AppStreamImageProviderStack(
        app,
        str(context("providerStackName") or "AppStreamImageProvider"),
        image_name_prefix=str(context("imageNamePrefix") or ""),
        export_name=str(context("serviceTokenExport") or "AppStreamImageProvider-ServiceToken"),
    )
if "example" in stacks:
    ExampleImagesStack(
        app,
        str(context("exampleStackName") or "AppStreamImageExample"),
        builder_image=str(context("builderImage") or "builder-output-2026-11"),
        golden_source=str(context("goldenSource") or "golden-base"),
        golden_image=str(context("goldenImage") or "golden-2026-11"),
        share_with=str(context("shareWith") or "210987654321"),
        team=str(context("team") or "euc"),
    )
if str(context("nag") or "true") != "false":
    Validations.of(app).add_plugins(AwsSolutionsChecks())
app.synth()

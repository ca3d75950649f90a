"""The CDK app: creates stacks from context values (see docs/contributing.md) and synthesizes."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from appstream_image_provider import AppStreamImageProviderStack
from stacks.example_stack import ExampleImagesStack
from stacks.long_images import LongImagesStack

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
if "long" in stacks:
    LongImagesStack(
        app,
        str(context("longStackName") or "AppStreamLongImages"),
        ami_id=str(context("amiId") or "ami-0123456789abcdef0"),
        imported_image=str(context("importedImage") or "imported-2026-11"),
        update_source=str(context("updateSource") or "golden-base"),
        updated_image=str(context("updatedImage") or "patched-2026-11"),
        export_ami=str(context("exportAmi") or ""),
    )
if str(context("nag") or "true") != "false":
    Validations.of(app).add_plugins(AwsSolutionsChecks())
app.synth()

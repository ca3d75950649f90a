"""The unmodified CDK CLI against the offline cloud, as users run it: bootstrap, deploy, a deploy with
no changes, a failed create and a failed update with their rollbacks, a rotation, destroy.
(The demo, tests/e2e/test_demo.py, runs the happy path with the provider stack too.)"""

from __future__ import annotations

import sys

import pytest

from local.cfn.model import StackFailed
from provider.contract import OWNER_TAG
from tests.conftest import ROOT

pytest_plugins = ["local.pytest_plugin"]

STACK = "AppStreamImageExample"
BASE = {"stacks": "example", "nag": "false", "goldenImage": "golden-2026-11", "goldenSource": "golden-base"}


def test_the_cli_deploys_rolls_back_and_destroys_offline(offline_cloud) -> None:
    offline_cloud.add_image("builder-output-2026-11")
    offline_cloud.add_image("golden-base")

    # A failed create: the CLI reports the failed resource, CloudFormation rolls the stack back.
    with pytest.raises(StackFailed) as failed:
        offline_cloud.deploy_app(ROOT, STACK, **{**BASE, "goldenSource": "no-such-base"})
    assert "no-such-base" in str(failed.value)
    assert offline_cloud.status(STACK) == "ROLLBACK_COMPLETE"
    assert "golden-2026-11" not in offline_cloud.images()
    if "builder-output-2026-11" not in offline_cloud.images():  # the rollback deleted the image it adopted
        offline_cloud.add_image("builder-output-2026-11")

    # The next deploy replaces the rolled-back stack (the CLI deletes it first) and succeeds.
    outputs = offline_cloud.deploy_app(ROOT, STACK, **BASE)
    assert outputs["GoldenImageArn"].endswith(":image/golden-2026-11")
    assert offline_cloud.status(STACK) == "CREATE_COMPLETE"
    assert offline_cloud.images()["golden-2026-11"]["Tags"][OWNER_TAG].startswith(f"{STACK}/GoldenImage")

    # The same deploy again: the change set has no changes and nothing runs.
    calls = len(offline_cloud.local.appstream.audit.entries())
    offline_cloud.deploy_app(ROOT, STACK, **BASE)
    assert f"{STACK} (no changes)" in offline_cloud.output[-1]
    assert offline_cloud.status(STACK) == "CREATE_COMPLETE"
    assert len(offline_cloud.local.appstream.audit.entries()) == calls

    # A failed update (the new source is missing): rolled back, the old image stays and keeps streaming.
    with pytest.raises(StackFailed, match="no-such-base"):
        offline_cloud.deploy_app(
            ROOT, STACK, **{**BASE, "goldenImage": "golden-2026-12", "goldenSource": "no-such-base"}
        )
    assert offline_cloud.status(STACK) == "UPDATE_ROLLBACK_COMPLETE"
    assert offline_cloud.images()["golden-2026-11"]["State"] == "AVAILABLE"
    assert offline_cloud.outputs(STACK)["GoldenImageArn"].endswith(":image/golden-2026-11")

    # The rotation: a new ImageName replaces the image; the old one is deleted once the fleet lets go.
    outputs = offline_cloud.deploy_app(ROOT, STACK, **{**BASE, "goldenImage": "golden-2026-12"})
    assert outputs["GoldenImageArn"].endswith(":image/golden-2026-12")
    assert "golden-2026-11" not in offline_cloud.images()

    offline_cloud.destroy(STACK)
    assert set(offline_cloud.images()) == {"golden-base"}
    with pytest.raises(Exception, match="does not exist"):
        offline_cloud.status(STACK)


def test_an_account_that_was_never_bootstrapped_is_refused_as_on_aws(offline_cloud) -> None:
    app = ["--app", f"{sys.executable} app.py", "--output", str(offline_cloud.workdir / "cdk.out")]
    result = offline_cloud.cdk(
        "deploy", *app, STACK, "--require-approval", "never", "-c", "stacks=example", "-c", "nag=false",
        cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Has the environment been bootstrapped?" in result.stdout + result.stderr
    with pytest.raises(Exception, match="does not exist"):
        offline_cloud.status(STACK)

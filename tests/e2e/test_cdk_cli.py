"""The unmodified CDK CLI against the offline cloud, as users run it: bootstrap, deploy, a deploy with
no changes, diff, a failed create and a failed update with their rollbacks, a rotation, destroy.

The CLI deploys cloud assemblies synthesized once per context (`cdk deploy --app cdk.out`); the
CLI's own synth of an app is exercised by the demo (tests/e2e/test_demo.py, which also runs the
provider stack) and tests/e2e/test_user_app.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.cfn.model import StackFailed
from local.synth import cached_synth
from provider.contract import OWNER_TAG

pytest_plugins = ["local.pytest_plugin"]

STACK = "AppStreamImageExample"
BASE = {"stacks": "example", "nag": "false", "goldenImage": "golden-2026-11", "goldenSource": "golden-base"}


def _assembly(**changes: str) -> Path:
    return cached_synth(**{**BASE, **changes})


@pytest.mark.long
def test_the_cli_deploys_rolls_back_and_destroys_offline(offline_cloud) -> None:
    offline_cloud.add_image("builder-output-2026-11")
    offline_cloud.add_image("golden-base")

    # A failed create: the CLI reports the failed resource, CloudFormation rolls the stack back.
    with pytest.raises(StackFailed) as failed:
        offline_cloud.deploy_assembly(_assembly(goldenSource="no-such-base"), STACK)
    assert "no-such-base" in str(failed.value)
    assert offline_cloud.status(STACK) == "ROLLBACK_COMPLETE"
    assert "golden-2026-11" not in offline_cloud.images()
    if "builder-output-2026-11" not in offline_cloud.images():  # the rollback deleted the image it adopted
        offline_cloud.add_image("builder-output-2026-11")

    # The next deploy replaces the rolled-back stack (the CLI deletes it first) and succeeds.
    outputs = offline_cloud.deploy_assembly(_assembly(), STACK)
    assert outputs["GoldenImageArn"].endswith(":image/golden-2026-11")
    assert offline_cloud.status(STACK) == "CREATE_COMPLETE"
    assert offline_cloud.images()["golden-2026-11"]["Tags"][OWNER_TAG].startswith(f"{STACK}/GoldenImage")

    # The same deploy again: the change set has no changes and nothing runs.
    calls = len(offline_cloud.local.appstream.audit.entries())
    offline_cloud.deploy_assembly(_assembly(), STACK)
    assert f"{STACK} (no changes)" in offline_cloud.output[-1]
    assert offline_cloud.status(STACK) == "CREATE_COMPLETE"
    assert len(offline_cloud.local.appstream.audit.entries()) == calls
    diff = offline_cloud.cdk("diff", "--app", str(_assembly()), STACK)  # compares with GetTemplate's answer
    assert "Number of stacks with differences: 0" in diff.stdout + diff.stderr

    # A failed update (the new source is missing): rolled back, the old image stays and keeps streaming.
    with pytest.raises(StackFailed, match="no-such-base"):
        offline_cloud.deploy_assembly(_assembly(goldenImage="golden-2026-12", goldenSource="no-such-base"), STACK)
    assert offline_cloud.status(STACK) == "UPDATE_ROLLBACK_COMPLETE"
    assert offline_cloud.images()["golden-2026-11"]["State"] == "AVAILABLE"
    assert offline_cloud.outputs(STACK)["GoldenImageArn"].endswith(":image/golden-2026-11")

    # The rotation: a new ImageName replaces the image; the old one is deleted once the fleet lets go.
    outputs = offline_cloud.deploy_assembly(_assembly(goldenImage="golden-2026-12"), STACK)
    assert outputs["GoldenImageArn"].endswith(":image/golden-2026-12")
    assert "golden-2026-11" not in offline_cloud.images()

    offline_cloud.destroy(STACK)
    assert set(offline_cloud.images()) == {"golden-base"}
    with pytest.raises(Exception, match="does not exist"):
        offline_cloud.status(STACK)


def test_an_account_that_was_never_bootstrapped_is_refused_as_on_aws(offline_cloud) -> None:
    result = offline_cloud.cdk("deploy", "--app", str(_assembly()), STACK, "--require-approval", "never", check=False)
    assert result.returncode != 0
    assert "Has the environment been bootstrapped?" in result.stdout + result.stderr
    with pytest.raises(Exception, match="does not exist"):
        offline_cloud.status(STACK)

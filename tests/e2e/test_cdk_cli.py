"""The unmodified CDK CLI against the offline cloud, as users run it: bootstrap, deploy, a deploy with
no changes, diff, a failed create and a failed update with their rollbacks, a rotation, destroy.

The CLI deploys cloud assemblies synthesized once per context (`cdk deploy --app cdk.out`); the
CLI's own synth of an app is exercised by the demo (tests/e2e/test_demo.py, which also runs the
provider stack) and tests/release/test_kit.py (a user's project, from the installed wheel)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from appstream_image_local.cfn.model import StackFailed
from provider.contract import OWNER_TAG
from tools.synth import cached_synth

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
    # The image the stack adopted is given back, whether or not its adoption had finished: never deleted.
    assert offline_cloud.images()["builder-output-2026-11"]["Tags"] == {}

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
    # The copies are deleted; the adopted image is released (OnDelete's default for an adoption): kept, untagged.
    assert set(offline_cloud.images()) == {"golden-base", "builder-output-2026-11"}
    assert offline_cloud.images()["builder-output-2026-11"]["Tags"] == {}
    offline_cloud.assert_clean(STACK)
    with pytest.raises(ClientError, match="does not exist"):
        offline_cloud.status(STACK)


def test_an_account_that_was_never_bootstrapped_is_refused_as_on_aws(offline_cloud) -> None:
    result = offline_cloud.cdk("deploy", "--app", str(_assembly()), STACK, "--require-approval", "never", check=False)
    assert result.returncode != 0
    assert "Has the environment been bootstrapped?" in result.stdout + result.stderr
    with pytest.raises(ClientError, match="does not exist"):
        offline_cloud.status(STACK)


@pytest.mark.long
def test_the_cli_meets_update_rollback_failed_as_on_aws_and_cdk_rollback_completes_it(
    offline_cloud, tmp_path: Path
) -> None:
    """A stack whose custom resource fails its update and its rollback: `cdk deploy` is refused as CloudFormation
    refuses the change set; `cdk rollback --orphan` calls ContinueUpdateRollback with ResourcesToSkip."""
    import io
    import json
    import zipfile

    from tests.local.test_cloudformation_rules import BUCKET, HANDLER, template

    s3, cfn = offline_cloud.client("s3"), offline_cloud.client("cloudformation")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", HANDLER)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="thing.zip", Body=code.getvalue())
    offline_cloud.deploy_template("Things", _written(tmp_path / "v1.json", template(Mode="fail-update", Value="1")))
    with pytest.raises(StackFailed, match="UPDATE_ROLLBACK_FAILED"):
        offline_cloud.deploy_template("Things", _written(tmp_path / "v2.json", template(Mode="fail-update", Value="2")))

    assembly = tmp_path / "assembly"
    assembly.mkdir()
    (assembly / "Things.template.json").write_text(template(Mode="ok", Value="3"))
    stack = {"type": "aws:cloudformation:stack", "environment": "aws://123456789012/us-east-1"}
    stack["properties"] = {"templateFile": "Things.template.json"}  # type: ignore[assignment]
    (assembly / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": {"Things": stack}}))
    refused = offline_cloud.cdk("deploy", "--app", str(assembly), "Things", "--require-approval", "never", check=False)
    assert refused.returncode != 0
    assert "is in UPDATE_ROLLBACK_FAILED state and can not be updated" in refused.stdout + refused.stderr
    assert offline_cloud.status("Things") == "UPDATE_ROLLBACK_FAILED"

    offline_cloud.bootstrap()  # `cdk rollback` reads the bootstrap stack (a hand-written assembly names none)
    offline_cloud.cdk(
        "rollback", "--app", str(assembly), "Things", "--orphan", "Thing", "--toolkit-stack-name", "CDKToolkit"
    )
    assert offline_cloud.status("Things") == "UPDATE_ROLLBACK_COMPLETE"
    skipped = [
        e for e in cfn.describe_stack_events(StackName="Things")["StackEvents"] if e["LogicalResourceId"] == "Thing"
    ]
    assert "ResourcesToSkip" in str(skipped[0].get("ResourceStatusReason", ""))
    offline_cloud.cdk("deploy", "--app", str(assembly), "Things", "--require-approval", "never")
    assert offline_cloud.status("Things") == "UPDATE_COMPLETE"


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path

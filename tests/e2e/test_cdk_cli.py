"""The unmodified CDK CLI against the offline cloud, as users run it, in one session on one offline cloud: a deploy
refused before bootstrap, a failed create and its rollback, a deploy, a deploy with no changes, diff, a failed update
and its rollback, a rotation, destroy; then a stack in UPDATE_ROLLBACK_FAILED that `cdk rollback` completes.

The CLI deploys cloud assemblies synthesized once per context (`cdk deploy --app cdk.out`, the e2e assemblies);
the CLI's own synth of an app is exercised by the demo (tests/e2e/test_demo.py, which also runs the provider
stack) and tests/release/test_kit.py (a user's project, from the installed wheel)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from appstream_image_local.cfn.model import StackFailed
from appstream_image_local.kit import OfflineCloud
from provider.contract import OWNER_TAG
from tests.local.test_cloudformation_rules import BUCKET, HANDLER, template

pytestmark = pytest.mark.toolchain  # the CDK CLI, synthesized assemblies

STACK = "AppStreamImageExample"


@pytest.mark.long
def test_the_cli_deploys_rolls_back_and_destroys_offline(
    offline_cloud: OfflineCloud, assemblies: dict[str, Path], tmp_path: Path
) -> None:
    good, rotated, broken = assemblies["v1"], assemblies["v2"], assemblies["broken"]  # broken: golden-2026-12's
    offline_cloud.add_image("builder-output-2026-11")  # source is missing (no-such-base)
    offline_cloud.add_image("golden-base")

    # An account that was never bootstrapped is refused, as on AWS.
    result = offline_cloud.cdk("deploy", "--app", str(good), STACK, "--require-approval", "never", check=False)
    assert result.returncode != 0
    assert "Has the environment been bootstrapped?" in result.stdout + result.stderr
    with pytest.raises(ClientError, match="does not exist"):
        offline_cloud.status(STACK)

    # A failed create (the deploy bootstraps first): the CLI reports the failed resource, CloudFormation rolls back.
    with pytest.raises(StackFailed) as failed:
        offline_cloud.deploy_assembly(broken, STACK)
    assert "no-such-base" in str(failed.value)
    assert offline_cloud.status(STACK) == "ROLLBACK_COMPLETE"
    assert "golden-2026-12" not in offline_cloud.images()
    # The image the stack adopted is given back, whether or not its adoption had finished: never deleted.
    assert offline_cloud.images()["builder-output-2026-11"]["Tags"] == {}

    # The next deploy replaces the rolled-back stack (the CLI deletes it first) and succeeds.
    outputs = offline_cloud.deploy_assembly(good, STACK)
    assert outputs["GoldenImageArn"].endswith(":image/golden-2026-11")
    assert offline_cloud.status(STACK) == "CREATE_COMPLETE"
    assert offline_cloud.images()["golden-2026-11"]["Tags"][OWNER_TAG].startswith(f"{STACK}/GoldenImage")

    # The same deploy again: the change set has no changes and nothing runs.
    calls = len(offline_cloud.audit())
    offline_cloud.deploy_assembly(good, STACK)
    assert f"{STACK} (no changes)" in offline_cloud.output[-1]
    assert offline_cloud.status(STACK) == "CREATE_COMPLETE"
    assert len(offline_cloud.audit()) == calls
    diff = offline_cloud.cdk("diff", "--app", str(good), STACK)  # compares with GetTemplate's answer
    assert "Number of stacks with differences: 0" in diff.stdout + diff.stderr

    # A failed update (the new source is missing): rolled back, the old image stays and keeps streaming.
    with pytest.raises(StackFailed, match="no-such-base"):
        offline_cloud.deploy_assembly(broken, STACK)
    # The CLI shows the provider's log lines (FilterLogEvents on the function's log group), as on AWS.
    assert "Could not fetch logs" not in offline_cloud.output[-1]
    _, shown = offline_cloud.output[-1].split("Logs from", 1)
    assert "no-such-base" in shown
    assert offline_cloud.status(STACK) == "UPDATE_ROLLBACK_COMPLETE"
    assert offline_cloud.images()["golden-2026-11"]["State"] == "AVAILABLE"
    assert offline_cloud.outputs(STACK)["GoldenImageArn"].endswith(":image/golden-2026-11")

    # The rotation: a new ImageName replaces the image; the old one is deleted once the fleet lets go.
    outputs = offline_cloud.deploy_assembly(rotated, STACK)
    assert outputs["GoldenImageArn"].endswith(":image/golden-2026-12")
    assert "golden-2026-11" not in offline_cloud.images()

    offline_cloud.destroy(STACK)
    # The copies are deleted; the adopted image is released (OnDelete's default for an adoption): kept, untagged.
    assert set(offline_cloud.images()) == {"golden-base", "builder-output-2026-11"}
    assert offline_cloud.images()["builder-output-2026-11"]["Tags"] == {}
    offline_cloud.assert_clean(STACK)
    with pytest.raises(ClientError, match="does not exist"):
        offline_cloud.status(STACK)

    _update_rollback_failed_then_cdk_rollback(offline_cloud, tmp_path)


def _update_rollback_failed_then_cdk_rollback(offline_cloud: OfflineCloud, tmp_path: Path) -> None:
    """A stack whose custom resource fails its update and its rollback: `cdk deploy` is refused as CloudFormation
    refuses the change set; `cdk rollback --orphan` calls ContinueUpdateRollback with ResourcesToSkip."""
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

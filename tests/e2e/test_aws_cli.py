"""The real AWS CLI v1 (awscli from PyPI, requirements-dev.txt) against the offline cloud, as the docs have
users run it: `aws cloudformation deploy` of examples/images.yaml (a create, an update through the local S3
that replaces the copied image, a deploy with no changes and its two exit codes), describe-stack-events,
wait, delete-stack; and `package` uploading to the local S3.

The CLI runs as a command only: importing `awscli` would make `import botocore` load the CLI's own vendored
botocore (its import alias finder) in this process. Which CloudFormation actions each command calls is read
from the local API's request log (the CLI signs with the key "local"); summary.py lists them.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from appstream_image_local.cfn.api import CloudFormationApi
from appstream_image_local.kit import OfflineCloud
from provider.contract import OWNER_TAG
from tests.conftest import AWS_CLI_CLOCK, ROOT
from tools.synth import cached_synth

AWS = Path(sys.executable).with_name("aws")
PROVIDER = "AppStreamImageProvider"
STACK = "Images"
TEMPLATE = str(ROOT / "examples" / "images.yaml")
BUCKET = "deploy-artifacts"
DEPLOY = ("cloudformation", "deploy", "--template-file", TEMPLATE, "--stack-name", STACK)


class AwsCli:
    """`aws ...` against the offline cloud with nothing of the user's (no AWS_* variable, empty config files)."""

    def __init__(self, offline: OfflineCloud) -> None:
        assert AWS.exists(), f"{AWS} is missing: pip install -r requirements-dev.txt (awscli)"
        assert offline.local.cloudformation is not None
        self.api: CloudFormationApi = offline.local.cloudformation.api
        mine = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env = {**mine, **offline.local.env(), **AWS_CLI_CLOCK, "AWS_DEFAULT_OUTPUT": "json", "AWS_PAGER": ""}
        self.actions: list[str] = []  # the CloudFormation actions of the last command, in order

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        start = len(self.api.requests)
        result = subprocess.run(
            [str(AWS), *args], env=self.env, capture_output=True, text=True, timeout=900, check=False
        )
        key = self.env["AWS_ACCESS_KEY_ID"]  # the provider's function signs with keys of its own
        self.actions = [action for signer, action in list(self.api.requests)[start:] if signer == key]
        return result

    @property
    def calls(self) -> list[str]:
        """The last command's actions, a poll's repeats merged (how many depends on how long the stack took)."""
        return [action for action, _ in itertools.groupby(self.actions)]


def _parameters(offline: OfflineCloud) -> dict[str, str]:
    described = offline.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


@pytest.mark.long
@pytest.mark.toolchain  # the synthesized provider stack (tools/synth.py: a jsii runtime when its cache is cold)
def test_the_aws_cli_deploys_updates_and_deletes_the_example_template(offline_cloud: OfflineCloud) -> None:
    offline_cloud.add_image("golden-base")
    offline_cloud.add_image("builder-output-2026-11")
    offline_cloud.cloud.deploy(PROVIDER, cached_synth(goldenImage="golden-2026-11") / f"{PROVIDER}.template.json")
    offline_cloud.cloud.s3.create_bucket(Bucket=BUCKET)
    aws = AwsCli(offline_cloud)

    # A new stack: a CREATE change set, executed; the CLI waits for CREATE_COMPLETE.
    created = aws(*DEPLOY, "--parameter-overrides", "GoldenImageName=golden-2026-11")
    assert created.returncode == 0, created.stderr[-3000:]
    assert f"Successfully created/updated stack - {STACK}" in created.stdout
    assert aws.calls == ["DescribeStacks", "CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet", "DescribeStacks"]
    assert offline_cloud.status(STACK) == "CREATE_COMPLETE"
    images = offline_cloud.images()
    assert images["golden-2026-11"]["State"] == "AVAILABLE"
    assert images["golden-2026-11"]["Tags"][OWNER_TAG].startswith(f"{STACK}/GoldenImage/")
    assert "210987654321" in images["golden-2026-11"]["Permissions"]  # SharedAccount's default
    assert images["builder-output-2026-11"]["Tags"][OWNER_TAG].startswith(f"{STACK}/BuilderImage/")  # adopted
    assert offline_cloud.state()["fleets"] == {f"{STACK}-fleet": "golden-2026-11"}

    waited = aws("cloudformation", "wait", "stack-create-complete", "--stack-name", STACK)
    assert (waited.returncode, aws.calls) == (0, ["DescribeStacks"])

    # Events, newest first: the stack's CREATE_COMPLETE on top.
    shown = aws("cloudformation", "describe-stack-events", "--stack-name", STACK)
    events = json.loads(shown.stdout)["StackEvents"]
    assert (events[0]["LogicalResourceId"], events[0]["ResourceStatus"]) == (STACK, "CREATE_COMPLETE")
    done = {(e["LogicalResourceId"], e["ResourceStatus"]) for e in events}
    assert {(name, "CREATE_COMPLETE") for name in ("BuilderImage", "GoldenImage", "Fleet")} <= done
    assert aws.actions == ["DescribeStackEvents"]  # one page (of up to 100: paging is tested with the API's tests)

    # An update through the local S3 (TemplateURL): a new ImageName replaces the copy; the other parameters keep
    # their values (UsePreviousValue, for the parameters GetTemplateSummary lists).
    updated = aws(*DEPLOY, "--s3-bucket", BUCKET, "--parameter-overrides", "GoldenImageName=golden-2026-12")
    assert updated.returncode == 0, updated.stderr[-3000:]
    assert aws.calls == [
        "DescribeStacks", "GetTemplateSummary", "CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet",
        "DescribeStacks",
    ]  # fmt: skip
    assert offline_cloud.status(STACK) == "UPDATE_COMPLETE"
    assert _parameters(offline_cloud)["GoldenImageName"] == "golden-2026-12"
    assert _parameters(offline_cloud)["GoldenSource"] == "golden-base"
    uploaded = offline_cloud.cloud.s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"].endswith(".template") for o in uploaded] == [True]
    images = offline_cloud.images()
    assert images["golden-2026-12"]["State"] == "AVAILABLE"
    assert images["golden-2026-12"]["Tags"][OWNER_TAG].startswith(f"{STACK}/GoldenImage/")
    assert "golden-2026-11" not in images  # the replaced copy is deleted once the fleet streams the new one
    assert offline_cloud.state()["fleets"] == {f"{STACK}-fleet": "golden-2026-12"}
    waited = aws("cloudformation", "wait", "stack-update-complete", "--stack-name", STACK)
    assert (waited.returncode, aws.calls) == (0, ["DescribeStacks"])

    # The same deploy again: the change set fails with "didn't contain changes"; v1 exits 255 unless told not to.
    changed = offline_cloud.changed_images()
    same = aws(*DEPLOY, "--parameter-overrides", "GoldenImageName=golden-2026-12")
    assert same.returncode == 255
    assert f"No changes to deploy. Stack {STACK} is up to date" in same.stderr
    assert aws.calls == ["DescribeStacks", "GetTemplateSummary", "CreateChangeSet", "DescribeChangeSet"]
    tolerated = aws(*DEPLOY, "--no-fail-on-empty-changeset")  # GoldenImageName: the stack's previous value
    assert tolerated.returncode == 0, tolerated.stderr[-3000:]
    assert f"No changes to deploy. Stack {STACK} is up to date" in tolerated.stdout
    assert offline_cloud.status(STACK) == "UPDATE_COMPLETE"
    assert offline_cloud.changed_images() == changed  # nothing ran

    # delete-stack, then the waiter: "does not exist" is its success. Nothing of the stack is left.
    deleted = aws("cloudformation", "delete-stack", "--stack-name", STACK)
    assert (deleted.returncode, aws.calls) == (0, ["DeleteStack"])
    waited = aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", STACK)
    assert (waited.returncode, aws.calls) == (0, ["DescribeStacks"]), waited.stderr[-3000:]
    gone = aws("cloudformation", "describe-stacks", "--stack-name", STACK)
    assert gone.returncode == 255
    assert f"Stack with id {STACK} does not exist" in gone.stderr
    assert set(offline_cloud.images()) == {"golden-base", "builder-output-2026-11"}
    # Released, not deleted: the provider's tags are gone, the template's own tag stays (examples/images.yaml).
    assert offline_cloud.images()["builder-output-2026-11"]["Tags"] == {"source": "image-builder"}
    assert offline_cloud.state()["fleets"] == {}
    offline_cloud.assert_clean(STACK)


def test_package_uploads_local_code_to_the_local_s3_and_calls_no_cloudformation(
    offline_cloud: OfflineCloud, tmp_path: Path
) -> None:
    code = tmp_path / "function"
    code.mkdir()
    (code / "index.py").write_text("def handler(event, context):\n    return event\n")
    template = tmp_path / "function.yaml"
    template.write_text(
        "Resources:\n  Function:\n    Type: AWS::Lambda::Function\n    Properties:\n      Runtime: python3.13\n"
        "      Handler: index.handler\n      Role: arn:aws:iam::123456789012:role/function\n      Code: ./function\n"
    )
    offline_cloud.cloud.s3.create_bucket(Bucket=BUCKET)
    aws = AwsCli(offline_cloud)
    packaged = tmp_path / "packaged.json"

    result = aws(
        "cloudformation", "package", "--template-file", str(template), "--s3-bucket", BUCKET,
        "--output-template-file", str(packaged), "--use-json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    assert aws.calls == []
    location = json.loads(packaged.read_text())["Resources"]["Function"]["Properties"]["Code"]
    assert location["S3Bucket"] == BUCKET
    uploaded = offline_cloud.cloud.s3.get_object(Bucket=BUCKET, Key=location["S3Key"])["Body"].read()
    assert zipfile.ZipFile(io.BytesIO(uploaded)).namelist() == ["index.py"]


@pytest.mark.parametrize(("program", "slept"), [("aws", 3.0), ("appstream-image-local", 30.0)])
def test_the_clock_shortens_the_aws_clis_sleeps_and_no_other_programs(
    tmp_path: Path, program: str, slept: float
) -> None:
    """tests/e2e/aws_cli_clock: a 30 s sleep of the CLI's waiter takes 3 s; the offline cloud's (say) stays 30 s."""
    script = tmp_path / program
    script.write_text(
        "import sys, time, sitecustomize\n"
        "asked = []\n"
        "sitecustomize._sleep = asked.append  # what the real sleep would be given\n"
        "time.sleep(30)\n"
        "print(asked[0])\n"
    )
    env = {**os.environ, **AWS_CLI_CLOCK}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    assert float(result.stdout) == slept

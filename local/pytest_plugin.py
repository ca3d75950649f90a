"""A pytest plugin for your own tests: the offline cloud, and your CDK app deployed on it with the real CLI.

Enable it with `pytest -p local.pytest_plugin`, or `pytest_plugins = ["local.pytest_plugin"]` in
your conftest.py. The `offline_cloud` fixture starts the offline cloud (`local.cloud.LocalCloud`:
the local AppStream service, as strict as AWS, moto and the local CloudFormation API); seed images
with `offline_cloud.add_image(...)`, then `deploy_app(...)` or `deploy_assembly(...)` runs the
unmodified `cdk deploy` (bootstrapping the account on first use) and returns the stack's outputs;
`offline_cloud.images()` shows what AppStream holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.appstream import AppStreamBackend
from local.cfn.driver import Cloud
from local.cfn.model import StackFailed
from local.cloud import LocalCloud

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["OfflineCloud", "StackFailed", "offline_cloud"]


def cdk_cli() -> str:
    """The CDK CLI: this project's pinned one (node_modules), else the first on PATH."""
    path = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    found = shutil.which("cdk", path=path)
    if found is None:
        raise RuntimeError("the CDK CLI is not installed: `npm install aws-cdk` (or `make setup` in this project)")
    return found


@dataclass
class OfflineCloud:
    """The offline cloud of one test, and the CDK CLI pointed at it."""

    local: LocalCloud
    workdir: Path
    output: list[str] = field(default_factory=list)  #: what each `cdk` command printed
    _apps: dict[str, tuple[str, Path]] = field(default_factory=dict)
    _bootstrapped: bool = False

    @property
    def cloud(self) -> Cloud:
        """The driver behind the CloudFormation API (its stacks, S3 client, statistics)."""
        assert self.local.cloud is not None
        return self.local.cloud

    @property
    def backend(self) -> AppStreamBackend:
        return self.local.backend

    def env(self) -> dict[str, str]:
        """The variables that point the CLI, boto3 and the AWS CLI at this cloud."""
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `python` is this venv's
        return {**os.environ, **self.local.env(), "CDK_DISABLE_CLI_TELEMETRY": "true", "PATH": path}

    def client(self, service: str) -> Any:
        """A boto3 client of this cloud (cloudformation, s3, ...)."""
        env = self.local.env()
        endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}", env["AWS_ENDPOINT_URL"])
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            verify=env["AWS_CA_BUNDLE"],
        )

    def cdk(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One unmodified `cdk` command against this cloud; raises StackFailed with its output if it fails."""
        command = [cdk_cli(), *args, "--no-notices"]
        result = subprocess.run(  # noqa: S603 - the CDK CLI with the caller's arguments
            command, cwd=cwd or self.workdir, env=self.env(), capture_output=True, text=True, timeout=900, check=False
        )
        self.output.append(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise StackFailed(f"cdk {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result

    def bootstrap(self) -> None:
        if not self._bootstrapped:
            self.cdk("bootstrap", self.local.account)
            self._bootstrapped = True

    def add_image(self, name: str, **attrs: Any) -> None:
        """Seed the account with an image (AVAILABLE, private, by default)."""
        self.backend.add_image(name, **attrs)

    def deploy_app(self, app_dir: Path, stack: str, app: str = "app.py", **context: str) -> dict[str, str]:
        """`cdk deploy STACK` of the CDK app in `app_dir` (synthesized by the CLI); returns its outputs."""
        return self._deploy(f'"{sys.executable}" {app}', Path(app_dir), stack, context)

    def deploy_assembly(self, assembly: Path, stack: str, **context: str) -> dict[str, str]:
        """`cdk deploy --app ASSEMBLY STACK` of an already synthesized cloud assembly; returns its outputs."""
        return self._deploy(str(Path(assembly).resolve()), self.workdir, stack, context)

    def _deploy(self, app: str, cwd: Path, stack: str, context: dict[str, str]) -> dict[str, str]:
        self.bootstrap()
        flags = [arg for key, value in context.items() for arg in ("-c", f"{key}={value}")]
        self._apps[stack] = (app, cwd)
        out = ["--output", str(self.workdir / "cdk.out")]  # the app's own cdk.out may be in use by another CLI
        self.cdk("deploy", "--app", app, *out, stack, "--require-approval", "never", *flags, cwd=cwd)
        return self.outputs(stack)

    def deploy_template(
        self, stack: str, template: Path, parameters: dict[str, str] | None = None, *, timeout: float = 900
    ) -> dict[str, str]:
        """A plain template, as `aws cloudformation deploy` does it (a change set, executed); returns the outputs."""
        cfn = self.client("cloudformation")
        try:
            existing = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] != "REVIEW_IN_PROGRESS"
        except cfn.exceptions.ClientError:
            existing = False
        made = cfn.create_change_set(
            StackName=stack,
            ChangeSetName=f"deploy-{int(time.time() * 1000)}",
            ChangeSetType="UPDATE" if existing else "CREATE",
            TemplateBody=Path(template).read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        described = cfn.describe_change_set(StackName=stack, ChangeSetName=made["Id"])
        if described["Status"] == "FAILED":
            raise StackFailed(f"{stack}: {described.get('StatusReason', '')}")
        cfn.execute_change_set(StackName=stack, ChangeSetName=described["ChangeSetId"])
        deadline = time.monotonic() + timeout
        while not (status := self.status(stack)).endswith(("_COMPLETE", "_FAILED")) or "ROLLBACK_IN" in status:
            if time.monotonic() > deadline:
                raise StackFailed(f"{stack}: still {status} after {timeout:.0f}s")
            time.sleep(0.2)
        if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
            reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"].endswith("_FAILED")]
            raise StackFailed(f"{stack}: {status}: {'; '.join(reversed(reasons))}")
        return self.outputs(stack)

    def delete_stack(self, stack: str, *, timeout: float = 900) -> None:
        """`aws cloudformation delete-stack`, then wait until it is gone."""
        cfn = self.client("cloudformation")
        stack_id = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackId"]
        cfn.delete_stack(StackName=stack)
        deadline = time.monotonic() + timeout
        while (status := self.status(stack_id)) != "DELETE_COMPLETE":
            if status == "DELETE_FAILED" or time.monotonic() > deadline:
                raise StackFailed(f"{stack}: {status}")
            time.sleep(0.2)

    def outputs(self, stack: str) -> dict[str, str]:
        described = self.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    def status(self, stack: str) -> str:
        return str(self.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])

    def destroy(self, stack: str) -> None:
        """`cdk destroy --force STACK`, with the app it was deployed from."""
        app, cwd = self._apps[stack]
        self.cdk("destroy", "--app", app, "--output", str(self.workdir / "cdk.out"), stack, "--force", cwd=cwd)

    def images(self) -> dict[str, dict[str, Any]]:
        """Every image the local AppStream service holds: fields, tags and sharing."""
        return dict(self.backend.snapshot()["images"])


@pytest.fixture
def offline_cloud(tmp_path: Path) -> Iterator[OfflineCloud]:
    with LocalCloud(tmp_path / "cloud", printer=lambda _line: None) as local:
        yield OfflineCloud(local, tmp_path)

"""The offline cloud of one test, and the unmodified CDK CLI pointed at it: what `offline_cloud` gives a test.

Seed AppStream (`add_image`, `add_fleet`, `add_builder`, `add_ami`, before or during a deploy), inject
faults (`inject`), deploy with the real CLI (`deploy_app`, `deploy_assembly`, `destroy`) or as plain
CloudFormation (`deploy_template`, `delete_stack`), then assert on what happened (`images`, `state`,
`audit`, `status`, `outputs`) or all at once with `assert_clean(stack)`.

`offline_cloud(workdir)` starts one outside pytest. Its options (`DEFAULTS`, under the test's own) are listed in
OfflineCloud's docstring with what each costs: by default the provider's scheduled runs fire within a second, so a
stack with `available_timeout` deploys about as fast as one without; `schedule_scale=1.0` keeps AWS's cadence.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from appstream_image_local.account import REGION
from appstream_image_local.appstream import AppStreamBackend, Fault
from appstream_image_local.appstream.scenario import load_scenario, read_scenario_file, scenario_path
from appstream_image_local.cdk_cli import CDK_ENV, CdkNotFound, find_cdk
from appstream_image_local.cfn.driver import Cloud
from appstream_image_local.cfn.model import StackFailed
from appstream_image_local.cloud import LocalCloud
from appstream_image_local.kit_checks import AccountChecks

__all__ = [
    "CDK_ENV",
    "DEFAULTS",
    "FAST_SCHEDULES",
    "CdkNotFound",
    "OfflineCloud",
    "StackFailed",
    "find_cdk",
    "offline_cloud",
]

# The provider sets each scheduled run 2-3 minutes ahead (an at() minute a poll period away, fired at its last
# second: the provider's LATEST_RUN, 180 s; cfn/schedules.py): at this scale it fires within a second.
FAST_SCHEDULES = 1 / 180
ALL = "--all"  # every stack of the app (the CDK CLI's flag)
#: the options each offline cloud of the kit starts with (see OfflineCloud); a test's own options go over them
DEFAULTS: dict[str, Any] = {"schedule_scale": FAST_SCHEDULES, "handle_scale": 1.0}


@dataclass
class OfflineCloud(AccountChecks):
    """The offline cloud of one test, and the CDK CLI pointed at it.

    Its options: the `offline_cloud` marker's keywords (or `offline_cloud(...)`'s), over `DEFAULTS`. What each
    costs was measured with bench/kit_long_wait.py: one image copied from another, deployed, renamed and destroyed
    with the CDK CLI (three commands), with and without `available_timeout`, on 2 shared cores:

    - `schedule_scale` (default 1/180): the provider's scheduled runs (one-time schedules it sets 2-3 minutes
      ahead) fire after this fraction of their delay, and EventBridge rules' periods shrink alike. The default
      fires each within a second: the test took 47 s with `available_timeout` and 47 s without (medians of 3).
      1.0 is AWS's cadence, minutes per wait: each image's wait condition lasts until the run set after the
      answer fires, 2-3 minutes later (347 s against 47 s). 0.1: 15 s per wait (70 s against 65 s).
    - `handle_scale` (default 1.0): a wait condition handle URL lives 24 hours times this, as AWS signs it: the
      provider's waits end at the wait condition's Timeout, whatever `schedule_scale` is. Below 1 the URL
      expires sooner (0.001: in 86 s), to test a late signal; it costs no time.
    - `scenario`: AppStream's images, limits and durations (a packaged name such as "aws-durations", whose
      3-hour update takes 10.8 s at its time scale of 0.001, or a file); by default a copy takes 2 s, a delete 1 s.
    - `function_timeout` (default: each function's Timeout), `fleet_switch_seconds` (2.0: how long a fleet takes
      to let go of its old image), `queue_delay` (0.3 s before each invocation starts) and `retry_scale` (1.0:
      Lambda's 1- and 2-minute retries of a failed asynchronous invocation) are the driver's (cfn/driver.Cloud).
    """

    local: LocalCloud
    workdir: Path
    cdk_setting: str = ""  #: the `cdk` to use ("" looks for one, see `find_cdk`)
    search_from: tuple[Path, ...] = ()  #: where to look for node_modules/.bin/cdk besides the app
    output: list[str] = field(default_factory=list)  #: what each `cdk` command printed
    _apps: dict[str, tuple[str, Path, list[str], Path]] = field(default_factory=dict)  # stack -> app, cwd, -c, out
    _last_out: Path | None = None  # the assembly folder of the last deploy
    _bootstrapped: set[str] = field(default_factory=set)  # regions `cdk bootstrap` has run for
    _regions: dict[str, str] = field(default_factory=dict)  # stack -> its region, from the deployed assembly

    # -- the cloud -------------------------------------------------------------------------------------

    @property
    def cloud(self) -> Cloud:
        """The local CloudFormation behind the API (its stacks, statistics, leaks)."""
        assert self.local.cloud is not None
        return self.local.cloud

    @property
    def backend(self) -> AppStreamBackend:
        """The local AppStream service's state (images, fleets, builders, AMIs) in the home region."""
        return self.local.backend

    @property
    def home_region(self) -> str:
        """The region the CDK CLI, boto3 and the AWS CLI use unless told another (AWS_REGION)."""
        return REGION

    def region_backend(self, region: str = "") -> AppStreamBackend:
        """The local AppStream service's state in `region` ("": the home region)."""
        assert self.local.appstream is not None
        return self.local.appstream.regions.get(region or self.home_region)

    def env(self) -> dict[str, str]:
        """The variables that point the CDK CLI, boto3 and the AWS CLI at this cloud (and `python` at this venv)."""
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, **self.local.env(), "CDK_DISABLE_CLI_TELEMETRY": "true", "PATH": path}

    def client(self, service: str, region: str = "") -> Any:
        """A boto3 client of this cloud: "appstream", "cloudformation", "s3", "events", ... in `region` ("": home)."""
        env = self.local.env()
        endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}", env["AWS_ENDPOINT_URL"])
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint,
            region_name=region or env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            verify=env["AWS_CA_BUNDLE"],
        )

    # -- seeding AppStream (before a deploy, or while one runs) ----------------------------------------

    def add_image(self, name: str, *, region: str = "", **attrs: Any) -> None:
        """An image in the account (in `region`, "": home): AVAILABLE and PRIVATE by default; e.g.
        `state="COPYING", settle_seconds=30`, `visibility="PUBLIC"`, `platform=...`, `updatable=False`
        (CreateUpdatedImage answers canUpdateImage false)."""
        self.region_backend(region).add_image(name, **attrs)

    def add_fleet(self, name: str, image_name: str = "") -> None:
        """A fleet (outside any stack) that uses `image_name`: DeleteImage refuses an image a fleet uses."""
        self.backend.add_fleet(name, image_name)

    def add_builder(self, name: str, image_name: str = "") -> None:
        """An image builder launched from `image_name` (it counts against the image-builder quota)."""
        self.backend.add_builder(name, image_name)

    def add_ami(self, ami_id: str, *, compatible: bool = True, fails: bool = False) -> None:
        """An AMI CreateImportedImage can import; `fails=True`: its runtime validation fails (ImageErrors)."""
        self.backend.add_ami(ami_id, compatible=compatible, fails=fails)

    def inject(self, kind: str, operation: str = "*", count: int | None = None, **options: Any) -> None:
        """An AppStream fault: kind "throttle", "server_error", "unavailable", "concurrent_modification",
        "latency" (`seconds=`), "drop", or "error" (`code=` any error the operation's model lists);
        on `operation` ("*": all), the next `count` calls (None: until `clear_faults`); also `skip=`,
        `probability=`."""
        assert self.local.appstream is not None
        self.local.appstream.faults.add(Fault(kind, operation, count, **options))

    def clear_faults(self) -> None:
        assert self.local.appstream is not None
        self.local.appstream.faults.clear()

    # -- what happened ---------------------------------------------------------------------------------

    def images(self, region: str = "") -> dict[str, dict[str, Any]]:
        """Every image AppStream holds in `region` ("": home): DescribeImages' fields plus `Tags` and `Permissions`
        (the sharing once accepted: DescribeImagePermissions shows a change a moment later, as on AWS)."""
        return dict(self.region_backend(region).snapshot()["images"])

    def state(self) -> dict[str, Any]:
        """Images, fleets and builders, as the service holds them."""
        return self.backend.snapshot()

    def audit(self, operation: str = "") -> list[dict[str, Any]]:
        """Every AppStream call so far (operation, params, status, error, faults), or only `operation`'s."""
        assert self.local.appstream is not None
        entries = self.local.appstream.audit.entries()
        return [e for e in entries if not operation or e["operation"] == operation]

    # -- the CDK CLI -----------------------------------------------------------------------------------

    def cdk(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One unmodified `cdk` command against this cloud; raises StackFailed with its output if it fails."""
        folder = cwd or self.workdir
        command = [find_cdk(self.cdk_setting, (folder, *self.search_from)), *args, "--no-notices"]
        result = subprocess.run(  # noqa: S603 - the CDK CLI with the caller's arguments
            command, cwd=folder, env=self.env(), capture_output=True, text=True, timeout=900, check=False
        )
        self.output.append(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise StackFailed(f"cdk {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result

    def bootstrap(self, *regions: str) -> None:
        """`cdk bootstrap` of this account in `regions` (none: the home region, which the first deploy bootstraps).
        An app with stacks in other regions bootstraps them first, as on AWS: `bootstrap("eu-west-1", ...)`."""
        wanted = [r for r in dict.fromkeys(regions or (self.home_region,)) if r not in self._bootstrapped]
        if wanted:  # in the workdir: no cdk.json there, so no synth
            self.cdk("bootstrap", *(self.local.environment(r) for r in wanted))
            self._bootstrapped.update(wanted)

    def deploy_app(self, app_dir: Path, stack: str, app: str = "app.py", **context: str) -> dict[str, str]:
        """`cdk deploy STACK` of the CDK app in `app_dir` (its `python` is this venv's); returns the outputs."""
        return self._deploy(f'"{sys.executable}" {app}', Path(app_dir), stack, context)

    def deploy_assembly(self, assembly: Path, stack: str, **context: str) -> dict[str, str]:
        """`cdk deploy --app ASSEMBLY STACK` of an already synthesized cloud assembly; returns its outputs."""
        folder = Path(assembly).resolve()
        return self._deploy(str(folder), self.workdir, stack, context, synthesized=folder)

    def deploy_all(self, app_dir: Path, app: str = "app.py", **context: str) -> dict[str, dict[str, str]]:
        """`cdk deploy --all` of the CDK app in `app_dir`; returns each stack's outputs, by stack name. Stacks in
        other regions than the home one need those regions bootstrapped first (`bootstrap(...)`), as on AWS."""
        self._deploy(f'"{sys.executable}" {app}', Path(app_dir), ALL, context)
        return {stack: self.outputs(stack) for stack in self._stacks()}

    def _deploy(
        self, app: str, cwd: Path, stack: str, context: dict[str, str], synthesized: Path | None = None
    ) -> dict[str, str]:
        self.bootstrap()
        flags = [arg for key, value in context.items() for arg in ("-c", f"{key}={value}")]
        # An app's assembly goes to a folder of this stack's, made afresh (the app's own cdk.out may be in use by
        # another CLI), which `destroy` reads.
        index = list(self._apps).index(stack) if stack in self._apps else len(self._apps)
        out = synthesized or self.workdir / "cdk.out" / f"stack-{index}"
        if not synthesized:
            shutil.rmtree(out, ignore_errors=True)
        self._apps[stack], self._last_out = (app, cwd, flags, out), out
        try:
            output = () if synthesized else ("--output", str(out))
            self.cdk("deploy", "--app", app, *output, stack, "--require-approval", "never", *flags, cwd=cwd)
        finally:  # a failed deploy's stacks too: the test asks for their status next
            self._regions.update(self._assembly_regions())
        return {} if stack == ALL else self.outputs(stack)

    def _assembly(self, out: Path | None = None) -> list[tuple[str, set[str], str]]:
        """The stacks of an assembly (default: the last deploy's): each one's name, the names the CLI knows it by
        (artifact id, path, stack name) and its region (its environment's, or the home region when
        environment-agnostic)."""
        folder = out or self._last_out
        manifest = folder / "manifest.json" if folder else None
        artifacts = json.loads(manifest.read_text()).get("artifacts", {}) if manifest and manifest.exists() else {}
        found = []
        for artifact_id, artifact in artifacts.items():
            if artifact.get("type") == "aws:cloudformation:stack":
                name = str(artifact.get("properties", {}).get("stackName") or artifact_id)
                region = str(artifact.get("environment", "")).rsplit("/", 1)[-1]
                region = self.home_region if region in ("", "unknown-region") else region
                found.append((name, {name, artifact_id, str(artifact.get("displayName") or name)}, region))
        return found

    def _assembly_regions(self) -> dict[str, str]:
        """Every name of each stack of the assembly last synthesized -> its region."""
        return {alias: region for _, aliases, region in self._assembly() for alias in aliases}

    def _stacks(self, out: Path | None = None) -> list[str]:
        """The stack names of an assembly (default: the last deploy's)."""
        return [name for name, _, _ in self._assembly(out)]

    def destroy(self, stack: str) -> None:
        """`cdk destroy --force STACK` of the app and context (`-c`) it was deployed with; then checks that the
        stack really is gone (`cdk destroy` of a stack the app does not synthesize exits 0 deleting nothing).

        The CLI reads the assembly that deploy synthesized (`--app` its folder: the same templates, without a
        second synth of the app, a few CPU-seconds of jsii); the app itself when that deploy made none."""
        app, cwd, flags, out = self._apps[stack]
        if (out / "manifest.json").exists():
            self.cdk("destroy", "--app", str(out), stack, "--force", cwd=cwd)  # the app's cdk.json, as at deploy
        else:
            self.cdk("destroy", "--app", app, "--output", str(out), stack, "--force", *flags, cwd=cwd)
        for name in self._stacks(out) if stack == ALL else [stack]:
            self.assert_gone(name)

    def destroy_all(self) -> None:
        """`cdk destroy --all --force` of the app `deploy_all` deployed last; then checks that each stack is gone."""
        self.destroy(ALL)

    def region_of(self, stack: str) -> str:
        """The region a stack was deployed to by `deploy_app`, `deploy_assembly` or `deploy_all` (else the home one)."""
        return self._regions.get(stack, self.home_region)

    def assert_gone(self, stack: str) -> None:
        """The stack is deleted (DELETE_COMPLETE, or unknown by name); StackFailed with its status and reason."""
        try:
            described = self.client("cloudformation", self.region_of(stack)).describe_stacks(StackName=stack)["Stacks"]
        except ClientError as err:
            if "does not exist" in str(err):
                return
            raise
        if described and described[0]["StackStatus"] != "DELETE_COMPLETE":
            found = described[0]
            raise StackFailed(
                f"{stack} was not deleted: it is {found['StackStatus']} {found.get('StackStatusReason', '')}".rstrip()
            )

    # -- plain CloudFormation --------------------------------------------------------------------------

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
        status = self.wait(stack, timeout=timeout)
        if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
            reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"].endswith("_FAILED")]
            raise StackFailed(f"{stack}: {status}: {'; '.join(reversed(reasons))}")
        return self.outputs(stack)

    def wait(self, stack: str, *, timeout: float = 900) -> str:
        """Wait until the stack's operation ends; returns its status."""
        deadline = time.monotonic() + timeout
        while not (status := self.status(stack)).endswith(("_COMPLETE", "_FAILED")) or "ROLLBACK_IN" in status:
            if time.monotonic() > deadline:
                raise StackFailed(f"{stack}: still {status} after {timeout:.0f}s")
            time.sleep(0.2)
        return status

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
        """The stack's outputs (in the region it was deployed to)."""
        described = self.client("cloudformation", self.region_of(stack)).describe_stacks(StackName=stack)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    def status(self, stack: str) -> str:
        """The stack's status (in the region it was deployed to)."""
        cfn = self.client("cloudformation", self.region_of(stack))
        return str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])


@contextmanager
def offline_cloud(
    workdir: Path,
    scenario: str | Path | None = None,
    *,
    cdk_setting: str = "",
    search_from: Iterable[Path] = (),
    **options: Any,
) -> Iterator[OfflineCloud]:
    """A fresh offline cloud in `workdir`, stopped on leaving: what the `offline_cloud` fixture gives a test.

    `scenario`: a packaged scenario's name (such as "aws-durations") or a scenario file; `options` go over
    `DEFAULTS` to the driver (OfflineCloud lists them); `cdk_setting` and `search_from` are OfflineCloud's."""
    backend, faults = load_scenario(read_scenario_file(scenario_path(scenario))) if scenario else (None, None)
    workdir = Path(workdir)
    settings = {**DEFAULTS, **options}
    with LocalCloud(workdir / "cloud", backend=backend, faults=faults, printer=lambda _line: None, **settings) as local:
        yield OfflineCloud(local, workdir, cdk_setting=cdk_setting, search_from=tuple(search_from))

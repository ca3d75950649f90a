"""The offline test kit as a user installs it: the wheel with its [local] extra in a fresh venv, and the
complete example project of examples/offline-test run there with its own pytest.

The venv is the one the example project's install lines make (tests/release/test_readme_install.py,
`test_the_example_projects_install_lines_work_in_a_fresh_venv`, which calls `assert_the_kit_works` once they
ran): pip installing moto and aws-cdk-lib costs a minute or two, so it is made once and these checks run in it.
No PYTHONPATH, no clone on the path, no conftest.py: `offline_cloud` must come from the wheel's pytest11 entry
point, and everything it imports from the extra's dependencies.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.release.test_wheel import _installed, _pins, assert_user_app_synthesizes

EXTRA = {"moto", "boto3", "cryptography", "werkzeug", "regex", "policy-sentry", "pyyaml"}  # what the cloud imports


def assert_the_extra_brings_what_the_offline_cloud_imports(python: Path) -> None:
    installed = {name.replace("_", "-") for name in _installed(python)}
    assert installed >= EXTRA, EXTRA - installed
    assert "crhelper" not in installed  # it travels inside the wheel, for the Lambda asset only
    probe = "import appstream_image_local.kit, appstream_image_local.pytest_plugin as p; print(p.__file__)"
    where = subprocess.run(
        [str(python), "-E", "-s", "-c", probe], cwd="/", capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert "site-packages" in where
    command = [str(python.parent / "appstream-image-local"), "--help"]
    usage = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout
    assert "--env-file" in usage


def assert_the_user_project_passed_its_own_offline_tests(output: str) -> None:
    """`output`: the project's `pytest` (its README's block, run by bash in the project's folder, its venv active)."""
    assert "2 passed" in output, output[-6000:]
    plugins = next((line for line in output.splitlines() if line.startswith("plugins:")), "")
    assert "appstream-image-provider" in plugins, output[-6000:]  # loaded by the entry point, not by a conftest


def assert_the_pinned_aws_cdk_lib_synthesizes_a_user_app_from_the_wheel_on_python_3_13(
    python: Path, tmp_path: Path
) -> None:
    probe = "import sys, importlib.metadata as m; print(sys.version_info[:2], m.version('aws-cdk-lib'))"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert found == f"(3, 13) {_pins()['aws-cdk-lib']}"
    assert_user_app_synthesizes(python, tmp_path)


def assert_the_kit_works(python: Path, pytest_output: str, tmp_path: Path) -> None:
    """Everything this module checks, in the venv `python` runs in (the example project's)."""
    assert_the_extra_brings_what_the_offline_cloud_imports(python)
    assert_the_user_project_passed_its_own_offline_tests(pytest_output)
    assert_the_pinned_aws_cdk_lib_synthesizes_a_user_app_from_the_wheel_on_python_3_13(python, tmp_path)

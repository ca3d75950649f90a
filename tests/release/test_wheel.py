"""The wheel, installed as a user would: a fresh venv with only aws-cdk-lib, constructs and it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from appstream_image_provider import asset
from tests.conftest import ROOT

MINIMUM_CDK = "2.269.0"  # the lower bound pyproject.toml declares; checked below

# A user's app with its own `stacks` package, the name most CDK apps use (it must not collide).
USER_STACK = """
from aws_cdk import CfnOutput, Stack
from constructs import Construct

from appstream_image_provider import AppStreamImage, ImageShare, ImageSource, InUse


class ImagesStack(Stack):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        image = AppStreamImage(
            self,
            "Golden",
            image_name="golden-2026-12",
            source=ImageSource.copy_of("golden-base"),
            shared_with=[ImageShare("210987654321")],
            in_use=InUse.WAIT,
        )
        CfnOutput(self, "GoldenArn", value=image.image_arn)
"""
USER_APP = """
from aws_cdk import App

from stacks.images import ImagesStack

app = App()
ImagesStack(app, "UserImages")
app.synth()
"""


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[name.strip()] = version.strip()
    return pins


def _user_app(tmp_path: Path) -> Path:
    app = tmp_path / "user-app"
    (app / "stacks").mkdir(parents=True)
    (app / "stacks" / "__init__.py").write_text("")
    (app / "stacks" / "images.py").write_text(USER_STACK)
    (app / "app.py").write_text(USER_APP)
    return app


def oldest_python() -> str:
    """Python 3.11, the oldest the construct library supports: from PATH, else pyenv's."""
    found = shutil.which("python3.11")
    if found is None:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates = sorted(Path(root or "/nonexistent").glob("versions/3.11*/bin/python3.11"))
        found = str(candidates[-1]) if candidates else None
    assert found, "Python 3.11 (the oldest supported) is needed for this test: install python3.11 or pyenv's 3.11"
    return found


def _venv(path: Path, *requirements: str, python: str = sys.executable) -> Path:
    """A fresh venv holding only `requirements` (installed by this venv's pip: no pip inside, no .pyc)."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-compile", *requirements], check=True, capture_output=True, timeout=600)
    return python


def _installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "list", "--format=json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    )
    return {entry["name"].lower() for entry in json.loads(listing.stdout)}


def test_the_declared_minimum_is_the_one_tested() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"aws-cdk-lib>={MINIMUM_CDK},<3" in project["dependencies"]


@pytest.mark.toolchain  # dist_dir: the wheel's build (jsii)
def test_the_wheel_carries_the_lambda_code_and_the_pinned_crhelper(dist_dir: Path) -> None:
    (wheel,) = dist_dir.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    repo = {f"appstream_image_provider/{path}" for path in asset._listing(asset.build())}
    bundled = {n.replace("appstream_image_provider/_lambda_deps/", "appstream_image_provider/") for n in names}
    assert repo <= bundled  # every file of the repository's asset, provider/ and crhelper/
    assert "appstream_image_provider/_lambda_deps/crhelper/LICENSE" in names
    assert not any(name.startswith(("provider/", "stacks/", "local/", "tests/")) for name in names)
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "Requires-Dist: crhelper" not in metadata  # bundled for the asset, not installed


@pytest.mark.toolchain  # dist_dir: the wheel's build (jsii)
def test_building_the_wheel_leaves_nothing_in_the_temp_dir(dist_build_tmp: Path) -> None:
    """The build hook's generated files (AppStream's model, crhelper's licence) are removed once the wheel is built."""
    assert sorted(p.name for p in dist_build_tmp.iterdir()) == []


@pytest.mark.long
@pytest.mark.toolchain  # the wheel's build, a venv, pip, a synth
def test_a_user_app_with_its_own_stacks_package_synthesizes_from_the_wheel_on_the_oldest_python(
    dist_dir: Path, tmp_path: Path
) -> None:
    """The oldest declared aws-cdk-lib on the oldest Python, 3.11, with only the wheel's two dependencies (the
    pinned aws-cdk-lib on Python 3.13 is the example project's venv (tests/release/test_readme_install.py, with
    test_kit.py's checks), which synthesizes a user app too)."""
    pins = _pins()
    (wheel,) = dist_dir.glob("*.whl")
    requirements = (f"aws-cdk-lib=={MINIMUM_CDK}", f"constructs=={pins['constructs']}", str(wheel))
    python = _venv(tmp_path / "venv", *requirements, python=oldest_python())
    probe = [str(python), "-c", "import sys; print(sys.version_info[:2])"]
    version_info = subprocess.run(probe, check=True, capture_output=True, text=True).stdout.strip()
    assert version_info == "(3, 11)"
    installed = _installed(python)
    assert "crhelper" not in installed
    assert "boto3" not in installed
    assert_user_app_synthesizes(python, tmp_path)


def assert_user_app_synthesizes(python: Path, tmp_path: Path) -> None:
    """A user's app with its own `stacks` package synthesizes from the installed wheel, with this checkout's asset."""
    app = _user_app(tmp_path)
    out = tmp_path / "cdk.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CDK_"))}
    env["CDK_OUTDIR"] = str(out)
    # -E -s: no PYTHONPATH, no user site; the script's own directory (the user's `stacks`) stays first.
    subprocess.run([str(python), "-E", "-s", "app.py"], cwd=app, env=env, check=True, capture_output=True, timeout=300)

    template = json.loads((out / "UserImages.template.json").read_text())
    resources = template["Resources"].values()
    (image,) = [r for r in resources if r["Type"] == "Custom::AppStreamImage"]
    assert image["Properties"]["ImageName"] == "golden-2026-12"
    (function,) = [r for r in resources if r["Type"] == "AWS::Lambda::Function"]
    assert function["Properties"]["Runtime"] == "python3.13"
    assert function["Properties"]["Handler"] == asset.HANDLER
    manifest = json.loads((out / "UserImages.assets.json").read_text())
    (asset_dir,) = [out / f["source"]["path"] for f in manifest["files"].values() if f["source"]["packaging"] == "zip"]
    # The same files as the asset this checkout builds: the provider and crhelper, from the wheel.
    assert asset._listing(asset_dir) == asset._listing(asset.build())
    for name in asset._listing(asset_dir):
        assert (asset_dir / name).read_bytes() == (asset.build() / name).read_bytes(), name

"""`make docs`: the API reference is generated from the docstrings and documents every prop's default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.toolchain  # pdoc imports aws-cdk-lib (jsii) in a child process

MODULES = [
    "appstream_image_provider",
    "appstream_image_provider.appstream_image",
    "appstream_image_provider.props",
    "appstream_image_provider.provider_function",
    "appstream_image_provider.provider_iam",
    "appstream_image_provider.provider_stack",
    "provider.contract",
]


def test_the_api_reference_documents_the_construct_and_its_defaults(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pdoc", "--docformat", "restructuredtext", "--output-directory", str(tmp_path)]
    env = {**os.environ, "PDOC_ALLOW_EXEC": "1"}  # importing aws-cdk-lib starts jsii's Node process
    subprocess.run([*command, *MODULES], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    page = (tmp_path / "appstream_image_provider" / "appstream_image.html").read_text()
    for documented in ("AppStreamImage", "ImageSource", "ImageShare", "InUse", "default `InUse.WAIT`"):
        assert documented in page
    options = (tmp_path / "appstream_image_provider" / "provider_function.html").read_text()
    assert "ProviderOptions" in options
    assert "default: a log group made for it" in options
    assert (tmp_path / "provider" / "contract.html").exists()  # the shared contract, under its one name

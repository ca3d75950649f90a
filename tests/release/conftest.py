"""The release artifacts, built once per test session from this checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The commands of `make dist`, each followed by the output directory (tests/release/test_standalone.py checks).
DIST_COMMANDS = [
    ["-m", "build", "--no-isolation", ".", "--outdir"],
    ["-m", "appstream_image_provider.standalone"],
]


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make dist` builds: the sdist, the wheel built from it, the Lambda zip and the standalone template."""
    out = tmp_path_factory.mktemp("dist")
    for command in DIST_COMMANDS:
        subprocess.run([sys.executable, *command, str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out

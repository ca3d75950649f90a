"""The release artifacts, built once per test run from this checkout and shared by the test processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tools.synth import locked

# The commands of `make dist`, each followed by the output directory (tests/release/test_standalone.py checks).
DIST_COMMANDS = [
    ["-m", "build", "--no-isolation", ".", "--outdir"],
    ["-m", "appstream_image_provider.standalone"],
]


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make dist` builds: the sdist, the wheel built from it, the Lambda zip and the standalone template.

    Built once per run: pytest-xdist's workers share their base temp's parent, so the first one builds under a lock
    and the others read what it built (each build costs a jsii start, about 5 CPU-seconds).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's, not every run's
    out, build_tmp = shared / "dist", shared / "dist-build-tmp"
    with locked(shared / "dist.lock"):
        if not (shared / "dist.done").exists():
            for path in (out, build_tmp):
                path.mkdir(exist_ok=True)
            for command in DIST_COMMANDS:
                # The wheel's build gets a temp dir of its own, which a test_wheel.py test finds empty.
                env = {**os.environ, "TMPDIR": str(build_tmp)} if command[1] == "build" else None
                argv = [sys.executable, *command, str(out)]
                subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, timeout=300, env=env)
            (shared / "dist.done").write_text("")
    return out


@pytest.fixture(scope="session")
def dist_build_tmp(dist_dir: Path) -> Path:
    """The temp dir the wheel's build ran with (see dist_dir)."""
    return dist_dir.parent / "dist-build-tmp"

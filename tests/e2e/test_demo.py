"""The README's first command: the offline demo (the real CDK CLI) runs to its end and reports a clean run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.toolchain  # the demo: the CDK CLI, which synthesizes app.py (jsii)


@pytest.mark.long
def test_the_demo_deploys_rotates_destroys_and_finds_nothing_else_touched() -> None:
    result = subprocess.run(
        # The scenario's copies, updates and deletes (3-4 s each) at a quarter: the same steps, less waiting.
        [sys.executable, "-m", "tools.demo", "--time-scale", "0.25"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    out = result.stdout + result.stderr  # the CDK CLI writes its progress to stderr
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "Environment aws://123456789012/us-east-1 bootstrapped" in out  # the real CDK CLI's own lines
    assert "AppStreamImageExample (no changes)" in out
    assert "UPDATE_COMPLETE_CLEANUP" in out
    assert "AppStreamImageExample: destroyed" in out
    assert "still there: none" in out
    assert "adopted and released (kept without the provider's tags): builder-output-2026-11" in out
    assert "other images, untouched: AppStream-WinServer2022-11-01-2026, golden-base, unrelated-team-image" in out
    assert "0 polling rules or permissions left, 0 invalid responses" in out
    assert "\nOK: demo finished" in out

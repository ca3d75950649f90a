"""What setup makes in the checkout stays out of git, also when it is a symlink (a venv shared between clones)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("name", [".venv", "node_modules"])
def test_a_symlinked_venv_or_node_modules_is_ignored(tmp_path: Path, name: str) -> None:
    repo, target = tmp_path / "repo", tmp_path / "elsewhere"
    repo.mkdir()
    target.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / name).symlink_to(target)
    status = ["git", "-C", str(repo), "status", "--porcelain"]
    found = subprocess.run(status, check=True, capture_output=True, text=True)
    assert name not in found.stdout

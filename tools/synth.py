"""Synthesizing this project's CDK app offline, as `cdk synth` runs it, with a cache for tests.

`synth_app` runs app.py the way the CDK CLI does (CDK_OUTDIR, CDK_CONTEXT_JSON). `cached_synth`
keeps one cloud assembly per context and per content of the app's sources, shared by every test
process: a synth costs seconds of jsii start-up, and the assemblies are only read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("app.py", "cdk.json", "requirements.txt", "stacks/*.py", "provider/*.py", "provider/requirements.txt",
           "appstream_image_provider/*.py")  # fmt: skip
CACHE = Path(tempfile.gettempdir()) / "appstream-image-provider-synth"


def synth_app(out: Path, *, app_dir: Path = ROOT, app: str = "app.py", context: dict[str, str] | None = None) -> Path:
    """Run a CDK app (this project's by default) as `cdk synth` would, into `out`; returns the cloud assembly."""
    env = {**os.environ, "CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps(context or {})}
    result = subprocess.run(  # noqa: S603 - a CDK app, run with this interpreter
        [sys.executable, app], cwd=app_dir, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthesizing {app_dir / app} failed:\n{result.stderr[-4000:]}")
    return out


def _key(context: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
    for pattern in SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (made if missing), shared by every process on this machine: one builder at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached_synth(**context: str) -> Path:
    """The cloud assembly for `context`, synthesized once per source content (treat it as read-only)."""
    target = CACHE / _key(context)
    with locked(CACHE / f"{target.name}.lock"):
        if not (target / "manifest.json").exists():
            staging = Path(tempfile.mkdtemp(prefix="synth-", dir=CACHE))
            try:
                synth_app(staging, context=context)
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target

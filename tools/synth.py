"""Synthesizing this project's CDK app offline, as `cdk synth` runs it, with a cache for tests.

`synth_app` runs app.py the way the CDK CLI does (CDK_OUTDIR, CDK_CONTEXT_JSON). `cached_synth`
keeps one cloud assembly per context and per content of the app's sources, shared by every test
process: a synth costs seconds of jsii start-up, and the assemblies are only read.

A cold cache (a fresh clone, a changed source) is filled in one process: every context asked for in
the last week is synthesized with one jsii runtime (`synth_apps`: about 4 CPU-seconds to start,
then under one per context) instead of one process per context.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("app.py", "cdk.json", "requirements.txt", "stacks/**/*.py", "provider/**/*.py", "provider/requirements.txt",
           "appstream_image_provider/**/*.py")  # fmt: skip
CACHE = Path(tempfile.gettempdir()) / "appstream-image-provider-synth"
KNOWN = CACHE / "contexts.json"  # each context asked for, with when: a cold cache synthesizes them all at once
FORGET_AFTER = 7 * 86400  # seconds: a context no test asked for in a week is no longer synthesized ahead
ERROR = "synth-error.txt"  # written into a job's output folder when its synth fails (synth_apps)
# Set by tests/conftest.py for the fast tier (`make check`): a log file. `cached_synth` then refuses, writing why there,
# even when the cache would answer: a fresh clone's cache is empty and its synth starts a jsii runtime.
REFUSED_ENV = "APPSTREAM_IMAGE_SYNTH_REFUSED"

Context = dict[str, str | bool]


def synth_app(out: Path, *, app_dir: Path = ROOT, app: str = "app.py", context: Context | None = None) -> Path:
    """Run a CDK app (this project's by default) as `cdk synth` would, into `out`; returns the cloud assembly."""
    env = {**os.environ, "CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps(context or {})}
    result = subprocess.run(  # noqa: S603 - a CDK app, run with this interpreter
        [sys.executable, app], cwd=app_dir, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthesizing {app_dir / app} failed:\n{result.stderr[-4000:]}")
    return out


def synth_apps(jobs: list[tuple[Path, Context]], *, app_dir: Path = ROOT, app: str = "app.py") -> None:
    """Run a CDK app once per (output folder, context) in one process, so with one jsii runtime. The app's `App()`
    gets them as its `outdir` and `context` props, which `cdk synth`'s CDK_OUTDIR and CDK_CONTEXT_JSON set (the same
    assembly). A job that fails leaves ERROR in its folder, and the others still run."""
    env = {k: v for k, v in os.environ.items() if k not in ("CDK_OUTDIR", "CDK_CONTEXT_JSON")}
    spec = json.dumps([[str(out), context] for out, context in jobs])
    result = subprocess.run(  # noqa: S603 - this module, run with this interpreter
        [sys.executable, __file__, str(app_dir / app), spec], cwd=app_dir, env=env, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    for out, _ in jobs:
        if not (out / "manifest.json").exists() and not (out / ERROR).exists():
            out.mkdir(parents=True, exist_ok=True)
            (out / ERROR).write_text(f"synthesizing {app_dir / app} ended without an assembly:\n{result.stderr}")


def _run_jobs(app: Path, spec: str) -> int:
    """synth_apps' child process: the app, run as `python app.py` runs it, once per job."""
    sys.path[0] = str(app.parent)  # as for `python app.py`: the app's folder first (not this one's)
    import aws_cdk  # noqa: PLC0415 - starts jsii: only in this child process

    original = aws_cdk.App
    failed = 0
    for out, context in json.loads(spec):
        vars(aws_cdk)["App"] = functools.partial(original, outdir=out, context=context)
        try:
            runpy.run_path(str(app), run_name="__main__")
        except Exception:  # reported in the job's folder; the next job still runs
            failed += 1
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / ERROR).write_text(traceback.format_exc())
        finally:
            vars(aws_cdk)["App"] = original
    return 1 if failed else 0


def _sources() -> bytes:
    digest = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _key(context: Context, sources: bytes) -> str:
    return hashlib.sha256(sources + json.dumps(context, sort_keys=True).encode()).hexdigest()[:24]


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


def _remember(context: Context) -> list[Context]:
    """Records that `context` was asked for now; returns the other contexts asked for in the last week."""
    with locked(CACHE / "contexts.lock"):
        try:
            known: dict[str, float] = json.loads(KNOWN.read_text())
        except (OSError, ValueError):
            known = {}
        now = time.time()
        known = {k: when for k, when in known.items() if now - when < FORGET_AFTER}
        this = json.dumps(context, sort_keys=True)
        known[this] = now
        KNOWN.with_suffix(".tmp").write_text(json.dumps(known, indent=1))
        KNOWN.with_suffix(".tmp").replace(KNOWN)
    return [json.loads(k) for k in known if k != this]


def cached_synth(**context: str | bool) -> Path:
    """The cloud assembly for `context`, synthesized once per source content (treat it as read-only)."""
    if refused := os.environ.get(REFUSED_ENV):
        with Path(refused).open("a") as log:
            log.write(f"a synth (tools.synth.cached_synth, context {context})\n")
        raise RuntimeError(f"a synth (context {context}) in a test that may start no jsii runtime ({REFUSED_ENV})")
    others = _remember(context)
    sources = _sources()
    target = CACHE / _key(context, sources)
    if not (target / "manifest.json").exists():
        with locked(CACHE / "synth.lock"):  # one synthesizing process at a time: it makes what the others wait for
            if not (target / "manifest.json").exists():
                _fill([context, *others], sources)
    if not (target / "manifest.json").exists():
        raise RuntimeError(f"synthesizing app.py with context {context} failed:\n{_error(target)}")
    return target


def _fill(contexts: list[Context], sources: bytes) -> None:
    """Synthesizes the missing ones of `contexts` in one process, each into the cache once it is whole."""
    missing = [(c, CACHE / _key(c, sources)) for c in contexts]
    missing = [(c, target) for c, target in missing if not (target / "manifest.json").exists()]
    staging = [(Path(tempfile.mkdtemp(prefix="synth-", dir=CACHE)), c, target) for c, target in missing]
    try:
        synth_apps([(folder, c) for folder, c, _ in staging])
        for folder, _, target in staging:
            shutil.rmtree(target, ignore_errors=True)
            if (folder / "manifest.json").exists():
                folder.rename(target)
            else:  # kept for the error message (cached_synth); a next run tries again
                target.mkdir(parents=True)
                shutil.copy(folder / ERROR, target / ERROR)
    finally:
        for folder, _, _ in staging:
            shutil.rmtree(folder, ignore_errors=True)


def _error(target: Path) -> str:
    try:
        return (target / ERROR).read_text()[-4000:]
    except OSError:
        return "(no error recorded)"


if __name__ == "__main__":
    sys.exit(_run_jobs(Path(sys.argv[1]), sys.argv[2]))

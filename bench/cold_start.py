"""Cold start: importing the handler from its asset, against boto3 plus one AppStream client; peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from appstream_image_local.cfn.lambda_runner import BOOTSTRAP
from appstream_image_provider import asset
from bench.harness import OFFLINE_ENV, ROOT, bench_environment, delete_event, owned, summary

SCENARIO = ROOT / "appstream_image_local" / "scenarios" / "demo.json"
TIMED = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
HANDLER = "import provider.handler"
BASELINE = "import boto3; boto3.client('appstream')"


def _time(code: str, root: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMED.format(code=code)], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def service_start(repeats: int) -> dict[str, float]:
    """Seconds from starting `python -m appstream_image_local.appstream` (demo scenario) to its URL on stdout."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "appstream_image_local.appstream", "--port", "0", "--scenario", str(SCENARIO)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().startswith("http://127.0.0.1:")
        times.append(time.perf_counter() - started)
        process.terminate()
        process.wait(timeout=120)  # a bound for a loaded machine; the figure is the time to the URL
    return summary(times)


def run(repeats: int = 10) -> dict[str, Any]:
    root = asset.build()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **OFFLINE_ENV, "PYTHONPATH": str(root)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # Lambda's asset has no __pycache__; keep the shared one clean
    env["AWS_ENDPOINT_URL_APPSTREAM"] = "http://127.0.0.1:9"
    handler, baseline = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine
        handler.append(_time(HANDLER, root, env))
        baseline.append(_time(BASELINE, root, env))
    ratio = summary(handler)["median"] / summary(baseline)["median"]
    return {
        "handler": summary(handler),
        "baseline": summary(baseline),
        "ratio": ratio,
        "peak_rss_mb": peak_rss(),
        "service_start": service_start(repeats),
    }


def peak_rss() -> float:
    """Peak resident memory (VmHWM) of one process running a whole Delete (import, wait, response)."""
    with bench_environment() as bench, tempfile.TemporaryDirectory() as tmp:
        name = f"rss-{uuid.uuid4().hex[:8]}"
        owned(bench.backend, name, 1.0)
        key = uuid.uuid4().hex
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            "LAMBDA_TASK_ROOT": str(asset.build()),
            "_HANDLER": "provider.handler.handler",
            "AWS_LAMBDA_FUNCTION_NAME": "AppStreamImageProvider",
            "LOCAL_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:AppStreamImageProvider",
            "LOCAL_FUNCTION_TIMEOUT": "900",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LOCAL_MEMORY_REPORT": str(Path(tmp) / "hwm"),
        }
        process = subprocess.Popen(
            [sys.executable, str(BOOTSTRAP)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=tmp
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(delete_event(name, bench.endpoint.url(key))).encode())
        process.stdin.close()
        process.wait(timeout=60)
        answer = bench.response(key, timeout=10)
        assert answer is not None, "no response"
        assert answer["Status"] == "SUCCESS", answer
        # Read inside the child: a forked child's ru_maxrss also counts the parent's pages before exec.
        return int((Path(tmp) / "hwm").read_text()) / 1024

"""50 deletions at once, by 50 concurrent (pre-warmed) Lambda-like processes, with 20% of calls throttled."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from appstream_image_local.appstream import Fault, FaultInjector
from appstream_image_local.cfn.lambda_runner import LambdaRunner, default_environment
from bench.harness import bench_environment, delete_event, owned, percentile, provider_function, summary


def run(count: int = 50, seconds: float = 2.0, throttled: float = 0.2) -> dict[str, Any]:
    faults = FaultInjector(seed=42)
    with bench_environment(faults) as bench, tempfile.TemporaryDirectory(prefix="bench-conc-") as tmp:
        function = provider_function()
        env = default_environment(
            {
                "AWS_ENDPOINT_URL_APPSTREAM": bench.service.url,
                "AWS_REGION": "us-east-1",
                "SSL_CERT_FILE": str(bench.cert),
            }
        )
        runner = LambdaRunner(env, Path(tmp) / "logs")
        ready = Path(tmp) / "ready"
        ready.mkdir()
        invocations = [runner.start(function, {"LOCAL_READY_DIR": str(ready)}) for _ in range(count)]
        deadline = time.monotonic() + 120
        while len(os.listdir(ready)) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        names = [f"conc-{n:02d}-{uuid.uuid4().hex[:6]}" for n in range(count)]
        for name in names:
            owned(bench.backend, name, seconds, logical_id=name)
        faults.add(Fault("throttle", probability=throttled))
        keys = [uuid.uuid4().hex for _ in names]
        sent: list[float] = []
        for invocation, name, key in zip(invocations, names, keys, strict=True):
            sent.append(time.monotonic())
            invocation.send(delete_event(name, bench.endpoint.url(key), logical_id=name))
        statuses: list[str] = []
        for key in keys:
            answer = bench.response(key, timeout=180)
            statuses.append(answer["Status"] if answer else "NO RESPONSE")
        runner.wait_all(60)
        arrival = bench.endpoint.arrivals
        overheads = [
            arrival[key] - started - seconds for key, started in zip(keys, sent, strict=True) if key in arrival
        ]
        entries = bench.service.audit.entries()
        return {
            "count": count,
            "T": seconds,
            "success": statuses.count("SUCCESS"),
            "failed": count - statuses.count("SUCCESS"),
            "calls": len(entries),
            "throttled": sum(1 for e in entries if e["error"] == "ThrottlingException"),
            "overhead": summary(overheads) | {"p50": percentile(overheads, 50), "p95": percentile(overheads, 95)},
            "images_left": sum(1 for n in names if n in bench.backend.images),
        }

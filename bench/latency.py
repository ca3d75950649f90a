"""Delete latency and call economy, against a fixed 5-second loop and crhelper's stock polling floor."""

from __future__ import annotations

import inspect
import json
import statistics
import time
import uuid
from typing import Any

import boto3
from botocore.config import Config
from crhelper import CfnResource

from bench.harness import Bench, bench_environment, delete_event, lambda_context, owned, summary
from provider.cloudformation import response

BASELINE_INTERVAL = 5.0  # the CDK provider framework's default query interval


def _calls(bench: Bench, name: str, since: int) -> dict[str, int]:
    entries = bench.service.audit.entries()[since:]
    count = {"DescribeImages": 0, "DeleteImage": 0}
    for entry in entries:
        params = entry["params"]
        if entry["operation"] in count and (params.get("Name") == name or params.get("Names") == [name]):
            count[entry["operation"]] += 1
    return count


def ours(bench: Bench, module: Any, seconds: float) -> dict[str, float]:
    """One Delete through the provider's handler (a warm invocation)."""
    name = f"lat-{uuid.uuid4().hex[:10]}"
    owned(bench.backend, name, seconds)
    key = uuid.uuid4().hex
    since = len(bench.service.audit.entries())
    started = time.monotonic()
    module.handler(delete_event(name, bench.endpoint.url(key)), lambda_context())
    answer = bench.response(key, timeout=10)
    latency = time.monotonic() - started
    assert answer is not None, "no response"
    assert answer["Status"] == "SUCCESS", answer
    assert name not in bench.backend.images
    return {"latency": latency, **_calls(bench, name, since)}


def fixed_loop(bench: Bench, seconds: float, interval: float = BASELINE_INTERVAL) -> dict[str, float]:
    """The generic shape: DeleteImage, check at once, then every `interval` seconds until gone."""
    name = f"base-{uuid.uuid4().hex[:10]}"
    owned(bench.backend, name, seconds)
    client = boto3.client("appstream", config=Config(retries={"mode": "standard"}))
    key = uuid.uuid4().hex
    since = len(bench.service.audit.entries())
    started = time.monotonic()
    client.delete_image(Name=name)
    while True:
        try:
            client.describe_images(Names=[name])
        except client.exceptions.ResourceNotFoundException:
            break
        time.sleep(interval)
    body = json.dumps({"Status": "SUCCESS", "PhysicalResourceId": name}).encode()
    response.put(bench.endpoint.url(key), body, deadline=time.time() + 30)
    assert bench.response(key, timeout=10) is not None
    return {"latency": time.monotonic() - started, **_calls(bench, name, since)}


def crhelper_floor() -> dict[str, float]:
    """crhelper's stock poll_delete: the poll runs one rate period later, then sleeps before answering."""
    defaults = inspect.signature(CfnResource.__init__).parameters
    sleep_on_delete = float(defaults["sleep_on_delete"].default)
    period = float(defaults["polling_interval"].default) * 60
    return {"sleep_on_delete": sleep_on_delete, "rate_period": period, "floor": sleep_on_delete + period}


def random_t(bench: Bench, module: Any, values: list[float]) -> dict[str, Any]:
    """Delete overhead at deletion times drawn at random (not multiples of the loop's 5 s), against the loop."""
    mine = [ours(bench, module, t) for t in values]
    base = [fixed_loop(bench, t) for t in values]

    def per_minute(results: list[dict[str, float]]) -> float:
        return 60 * sum(r["DescribeImages"] for r in results) / sum(r["latency"] for r in results)

    return {
        "T": values,
        "ours_mean_overhead": statistics.fmean(r["latency"] - t for r, t in zip(mine, values, strict=True)),
        "baseline_mean_overhead": statistics.fmean(r["latency"] - t for r, t in zip(base, values, strict=True)),
        "ours_describe_per_minute": per_minute(mine),
        "baseline_describe_per_minute": per_minute(base),
    }


def run(
    durations: list[float],
    repeats: dict[float, int],
    economy_at: float | None,
    random_values: list[float] | None = None,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with bench_environment() as bench:
        module = bench.provider()
        for seconds in durations:
            runs = repeats.get(seconds, 3)
            mine = [ours(bench, module, seconds) for _ in range(runs)]
            base = [fixed_loop(bench, seconds) for _ in range(runs)]
            rows.append(
                {
                    "T": seconds,
                    "ours": summary([r["latency"] - seconds for r in mine]),
                    "baseline_5s": summary([r["latency"] - seconds for r in base]),
                    "ours_describe": summary([r["DescribeImages"] for r in mine]),
                    "ours_delete": summary([r["DeleteImage"] for r in mine]),
                    "baseline_describe": summary([r["DescribeImages"] for r in base]),
                    "baseline_delete": summary([r["DeleteImage"] for r in base]),
                }
            )
        economy = None
        if economy_at is not None:
            result = ours(bench, module, economy_at)
            economy = {
                "T": economy_at,
                "DescribeImages": result["DescribeImages"],
                "DeleteImage": result["DeleteImage"],
            }
        spread = random_t(bench, module, random_values) if random_values else None
    return {"rows": rows, "crhelper": crhelper_floor(), "economy": economy, "random_t": spread}

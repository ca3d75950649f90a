"""A deletion that outlasts one invocation, completed through scheduled polling (EventBridge Scheduler)."""

from __future__ import annotations

import math
from typing import Any

from bench.harness import offline_cloud

TEMPLATE = """Resources:
  Image:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ImageName: long-goodbye
      OnDelete: Delete  # adopted, so released by default; this measures a deletion
      ServiceTimeout: 300
"""


def run(delete_seconds: float = 12.0, function_timeout: float = 20.0, schedule_scale: float = 1.0) -> dict[str, Any]:
    scenario = {"images": [{"name": "long-goodbye", "delete_seconds": delete_seconds}]}
    options = {"function_timeout": function_timeout, "schedule_scale": schedule_scale}
    with offline_cloud(scenario, **options) as (cloud, service, work):
        (work / "one.yaml").write_text(TEMPLATE)
        cloud.deploy("One", work / "one.yaml")
        before = len(cloud.runner.durations)
        cloud.destroy("One")
        delete = cloud.stats[-1]
        durations = cloud.runner.durations[before:]
        rules_left = len(cloud.scheduler.rules())
    billed_ms = sum(math.ceil(d * 1000) for d in durations)
    return {
        "T": delete_seconds,
        "rule_period": 60 * schedule_scale,
        "function_timeout": function_timeout,
        "latency": delete.seconds,
        "invocations": delete.invocations + delete.scheduled,
        "scheduled": delete.scheduled,
        "billed_seconds": billed_ms / 1000,
        "rules_left": rules_left,
        "leaks": len(cloud.leaks),
        "gone": "long-goodbye" not in service.backend.images,
    }

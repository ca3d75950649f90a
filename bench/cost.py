"""Cost per deletion: this provider's billed GB-seconds against the CDK provider framework's shape.

Prices are inputs (AWS price pages, us-east-1, on-demand, first pricing tier); every duration
and count below comes from this run.
"""

from __future__ import annotations

import math
import time
from typing import Any

import boto3

from bench.harness import bench_environment, summary

LAMBDA_ARM_GB_SECOND = 0.0000133334  # USD, AWS Lambda price page: Arm, first tier
LAMBDA_X86_GB_SECOND = 0.0000166667  # USD, AWS Lambda price page: x86, first tier
LAMBDA_REQUEST = 0.20 / 1_000_000  # USD per request
SFN_TRANSITION = 0.025 / 1000  # USD per Step Functions Standard state transition
OUR_MEMORY_GB = 128 / 1024
FRAMEWORK_MEMORY_GB = 128 / 1024  # the provider framework's functions and a typical user handler
QUERY_INTERVAL = 5.0  # the framework's default


def describe_round_trip(samples: int = 20) -> float:
    """Median seconds of one DescribeImages call: the work of one isComplete poll."""
    with bench_environment() as bench:
        bench.backend.add_image("probe")
        client = boto3.client("appstream")
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            client.describe_images(Names=["probe"])
            times.append(time.perf_counter() - started)
    return summary(times)["median"]


def per_deletion(seconds: float, our_overhead: float, poll_work: float) -> dict[str, Any]:
    """The arithmetic for one deletion whose DELETING phase lasts `seconds`."""
    ours_duration = seconds + our_overhead  # one invocation waits inline for the whole deletion
    ours_gb_s = ours_duration * OUR_MEMORY_GB
    ours_cost = ours_gb_s * LAMBDA_ARM_GB_SECOND + LAMBDA_REQUEST
    polls = 1 + math.ceil(seconds / QUERY_INTERVAL)  # isComplete at once, then every query interval
    # Per poll: the framework's isComplete Lambda synchronously invokes the user's isComplete.
    invocations = 2 + 2 * polls  # framework onEvent + user onEvent, then the polls
    billed = max(0.001, poll_work)  # each invocation is billed at least 1 ms
    framework_gb_s = invocations * billed * FRAMEWORK_MEMORY_GB
    transitions = polls + 2  # each retry of the waiter's task state is a transition, plus start and end
    framework_cost = framework_gb_s * LAMBDA_X86_GB_SECOND + invocations * LAMBDA_REQUEST + transitions * SFN_TRANSITION
    return {
        "T": seconds,
        "ours": {
            "duration_s": ours_duration,
            "gb_seconds": ours_gb_s,
            "usd": ours_cost,
            "arithmetic": f"({seconds:g} s + {our_overhead:.2f} s) x 0.125 GB x ${LAMBDA_ARM_GB_SECOND} "
            f"+ 1 request x $0.20/1M = ${ours_cost:.8f}",
        },
        "framework": {
            "polls": polls,
            "invocations": invocations,
            "transitions": transitions,
            "gb_seconds": framework_gb_s,
            "usd": framework_cost,
            "arithmetic": f"{invocations} x {billed * 1000:.1f} ms x 0.125 GB x ${LAMBDA_X86_GB_SECOND} "
            f"+ {invocations} requests x $0.20/1M + {transitions} transitions x $0.025/1000 = ${framework_cost:.8f}",
        },
    }


def run(latency: dict[str, Any]) -> dict[str, Any]:
    poll_work = describe_round_trip()
    rows = [per_deletion(row["T"], row["ours"]["median"], poll_work) for row in latency["rows"]]
    return {"poll_work_s": poll_work, "rows": rows}

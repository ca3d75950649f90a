"""The reliability suite at full size: `make reliability` (python -m bench.reliability).

Runs tests/provider/reliability with 2000 generated events, the 20-stack load test, and 50
concurrent deletions under throttling, then writes bench/reliability.md from the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import concurrency, load
from bench.__main__ import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tally_path = Path(tmp) / "tally.json"
        env = {
            **os.environ,
            "RELIABILITY_EXAMPLES": "2000",
            "RELIABILITY_STACKS": "20",
            "RELIABILITY_REPORT": str(tally_path),
        }
        tests = ["tests/provider/reliability", "tests/e2e/test_load.py", "tests/infra/test_construct.py"]
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        summary_line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "no output"
        tally = json.loads(tally_path.read_text()) if tally_path.exists() else {}
    shared = load.run(stacks=20)
    burst = concurrency.run(count=50)
    m = machine()
    lines = [
        "# Reliability and security figures",
        "",
        f"Machine: {m['cpu']}; Python {m['python']}. Produced by `make reliability` (`python -m bench.reliability`),",
        f"which ran the suite below in {time.monotonic() - started:.0f} s; every figure comes from that run.",
        "",
        f"- pytest ({', '.join(tests)}): {summary_line}",
        f"- generated events: {tally.get('cases generated', 0)} (hypothesis), each answered exactly once with a valid "
        f"body of at most 4096 bytes: {tally.get('responses SUCCESS', 0)} SUCCESS, {tally.get('responses FAILED', 0)} "
        "FAILED with a Reason naming the problem",
        f"- responses checked in all: {tally.get('responses checked', 0)}; faults injected by the fault tests: "
        f"{tally.get('faults injected', 0)}",
        f"- images protected: {tally.get('images protected', 0)} images (owned by another stack, unowned, public) were "
        f"present for every generated event and were never mutated",
        f"- {shared['stacks']} stacks sharing one provider, 20% of AppStream calls throttled "
        f"({shared['throttled']} of {shared['calls']}): {shared['requests']} custom resource requests, "
        f"{len(shared['failures'])} failed; images left {shared['images_left']}; bystander image untouched: "
        f"{shared['bystander_untouched']}; polling leftovers {shared['leaks']}; invalid responses "
        f"{shared['invalid_responses']}",
        f"- {burst['count']} concurrent deletions, 20% throttled ({burst['throttled']} of {burst['calls']} calls): "
        f"{burst['success']} SUCCESS, {burst['failed']} not; overhead p50 {burst['overhead']['p50']:.2f} s, "
        f"p95 {burst['overhead']['p95']:.2f} s",
        "",
    ]
    (HERE / "reliability.md").write_text("\n".join(lines))
    print("\n".join(lines))
    ok = result.returncode == 0 and not shared["failures"] and burst["failed"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

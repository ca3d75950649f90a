"""The test kit on a stack with `available_timeout`: deploy, rotate the image name, destroy, with the real CDK CLI.

The same CDK app is run with and without `available_timeout` (a wait condition per image, satisfied by the
provider's scheduled runs after its early answer), on the kit's defaults and on the schedule scales given, and the
time of each step is printed, with what the scheduled runs waited (from their making to their firing, local time):

    .venv/bin/python -m bench.kit_long_wait                  # the kit's defaults
    .venv/bin/python -m bench.kit_long_wait --scale 1 --scale 0.1 --repeats 2

Each run is a fresh offline cloud (`appstream_image_local.kit.offline_cloud`), as the pytest fixture makes one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from appstream_image_local.kit import OfflineCloud, offline_cloud

ROOT = Path(__file__).resolve().parent.parent
STACK = "KitLongWait"
BASE = "user-base"
APP = f'''"""One image, copied from {BASE}; -c imageName=..., -c availableMinutes=N (0: no wait condition)."""

import sys

sys.path.insert(0, {str(ROOT)!r})  # this checkout's construct library (a user has the wheel installed)

from aws_cdk import App, CfnOutput, Duration, Stack

from appstream_image_provider import AppStreamImage, ImageSource

app = App()
stack = Stack(app, {STACK!r})
minutes = int(app.node.try_get_context("availableMinutes") or 0)
image = AppStreamImage(
    stack,
    "Monthly",
    image_name=str(app.node.try_get_context("imageName")),
    source=ImageSource.copy_of({BASE!r}),
    available_timeout=Duration.minutes(minutes) if minutes else None,
)
CfnOutput(stack, "ImageName", value=image.image_name)
app.synth()
'''


def write_app(folder: Path) -> Path:
    """The CDK app (app.py) in `folder`, made if missing; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(APP)
    return folder


def scenario(cloud: OfflineCloud, app: Path, *, wait_minutes: int) -> dict[str, float]:
    """Deploy, rotate, destroy (as a user's test does); the seconds of each step."""
    cloud.add_image(BASE)
    context = {"availableMinutes": str(wait_minutes)}
    took: dict[str, float] = {}
    started = time.monotonic()
    cloud.deploy_app(app, STACK, imageName="user-2026-11", **context)
    took["deploy"] = time.monotonic() - started
    started = time.monotonic()
    cloud.deploy_app(app, STACK, imageName="user-2026-12", **context)
    took["rotate"] = time.monotonic() - started
    started = time.monotonic()
    cloud.destroy(STACK)
    took["destroy"] = time.monotonic() - started
    cloud.assert_clean(STACK)
    assert set(cloud.images()) == {BASE}, sorted(cloud.images())
    return took


def run_once(*, wait_minutes: int, options: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kit-long-wait-") as work:
        app = write_app(Path(work) / "app")
        started = time.monotonic()
        with offline_cloud(Path(work) / "kit", **options) as cloud:
            took = scenario(cloud, app, wait_minutes=wait_minutes)
            fired = list(cloud.cloud.schedules.fired)
        took["total"] = time.monotonic() - started
    waits = [f.waited for f in fired]
    return {
        **took,
        "scheduled_runs": len(fired),
        "run_wait_median": statistics.median(waits) if waits else 0.0,
        "run_wait_max": max(waits, default=0.0),
        "aws_wait_median": statistics.median(f.aws_delay for f in fired) if fired else 0.0,
    }


def run(scales: list[float | None], repeats: int = 1) -> list[dict[str, Any]]:
    """Every (scale, with/without the wait) pair, `repeats` times each; the median of each figure."""
    rows = []
    for scale in scales:
        options = {} if scale is None else {"schedule_scale": scale}
        for wait_minutes in (60, 0):
            runs = [run_once(wait_minutes=wait_minutes, options=options) for _ in range(repeats)]
            row: dict[str, Any] = {"scale": "kit default" if scale is None else f"{scale:g}",
                                   "available_timeout": f"{wait_minutes} min" if wait_minutes else "none"}  # fmt: skip
            row.update({key: statistics.median(r[key] for r in runs) for key in runs[0]})
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = "| schedule_scale | available_timeout | deploy s | rotate s | destroy s | total s | scheduled runs | " \
           "run waited s (median / max) | at() delay s (median) |"  # fmt: skip
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r['scale']} | {r['available_timeout']} | {r['deploy']:.1f} | {r['rotate']:.1f} | {r['destroy']:.1f} "
            f"| {r['total']:.1f} | {r['scheduled_runs']:.0f} | {r['run_wait_median']:.2f} / {r['run_wait_max']:.2f} "
            f"| {r['aws_wait_median']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kit_long_wait", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, action="append", help="a schedule_scale to run (default: the kit's)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each pair (the median is printed)")
    parser.add_argument("--no-default", action="store_true", help="leave out the kit's default options")
    args = parser.parse_args(argv)
    scales: list[float | None] = [] if args.no_default else [None]
    scales += args.scale or []
    print(table(run(scales, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The offline demo: synthesize the example app, then deploy, rotate and destroy it against the
local AppStream service, with this project's provider running as Lambda would run it.

Run it with `make demo` (or `python -m local.demo` inside the venv).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local.appstream import LocalAppStream, load_scenario
from local.appstream.scenario import read_scenario_file
from local.audit import mutated_images, outside
from local.cfn.driver import Cloud, StackFailed
from local.moto_tls import MotoTls
from local.tls import make_certificate
from provider.contract import OWNER_TAG

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = Path(__file__).parent / "scenarios" / "demo.json"
STACK = "AppStreamImageExample"


def synth(out: Path, **context: str) -> Path:
    """`cdk synth` of the example stack into `out` (the CDK CLI from package.json, offline)."""
    args = ["cdk", "synth", "--quiet", "--output", str(out), "-c", "stacks=example"]
    for key, value in context.items():
        args += ["-c", f"{key}={value}"]
    cdk = shutil.which("cdk", path=f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    if cdk is None:
        raise SystemExit("the CDK CLI is missing: run `make demo`, which installs it")
    subprocess.run([cdk, *args[1:]], cwd=ROOT, check=True)  # noqa: S603 - the pinned CDK CLI
    return out / f"{STACK}.template.json"


def show(service: LocalAppStream, title: str) -> None:
    state = service.backend.snapshot()
    print(f"\n  {title}")
    for name, image in sorted(state["images"].items()):
        owner = image["Tags"].get(OWNER_TAG, "-")
        shared = ",".join(image["Permissions"]) or "-"
        print(f"    image {name:<36} {image['State']:<10} {image['Visibility']:<8} owner={owner:<40} shared={shared}")
    for name, image_name in sorted(state["fleets"].items()):
        print(f"    fleet {name:<36} streams {image_name or '(nothing)'}")
    print()


def run(workdir: Path, time_scale: float) -> int:
    started = time.monotonic()
    print("== synthesizing the example app (cdk synth, offline)")
    first = synth(workdir / "cdk.out-1", goldenImage="golden-2026-11")
    second = synth(workdir / "cdk.out-2", goldenImage="golden-2026-12")

    backend, faults = load_scenario(read_scenario_file(SCENARIO), time_scale=time_scale)
    cert, key = make_certificate(workdir / "tls")
    with LocalAppStream(backend, faults) as service:
        moto = MotoTls(cert, key).start()
        try:
            cloud = Cloud(appstream_url=service.url, moto=moto, workdir=workdir)
            print(f"== local AppStream at {service.url}; moto (S3, EventBridge, Lambda) at {moto.url}")
            show(service, "before: the account as the scenario seeds it")
            untouched_before = dict(backend.snapshot()["images"])

            print("== deploy: adopt the builder's image, copy the golden image, share and tag it, start a fleet")
            stack = cloud.deploy(STACK, first)
            owned = {live.physical_id for live in stack.resources.values() if live.type == "Custom::AppStreamImage"}
            show(service, "after deploy")

            print("== update: rotate the golden image (new ImageName: copy, move the fleet, delete the old one)")
            stack = cloud.deploy(STACK, second)
            owned |= {live.physical_id for live in stack.resources.values() if live.type == "Custom::AppStreamImage"}
            show(service, "after the rotation")

            print("== destroy")
            cloud.destroy(STACK)
            show(service, "after destroy")
        except StackFailed as failure:
            print(f"\nFAILED: {failure}")
            return 1
        finally:
            moto.stop()

    entries = service.audit.entries()
    changed = mutated_images(entries)
    strays = outside(entries, owned)
    left = sorted(n for n in owned if n in backend.images)
    others = sorted(set(untouched_before) - owned)
    print("== what the audit log says")
    for name, operations in sorted(changed.items()):
        print(f"    {name:<36} {', '.join(operations)}")
    print(f"    images the stack owned: {', '.join(sorted(owned))}; still there: {', '.join(left) or 'none'}")
    print(f"    other images, untouched: {', '.join(n for n in others if n not in changed) or 'none'}")
    requests = len(cloud.stats)
    print(
        f"    {len(entries)} AppStream calls, {requests} custom resource requests, "
        f"{sum(s.invocations + s.scheduled for s in cloud.stats)} Lambda invocations, "
        f"{len(cloud.leaks)} polling rules or permissions left, {len(cloud.violations)} invalid responses"
    )
    print(f"    provider logs (JSON lines): {workdir / 'logs'}")
    ok = not strays and not left and not cloud.leaks and not cloud.violations
    print(f"\n{'OK' if ok else 'PROBLEMS'}: demo finished in {time.monotonic() - started:.1f}s")
    if strays:
        print(f"    images changed outside the stack: {strays}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__)
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply the local service's durations")
    parser.add_argument("--workdir", help="keep the cloud assemblies and logs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        return run(workdir, args.time_scale)
    with tempfile.TemporaryDirectory(prefix="appstream-image-demo-") as tmp:
        return run(Path(tmp), args.time_scale)


if __name__ == "__main__":
    sys.exit(main())

"""The offline demo: the real CDK CLI deploys, rotates and destroys the example app against the offline
cloud (the local AppStream service, moto and the local CloudFormation API), with this project's
provider running as Lambda would run it.

Run it with `make demo` (or `python -m tools.demo` inside the venv).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appstream_image_local.appstream import LocalAppStream, load_scenario
from appstream_image_local.appstream.scenario import read_scenario_file
from appstream_image_local.audit import mutated_images, outside
from appstream_image_local.cloud import LocalCloud
from appstream_image_local.kit import CdkNotFound, find_cdk
from provider.contract import OWNER_TAG, PROVIDER_TAGS

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "appstream_image_local" / "scenarios" / "demo.json"
STACK = "AppStreamImageExample"


def cdk_cli() -> str:
    """The pinned CDK CLI (package.json), else one on PATH."""
    try:
        return find_cdk(near=(ROOT,))
    except CdkNotFound as err:
        raise SystemExit(f"{err}; `make demo` installs it") from err


def cdk(cloud: LocalCloud, *args: str, check: bool = True) -> int:
    """One unmodified `cdk` command against the offline cloud; its output goes to ours."""
    print(f"\n$ cdk {' '.join(args)}", flush=True)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # app.py runs on this venv
    env = {**os.environ, **cloud.env(), "CDK_DISABLE_CLI_TELEMETRY": "true", "PATH": path}
    command = [cdk_cli(), *args, "--no-notices", "--require-approval", "never"]
    if args[0] in ("bootstrap", "destroy"):
        command.remove("--require-approval")
        command.remove("never")
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)  # noqa: S603 - the pinned CDK CLI
    if check and result.returncode != 0:
        raise SystemExit(f"cdk {args[0]} failed with exit code {result.returncode}")
    return result.returncode


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
    backend, faults = load_scenario(read_scenario_file(SCENARIO), time_scale=time_scale)
    untouched_before = dict(backend.snapshot()["images"])
    with LocalCloud(workdir, backend=backend, faults=faults, printer=lambda _line: None) as local:
        service = local.appstream
        assert service is not None
        print(f"== the offline cloud: {', '.join(f'{k}={v}' for k, v in local.env().items() if 'ENDPOINT' in k)}")
        show(service, "before: the account as the scenario seeds it")
        print("== bootstrap the account, as for any CDK app")
        cdk(local, "bootstrap", local.account)
        print("\n== deploy: the provider stack, then the example (adopt the builder's image, copy, share")
        print("   and tag the golden image, start a fleet on it)")
        cdk(local, "deploy", "--all", "-c", "goldenImage=golden-2026-11")
        show(service, "after deploy")
        print("== deploy again, unchanged: the CLI finds no changes and touches nothing")
        cdk(local, "deploy", "--all", "-c", "goldenImage=golden-2026-11")
        print("== rotate the golden image: a new ImageName (copy, move the fleet, delete the old one)")
        cdk(local, "deploy", STACK, "-c", "goldenImage=golden-2026-12")
        show(service, "after the rotation")
        print("== destroy")
        cdk(local, "destroy", "--all", "--force")
        show(service, "after destroy")
        cloud, api = local.cloud, local.cloudformation
        assert cloud is not None
        assert api is not None
        owned = {  # every image the example stack's resources named, from its CloudFormation events
            event.physical_id
            for record in api.api.records.values()
            if record.name == STACK
            for event in record.events
            if event.resource_type == "Custom::AppStreamImage" and event.physical_id
        }

    entries = service.audit.entries()
    changed = mutated_images(entries)
    strays = outside(entries, owned)
    # An adopted image (there before the demo) is released by the stack's Delete: kept, without the provider's tags.
    released = sorted(n for n in owned & set(untouched_before) if n in backend.images
                      and not set(backend.images[n].tags) & set(PROVIDER_TAGS))  # fmt: skip
    left = sorted(n for n in owned if n in backend.images and n not in released)
    others = sorted(set(untouched_before) - owned)
    print("== what the audit log says")
    for name, operations in sorted(changed.items()):
        print(f"    {name:<36} {', '.join(operations)}")
    print(f"    images the stack owned: {', '.join(sorted(owned))}; still there: {', '.join(left) or 'none'}")
    print(f"    adopted and released (kept without the provider's tags): {', '.join(released) or 'none'}")
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
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__)
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

"""One stack with many Custom::AppStreamImage resources (copies and adoptions), deployed and destroyed
offline under AppStream's limits: 2 concurrent copies, a DescribeImages rate, read-after-write lags.

The copies do not wait for AVAILABLE (WaitForAvailable: false), so later copies meet the copy quota
and wait for a slot, as a stack of many copies does on AWS.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import yaml

from appstream_image_local.audit import outside
from bench.harness import offline_cloud, timed

COPY_SECONDS = 3.0  # one copy's duration on the service's clock: the longest single transition here
DELETE_SECONDS = 0.5


def template(images: int) -> dict[str, Any]:
    """Half copies of `golden-base`, half adoptions of existing images."""
    token = {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"}
    resources: dict[str, Any] = {}
    for n in range(images):
        props: dict[str, Any] = {"ServiceToken": token, "ImageName": f"scale-{n:03d}", "ServiceTimeout": 3600}
        if n % 2 == 0:
            props |= {"Source": {"Type": "Copy", "SourceImageName": "golden-base"}, "WaitForAvailable": False}
        else:  # adopted: released by default; the stack's Delete deletes it here too
            props |= {"OnDelete": "Delete"}
        resources[f"Image{n:03d}"] = {"Type": "Custom::AppStreamImage", "Properties": props}
    return {"Resources": resources}


HOLD = 3600.0  # seconds: "until released"


def _release_after_refusal(service: Any, busy: Any, seconds: float) -> None:
    """An unrelated copy ends `seconds` after the stack's first CopyImage met the quota (an event, not a guess)."""
    ends = time.monotonic() + HOLD
    while time.monotonic() < ends:
        if any(c.get("error") == "LimitExceededException" for c in service.audit.calls("CopyImage")):
            with service.backend._lock:
                busy.state_until = service.backend.now() + service.backend.scaled(seconds)
            return
        time.sleep(0.05)


def run(
    images: int = 100,
    describe_rate: float = 20.0,
    copy_seconds: float = COPY_SECONDS,
    copy_quota: int = 2,
    busy_seconds: float = 0.0,
) -> dict[str, Any]:
    """`copy_quota` concurrent copies (AWS: 2); copies started one after another meet it when they outlast it.

    `busy_seconds` > 0: an unrelated copy is running when the stack deploys, for that long.
    """
    adopted = [f"scale-{n:03d}" for n in range(images) if n % 2]
    scenario = {
        "durations": {"copy": copy_seconds, "delete": DELETE_SECONDS},
        "limits": {"copies": copy_quota, "images": images + 10, "rate": describe_rate, "burst": int(describe_rate)},
        "images": [{"name": "golden-base"}, {"name": "bystander"}, *({"name": n} for n in adopted)],
    }
    failures: list[str] = []
    with offline_cloud(scenario) as (cloud, service, work):
        path = work / "scale.yaml"
        path.write_text(yaml.safe_dump(template(images)))
        if busy_seconds > 0:  # held until the stack's first copy was refused, then for busy_seconds more
            busy = service.backend.add_image("someone-elses-copy", state="COPYING", settle_seconds=HOLD)
            threading.Thread(target=_release_after_refusal, args=(service, busy, busy_seconds), daemon=True).start()
        since = len(service.audit.entries())
        deployed = timed(lambda: cloud.deploy("Scale", path), failures)
        destroyed = timed(lambda: cloud.destroy("Scale"), failures) if "Scale" in cloud.stacks else 0.0
        until = len(service.audit.entries())
    entries = service.audit.entries()[since:until]
    names = [f"scale-{n:03d}" for n in range(images)]
    errors = Counter(str(e["error"]) for e in entries if e["error"])
    return {
        "images": images,
        "copies": images - len(adopted),
        "failures": failures,
        "deploy_seconds": deployed,
        "destroy_seconds": destroyed,
        "longest_transition": copy_seconds,
        "copy_quota": copy_quota,
        "calls": len(entries),
        "calls_per_image": len(entries) / images,
        "throttled": errors.get("ThrottlingException", 0),
        "throttled_per_image": errors.get("ThrottlingException", 0) / images,
        "quota_refusals": errors.get("LimitExceededException", 0),
        "access_denied": errors.get("AccessDeniedException", 0),
        "images_left": sum(1 for n in names if n in service.backend.images),
        "bystander_untouched": "bystander" in service.backend.images and "bystander" not in outside(entries, names),
        "leaks": len(cloud.leaks),
        "invalid_responses": len(cloud.violations),
    }

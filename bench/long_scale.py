"""One stack of many images at AWS's real durations, each waited for through a wait condition (AvailableSignal):
copies of 20 minutes through AppStream's 2 copy slots, managed updates of 3 hours through its 5 update slots, and
adoptions, under the local cloud's time scale. Deployed and destroyed through the local CloudFormation.

The deploy's total is compared with the physical bound: no provider can finish before AppStream has run every
copy and update, ceil(copies / copy slots) x copy time (and likewise for updates), whichever is longer. The
service's clock runs `time_scale` times real time, but the provider's own waits (its backoff, EventBridge's
minute) do not shrink with it: the overhead measured here, in real seconds, is what the same run would add to
the bound at AWS's durations, where it is a far smaller share.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import yaml

from appstream_image_local.audit import outside
from bench.harness import offline_cloud, timed

COPY_SECONDS = 1200.0  # 20 minutes (service clock); the admin guide gives no figure, "tens of minutes" is typical
UPDATE_SECONDS = 10800.0  # 3 hours: a managed update "might take several hours" (admin guide)
DELETE_SECONDS = 300.0
TIMEOUT = 43200  # a wait condition's maximum (12 hours)


def template(copies: int, updates: int, adoptions: int) -> dict[str, Any]:
    token = {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"}
    resources: dict[str, Any] = {}

    def waited(key: str, name: str, source: dict[str, str]) -> None:
        resources[f"{key}Handle"] = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
        resources[key] = {
            "Type": "Custom::AppStreamImage",
            "Properties": {
                "ServiceToken": token,
                "ImageName": name,
                "Source": source,
                "AvailableSignal": {"Handle": {"Ref": f"{key}Handle"}, "Timeout": TIMEOUT},
            },
        }
        resources[f"{key}Available"] = {
            "Type": "AWS::CloudFormation::WaitCondition",
            "DependsOn": key,
            "Properties": {"Handle": {"Ref": f"{key}Handle"}, "Timeout": str(TIMEOUT)},
        }

    for n in range(copies):
        waited(f"Copy{n:03d}", f"copy-{n:03d}", {"Type": "Copy", "SourceImageName": "golden-base"})
    for n in range(updates):
        waited(f"Update{n:03d}", f"update-{n:03d}", {"Type": "Update", "SourceImageName": "golden-base"})
    for n in range(adoptions):
        resources[f"Adopted{n:03d}"] = {
            "Type": "Custom::AppStreamImage",
            # Adopted images are released by default; here the stack's Delete deletes them too.
            "Properties": {"ServiceToken": token, "ImageName": f"adopted-{n:03d}", "OnDelete": "Delete"},
        }
    return {"Resources": resources}


def run(
    *,
    copies: int = 20,
    updates: int = 2,
    adoptions: int = 78,
    time_scale: float = 0.02,
    schedule_scale: float = 1.0,
    copy_slots: int = 2,
    update_slots: int = 5,
    held_slots: int = 0,
    held_seconds: float = 0.0,
) -> dict[str, Any]:
    """`time_scale` runs the service's clock faster (0.02: a 20-minute copy in 24 s); `schedule_scale` shortens the
    delay of EventBridge Scheduler's one-time schedules (1.0: AWS's, a successor runs 1 to 3 minutes later).
    `held_slots` unrelated copies hold that many copy slots for `held_seconds` (real time) from the start: the
    stack's first copies are refused for a slot however slowly the machine starts them (the smoke test's quota)."""
    adopted = [f"adopted-{n:03d}" for n in range(adoptions)]
    held = [
        {"name": f"held-{n}", "state": "COPYING", "settle_seconds": held_seconds / time_scale}
        for n in range(held_slots)
    ]
    scenario = {
        "durations": {"copy": COPY_SECONDS, "update": UPDATE_SECONDS, "delete": DELETE_SECONDS},
        "limits": {"copies": copy_slots, "updates": update_slots,
                   "images": copies + updates + adoptions + held_slots + 10, "builders": update_slots + 5},
        "time_scale": time_scale,
        "images": [{"name": "golden-base"}, {"name": "bystander"}, *held, *({"name": n} for n in adopted)],
    }  # fmt: skip
    names = [f"copy-{n:03d}" for n in range(copies)] + [f"update-{n:03d}" for n in range(updates)] + adopted
    failures: list[str] = []
    with offline_cloud(scenario, schedule_scale=schedule_scale) as (cloud, service, work):
        path = work / "long-scale.yaml"
        path.write_text(yaml.safe_dump(template(copies, updates, adoptions)))
        since = len(service.audit.entries())
        deployed = timed(lambda: cloud.deploy("LongScale", path), failures)
        available = sum(1 for n in names if service.backend.images.get(n) and
                        service.backend.images[n].state == "AVAILABLE")  # fmt: skip
        destroyed = timed(lambda: cloud.destroy("LongScale"), failures) if "LongScale" in cloud.stacks else 0.0
        until = len(service.audit.entries())
        rules_left = len(cloud.scheduler.rules())
        schedules_left = len(cloud.schedules.targets())
        statements_left = sum(len(cloud.functions.policy_statements(f)) for f in cloud.functions.by_arn.values())
        leaks = len(cloud.leaks)
    entries = service.audit.entries()[since:until]
    errors = Counter(str(e["error"]) for e in entries if e["error"])
    copy_bound = math.ceil(copies / copy_slots) * COPY_SECONDS if copies else 0.0
    update_bound = math.ceil(updates / update_slots) * UPDATE_SECONDS if updates else 0.0
    bound_aws = max(copy_bound, update_bound)
    bound = bound_aws * time_scale
    return {
        "images": copies + updates + adoptions,
        "copies": copies,
        "updates": updates,
        "adoptions": adoptions,
        "copy_slots": copy_slots,
        "update_slots": update_slots,
        "time_scale": time_scale,
        "schedule_scale": schedule_scale,
        "copy_minutes": COPY_SECONDS / 60,
        "update_hours": UPDATE_SECONDS / 3600,
        "failures": failures,
        "available_after_deploy": available,
        "deploy_seconds": deployed,
        "destroy_seconds": destroyed,
        "bound_seconds": bound,
        "bound_aws_hours": bound_aws / 3600,
        "overhead_seconds": deployed - bound,
        "ratio": deployed / bound if bound else float("nan"),
        "estimated_aws_hours": (bound_aws + max(0.0, deployed - bound)) / 3600,
        "calls": len(entries),
        "quota_refusals": errors.get("LimitExceededException", 0),
        "throttled": errors.get("ThrottlingException", 0),
        "access_denied": errors.get("AccessDeniedException", 0),
        "images_left": sum(1 for n in names if n in service.backend.images),
        "bystander_untouched": "bystander" in service.backend.images and "bystander" not in outside(entries, names),
        "rules_left": rules_left,
        "schedules_left": schedules_left,
        "permissions_left": statements_left,
        "waiting_at_once": copies + updates,  # each answers once started or queued and hands over at once
        "leaks": leaks,
        "invalid_responses": len(cloud.violations),
    }

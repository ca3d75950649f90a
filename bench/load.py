"""Many stacks sharing one provider, with AppStream throttling a fifth of all calls."""

from __future__ import annotations

from typing import Any

from appstream_image_local.appstream import Fault
from appstream_image_local.audit import outside
from appstream_image_local.cfn.driver import StackFailed
from bench.harness import offline_cloud

TEMPLATE = """Resources:
  Image:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ImageName: {name}
      OnDelete: Delete  # adopted images are released by default; this benchmark measures deletion
      Tags:
        - Key: stack
          Value: {stack}
"""


def run(stacks: int = 20, throttled: float = 0.2) -> dict[str, Any]:
    names = [f"shared-{n:02d}" for n in range(stacks)]
    scenario = {"durations": {"delete": 1}, "images": [{"name": n} for n in [*names, "bystander"]], "seed": 7}
    failures: list[str] = []
    with offline_cloud(scenario) as (cloud, service, work):
        service.faults.add(Fault("throttle", probability=throttled))
        for n, name in enumerate(names):
            path = work / f"stack-{n}.yaml"
            path.write_text(TEMPLATE.format(name=name, stack=f"Stack{n}"))
            try:
                cloud.deploy(f"Stack{n}", path)
            except StackFailed as failure:
                failures.append(str(failure))
        for n in range(stacks):
            if f"Stack{n}" in cloud.stacks:
                try:
                    cloud.destroy(f"Stack{n}")
                except StackFailed as failure:
                    failures.append(str(failure))
    entries = service.audit.entries()
    return {
        "stacks": stacks,
        "requests": len(cloud.stats),
        "failures": failures,
        "calls": len(entries),
        "throttled": sum(1 for e in entries if e["error"] == "ThrottlingException"),
        "images_left": sum(1 for n in names if n in service.backend.images),
        "bystander_untouched": "bystander" in service.backend.images and not outside(entries, names),
        "leaks": len(cloud.leaks),
        "invalid_responses": len(cloud.violations),
    }

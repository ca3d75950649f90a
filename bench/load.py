"""Many stacks sharing one provider, with AppStream throttling a fifth of all calls."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.long_wait import synth_provider
from local.appstream import Fault, LocalAppStream, load_scenario
from local.audit import outside
from local.cfn.driver import Cloud, StackFailed
from local.moto_tls import MotoTls
from local.tls import make_certificate

TEMPLATE = """Resources:
  Image:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ImageName: {name}
      Tags:
        - Key: stack
          Value: {stack}
"""


def run(stacks: int = 20, throttled: float = 0.2) -> dict[str, Any]:
    names = [f"shared-{n:02d}" for n in range(stacks)]
    scenario = {"durations": {"delete": 1}, "images": [{"name": n} for n in [*names, "bystander"]], "seed": 7}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        provider_template = synth_provider()
        backend, faults = load_scenario(scenario)
        cert, key = make_certificate(work / "tls")
        failures: list[str] = []
        with LocalAppStream(backend, faults) as service:
            moto = MotoTls(cert, key).start()
            try:
                cloud = Cloud(appstream_url=service.url, moto=moto, workdir=work, printer=lambda _: None)
                cloud.deploy("AppStreamImageProvider", provider_template)
                faults.add(Fault("throttle", probability=throttled))
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
                faults.clear()
                cloud.destroy("AppStreamImageProvider")
            finally:
                moto.stop()
        entries = service.audit.entries()
        return {
            "stacks": stacks,
            "requests": len(cloud.stats),
            "failures": failures,
            "calls": len(entries),
            "throttled": sum(1 for e in entries if e["error"] == "ThrottlingException"),
            "images_left": sum(1 for n in names if n in backend.images),
            "bystander_untouched": "bystander" in backend.images and not outside(entries, names),
            "leaks": len(cloud.leaks),
            "invalid_responses": len(cloud.violations),
        }

"""A deletion that outlasts one invocation, completed through crhelper's scheduled polling."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from local.appstream import LocalAppStream, load_scenario
from local.cfn.driver import Cloud
from local.moto_tls import MotoTls
from local.synth import cached_synth
from local.tls import make_certificate

TEMPLATE = """Resources:
  Image:
    Type: Custom::AppStreamImage
    Properties:
      ServiceToken: !ImportValue AppStreamImageProvider-ServiceToken
      ImageName: long-goodbye
      ServiceTimeout: 300
"""


def synth_provider() -> Path:
    return cached_synth(stacks="provider") / "AppStreamImageProvider.template.json"


def run(delete_seconds: float = 12.0, function_timeout: float = 15.0, schedule_scale: float = 1.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        work = Path(tmp)
        provider_template = synth_provider()
        backend, faults = load_scenario({"images": [{"name": "long-goodbye", "delete_seconds": delete_seconds}]})
        cert, key = make_certificate(work / "tls")
        with LocalAppStream(backend, faults) as service:
            moto = MotoTls(cert, key).start()
            try:
                cloud = Cloud(
                    appstream_url=service.url,
                    moto=moto,
                    workdir=work,
                    printer=lambda _: None,
                    function_timeout=function_timeout,
                    schedule_scale=schedule_scale,
                )
                cloud.deploy("AppStreamImageProvider", provider_template)
                (work / "one.yaml").write_text(TEMPLATE)
                cloud.deploy("One", work / "one.yaml")
                before = len(cloud.runner.durations)
                cloud.destroy("One")
                delete = cloud.stats[-1]
                durations = cloud.runner.durations[before:]
                rules_left = len(cloud.events.list_rules()["Rules"])
                cloud.destroy("AppStreamImageProvider")
            finally:
                moto.stop()
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
            "gone": "long-goodbye" not in backend.images,
        }

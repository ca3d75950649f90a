"""What the benchmarks share: the local service, a TLS response endpoint, the provider in-process."""

from __future__ import annotations

import importlib
import json
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appstream_image_local.appstream import AppStreamBackend, Durations, FaultInjector, LocalAppStream, load_scenario
from appstream_image_local.cfn.driver import Cloud, StackFailed
from appstream_image_local.cfn.endpoint import LocalCloudFormation
from appstream_image_local.cfn.lambda_bootstrap import Context as LambdaContext
from appstream_image_local.cfn.lambda_runner import Function
from appstream_image_local.moto_tls import MotoTls
from appstream_image_local.response_endpoint import ResponseEndpoint
from appstream_image_local.tls import make_certificate
from appstream_image_provider import asset
from appstream_image_provider.asset import HANDLER
from provider.contract import OWNER_TAG, SOURCE_TAG, owner_value
from tools.synth import cached_synth

ROOT = Path(__file__).resolve().parent.parent
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/bench/00000000-0000-0000-0000-000000000000"
FUNCTION = "AppStreamImageProvider"
OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def lambda_context(timeout_s: float = 900.0) -> LambdaContext:
    return LambdaContext(FUNCTION, f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}", timeout_s)


def delete_event(name: str, url: str, logical_id: str = "Image", **props: Any) -> dict[str, Any]:
    return {
        "RequestType": "Delete",
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:AppStreamImageProvider",
        "ResponseURL": url,
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": "Custom::AppStreamImage",
        "PhysicalResourceId": name,
        "ResourceProperties": {"ServiceToken": "x", "ImageName": name, **props},
    }


def owned(backend: AppStreamBackend, name: str, delete_seconds: float, logical_id: str = "Image") -> None:
    """An image the resource made (a copy's source tag): its Delete deletes it."""
    tags = {OWNER_TAG: owner_value(STACK_ID, logical_id), SOURCE_TAG: "Copy/golden-base/0123456789abcdef"}
    backend.add_image(name, delete_seconds=delete_seconds, tags=tags)


@dataclass
class Bench:
    service: LocalAppStream
    endpoint: ResponseEndpoint
    cert: Path

    @property
    def backend(self) -> AppStreamBackend:
        return self.service.backend

    def provider(self) -> Any:
        """A freshly imported handler module, as a warm Lambda container holds it."""
        import provider.handler

        module = importlib.reload(provider.handler)
        logging.getLogger().setLevel(logging.WARNING)  # the provider's JSON lines would drown the table
        return module

    def response(self, key: str, timeout: float) -> dict[str, Any] | None:
        got = self.endpoint.wait_for(key, timeout=timeout)
        return got[-1] if got else None


@contextmanager
def bench_environment(faults: FaultInjector | None = None) -> Iterator[Bench]:
    """The local service (real clock), an HTTPS response endpoint, and an offline AWS environment."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        cert, key = make_certificate(Path(tmp))
        os.environ.update(OFFLINE_ENV)
        os.environ["SSL_CERT_FILE"] = str(cert)
        endpoint = ResponseEndpoint(cert, key).start()
        backend = AppStreamBackend(durations=Durations(copy=1, update=1, delete=1))
        service = LocalAppStream(backend, faults or FaultInjector()).start()
        os.environ["AWS_ENDPOINT_URL_APPSTREAM"] = service.url
        try:
            yield Bench(service, endpoint, cert)
        finally:
            service.stop()
            endpoint.stop()
            os.environ.clear()
            os.environ.update(saved)


PROVIDER_STACK = "AppStreamImageProvider"


def synth_provider() -> Path:
    """The provider stack's template, from the shared synth cache."""
    return cached_synth(stacks="provider") / f"{PROVIDER_STACK}.template.json"


@contextmanager
def offline_cloud(scenario: dict[str, Any], **options: Any) -> Iterator[tuple[Cloud, LocalAppStream, Path]]:
    """The local service seeded from `scenario`, moto over TLS, and the driver with the provider stack deployed
    (destroyed afterwards); yields the driver, the service and a work directory."""
    with tempfile.TemporaryDirectory(prefix="bench-cloud-") as tmp:
        work = Path(tmp)
        backend, faults = load_scenario(scenario)
        cert, key = make_certificate(work / "tls")
        with LocalAppStream(backend, faults) as service, MotoTls(cert, key) as moto:
            cloud = Cloud(appstream_url=service.url, moto=moto, workdir=work, printer=lambda _: None, **options)
            api = LocalCloudFormation(cloud).start()  # the provider asks it whether its stack is rolling back
            try:
                cloud.deploy(PROVIDER_STACK, synth_provider())
                yield cloud, service, work
                faults.clear()
                cloud.destroy(PROVIDER_STACK)
            finally:
                api.stop()
                cloud.close()


def provider_function(timeout: float = 900) -> Function:
    """The provider as the local Lambda runner runs it: from its bundled asset."""
    return Function(
        FUNCTION, f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}", asset.build(), HANDLER, timeout
    )


def timed(step: Callable[[], object], failures: list[str]) -> float:
    """Seconds `step` (a deploy or a destroy) took; a stack failure is recorded in `failures`, not raised."""
    started = time.monotonic()
    try:
        step()
    except StackFailed as failure:
        failures.append(str(failure))
    return time.monotonic() - started


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")

"""A pytest plugin for your own tests: an offline cloud that deploys your CDK app or cloud assembly.

Enable it with `pytest -p local.pytest_plugin`, or `pytest_plugins = ["local.pytest_plugin"]` in
your conftest.py. The `offline_cloud` fixture starts the local AppStream service (as strict as AWS),
moto over TLS and the local CloudFormation driver; seed images with `offline_cloud.add_image(...)`,
then `deploy_app(...)` or `deploy_assembly(...)` returns the stack's outputs, and
`offline_cloud.images()` shows what AppStream holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.appstream import AppStreamBackend, LocalAppStream
from local.cfn.driver import Cloud
from local.moto_tls import MotoTls
from local.synth import synth_app
from local.tls import make_certificate


@dataclass
class OfflineCloud:
    """The offline cloud of one test: `cloud` (the driver), `appstream` (the local service), a work dir."""

    cloud: Cloud
    appstream: LocalAppStream
    workdir: Path

    @property
    def backend(self) -> AppStreamBackend:
        return self.appstream.backend

    def add_image(self, name: str, **attrs: Any) -> None:
        """Seed the account with an image (AVAILABLE, private, by default)."""
        self.backend.add_image(name, **attrs)

    def deploy_assembly(self, assembly: Path, stack: str, parameters: dict[str, str] | None = None) -> dict[str, str]:
        """Deploy `<assembly>/<stack>.template.json` (with its assets); returns the stack's outputs."""
        return dict(self.cloud.deploy(stack, Path(assembly) / f"{stack}.template.json", parameters).outputs)

    def deploy_app(self, app_dir: Path, stack: str, app: str = "app.py", **context: str) -> dict[str, str]:
        """Synthesize the CDK app in `app_dir` as `cdk synth` runs it, then deploy `stack`; returns its outputs."""
        out = self.workdir / f"cdk.out-{stack}-{len(self.cloud.stacks)}"
        return self.deploy_assembly(synth_app(out, app_dir=Path(app_dir), app=app, context=context), stack)

    def destroy(self, stack: str) -> None:
        self.cloud.destroy(stack)

    def images(self) -> dict[str, dict[str, Any]]:
        """Every image the local AppStream service holds: fields, tags and sharing."""
        return dict(self.backend.snapshot()["images"])


@pytest.fixture
def offline_cloud(tmp_path: Path) -> Iterator[OfflineCloud]:
    cert, key = make_certificate(tmp_path / "tls")
    with LocalAppStream(AppStreamBackend()) as appstream, MotoTls(cert, key) as moto:
        cloud = Cloud(appstream_url=appstream.url, moto=moto, workdir=tmp_path, printer=lambda _: None)
        yield OfflineCloud(cloud, appstream, tmp_path)

"""End-to-end fixtures: synthesized cloud assemblies, moto over TLS, the local service, the driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local.appstream import LocalAppStream, load_scenario
from local.appstream.scenario import read_scenario_file
from local.cfn.driver import Cloud
from local.moto_tls import MotoTls
from local.tls import make_certificate
from tests.conftest import ROOT

SCENARIO = ROOT / "local" / "scenarios" / "demo.json"


def synth(out: Path, **context: str) -> Path:
    env = {**os.environ, "CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps(context)}
    subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="session")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("assemblies")
    return {
        "v1": synth(base / "v1", goldenImage="golden-2026-11"),
        "tags": synth(base / "tags", goldenImage="golden-2026-11", team="vdi"),
        "v2": synth(base / "v2", goldenImage="golden-2026-12"),
        "narrow": synth(base / "narrow", stacks="provider", imageNamePrefix="team-a-"),
    }


@pytest.fixture(scope="session")
def moto_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoTls]:
    cert, key = make_certificate(tmp_path_factory.mktemp("e2e-tls"))
    server = MotoTls(cert, key).start()
    yield server
    server.stop()


@pytest.fixture
def make_cloud(moto_tls: MotoTls, tmp_path: Path) -> Iterator[Callable[..., tuple[Cloud, LocalAppStream, list[str]]]]:
    services: list[LocalAppStream] = []

    def make(scenario: dict[str, object] | None = None, **options: float) -> tuple[Cloud, LocalAppStream, list[str]]:
        backend, faults = load_scenario(scenario or read_scenario_file(SCENARIO))
        service = LocalAppStream(backend, faults).start()
        services.append(service)
        lines: list[str] = []
        cloud = Cloud(appstream_url=service.url, moto=moto_tls, workdir=tmp_path, printer=lines.append, **options)
        return cloud, service, lines

    yield make
    for service in services:
        service.stop()

"""End-to-end fixtures: synthesized cloud assemblies, moto over TLS, the local service, the driver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appstream_image_local.appstream import LocalAppStream, load_scenario
from appstream_image_local.appstream.scenario import read_scenario_file
from appstream_image_local.cfn.driver import Cloud
from appstream_image_local.cfn.endpoint import LocalCloudFormation
from appstream_image_local.moto_tls import MotoTls
from appstream_image_local.tls import make_certificate
from tests.conftest import ROOT
from tools.synth import cached_synth

SCENARIO = ROOT / "appstream_image_local" / "scenarios" / "demo.json"


@pytest.fixture(scope="session")
def assemblies() -> dict[str, Path]:
    """The cloud assemblies the e2e tests deploy (tools/synth.py: synthesized together when the cache is cold)."""
    return {
        "v1": cached_synth(goldenImage="golden-2026-11"),
        "tags": cached_synth(goldenImage="golden-2026-11", team="vdi"),
        "v2": cached_synth(goldenImage="golden-2026-12"),
        "narrow": cached_synth(stacks="provider", imageNamePrefix="team-a-"),
        # The rotation to golden-2026-12 from a source that does not exist: a create or an update that fails.
        "broken": cached_synth(
            stacks="example", nag="false", goldenImage="golden-2026-12", goldenSource="no-such-base"
        ),
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
    clouds: list[Cloud] = []
    apis: list[LocalCloudFormation] = []

    def make(scenario: dict[str, object] | None = None, **options: float) -> tuple[Cloud, LocalAppStream, list[str]]:
        moto_tls.reset()  # the session's moto starts empty for each cloud: no schedule of an earlier test fires here
        # A quarter of the scenario's durations: the same lifecycle, sooner.
        backend, faults = load_scenario(scenario or read_scenario_file(SCENARIO), time_scale=0.25)
        service = LocalAppStream(backend, faults).start()
        services.append(service)
        lines: list[str] = []
        cloud = Cloud(appstream_url=service.url, moto=moto_tls, workdir=tmp_path, printer=lines.append, **options)
        clouds.append(cloud)
        apis.append(LocalCloudFormation(cloud).start())  # the provider asks it whether its stack is rolling back
        return cloud, service, lines

    yield make
    for api in apis:
        api.stop()
    for cloud in clouds:
        cloud.close()
    for service in services:
        service.stop()

"""The `offline_cloud` pytest fixture: your CDK app deployed with the real CLI on the offline cloud.

Installed with `pip install "appstream-image-provider[local]"`, pytest loads this plugin by itself
(the `pytest11` entry point): no conftest line is needed. Each test that asks for `offline_cloud`
gets its own offline cloud (the local AppStream service, as strict as AWS, moto and the local
CloudFormation API) and an `appstream_image_local.kit.OfflineCloud` to drive and inspect it.

Only the standard library and pytest are imported here: this module is loaded by every pytest
run in a venv that has the package, with or without the extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from appstream_image_local.kit import OfflineCloud

__all__ = ["offline_cloud"]
EXTRA_HINT = 'the offline cloud needs the package\'s "local" extra: pip install "appstream-image-provider[local]"'


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("offline_cloud_cdk", "the CDK CLI the offline_cloud fixture runs (default: node_modules, PATH)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "offline_cloud(scenario=None, **options): the offline cloud's AppStream scenario (a packaged name such as "
        '"aws-durations", or a path) and LocalCloud options such as schedule_scale',
    )


@pytest.fixture
def offline_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OfflineCloud]:
    """A fresh offline cloud for this test, stopped afterwards."""
    try:
        from appstream_image_local.appstream.scenario import (  # noqa: PLC0415 - needs the extra: imported on use
            load_scenario,
            read_scenario_file,
            scenario_path,
        )
        from appstream_image_local.cloud import LocalCloud  # noqa: PLC0415
        from appstream_image_local.kit import OfflineCloud  # noqa: PLC0415
    except ImportError as err:
        raise pytest.UsageError(f"{EXTRA_HINT} ({err})") from err
    try:
        setting = str(request.config.getini("offline_cloud_cdk") or "")
    except ValueError:  # the plugin was registered after the ini options were read
        setting = ""
    marker = request.node.get_closest_marker("offline_cloud")
    options = dict(marker.kwargs) if marker is not None else {}
    scenario = options.pop("scenario", None)
    near = (Path(str(request.config.rootpath)), Path.cwd())
    backend, faults = load_scenario(read_scenario_file(scenario_path(scenario))) if scenario else (None, None)
    with LocalCloud(tmp_path / "cloud", backend=backend, faults=faults, printer=lambda _line: None, **options) as local:
        yield OfflineCloud(local, tmp_path, cdk_setting=setting, search_from=near)

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
        '"aws-durations", or a path) and options over the kit\'s defaults (appstream_image_local.kit.DEFAULTS), '
        "e.g. schedule_scale=1.0 for AWS's cadence of scheduled runs (minutes per wait; the default fires them "
        "within a second)",
    )


@pytest.fixture
def offline_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OfflineCloud]:
    """A fresh offline cloud for this test, stopped afterwards.

    Its options are the kit's defaults, under the `offline_cloud` marker's keywords (`OfflineCloud` lists them
    and what each costs). By default the provider's scheduled runs fire within a second of being set, so a stack
    with `available_timeout` (a wait condition per image) deploys about as fast as one without: a deploy, a
    rename and a destroy of one image took 47 s either way (bench/kit_long_wait.py). The wait conditions'
    Timeout and their handles' 24-hour URLs keep AWS's values. `@pytest.mark.offline_cloud(schedule_scale=1.0)`
    keeps AWS's cadence instead: each wait then lasts the 2-3 minutes until the run set after the answer fires
    (347 s for the same test); `schedule_scale=0.1`, 15 s per wait (70 s)."""
    try:
        from appstream_image_local.kit import offline_cloud as start  # noqa: PLC0415 - needs the extra: on use
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
    with start(tmp_path, scenario, cdk_setting=setting, search_from=near, **options) as cloud:
        yield cloud

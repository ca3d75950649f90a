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


@pytest.fixture
def offline_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OfflineCloud]:
    """A fresh offline cloud for this test, stopped afterwards."""
    try:
        from appstream_image_local.cloud import LocalCloud  # noqa: PLC0415 - needs the extra: imported on use
        from appstream_image_local.kit import OfflineCloud  # noqa: PLC0415
    except ImportError as err:
        raise pytest.UsageError(f"{EXTRA_HINT} ({err})") from err
    try:
        setting = str(request.config.getini("offline_cloud_cdk") or "")
    except ValueError:  # the plugin was registered after the ini options were read
        setting = ""
    near = (Path(str(request.config.rootpath)), Path.cwd())
    with LocalCloud(tmp_path / "cloud", printer=lambda _line: None) as local:
        yield OfflineCloud(local, tmp_path, cdk_setting=setting, search_from=near)

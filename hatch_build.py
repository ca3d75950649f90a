"""Wheel build hook: put the Lambda code and the pinned crhelper inside appstream_image_provider.

A user's venv needs neither the repository's provider/ nor crhelper to synthesize: the wheel
carries provider/**/*.py as appstream_image_provider/provider/ and crhelper as
appstream_image_provider/_lambda_deps/crhelper/, which asset.py bundles into the Lambda asset.
crhelper comes from the build environment ([build-system] requires pins it) and must match
provider/requirements.txt, the pin the Lambda asset is tested with.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _pin(requirements: Path, package: str) -> str:
    # asset._pinned's twin: the build environment has no aws-cdk-lib, which importing the package needs.
    for line in requirements.read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise RuntimeError(f"{requirements} does not pin {package}")


def _compact(model: dict[str, Any]) -> bytes:
    """appstream_image_provider/service_model.py, loaded by its path (importing the package needs aws-cdk-lib)."""
    path = Path(__file__).parent / "appstream_image_provider" / "service_model.py"
    spec = importlib.util.spec_from_file_location("_service_model", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return bytes(module.compact_model(model))


class LambdaCodeHook(BuildHookInterface):  # type: ignore[type-arg]  # hatchling's generic has no stubs
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        provider = root / "provider"
        include = build_data["force_include"]
        for path in sorted([*provider.rglob("*.py"), provider / "requirements.txt"]):  # with its packages
            include[str(path)] = f"appstream_image_provider/provider/{path.relative_to(provider).as_posix()}"
        wanted = _pin(provider / "requirements.txt", "crhelper")
        found = importlib.metadata.version("crhelper")
        if found != wanted:
            raise RuntimeError(f"the build has crhelper {found}; provider/requirements.txt pins {wanted}")
        dist = importlib.metadata.distribution("crhelper")
        for entry in dist.files or []:
            name = str(entry)
            if name.startswith("crhelper/") and name.endswith(".py"):
                include[str(dist.locate_file(entry))] = f"appstream_image_provider/_lambda_deps/{name}"
        # AppStream's model for the asset (asset.model_bytes reads it there): from the build's botocore.
        import botocore.loaders  # noqa: PLC0415 - the build environment's (pyproject.toml pins it)

        model = botocore.loaders.Loader().load_service_model("appstream", "service-2", "2016-12-01")
        self._generated = Path(tempfile.mkdtemp(prefix="appstream-image-provider-build-"))  # removed in finalize
        target = self._generated / "service-2.json"
        target.write_bytes(_compact(model))
        include[str(target)] = "appstream_image_provider/provider/models/appstream/2016-12-01/service-2.json"
        license_file = dist.read_text("LICENSE") or dist.read_text("LICENSE.txt")
        if license_file:  # Apache-2.0 asks that redistributed copies carry the licence
            target = self._generated / "LICENSE"
            target.write_text(license_file)
            include[str(target)] = "appstream_image_provider/_lambda_deps/crhelper/LICENSE"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """The generated files are in the wheel now: remove them (every build used to leave two temp dirs)."""
        generated = getattr(self, "_generated", None)
        if generated is not None:
            shutil.rmtree(generated, ignore_errors=True)

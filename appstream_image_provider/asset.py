"""The provider's Lambda asset, bundled locally (no Docker): provider/**/*.py plus the pinned crhelper.

boto3 is left out: the Lambda Python runtime ships it. The directory is named after a hash of
its content, so the same sources always give the same asset (and the same asset hash).

Installed from the wheel, both travel inside this package (`provider/`, and crhelper under
`_lambda_deps/`, put there by hatch_build.py); in a source checkout they are the repository's
provider/ and the pinned crhelper of the development venv (see _shared.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import tempfile
from pathlib import Path

from ._shared import PROVIDER_DIR
from .service_model import compact_model

PACKAGE = Path(__file__).resolve().parent
PROVIDER = PROVIDER_DIR
BUNDLED = PACKAGE / "_lambda_deps"  # only in the wheel
HANDLER = "provider.handler.handler"
# AppStream's service model from the pinned botocore (provider/appstream/images.py reads it first): the Lambda
# runtime's botocore may predate CreateImportedImage. Its documentation is left out (a third of the size).
MODEL = "provider/models/appstream/2016-12-01/service-2.json"


def model_bytes() -> bytes:
    """The shipped model: the wheel's copy, or (in a checkout) the pinned botocore's, without documentation."""
    shipped = PROVIDER / MODEL.removeprefix("provider/")  # in the wheel, beside the provider's code
    if shipped.is_file():
        return shipped.read_bytes()
    import botocore.loaders  # noqa: PLC0415 - only a source checkout builds it

    return compact_model(botocore.loaders.Loader().load_service_model("appstream", "service-2", "2016-12-01"))


def _pinned(requirements: Path, package: str) -> str:
    for line in requirements.read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise RuntimeError(f"{requirements} does not pin {package}")


def _files() -> dict[str, bytes]:
    """Relative path -> content of every file the asset holds, in a stable order."""
    # provider/ and its packages (cloudformation/, appstream/), each module at its path
    files = {f"provider/{p.relative_to(PROVIDER).as_posix()}": p.read_bytes() for p in sorted(PROVIDER.rglob("*.py"))}
    files[MODEL] = model_bytes()
    if BUNDLED.is_dir():
        for bundled in sorted(BUNDLED.rglob("*.py")):
            files[str(bundled.relative_to(BUNDLED))] = bundled.read_bytes()
        return files
    wanted = _pinned(PROVIDER / "requirements.txt", "crhelper")
    installed = importlib.metadata.version("crhelper")
    if installed != wanted:
        raise RuntimeError(f"crhelper {installed} is installed but provider/requirements.txt pins {wanted}")
    dist = importlib.metadata.distribution("crhelper")
    for entry in sorted(dist.files or [], key=str):
        path = str(entry)
        if path.startswith("crhelper/") and path.endswith(".py"):
            files[path] = Path(str(dist.locate_file(entry))).read_bytes()
    return files


def _listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def build() -> Path:
    """A directory holding the asset's files; rebuilt only when their content changes."""
    files = _files()
    digest = hashlib.sha256()
    for path, content in files.items():
        digest.update(path.encode() + b"\0" + hashlib.sha256(content).digest())
    target = Path(tempfile.gettempdir()) / f"appstream-image-provider-asset-{digest.hexdigest()[:16]}"
    if target.exists() and _listing(target) != sorted(files):  # e.g. __pycache__ written by an import
        shutil.rmtree(target, ignore_errors=True)
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix="appstream-image-provider-staging-"))
        for path, content in files.items():
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_bytes(content)
        try:
            staging.rename(target)
        except OSError:  # another synth built the same content first
            shutil.rmtree(staging, ignore_errors=True)
    return target

"""Source Type Import: CreateImportedImage with the ownership tag from the start, IMPORTING and VALIDATING
waited through, a failed import's ImageErrors in the Reason, and a provider that works on a botocore older
than the operation (the model ships in the asset)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from appstream_image_provider import asset
from provider.appstream.creation import Made
from provider.contract import OWNER_TAG, SOURCE_TAG
from provider.errors import InvalidProperties
from tests.conftest import FakeClock
from tests.provider.conftest import OWNER, event, finished, handle

ROLE = "arn:aws:iam::123456789012:role/appstream-import"
AMI = "ami-0123456789abcdef0"
IMPORT = {"Type": "Import", "SourceAmiId": AMI, "IamRoleArn": ROLE, "DisplayName": "Imported (AMI)"}


def test_an_import_is_tagged_from_the_start_and_waited_through_importing_and_validating(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    service, client = fake
    backend.add_ami(AMI)
    backend.durations.import_, backend.durations.validate = 300, 120  # within one invocation
    body = event("create", ImageName="imported-2026-12", Source=IMPORT, Tags=[{"Key": "team", "Value": "euc"}])
    done = finished(handle(client, clock, body))
    assert done.physical_id == "imported-2026-12"
    assert done.attributes["State"] == "AVAILABLE"
    [call] = service.audit.calls("CreateImportedImage")
    assert call["params"]["Tags"][OWNER_TAG] == OWNER  # owned from its first moment
    assert call["params"]["Tags"][SOURCE_TAG].startswith(f"Import/{AMI}/")
    assert call["params"]["IamRoleArn"] == ROLE
    assert service.audit.calls("TagResource") == []


def test_a_failed_import_fails_with_its_image_errors_and_names_the_image_for_the_rollback(
    fake: tuple[LocalAppStream, Any], backend: AppStreamBackend, clock: FakeClock
) -> None:
    _, client = fake
    backend.add_ami(AMI, fails=True)
    body = event("create", ImageName="imported-2026-12", Source=IMPORT)
    with pytest.raises(Made, match=r"FAILED: .*INTERNAL_SERVICE_ERROR The runtime validation of ami-.* failed") as err:
        handle(client, clock, body)
    assert err.value.image == "imported-2026-12"


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"Type": "Import", "SourceAmiId": AMI}, "Source.IamRoleArn: required to import an AMI"),
        ({"Type": "Import", "IamRoleArn": ROLE}, "exactly one of SourceAmiId and WorkspaceImageId"),
        ({**IMPORT, "SourceAmiId": "ami-XYZ"}, "Source.SourceAmiId: 'ami-XYZ' is not an EC2 AMI id"),
        ({**IMPORT, "AgentSoftwareVersion": "NEWEST"}, "'NEWEST' is not one of CURRENT_LATEST, ALWAYS_LATEST"),
        ({**IMPORT, "DisplayName": "no/slashes"}, "Source.DisplayName: 'no/slashes' may hold only"),
        ({**IMPORT, "AppCatalogConfig": [{"Name": "app"}]}, "AppCatalogConfig[0].AbsoluteAppPath: required"),
    ],
)
def test_import_properties_are_checked_against_the_model(
    fake: tuple[LocalAppStream, Any], clock: FakeClock, source: dict[str, Any], problem: str
) -> None:
    _, client = fake
    with pytest.raises(InvalidProperties, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        handle(client, clock, event("create", ImageName="imported-2026-12", Source=source))


OLD_BOTOCORE = "1.34.0"  # from before CreateImportedImage
OLD_PACKAGES = Path(tempfile.gettempdir()) / "appstream-image-old-botocore"


def old_botocore() -> Path:
    """A folder with boto3 and botocore OLD_BOTOCORE, installed once per pins and Python and kept across runs.

    Installed into a temp folder, then renamed into place (atomic): test processes that install at the same
    time each end with a complete folder, and a folder is never seen half-installed.
    """
    pins = [f"boto3=={OLD_BOTOCORE}", f"botocore=={OLD_BOTOCORE}"]
    key = hashlib.sha256(json.dumps([pins, sys.version_info[:2]]).encode()).hexdigest()[:16]
    target = OLD_PACKAGES / key
    if not target.is_dir():
        OLD_PACKAGES.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=OLD_PACKAGES))
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        subprocess.run([*pip, "--target", str(building), *pins], check=True, timeout=600)
        try:
            building.rename(target)
        except OSError:  # another process renamed its own first: the same packages
            shutil.rmtree(building, ignore_errors=True)
    return target


@pytest.mark.long
@pytest.mark.toolchain  # a venv, and pip on a machine's first run
def test_the_provider_imports_on_a_botocore_that_predates_create_imported_image(
    tmp_path: Path, appstream: LocalAppStream, live_backend: AppStreamBackend
) -> None:
    live_backend.add_ami(AMI)
    venv = tmp_path / "old"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "old-botocore.pth").write_text(f"{old_botocore()}\n")  # a fresh venv, with only them
    root = asset.build()  # shared by every test process: read only, as Lambda's /var/task is
    script = f"""
import json, sys
import botocore.session
print(json.dumps({{"own_model_has_it": "CreateImportedImage" in botocore.session.get_session()
    .get_service_model("appstream").operation_names}}))
sys.path.insert(0, {str(root)!r})
from provider.appstream import images
from provider.appstream.properties import Source
client = images.appstream_client()
images.create_imported(client, "old-botocore-import", Source("Import", {AMI!r}, iam_role_arn={ROLE!r}), {{"k": "v"}})
print(json.dumps({{"done": True}}))
"""
    # No __pycache__ in the shared asset: asset.build() in another worker would take it for a damaged asset and
    # rebuild it while this process imports from it (a fresh-clone run failed so: the model was gone).
    env = {"AWS_ENDPOINT_URL_APPSTREAM": appstream.url, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    out = subprocess.run([str(python), "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = (json.loads(line) for line in out.stdout.splitlines()[-2:])
    assert first == {"own_model_has_it": False}  # this botocore alone could not make the call
    assert second == {"done": True}
    assert "old-botocore-import" in live_backend.images
    assert not list(root.rglob("__pycache__"))  # the shared asset is as it was built

"""CreateImportedImage in the local AppStream service: the model's constraints and errors, IMPORTING then
VALIDATING, and a failed validation's ImageErrors (the import path of the long-running images)."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream, load_scenario
from tests.conftest import FakeClock

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
ROLE = "arn:aws:iam::123456789012:role/appstream-import"
AMI = "ami-0123456789abcdef0"


@pytest.fixture
def imports(clock: FakeClock):
    backend = AppStreamBackend(clock=clock)
    backend.durations.import_, backend.durations.validate = 600, 300
    backend.add_ami(AMI)
    backend.add_ami("ami-0fa11ed0fa11ed0fa", fails=True)
    backend.add_ami("ami-0b105b105b105b105", compatible=False)
    with LocalAppStream(backend) as svc:
        yield backend, boto3.client("appstream", endpoint_url=svc.url, config=NO_RETRY)


def test_an_import_runs_through_importing_and_validating_to_available(imports, clock: FakeClock) -> None:
    backend, client = imports
    made = client.create_imported_image(Name="imported", SourceAmiId=AMI, IamRoleArn=ROLE, Tags={"team": "euc"})
    assert made["Image"]["State"] == "IMPORTING"
    assert backend.images["imported"].tags == {"team": "euc"}  # tagged from the start
    states = []
    for _ in range(4):
        clock.advance(300)
        states.append(client.describe_images(Names=["imported"])["Images"][0]["State"])
    assert states == ["IMPORTING", "VALIDATING", "AVAILABLE", "AVAILABLE"]


def test_a_failed_validation_lists_image_errors(imports, clock: FakeClock) -> None:
    _, client = imports
    client.create_imported_image(Name="broken", SourceAmiId="ami-0fa11ed0fa11ed0fa", IamRoleArn=ROLE)
    clock.advance(900)
    image = client.describe_images(Names=["broken"])["Images"][0]
    assert image["State"] == "FAILED"
    assert image["ImageErrors"][0]["ErrorCode"] == "INTERNAL_SERVICE_ERROR"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"SourceAmiId": AMI}, "InvalidParameterCombinationException"),  # an AMI import needs its role
        ({"SourceAmiId": AMI, "WorkspaceImageId": "wsi-0123456789", "IamRoleArn": ROLE}, "InvalidParameterCombination"),
        ({"IamRoleArn": ROLE}, "InvalidParameterCombinationException"),
        ({"SourceAmiId": "ami-0000000000000000f", "IamRoleArn": ROLE}, "ResourceNotFoundException"),
        ({"SourceAmiId": "ami-0b105b105b105b105", "IamRoleArn": ROLE}, "IncompatibleImageException"),
        ({"SourceAmiId": AMI, "IamRoleArn": "arn:aws:iam::999999999999:role/x"}, "InvalidRoleException"),
        ({"SourceAmiId": AMI, "IamRoleArn": ROLE, "DryRun": True}, "DryRunOperationException"),
        ({"SourceAmiId": "ami-bad!", "IamRoleArn": ROLE}, "ValidationException"),  # the model's pattern
    ],
)
def test_the_models_constraints_and_errors(imports, params: dict[str, object], error: str) -> None:
    backend, client = imports
    with pytest.raises(client.exceptions.ClientError, match=error):
        client.create_imported_image(Name="imported", **params)
    assert "imported" not in backend.images


def test_a_scenario_seeds_amis() -> None:
    backend, _ = load_scenario({"amis": [{"id": AMI}, {"id": "ami-0fa11ed0fa11ed0fa", "fails": True}]})
    assert backend.amis[AMI] == {"compatible": True, "fails": False}
    assert backend.amis["ami-0fa11ed0fa11ed0fa"]["fails"] is True


def test_the_aws_durations_scenario_runs_hours_in_seconds_under_its_time_scale() -> None:
    from appstream_image_local.appstream.scenario import read_scenario_file
    from tests.conftest import ROOT

    clock = FakeClock()
    data = read_scenario_file(ROOT / "appstream_image_local" / "scenarios" / "aws-durations.json")
    backend, _ = load_scenario(data)
    assert (backend.durations.copy, backend.durations.update) == (1200, 10800)  # 20 minutes, 3 hours
    assert backend.durations.import_ + backend.durations.validate == 10800
    backend._clock = clock
    backend.create_updated_image({"existingImageName": "golden-base", "newImageName": "patched"})
    clock.advance(10800 * backend.time_scale - 0.1)
    assert backend.images["patched"].state == "CREATING"
    clock.advance(0.2)
    backend.snapshot()
    assert backend.images["patched"].state == "AVAILABLE"  # 3 hours of AppStream in 10.8 s

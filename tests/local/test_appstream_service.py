"""The local AppStream service answers a stock boto3 client as AWS does."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local.appstream import AppStreamBackend, Fault, FaultInjector, LocalAppStream, load_scenario
from appstream_image_local.appstream.scenario import read_scenario_file
from tests.conftest import ROOT, FakeClock

ACCOUNT = "123456789012"
OTHER = "210987654321"


def raw_call(service: LocalAppStream, operation: str, body: bytes) -> tuple[int, dict[str, object], dict[str, str]]:
    request = urllib.request.Request(
        service.url + "/",
        data=body,
        method="POST",
        headers={
            "X-Amz-Target": f"PhotonAdminProxyService.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# -- every operation through boto3 -------------------------------------------------


def test_describe_images_by_name_returns_the_image_fields(backend: AppStreamBackend, client) -> None:
    backend.add_image("golden", display_name="Golden", description="base", base_image_arn="arn:base")
    image = client.describe_images(Names=["golden"])["Images"][0]
    assert image["Name"] == "golden"
    assert image["Arn"] == f"arn:aws:appstream:us-east-1:{ACCOUNT}:image/golden"
    assert image["State"] == "AVAILABLE"
    assert image["Visibility"] == "PRIVATE"
    assert image["DisplayName"] == "Golden"
    assert image["BaseImageArn"] == "arn:base"
    assert image["CreatedTime"].year >= 2026  # epoch seconds parsed into a datetime


def test_describe_images_by_arn_and_type(backend: AppStreamBackend, client) -> None:
    backend.add_image("mine")
    backend.add_image("AppStream-WinServer2022", visibility="PUBLIC")
    backend.add_image("theirs", visibility="SHARED", arn=f"arn:aws:appstream:us-east-1:{OTHER}:image/theirs")
    arn = backend.images["mine"].arn
    assert [i["Name"] for i in client.describe_images(Arns=[arn])["Images"]] == ["mine"]
    assert [i["Name"] for i in client.describe_images(Type="PUBLIC")["Images"]] == ["AppStream-WinServer2022"]
    assert [i["Name"] for i in client.describe_images(Type="SHARED")["Images"]] == ["theirs"]


def test_describe_images_paginates_with_max_results(backend: AppStreamBackend, client) -> None:
    for n in range(30):
        backend.add_image(f"img-{n:02d}")
    first = client.describe_images(MaxResults=10)
    assert len(first["Images"]) == 10
    assert "NextToken" in first
    pages = client.get_paginator("describe_images").paginate(PaginationConfig={"PageSize": 7})
    names = [i["Name"] for page in pages for i in page["Images"]]
    assert names == [f"img-{n:02d}" for n in range(30)]


def test_describe_images_errors_map_to_client_exceptions(client) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_images(Names=["missing"])
    with pytest.raises(client.exceptions.InvalidParameterCombinationException):
        client.describe_images(Names=["a"], Arns=["arn:aws:appstream:us-east-1:1:image/a"])


def test_delete_image_moves_to_deleting_then_disappears(backend: AppStreamBackend, clock: FakeClock, client) -> None:
    backend.add_image("old", delete_seconds=10)
    assert client.delete_image(Name="old")["Image"]["State"] == "DELETING"
    clock.advance(9.9)
    assert client.describe_images(Names=["old"])["Images"][0]["State"] == "DELETING"
    clock.advance(0.2)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_images(Names=["old"])


def test_delete_of_a_deleting_image_returns_it_unchanged(backend: AppStreamBackend, client) -> None:
    backend.add_image("old")
    client.delete_image(Name="old")
    assert client.delete_image(Name="old")["Image"]["State"] == "DELETING"


def test_delete_missing_image_is_not_found(client) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_image(Name="missing")


def test_copy_image_goes_through_copying_to_available(backend: AppStreamBackend, clock: FakeClock, client) -> None:
    backend.add_image("golden", platform="WINDOWS_SERVER_2019")
    out = client.copy_image(
        SourceImageName="golden",
        DestinationImageName="golden-copy",
        DestinationRegion="us-east-1",
        DestinationImageDescription="copy",
    )
    assert out["DestinationImageName"] == "golden-copy"
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # read-after-write: not visible yet
        client.describe_images(Names=["golden-copy"])
    clock.advance(backend.limits.visibility_lag)
    image = client.describe_images(Names=["golden-copy"])["Images"][0]
    assert (image["State"], image["Platform"], image["Description"]) == ("COPYING", "WINDOWS_SERVER_2019", "copy")
    clock.advance(30)
    assert client.describe_images(Names=["golden-copy"])["Images"][0]["State"] == "AVAILABLE"


def test_copy_image_errors(backend: AppStreamBackend, client) -> None:
    backend.add_image("golden")
    backend.add_image("exists")
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
        client.copy_image(SourceImageName="golden", DestinationImageName="exists", DestinationRegion="us-east-1")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.copy_image(SourceImageName="nope", DestinationImageName="x", DestinationRegion="us-east-1")
    with pytest.raises(ClientError) as excinfo:
        client.copy_image(SourceImageName="golden", DestinationImageName="-bad", DestinationRegion="us-east-1")
    assert error_code(excinfo) == "ValidationException"


def test_copy_quota_is_two_concurrent_copies(backend: AppStreamBackend) -> None:
    # botocore's standard mode retries LimitExceededException, so count on a no-retry client.
    backend.add_image("golden")
    with LocalAppStream(backend) as svc:
        client = boto3.client("appstream", endpoint_url=svc.url, config=Config(retries={"total_max_attempts": 1}))
        client.copy_image(SourceImageName="golden", DestinationImageName="c1", DestinationRegion="us-east-1")
        client.copy_image(SourceImageName="golden", DestinationImageName="c2", DestinationRegion="us-east-1")
        with pytest.raises(client.exceptions.LimitExceededException):
            client.copy_image(SourceImageName="golden", DestinationImageName="c3", DestinationRegion="us-east-1")


def test_update_quota_is_five_concurrent_updates(backend: AppStreamBackend) -> None:
    backend.add_image("golden")
    with LocalAppStream(backend) as svc:
        client = boto3.client("appstream", endpoint_url=svc.url, config=Config(retries={"total_max_attempts": 1}))
        for n in range(5):
            client.create_updated_image(existingImageName="golden", newImageName=f"u{n}")
        with pytest.raises(client.exceptions.LimitExceededException):
            client.create_updated_image(existingImageName="golden", newImageName="u5")


def test_create_updated_image_dry_run_creates_nothing(backend: AppStreamBackend, client) -> None:
    backend.add_image("golden")
    out = client.create_updated_image(existingImageName="golden", newImageName="golden-next", dryRun=True)
    assert out["canUpdateImage"] is True
    assert "golden-next" not in backend.images


def test_create_updated_image_tags_and_creating_state(backend: AppStreamBackend, clock: FakeClock, client) -> None:
    backend.add_image("golden")
    out = client.create_updated_image(
        existingImageName="golden",
        newImageName="golden-next",
        newImageDisplayName="Next",
        newImageTags={"team": "euc"},
    )
    assert out["image"]["State"] == "CREATING"
    assert out["image"]["BaseImageArn"] == backend.images["golden"].arn
    arn = out["image"]["Arn"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # read-after-write: not visible yet
        client.list_tags_for_resource(ResourceArn=arn)
    clock.advance(backend.limits.visibility_lag)
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "euc"}
    clock.advance(60)
    assert client.describe_images(Names=["golden-next"])["Images"][0]["State"] == "AVAILABLE"


@pytest.mark.parametrize("name", ["AWS-next", "amazon-next", "AppStream-next"])
def test_create_updated_image_refuses_reserved_prefixes(backend: AppStreamBackend, client, name: str) -> None:
    backend.add_image("golden")
    with pytest.raises(ClientError) as excinfo:
        client.create_updated_image(existingImageName="golden", newImageName=name)
    assert error_code(excinfo) == "ValidationException"


def test_image_permissions_share_list_and_revoke(backend: AppStreamBackend, clock: FakeClock, client) -> None:
    backend.add_image("golden")
    client.update_image_permissions(
        Name="golden", SharedAccountId=OTHER, ImagePermissions={"allowFleet": True, "allowImageBuilder": False}
    )
    assert client.describe_image_permissions(Name="golden")["SharedImagePermissionsList"] == []  # not applied yet
    # What a test asserts on (the kit's images()) is the account once accepted: a promotion e2e that read the
    # lagging view failed when its deploy ended within the lag of its last share.
    assert backend.snapshot()["images"]["golden"]["Permissions"] == {
        OTHER: {"allowFleet": True, "allowImageBuilder": False}
    }
    clock.advance(backend.limits.permission_lag)
    listed = client.describe_image_permissions(Name="golden")["SharedImagePermissionsList"]
    assert listed == [{"sharedAccountId": OTHER, "imagePermissions": {"allowFleet": True, "allowImageBuilder": False}}]
    client.delete_image_permissions(Name="golden", SharedAccountId=OTHER)
    assert len(client.describe_image_permissions(Name="golden")["SharedImagePermissionsList"]) == 1
    client.delete_image_permissions(Name="golden", SharedAccountId=OTHER)  # a repeat within the lag is accepted
    clock.advance(backend.limits.permission_lag)
    assert client.describe_image_permissions(Name="golden")["SharedImagePermissionsList"] == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_image_permissions(Name="golden", SharedAccountId=OTHER)


def test_tags_add_list_remove(backend: AppStreamBackend, client) -> None:
    arn = backend.add_image("golden").arn
    client.tag_resource(ResourceArn=arn, Tags={"a": "1", "b": "2"})
    client.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"b": "2"}
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_tags_for_resource(ResourceArn=arn + "-missing")


def test_tag_limit_is_fifty(backend: AppStreamBackend) -> None:
    arn = backend.add_image("golden").arn
    with LocalAppStream(backend) as svc:
        client = boto3.client("appstream", endpoint_url=svc.url, config=Config(retries={"total_max_attempts": 1}))
        client.tag_resource(ResourceArn=arn, Tags={f"k{n}": "v" for n in range(50)})
        with pytest.raises(client.exceptions.LimitExceededException):
            client.tag_resource(ResourceArn=arn, Tags={"one-more": "v"})


def test_fleets_and_builders_reference_images(backend: AppStreamBackend, client) -> None:
    backend.add_image("golden")
    backend.add_fleet("fleet-a", "golden")
    backend.add_builder("builder-a", "golden")
    fleet = client.describe_fleets()["Fleets"][0]
    assert (fleet["Name"], fleet["ImageName"], fleet["ImageArn"]) == ("fleet-a", "golden", backend.images["golden"].arn)
    builder = client.describe_image_builders(Names=["builder-a"])["ImageBuilders"][0]
    assert builder["ImageArn"] == backend.images["golden"].arn
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_fleets(Names=["nope"])


# -- the rules for Delete ------------------------------------------------------------


def test_image_in_use_by_fleet_or_builder_cannot_be_deleted(backend: AppStreamBackend, client) -> None:
    backend.add_image("golden")
    backend.add_fleet("fleet-a", "golden")
    backend.add_builder("builder-a", "golden")
    with pytest.raises(client.exceptions.ResourceInUseException) as excinfo:
        client.delete_image(Name="golden")
    assert "fleet fleet-a" in str(excinfo.value)
    assert "image builder builder-a" in str(excinfo.value)
    backend.set_fleet_image("fleet-a", "")
    backend.builders.clear()
    assert client.delete_image(Name="golden")["Image"]["State"] == "DELETING"


def test_fleet_releases_image_after_its_scheduled_time(backend: AppStreamBackend, clock: FakeClock, client) -> None:
    backend.add_image("golden")
    backend.add_fleet("fleet-a", "golden", release_after=3, release_to="")
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.delete_image(Name="golden")
    clock.advance(3)
    assert client.delete_image(Name="golden")["Image"]["State"] == "DELETING"


def test_shared_image_cannot_be_deleted_until_permissions_revoked(
    backend: AppStreamBackend, clock: FakeClock, client
) -> None:
    backend.add_image("golden", permissions={OTHER: {"allowFleet": True, "allowImageBuilder": True}})
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.delete_image(Name="golden")
    client.delete_image_permissions(Name="golden", SharedAccountId=OTHER)
    with pytest.raises(client.exceptions.ResourceInUseException):  # the revocation is not applied yet
        client.delete_image(Name="golden")
    clock.advance(backend.limits.permission_lag)
    client.delete_image(Name="golden")


def test_public_images_are_not_ours(backend: AppStreamBackend, client) -> None:
    arn = backend.add_image("AppStream-WinServer2022", visibility="PUBLIC").arn
    backend.add_image("golden")
    with pytest.raises(client.exceptions.OperationNotPermittedException):
        client.delete_image(Name="AppStream-WinServer2022")
    with pytest.raises(client.exceptions.ResourceNotAvailableException):  # CopyImage copies private images only
        client.copy_image(
            SourceImageName="AppStream-WinServer2022", DestinationImageName="mine", DestinationRegion="us-east-1"
        )
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # not this account's resource to tag
        client.tag_resource(ResourceArn=arn, Tags={"a": "b"})


def test_shared_with_us_images_are_found_by_arn_not_by_name(backend: AppStreamBackend, client) -> None:
    arn = f"arn:aws:appstream:us-east-1:{OTHER}:image/theirs"
    backend.add_image("theirs", visibility="SHARED", arn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_images(Names=["theirs"])
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_image(Name="theirs")
    assert [i["Visibility"] for i in client.describe_images(Arns=[arn])["Images"]] == ["SHARED"]


@pytest.mark.parametrize("state", ["PENDING", "COPYING", "CREATING", "IMPORTING"])
def test_delete_during_a_transition_is_concurrent_modification(
    backend: AppStreamBackend, clock: FakeClock, client, state: str
) -> None:
    backend.add_image("busy", state=state, settle_seconds=20)
    with pytest.raises(client.exceptions.ConcurrentModificationException):
        client.delete_image(Name="busy")
    clock.advance(20)
    assert client.delete_image(Name="busy")["Image"]["State"] == "DELETING"


def test_a_transition_can_end_in_failed_with_a_reason(backend: AppStreamBackend, clock: FakeClock, client) -> None:
    backend.add_image("doomed", state="PENDING", settle_seconds=5, then="FAILED")
    clock.advance(5)
    image = client.describe_images(Names=["doomed"])["Images"][0]
    assert image["State"] == "FAILED"
    assert image["StateChangeReason"]["Code"] == "INTERNAL_ERROR"


# -- validation against botocore's model ------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "body", "fragment"),
    [
        ("DeleteImage", {}, 'Missing required parameter in input: "Name"'),
        ("DeleteImage", {"Name": 7}, "Invalid type for parameter Name"),
        ("DescribeImages", {"Names": "golden"}, "Invalid type for parameter Names"),
        ("CopyImage", {"SourceImageName": "a", "DestinationImageName": "b"}, "DestinationRegion"),
        ("UpdateImagePermissions", {"Name": "a", "SharedAccountId": OTHER}, "ImagePermissions"),
        ("TagResource", {"ResourceArn": "x", "Tags": ["a"]}, "Invalid type for parameter Tags"),
        ("DeleteImage", {"Name": "a", "Extra": 1}, "Unknown parameter in input"),
    ],
)
def test_requests_are_validated_against_the_service_model(
    service: LocalAppStream, operation: str, body: dict[str, object], fragment: str
) -> None:
    status, payload, headers = raw_call(service, operation, json.dumps(body).encode())
    assert status == 400
    assert payload["__type"] == "ValidationException"
    assert fragment in str(payload["message"])
    assert headers.get("x-amzn-RequestId")


def test_unknown_operation_and_bad_json(service: LocalAppStream) -> None:
    status, payload, _ = raw_call(service, "CreateStack", b"{}")
    assert (status, payload["__type"]) == (400, "UnknownOperationException")
    status, payload, _ = raw_call(service, "DescribeImages", b"{not json")
    assert (status, payload["__type"]) == (400, "SerializationException")


# -- faults and retries -----------------------------------------------------------------


def test_injected_throttling_is_retried_by_standard_mode(
    backend: AppStreamBackend, service: LocalAppStream, client
) -> None:
    backend.add_image("golden")
    service.faults.add(Fault("throttle", operation="DescribeImages", count=2))
    assert client.describe_images(Names=["golden"])["Images"][0]["Name"] == "golden"
    calls = service.audit.calls("DescribeImages")
    assert [c["error"] for c in calls] == ["ThrottlingException", "ThrottlingException", None]


def test_injected_server_errors_exhaust_retries(backend: AppStreamBackend, service: LocalAppStream, client) -> None:
    backend.add_image("golden")
    service.faults.add(Fault("server_error", operation="DescribeImages", count=5))
    with pytest.raises(ClientError) as excinfo:
        client.describe_images(Names=["golden"])
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert len(service.audit.calls("DescribeImages")) == 3  # total_max_attempts


def test_concurrent_modification_on_the_next_n_calls(
    backend: AppStreamBackend, service: LocalAppStream, client
) -> None:
    backend.add_image("golden")
    service.faults.add(Fault("concurrent_modification", operation="DeleteImage", count=2))
    for _ in range(2):
        with pytest.raises(client.exceptions.ConcurrentModificationException):
            client.delete_image(Name="golden")
    assert client.delete_image(Name="golden")["Image"]["State"] == "DELETING"


def test_latency_and_dropped_connections(backend: AppStreamBackend, service: LocalAppStream, client) -> None:
    backend.add_image("golden")
    service.faults.add(Fault("latency", operation="DescribeImages", count=1, seconds=0.3))
    client.describe_images(Names=["golden"])
    assert service.audit.calls("DescribeImages")[0]["duration"] >= 0.3
    service.faults.add(Fault("drop", operation="ListTagsForResource", count=1))
    assert client.list_tags_for_resource(ResourceArn=backend.images["golden"].arn)["Tags"] == {}
    assert [c["error"] for c in service.audit.calls("ListTagsForResource")] == ["ConnectionDropped", None]


def test_fault_probability_is_seeded_and_bounded(backend: AppStreamBackend) -> None:
    def pattern(seed: int) -> list[bool]:
        injector = FaultInjector(seed=seed)
        injector.add(Fault("throttle", probability=0.5))
        return [injector.decide("DescribeImages").error is not None for _ in range(64)]

    assert pattern(7) == pattern(7)  # the same seed draws the same faults
    assert pattern(7) != pattern(8)
    assert 10 < sum(pattern(7)) < 54  # about half
    with pytest.raises(ValueError, match="not one of"):
        Fault("meteor")
    with pytest.raises(ValueError, match="between 0 and 1"):
        Fault("throttle", probability=2)


def test_faults_and_fleets_can_be_set_at_run_time_over_http(backend: AppStreamBackend, service: LocalAppStream) -> None:
    backend.add_image("golden")
    backend.add_fleet("fleet-a", "golden")
    for path, payload in [
        ("/_local/faults", [{"kind": "throttle", "operation": "DeleteImage", "count": 1}]),
        ("/_local/fleet", {"name": "fleet-a", "image_name": ""}),
    ]:
        req = urllib.request.Request(service.url + path, data=json.dumps(payload).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5):
            pass
    assert backend.fleets["fleet-a"].image_name == ""
    assert service.faults.decide("DeleteImage").error is not None
    with urllib.request.urlopen(service.url + "/_local/audit", timeout=5) as response:
        assert isinstance(json.loads(response.read()), list)


# -- audit, concurrency, scenarios, command line -----------------------------------------------


def test_audit_log_records_mutations_with_parameters(
    backend: AppStreamBackend, service: LocalAppStream, client
) -> None:
    backend.add_image("a")
    backend.add_image("b")
    client.describe_images()
    client.delete_image(Name="a")
    mutations = service.audit.mutations()
    assert [(m["operation"], m["params"]) for m in mutations] == [("DeleteImage", {"Name": "a"})]


def test_concurrent_clients_are_served_consistently(backend: AppStreamBackend, service: LocalAppStream) -> None:
    for n in range(40):
        backend.add_image(f"img-{n}")
    errors: list[BaseException] = []

    def worker(names: list[str]) -> None:
        client = boto3.client("appstream", config=Config(retries={"mode": "standard"}))
        try:
            for name in names:
                client.delete_image(Name=name)
                client.describe_images(Names=[name])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=([f"img-{n}" for n in range(k, 40, 8)],)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(service.audit.calls("DeleteImage")) == 40
    assert all(i.state == "DELETING" for i in backend.images.values())


def test_scenario_files_seed_images_fleets_builders_and_faults(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "durations: {copy: 4, delete: 2}\n"
        "images:\n"
        "  - {name: golden}\n"
        "  - {name: wip, state: PENDING, settle_seconds: 10}\n"
        "fleets:\n  - {name: fleet-a, image_name: golden}\n"
        "builders:\n  - {name: builder-a, image_name: wip}\n"
        "faults:\n  - {kind: throttle, operation: DeleteImage, count: 1}\n"
    )
    backend, faults = load_scenario(read_scenario_file(scenario))
    assert backend.durations.copy == 4
    assert backend.images["wip"].state == "PENDING"
    assert backend.fleets["fleet-a"].image_name == "golden"
    assert backend.builders["builder-a"].image_name == "wip"
    assert faults.decide("DeleteImage").error is not None
    with pytest.raises(ValueError, match="unknown keys"):
        load_scenario({"imagez": []})


def test_bundled_scenarios_load() -> None:
    files = sorted((ROOT / "appstream_image_local" / "scenarios").glob("*.json"))
    assert files
    for path in files:
        backend, _ = load_scenario(read_scenario_file(path))
        assert backend.images


def test_command_line_prints_its_url_and_serves(tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"images": [{"name": "golden"}]}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "appstream_image_local.appstream", "--port", "0", "--scenario", str(scenario)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = boto3.client("appstream", endpoint_url=url)
        assert client.describe_images()["Images"][0]["Name"] == "golden"
    finally:
        proc.terminate()
        proc.wait(timeout=120)  # a bound for a loaded machine, not a speed target
    assert proc.returncode == 0


def test_any_error_code_can_be_injected(backend: AppStreamBackend, service: LocalAppStream, client) -> None:
    backend.add_image("golden")
    service.faults.add(Fault("error", operation="DeleteImage", code="OperationNotPermittedException", count=1))
    with pytest.raises(client.exceptions.OperationNotPermittedException):
        client.delete_image(Name="golden")
    with pytest.raises(ValueError, match="needs a code"):
        Fault("error")


def test_an_answer_to_a_caller_that_went_away_is_dropped_quietly(service: LocalAppStream) -> None:
    """A function that Lambda stops mid-call (its timeout) leaves its connection closed: the reply's write fails,
    and the service drops it instead of printing a traceback (seen in a make test run)."""

    class GoneCaller(io.RawIOBase):
        def write(self, data: Any) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    handler = service._http.RequestHandlerClass.__new__(service._http.RequestHandlerClass)
    handler.wfile, handler.request_version, handler.requestline = GoneCaller(), "HTTP/1.1", "POST / HTTP/1.1"
    handler.command, handler.client_address, handler.close_connection = "POST", ("127.0.0.1", 1), False
    handler._reply(400, {"__type": "ValidationException"})  # raised BrokenPipeError before
    assert handler.close_connection is True

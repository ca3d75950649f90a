"""provider.appstream.exports against the local AppStream service: the EXPORTING tasks of one image, read across
ListExportImageTasks' pages, and [] when the call is denied, unknown or failing."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest

from appstream_image_local.appstream import AppStreamBackend, Fault
from appstream_image_local.appstream import operations as local_operations
from appstream_image_local.appstream.exports import add_export_task
from provider.appstream import exports
from tests.conftest import FakeClock
from tests.provider.conftest import NO_RETRY


def test_only_the_images_exporting_tasks_are_named(fake: Any, backend: AppStreamBackend, clock: FakeClock) -> None:
    _, client = fake
    golden = backend.add_image("golden")
    backend.add_image("other")
    running = add_export_task(backend, "golden", "golden-ami", seconds=60)
    add_export_task(backend, "golden", "golden-old", state="COMPLETED")
    add_export_task(backend, "golden", "golden-failed", state="FAILED")
    add_export_task(backend, "other", "other-ami", seconds=60)
    assert exports.exports_in_progress(client, golden.arn) == [f"{running.task_id} (AMI golden-ami)"]
    clock.advance(60)
    assert exports.exports_in_progress(client, golden.arn) == []


def test_every_page_is_read(fake: Any, backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    service, client = fake
    golden = backend.add_image("golden")
    backend.add_image("other")
    for n in range(5):
        add_export_task(backend, "other", f"other-{n}", state="COMPLETED")
    last = add_export_task(backend, "golden", "golden-ami")
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    assert exports.exports_in_progress(client, golden.arn) == [f"{last.task_id} (AMI golden-ami)"]
    assert len(service.audit.calls("ListExportImageTasks")) == 3
    assert all("Filters" not in c["params"] for c in service.audit.calls("ListExportImageTasks"))


def test_a_denied_call_names_nothing(fake: Any, backend: AppStreamBackend) -> None:
    service, _ = fake
    golden = backend.add_image("golden")
    add_export_task(backend, "golden", "golden-ami")
    service.iam.register(
        "ASIAROLE",
        "arn:aws:sts::123456789012:assumed-role/provider/fn",
        [{"Statement": [{"Effect": "Allow", "Action": "appstream:DescribeImages", "Resource": "*"}]}],
    )
    session = boto3.session.Session(aws_access_key_id="ASIAROLE", aws_secret_access_key="x", region_name="us-east-1")
    signed = session.client("appstream", endpoint_url=service.url, config=NO_RETRY)
    assert exports.exports_in_progress(signed, golden.arn) == []
    assert [d.action for d in service.iam.denials] == ["appstream:ListExportImageTasks"]


def test_an_endpoint_without_the_operation_names_nothing(
    fake: Any, backend: AppStreamBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = fake
    golden = backend.add_image("golden")
    monkeypatch.delitem(local_operations.OPERATIONS, "ListExportImageTasks")  # answers UnknownOperationException
    assert exports.exports_in_progress(client, golden.arn) == []


def test_a_botocore_without_the_operation_names_nothing(fake: Any, backend: AppStreamBackend, tmp_path: Path) -> None:
    """An older runtime's botocore, whose AppStream model predates the export operations."""
    service, _ = fake
    golden = backend.add_image("golden")
    model = botocore.loaders.Loader().load_service_model("appstream", "service-2", "2016-12-01")
    for operation in ("CreateExportImageTask", "GetExportImageTask", "ListExportImageTasks"):
        del model["operations"][operation]
    target = tmp_path / "appstream" / "2016-12-01"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path))
    old = boto3.session.Session(botocore_session=session).client(
        "appstream", region_name="us-east-1", endpoint_url=service.url, config=NO_RETRY
    )
    assert not hasattr(old, "list_export_image_tasks")
    assert exports.exports_in_progress(old, golden.arn) == []


def test_a_failing_call_names_nothing_and_logs_only_its_code(
    fake: Any, backend: AppStreamBackend, caplog: pytest.LogCaptureFixture
) -> None:
    service, client = fake
    golden = backend.add_image("golden")
    add_export_task(backend, "golden", "golden-ami")
    service.faults.add(Fault("server_error", "ListExportImageTasks", count=1))
    with caplog.at_level(logging.INFO, logger="provider"):
        assert exports.exports_in_progress(client, golden.arn) == []
    assert [r.getMessage() for r in caplog.records] == ["export tasks not listed: InternalServiceError"]

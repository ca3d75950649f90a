"""Logs are JSON lines with request id, logical id, image, phase and state, and never the ResponseURL."""

from __future__ import annotations

import json
import logging

import pytest

from local.appstream import AppStreamBackend
from provider.logs import JsonFormatter, redact
from tests.provider.conftest import Provider, owned_image


def test_redact_removes_presigned_urls_and_signatures() -> None:
    url = "https://bucket.s3.amazonaws.com/x?X-Amz-Credential=AKIAEXAMPLE%2Fus&X-Amz-Signature=abc123"
    text = redact(f"sending to {url} now; X-Amz-Signature=def456")
    assert "abc123" not in text
    assert "def456" not in text
    assert "AKIAEXAMPLE" not in text


def test_every_line_of_an_invocation_is_json_with_context(
    provider: Provider, live_backend: AppStreamBackend, caplog: pytest.LogCaptureFixture
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.2)
    caplog.set_level(logging.INFO)
    event = provider.event("delete")
    provider.invoke(event)
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    assert lines
    for line in lines:
        assert line["request_id"] == event["RequestId"]
        assert line["logical_id"] == "GoldenImage"
    phases = [line for line in lines if line.get("phase") == "delete"]
    assert [line["state"] for line in phases] == ["AVAILABLE", "DELETING", "GONE", "GONE"]
    assert all(line["image"] == "golden-2026-11" for line in phases)
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert "secret-signature" not in text
    assert "secret-key" not in text
    assert event["ResponseURL"] not in text

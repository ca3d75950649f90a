"""Logs the Lambda way: the runtime's JSON lines carry request id, logical id, image, phase and state,
and never the ResponseURL."""

from __future__ import annotations

import json
import logging

import pytest

from appstream_image_local.appstream import AppStreamBackend
from appstream_image_local.cfn.lambda_bootstrap import RuntimeJsonFormatter
from provider.logs import install, redact
from tests.provider.conftest import Provider, owned_image


def test_redact_removes_presigned_urls_and_signatures() -> None:
    url = "https://bucket.s3.amazonaws.com/x?X-Amz-Credential=AKIAEXAMPLE%2Fus&X-Amz-Signature=abc123"
    text = redact(f"sending to {url} now; X-Amz-Signature=def456")
    assert "abc123" not in text
    assert "def456" not in text
    assert "AKIAEXAMPLE" not in text


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The records as Lambda's runtime writes them with LogFormat JSON."""
    formatter = RuntimeJsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records]


def test_every_line_of_an_invocation_is_lambda_json_with_context(
    provider: Provider, live_backend: AppStreamBackend, caplog: pytest.LogCaptureFixture
) -> None:
    owned_image(live_backend, "golden-2026-11", delete_seconds=0.2)
    caplog.set_level(logging.INFO)
    install(caplog.handler)  # as on the runtime's handler, which exists before the module loads
    event = provider.event("delete")
    provider.invoke(event)
    found = lines(caplog)
    assert found
    for line in found:
        assert {"timestamp", "level", "message", "logger"} <= set(line)
        assert str(line["timestamp"]).endswith("Z")
        assert line["request_id"] == event["RequestId"]
        assert line["logical_id"] == "GoldenImage"
    phases = [line for line in found if line.get("phase") == "delete"]
    assert [line["state"] for line in phases] == ["AVAILABLE", "DELETING", "GONE", "GONE"]
    assert all(line["image"] == "golden-2026-11" for line in phases)
    text = "\n".join(json.dumps(line) for line in found)
    assert "secret-signature" not in text
    assert "secret-key" not in text


def test_a_traceback_holding_a_presigned_url_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    install(caplog.handler)
    try:
        raise RuntimeError("PUT https://s3.example/r?X-Amz-Signature=leaked-secret failed")
    except RuntimeError:
        logging.getLogger("provider.test").exception("could not deliver")
    [line] = [line for line in lines(caplog) if line["logger"] == "provider.test"]
    assert "leaked-secret" not in json.dumps(line)
    assert "RuntimeError" in str(line["error"])

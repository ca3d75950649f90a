"""Responses always fit 4096 bytes, stay valid JSON, and are retried on HTTP errors."""

from __future__ import annotations

import json
import time

from appstream_image_local.response_endpoint import ResponseEndpoint
from provider.cloudformation.response import MAX_BODY, build_body, put, shorten

BASE = {
    "status": "FAILED",
    "physical_id": "golden-2026-11",
    "stack_id": "arn:aws:cloudformation:us-east-1:123456789012:stack/images/5b6c1e30",
    "request_id": "7f9a6c2e-3b1d-4c8e-9a2f-1d2e3f4a5b6c",
    "logical_id": "GoldenImage",
}


def test_a_5000_character_reason_is_shortened_keeping_head_and_tail() -> None:
    reason = "HEAD " + "x" * 5000 + " TAIL"
    body = build_body(reason=reason, data={}, **BASE)
    assert len(body) <= MAX_BODY
    parsed = json.loads(body)
    assert parsed["Reason"].startswith("HEAD ")
    assert parsed["Reason"].endswith(" TAIL")
    assert parsed["PhysicalResourceId"] == "golden-2026-11"


def test_large_data_is_dropped_largest_first_to_fit() -> None:
    data = {"Small": "s", "Big": "b" * 3000, "Bigger": "c" * 3500}
    body = build_body(reason="", data=data, **(BASE | {"status": "SUCCESS"}))
    assert len(body) <= MAX_BODY
    assert json.loads(body)["Data"] == {"Small": "s", "Big": "b" * 3000}


def test_a_huge_reason_and_huge_data_together_still_fit() -> None:
    body = build_body(reason="r" * 100_000, data={f"k{n}": "v" * 500 for n in range(40)}, **BASE)
    assert len(body) <= MAX_BODY
    assert json.loads(body)["Status"] == "FAILED"


def test_multibyte_reasons_fit_in_bytes_not_characters() -> None:
    body = build_body(reason="é€😀" * 3000, data={}, **BASE)
    assert len(body) <= MAX_BODY


def test_shorten_leaves_short_text_alone() -> None:
    assert shorten("short", 10) == "short"
    assert len(shorten("y" * 50, 20)) == 20


def test_put_retries_a_response_url_that_first_answers_500(endpoint: ResponseEndpoint) -> None:
    endpoint.fail_next(2)
    slept: list[float] = []
    ok = put(endpoint.url("retry-500"), b'{"Status":"SUCCESS"}', deadline=time.time() + 60, sleep=slept.append)
    assert ok
    assert slept == [1.0, 2.0]
    assert endpoint.received["retry-500"] == [{"Status": "SUCCESS"}]
    assert endpoint.headers[-1].get("Content-Type") == ""


def test_put_gives_up_at_the_deadline(endpoint: ResponseEndpoint) -> None:
    endpoint.fail_next(100)
    slept: list[float] = []
    ok = put(endpoint.url("never"), b"{}", deadline=time.time() + 3.5, sleep=slept.append)
    endpoint.fail_next(0)
    assert not ok
    assert sum(slept) <= 3.5


def test_absurdly_long_echoed_ids_are_cut_as_a_last_resort() -> None:
    body = build_body(reason="bad", data={}, **(BASE | {"stack_id": "s" * 5000, "logical_id": "L" * 3000}))
    assert len(body) <= MAX_BODY
    parsed = json.loads(body)
    assert parsed["PhysicalResourceId"] == "golden-2026-11"

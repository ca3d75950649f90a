"""Bad input, generated: every event gets exactly one valid response, and no image is touched."""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appstream_image_local.appstream import AppStreamBackend, LocalAppStream
from provider.cloudformation.request import ENVELOPE
from provider.contract import FAILED_CREATE_ID
from tests.provider.conftest import Provider, lambda_context, load_event
from tests.provider.reliability.conftest import DETERMINISTIC, EXAMPLES

SAMPLES = ["create", "update", "update-rename", "delete", "delete-after-failed-create", "delete-after-create-timeout"]
PROPERTY_KEYS = ["ImageName", "Source", "SharedWith", "Tags", "WaitForAvailable", "InUse", "ServiceTimeout", "Bogus"]
PROTECTED = {
    "golden-2026-11": {"tags": {"appstream-image-provider:owner": "other-stack/Other"}},
    "unowned-image": {},
    "AppStream-WinServer2022": {"visibility": "PUBLIC"},
}

odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.sampled_from(["", " ", "golden-2026-11", "../../etc", "a\x00b", "🚀", "'\"", "x" * 5000, "AWS-x", "-x"]),
)
scalars = st.one_of(odd_text, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=True))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
properties = st.one_of(
    st.dictionaries(st.sampled_from(PROPERTY_KEYS), values, max_size=6),
    st.fixed_dictionaries(
        {"ImageName": odd_text},
        optional={
            "Source": st.fixed_dictionaries({"Type": st.sampled_from(["Existing", "Copy", "Update", "Clone"])}),
            "SharedWith": st.lists(st.fixed_dictionaries({"AccountId": odd_text}), max_size=3),
            "Tags": st.lists(st.fixed_dictionaries({"Key": odd_text, "Value": odd_text}), max_size=3),
            "ServiceTimeout": st.one_of(st.integers(-5, 5000).map(str), odd_text),
        },
    ),
    values,
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event = copy.deepcopy(load_event(draw(st.sampled_from(SAMPLES))))
    if draw(st.booleans()):
        event["ResourceProperties"] = draw(properties)
    if draw(st.booleans()):
        event["OldResourceProperties"] = draw(properties)
    for key in draw(st.lists(st.sampled_from(["StackId", "RequestId", "LogicalResourceId", "PhysicalResourceId"]))):
        event[key] = draw(st.one_of(odd_text.filter(lambda s: len(s) <= 255), scalars))
    for key in draw(st.lists(st.sampled_from([*ENVELOPE[:1], *ENVELOPE[2:], "PhysicalResourceId"]), max_size=2)):
        event.pop(key, None)
    if draw(st.integers(0, 9)) == 0:
        event["RequestType"] = draw(st.one_of(st.sampled_from(["Upsert", "", "delete", "CREATE"]), scalars))
    if draw(st.integers(0, 9)) == 0:
        event[draw(st.text(max_size=10))] = draw(values)
    return event


def check_response(event: dict[str, Any], raw: bytes) -> dict[str, Any]:
    assert len(raw) <= 4096
    response = json.loads(raw)
    assert response["Status"] in ("SUCCESS", "FAILED")
    physical_id = response["PhysicalResourceId"]
    assert isinstance(physical_id, str)
    assert 0 < len(physical_id) <= 1024
    given = event.get("PhysicalResourceId")
    # CloudFormation's ids are at most 1 KB; a longer one cannot be echoed within 4096 bytes anyway.
    given_id = given if isinstance(given, str) and len(given) <= 1024 else None
    if event.get("RequestType") == "Delete" and isinstance(given_id, str) and given_id:
        assert physical_id == given_id
    if (
        event.get("RequestType") == "Update"
        and isinstance(given_id, str)
        and given_id
        and response["Status"] == "FAILED"
    ):
        assert physical_id == given_id
    if event.get("RequestType") == "Create" and response["Status"] == "FAILED":
        assert physical_id == FAILED_CREATE_ID  # nothing can be made here: no source image exists
    if response["Status"] == "FAILED":
        reason = response["Reason"]
        assert len(reason) >= 10
        assert "Traceback" not in reason
        assert "object has no attribute" not in reason
    return dict(response)


@pytest.mark.long  # one of the fast tier's longest (many examples): started first (tests/conftest.py)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    print_blob=True,
    derandomize=DETERMINISTIC,  # make test replays the same examples; make reliability draws new ones
)
@given(event=events())
def test_every_event_gets_exactly_one_valid_response_and_touches_no_image(
    provider: Provider,
    live_backend: AppStreamBackend,
    appstream: LocalAppStream,
    tally: Counter[str],
    event: dict[str, Any],
) -> None:
    for name, attrs in PROTECTED.items():
        if name not in live_backend.images:
            live_backend.add_image(name, **copy.deepcopy(attrs))
    key = f"fuzz-{uuid.uuid4().hex}"
    event["ResponseURL"] = provider.endpoint.url(key)
    before = len(provider.endpoint.raw)
    provider.module.handler(event, lambda_context())
    bodies = provider.endpoint.received.get(key, [])
    assert len(bodies) == 1, f"{len(bodies)} responses"
    raw = provider.endpoint.raw[before:]
    assert len(raw) == 1
    response = check_response(event, raw[0])
    tally["cases generated"] += 1
    tally["responses checked"] += 1
    tally[f"responses {response['Status']}"] += 1
    assert appstream.audit.mutations() == []
    assert set(PROTECTED) <= set(live_backend.images)
    tally["images protected"] = len(PROTECTED)


def test_a_request_without_a_response_url_is_logged_and_dropped(provider: Provider, caplog: Any) -> None:
    event = load_event("delete")
    del event["ResponseURL"]
    provider.module.handler(event, lambda_context())
    assert any("lacks ResponseURL" in r.getMessage() for r in caplog.records)
    assert any("nowhere to answer" in r.getMessage() for r in caplog.records)


def test_a_malformed_event_never_answers_an_earlier_requests_url(provider: Provider) -> None:
    first = provider.event("delete")
    response = provider.invoke(first)
    assert response is not None
    second = provider.event("delete")
    del second["StackId"]
    second["ResponseURL"] = provider.endpoint.url("second")
    provider.module.handler(second, lambda_context())
    [answer] = provider.endpoint.received["second"]
    assert answer["Status"] == "FAILED"
    assert "lacks StackId" in answer["Reason"]
    assert len(provider.endpoint.received[provider.response_key(first)]) == 1

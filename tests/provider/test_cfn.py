"""The crhelper subclass keeps crhelper 2.0.12's shape and fixes its traps."""

from __future__ import annotations

import json

import crhelper
from crhelper import CfnResource

from provider.cfn import ImageResource
from provider.contract import FAILED_CREATE_ID
from provider.schedule import MAX_RULE_NAME, MAX_TARGET_INPUT, polling_input, rule_name
from tests.provider.conftest import load_event


def test_pinned_crhelper_version() -> None:
    from importlib.metadata import version

    assert version("crhelper") == "2.0.12", "the subclass overrides internals of crhelper 2.0.12; re-check them"
    assert crhelper.CfnResource is CfnResource


def test_the_subclass_is_built_by_crhelpers_constructor_with_our_settings() -> None:
    ours = ImageResource()
    stock = CfnResource(sleep_on_delete=0)
    assert set(vars(stock)) <= set(vars(ours))  # every field crhelper sets, crhelper itself set
    assert (ours._sleep_on_delete, ours._polling_interval, ours._json_logging) == (0, 1, False)
    assert ours._lambda_client.meta.service_model.service_name == "lambda"


def test_the_overridden_crhelper_methods_are_exactly_these() -> None:
    """An upgrade of crhelper must re-check each of these against its new version (tests pin each behaviour)."""
    overridden = {name for name in vars(ImageResource) if name in dir(CfnResource) and not name.startswith("__")}
    assert overridden == {
        "_poll_enabled",
        "generate_physical_id",
        "_setup_polling",
        "_remove_polling",
        "_set_timeout",
        "_timeout",
        "_send",
        "_cfn_response",
    }
    assert "__call__" in vars(ImageResource)  # the envelope check, before crhelper reads the event


def test_rule_names_fit_64_characters_for_a_200_character_logical_id() -> None:
    name = rule_name("L" * 200, "ABCDEFGH")
    assert len(name) <= MAX_RULE_NAME
    assert name.startswith("AppStreamImagePoll-L")
    assert name.endswith("-ABCDEFGH")


def test_polling_input_drops_what_polling_does_not_need() -> None:
    event = load_event("update")
    event["ResourceProperties"]["Tags"] = [{"Key": f"k{n}", "Value": "v" * 256} for n in range(49)]
    event["ResourceProperties"]["SharedWith"] = [{"AccountId": str(10**11 + n)} for n in range(100)]
    event["OldResourceProperties"] = dict(event["ResourceProperties"])
    event["CrHelperData"] = {"_Resume": {"shares": ["210987654321:fb"] * 100}}
    text = polling_input(event)
    assert len(text) <= MAX_TARGET_INPUT
    slim = json.loads(text)
    assert "OldResourceProperties" not in slim
    assert slim["ResourceProperties"] == {
        "ServiceToken": event["ServiceToken"],
        "ImageName": "golden-2026-11",
    }
    assert slim["ResponseURL"] == event["ResponseURL"]


def test_failed_create_gets_a_fixed_marker_not_a_random_id() -> None:
    resource = ImageResource()
    assert resource.generate_physical_id(load_event("create")) == FAILED_CREATE_ID
    assert resource.generate_physical_id(load_event("create")) == FAILED_CREATE_ID


def test_polling_clients_honour_the_endpoint_settings(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:8")
    resource = ImageResource()
    assert resource._events_client.meta.endpoint_url == "http://127.0.0.1:9"
    assert resource._lambda_client.meta.endpoint_url == "http://127.0.0.1:8"


def test_crhelpers_clients_are_made_on_first_use_not_at_import(monkeypatch) -> None:
    """A cold start makes only the AppStream client; crhelper's lambda/events/logs clients wait for polling."""
    import boto3

    made: list[str] = []
    real = boto3.client

    def counting(name: str, *args: object, **kwargs: object) -> object:
        made.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting)
    resource = ImageResource()
    assert made == []  # crhelper's own constructor ran (its log setup too), and made no client
    resource._events_client.meta  # noqa: B018 - first use
    assert made == ["events"]

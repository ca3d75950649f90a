"""crhelper as the front door to the Answer: the version its few replaced methods were read against, what they are;
and the schedules' names, times and input."""

from __future__ import annotations

import datetime
import json
import re

import crhelper
import pytest
from crhelper import CfnResource

from provider.cloudformation import answer as front
from provider.cloudformation.answer import Answer, ImageResource
from provider.cloudformation.clock import LATEST_RUN
from provider.cloudformation.resume import Resume
from provider.cloudformation.schedule import (
    MAX_NAME,
    MAX_TARGET_INPUT,
    NAME,
    at_expression,
    image_chain,
    polling_input,
    request_chain,
    rule_name,
    schedule_name,
    successor,
)
from provider.contract import FAILED_CREATE_ID
from tests.conftest import ROOT
from tests.provider.conftest import STACK_ID, load_event


def _pins(requirements: str) -> set[str]:
    return {line.split("==", 1)[1].strip() for line in requirements.splitlines() if line.startswith("crhelper==")}


def test_the_crhelper_the_overrides_were_read_against_is_the_one_pinned_and_installed() -> None:
    """answer.py's docstring names the version its overrides were read against; both pins and the venv agree."""
    from importlib.metadata import version

    [named] = re.findall(r"pinned to crhelper==(\d+\.\d+\.\d+)", front.__doc__ or "")
    assert named == front.CRHELPER
    assert _pins((ROOT / "provider" / "requirements.txt").read_text()) == {named}  # the Lambda asset's
    assert _pins((ROOT / "requirements.txt").read_text()) == {named}  # the runtime pins
    assert version("crhelper") == named, "the front door replaces internals of this crhelper; re-read them"
    assert crhelper.CfnResource is CfnResource


def test_the_subclass_is_built_by_crhelpers_constructor_with_our_settings() -> None:
    ours = ImageResource()
    stock = CfnResource(sleep_on_delete=0)
    assert set(vars(stock)) <= set(vars(ours))  # every field crhelper sets, crhelper itself set
    assert (ours._sleep_on_delete, ours._json_logging) == (0, False)
    assert ours._lambda_client.meta.service_model.service_name == "lambda"


def test_the_replaced_crhelper_methods_are_exactly_these() -> None:
    """An upgrade of crhelper must re-check each of these against its new version (tests pin each behaviour)."""
    replaced = {name for name in vars(ImageResource) if name in dir(CfnResource) and not name.startswith("__")}
    assert replaced == {"_polling_init", "_set_timeout", "_send"}
    assert "__call__" in vars(ImageResource)  # the envelope check, before crhelper reads the event
    doc = front.__doc__ or ""
    assert all(f"`{name}`" in doc for name in (*replaced, "__call__"))  # the module docstring says why each
    # crhelper's rule-making, its response and its random physical id are left alone, and never reached.
    never = {"_setup_polling", "_remove_polling", "_cfn_response", "generate_physical_id", "_timeout"}
    assert never.isdisjoint(vars(ImageResource))
    assert all(f"`{name}`" in doc for name in ("_cfn_response", "generate_physical_id"))


def test_old_rule_names_fit_64_characters_for_a_200_character_logical_id() -> None:
    name = rule_name("L" * 200, "ABCDEFGH")
    assert len(name) <= MAX_NAME
    assert name.startswith("AppStreamImagePoll-L")
    assert name.endswith("-ABCDEFGH")


@pytest.mark.parametrize("logical_id", ["L" * 200, "GoldenImage", "", "Ünïcode9"])
def test_schedule_names_fit_scheduler_s_pattern_for_any_logical_id(logical_id: str) -> None:
    prefix = image_chain(STACK_ID, logical_id, "golden-2026-11")
    last = schedule_name(prefix, "5c2a1d3e-request", 999_999)
    assert NAME.match(last)
    assert len(last) == len(prefix) + 6 + 1 + 6 <= MAX_NAME
    assert successor(schedule_name(prefix, "r", 41)) == schedule_name(prefix, "r", 42)
    with pytest.raises(ValueError, match="outside 1-999999"):
        successor(last)


def test_a_chain_s_prefix_is_no_other_chain_s() -> None:
    """ListSchedules NamePrefix finds one chain only: another image, resource, stack instance or a Delete's own."""
    prefixes = [
        image_chain(STACK_ID, "GoldenImage", "golden-2026-11"),
        image_chain(STACK_ID, "GoldenImage", "golden-2026-1"),
        image_chain(STACK_ID, "GoldenImage2", "golden-2026-11"),
        image_chain(STACK_ID.replace("5b6c", "aaaa"), "GoldenImage", "golden-2026-11"),
        request_chain(STACK_ID, "GoldenImage", "golden-2026-11"),
    ]
    names = [schedule_name(p, "request", 1) for p in prefixes]
    assert [sum(n.startswith(p) for n in names) for p in prefixes] == [1] * len(prefixes)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-12-07T20:13:30", "at(2026-12-07T20:15:00)"),
        ("2026-12-07T20:13:00", "at(2026-12-07T20:14:00)"),
        ("2026-12-31T23:59:59", "at(2027-01-01T00:01:00)"),
    ],
)
def test_a_successor_runs_at_least_a_period_later_in_the_minute_it_names(now: str, expected: str) -> None:
    moment = datetime.datetime.fromisoformat(now).replace(tzinfo=datetime.UTC).timestamp()
    assert at_expression(moment) == expected
    named = datetime.datetime.fromisoformat(expected[3:-1]).replace(tzinfo=datetime.UTC).timestamp()
    assert moment + 60 <= named
    assert named + 60 <= moment + LATEST_RUN  # AWS runs it within that minute


def test_polling_input_drops_what_polling_does_not_need() -> None:
    event = load_event("update")
    event["ResourceProperties"]["Tags"] = [{"Key": f"k{n}", "Value": "v" * 256} for n in range(49)]
    event["ResourceProperties"]["SharedWith"] = [{"AccountId": str(10**11 + n)} for n in range(100)]
    event["OldResourceProperties"] = dict(event["ResourceProperties"])
    state = Resume(9e9, "golden-2026-11", shares=("210987654321:fb",) * 100)
    text = polling_input(event, state, "GoldenImage-0123abcd-abcdef-2")
    assert len(text) <= MAX_TARGET_INPUT
    slim = json.loads(text)
    assert "OldResourceProperties" not in slim
    assert slim["CrHelperPoll"] is True
    assert slim["CrHelperSchedule"] == "GoldenImage-0123abcd-abcdef-2"
    assert slim["CrHelperData"] == {"_Resume": state.to_data()}
    assert slim["ResourceProperties"] == {
        "ServiceToken": event["ServiceToken"],
        "ImageName": "golden-2026-11",
    }
    assert slim["ResponseURL"] == event["ResponseURL"]


def test_failed_create_gets_a_fixed_marker_not_a_random_id() -> None:
    answer = Answer(load_event("create"), None, None)  # type: ignore[arg-type]  # nothing is sent
    assert answer.physical_id() == FAILED_CREATE_ID
    assert answer.physical_id() == FAILED_CREATE_ID
    answer.claim("golden-2026-11")
    assert answer.physical_id() == "golden-2026-11"  # a Create that made its image names it: the rollback deletes it
    assert Answer(load_event("delete"), None, None).physical_id() == "golden-2026-11"  # type: ignore[arg-type]


def test_polling_clients_honour_the_endpoint_settings(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:8")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SCHEDULER", "http://127.0.0.1:7")
    resource = ImageResource()
    assert resource._events_client.meta.endpoint_url == "http://127.0.0.1:9"
    assert resource._lambda_client.meta.endpoint_url == "http://127.0.0.1:8"
    assert resource._scheduler_client.meta.endpoint_url == "http://127.0.0.1:7"


def test_crhelpers_clients_are_made_on_first_use_not_at_import(monkeypatch) -> None:
    """A cold start makes only the AppStream client; crhelper's lambda/events/logs clients and EventBridge
    Scheduler's wait for polling."""
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
    resource._scheduler_client.meta  # noqa: B018 - first use
    assert made == ["events", "scheduler"]

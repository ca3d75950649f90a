"""AppStreamImage(available_timeout=...): a wait condition per image name, and what depends on the image waits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import App, Duration, Fn, Stack
from aws_cdk.assertions import Template

from appstream_image_provider.appstream_image import AppStreamImage, ImageSource
from provider.appstream.properties import parse
from stacks.fleet import streaming_fleet

# aws-cdk-lib runs in this process: the tests share one worker (tests/conftest.py).
pytestmark = pytest.mark.jsii


def synth(image_name: str = "patched-2026-12", **kwargs: Any) -> tuple[AppStreamImage, dict[str, Any]]:
    stack = Stack(App(), "Long")
    image = AppStreamImage(
        stack,
        "Patched",
        image_name=image_name,
        source=ImageSource.updated_from("golden-base"),
        available_timeout=Duration.hours(12),
        **kwargs,
    )
    streaming_fleet(stack, "Fleet", name="fleet", image_name=image.image_name)
    return image, Template.from_stack(stack).to_json()["Resources"]


def one(resources: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = [(k, r) for k, r in resources.items() if r["Type"] == kind]
    return logical_id, resource


def test_a_handle_and_a_wait_condition_of_12_hours_follow_the_resource() -> None:
    _, resources = synth()
    handle_id, _ = one(resources, "AWS::CloudFormation::WaitConditionHandle")
    _, condition = one(resources, "AWS::CloudFormation::WaitCondition")
    image_id, image = one(resources, "Custom::AppStreamImage")
    assert image["Properties"]["AvailableSignal"] == {"Handle": {"Ref": handle_id}, "Timeout": 43200}
    assert condition["Properties"] == {"Handle": {"Ref": handle_id}, "Timeout": "43200"}
    assert image_id in condition["DependsOn"]  # its Timeout starts once the resource has answered
    sent = {**image["Properties"], "AvailableSignal": {"Handle": "https://wait.example/h?Signature=x"}}
    assert parse({k: v for k, v in sent.items() if k != "ServiceToken"}).available_signal is not None


def test_the_fleet_s_image_name_also_refers_to_the_wait_condition_so_it_starts_once_available() -> None:
    _, resources = synth()
    condition_id, _ = one(resources, "AWS::CloudFormation::WaitCondition")
    image_id, _ = one(resources, "Custom::AppStreamImage")
    _, fleet = one(resources, "AWS::AppStream::Fleet")
    # Refs only (strings both): CloudFormation creates the fleet after the wait condition, and the value is the name.
    assert fleet["Properties"]["ImageName"] == {
        "Fn::Select": [0, {"Fn::Split": [",", {"Fn::Join": [",", [{"Ref": image_id}, {"Ref": condition_id}]]}]}]
    }


def test_each_image_name_gets_its_own_pair_since_a_wait_condition_cannot_be_updated() -> None:
    _, first = synth("patched-2026-12")
    _, second = synth("patched-2027-01")
    pairs = [
        {k for k, r in resources.items() if r["Type"].startswith("AWS::CloudFormation::Wait")}
        for resources in (first, second)
    ]
    assert len(pairs[0]) == len(pairs[1]) == 2
    assert not pairs[0] & pairs[1]
    assert synth("patched-2026-12")[1].keys() == first.keys()  # stable across synths


def test_available_is_what_to_depend_on() -> None:
    image, _ = synth()
    assert image.available is image.wait_condition
    plain = AppStreamImage(Stack(App(), "S"), "I", image_name="plain")
    assert plain.available is plain.resource
    assert plain.wait_condition is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"available_timeout": Duration.hours(13)}, "available_timeout: 46800 is outside 1-43200 seconds (12 hours)"),
        ({"available_timeout": Duration.millis(1500)}, "available_timeout: 1 second 500 millis is not a whole number"),
        ({"available_timeout": 3600}, "available_timeout: expected a Duration"),
        (
            {"available_timeout": Duration.hours(1), "wait_for_available": False},
            "available_timeout: waits for AVAILABLE, which wait_for_available=False turns off",
        ),
        (
            {"available_timeout": Duration.hours(1), "image_name": Fn.import_value("name")},
            "available_timeout: needs an image_name known at synth",
        ),
        (
            {"available_timeout": Duration.hours(2), "source": ImageSource.existing()},
            "available_timeout: not with source=ImageSource.existing(): an adoption starts nothing to wait for "
            "(the resource answers once the image is AVAILABLE); give it service_timeout instead (1 s to 3600 s). "
            "available_timeout goes with ImageSource.copy_of(...), updated_from(...) or imported(...)",
        ),
        (
            {"available_timeout": Duration.hours(2), "source": None},  # None: ImageSource.existing(), the default
            "available_timeout: not with source=ImageSource.existing()",
        ),
    ],
)
def test_bad_available_timeouts_name_the_prop_and_path(kwargs: dict[str, Any], message: str) -> None:
    props: dict[str, Any] = {"image_name": "patched", "source": ImageSource.updated_from("golden-base"), **kwargs}
    with pytest.raises(ValueError, match=f"S/I: {re.escape(message)}"):
        AppStreamImage(Stack(App(), "S"), "I", **props)


@pytest.mark.parametrize(
    "source",
    [
        ImageSource.copy_of("golden-base"),
        ImageSource.updated_from("golden-base"),
        ImageSource.imported(workspace_image_id="wsi-0123456789"),
    ],
)
def test_available_timeout_goes_with_every_source_that_makes_an_image(source: ImageSource) -> None:
    image = AppStreamImage(
        Stack(App(), "S"), "I", image_name="made", source=source, available_timeout=Duration.hours(2)
    )
    assert image.wait_condition is not None


def test_a_handle_is_made_only_once_its_image_could_start_since_its_url_expires_24_hours_later() -> None:
    """A chain of long images (B copied from A, once A is AVAILABLE), and an input another resource gives B: B's
    handle waits for them too, instead of being made (and its URL signed) when the stack operation starts."""
    from aws_cdk import CfnResource, Token

    from appstream_image_provider.props import ImageShare

    stack = Stack(App(), "Chain")
    a = AppStreamImage(
        stack, "A", image_name="patched-a", source=ImageSource.updated_from("golden-base"),
        available_timeout=Duration.hours(12),
    )  # fmt: skip
    account = CfnResource(stack, "Account", type="Custom::AccountLookup")
    b = AppStreamImage(
        stack, "B", image_name="copied-b", source=ImageSource.copy_of("patched-a"),
        available_timeout=Duration.hours(12),
        shared_with=[ImageShare(Token.as_string(account.get_att("Id")))],
    )  # fmt: skip
    b.node.add_dependency(a.available)  # added after the construct was made: still followed
    resources = Template.from_stack(stack).to_json()["Resources"]

    def only(kind: str, prefix: str) -> str:
        [found] = [k for k, r in resources.items() if r["Type"] == kind and k.startswith(prefix)]
        return found

    b_handle = only("AWS::CloudFormation::WaitConditionHandle", "BAvailableHandle")
    a_condition = only("AWS::CloudFormation::WaitCondition", "AAvailable")
    assert {a_condition, "Account"} <= set(resources[b_handle].get("DependsOn", []))
    a_handle = only("AWS::CloudFormation::WaitConditionHandle", "AAvailableHandle")
    assert "DependsOn" not in resources[a_handle]  # nothing to wait for: made at once
    b_image = resources[only("Custom::AppStreamImage", "B")]
    assert b_image["Properties"]["AvailableSignal"]["Handle"] == {"Ref": b_handle}  # no cycle: the image needs it


def test_a_chain_copied_from_another_images_name_has_no_dependency_cycle_and_grants_by_ownership() -> None:
    """`copy_of(a.image_name)`: naming a's token in the provider's policy made the policy wait for a, and a for
    the policy (CloudFormation refuses the template: a circular dependency)."""
    stack = Stack(App(), "Chain")
    a = AppStreamImage(
        stack, "A", image_name="patched-a", source=ImageSource.updated_from("golden-base"),
        available_timeout=Duration.hours(12),
    )  # fmt: skip
    AppStreamImage(stack, "B", image_name="copied-b", source=ImageSource.copy_of(a.image_name))
    resources = Template.from_stack(stack).to_json()["Resources"]  # raises on a cycle
    statements = [
        s for r in resources.values() if r["Type"] == "AWS::IAM::Policy" for s in r["Properties"]["PolicyDocument"][
            "Statement"]
    ]  # fmt: skip
    [own] = [s for s in statements if s.get("Sid") == "CreateFromOwnImages"]
    assert sorted(own["Action"]) == ["appstream:CopyImage", "appstream:CreateUpdatedImage"]
    assert own["Condition"] == {"StringLike": {"aws:ResourceTag/appstream-image-provider:owner": "Chain/*"}}

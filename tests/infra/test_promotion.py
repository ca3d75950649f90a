"""ImagePromotion at synth: one stack per region, each a cross-region copy of the source under the promoted name,
shared and tagged; the provider's IAM in each stack; a rotation; validation in the construct's terms; a fleet in a
region referring to that region's copy across stacks."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

from appstream_image_provider import AppStreamImage, ImagePromotion, ImageShare
from stacks.fleet import streaming_fleet

# aws-cdk-lib runs in this process: the tests share one worker (tests/conftest.py).
pytestmark = pytest.mark.jsii

ACCOUNT = "111122223333"
REGIONS = ["eu-west-1", "ap-southeast-2"]


def _promote(app: App | None = None, **overrides: Any) -> ImagePromotion:
    props: dict[str, Any] = {
        "image_name": "golden-2026-12",
        "source_image_name": "golden-2026-12",
        "source_region": "us-east-1",
        "regions": REGIONS,
        "account": ACCOUNT,
        "shared_with": [ImageShare("210987654321", allow_image_builder=False)],
        "tags": {"team": "euc", "cost-center": "42"},
    } | overrides
    return ImagePromotion(app or App(), "Golden", **props)


def _image(stack: Stack) -> dict[str, Any]:
    [resource] = Template.from_stack(stack).find_resources("Custom::AppStreamImage").values()
    return dict(resource["Properties"])


def _statements(stack: Stack) -> list[dict[str, Any]]:
    return [
        s
        for p in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.fixture(scope="module")
def promotion() -> ImagePromotion:
    return _promote()


def test_each_region_gets_its_stack_with_a_copy_from_the_source_region_shared_and_tagged(
    promotion: ImagePromotion,
) -> None:
    assert list(promotion.stacks) == REGIONS
    for region, stack in promotion.stacks.items():
        assert (stack.stack_name, stack.region, stack.account) == (f"Golden-{region}", region, ACCOUNT)
        props = _image(stack)
        assert props["ImageName"] == "golden-2026-12"
        assert props["Source"] == {"Type": "Copy", "SourceImageName": "golden-2026-12", "SourceRegion": "us-east-1"}
        assert props["SharedWith"] == [{"AccountId": "210987654321", "AllowFleet": True, "AllowImageBuilder": False}]
        assert sorted(props["Tags"], key=lambda t: t["Key"]) == [
            {"Key": "cost-center", "Value": "42"},
            {"Key": "team", "Value": "euc"},
        ]
        [logical_id] = Template.from_stack(stack).find_resources("Custom::AppStreamImage")
        assert stack.resolve(promotion.image_names[region]) == {"Ref": logical_id}


def test_each_stack_may_copy_from_the_source_regions_image_only(promotion: ImagePromotion) -> None:
    for region, stack in promotion.stacks.items():
        [creating] = [s for s in _statements(stack) if s.get("Sid") == "CreateFromSources"]
        assert "appstream:CopyImage" in creating["Action"]
        arns = sorted(json.dumps(stack.resolve(r)) for r in creating["Resource"])
        assert arns == sorted(
            json.dumps({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":appstream:{r}:{ACCOUNT}:image/{n}"]]})
            for r, n in ((region, "golden-2026-12"), ("us-east-1", "golden-2026-12"))
        )
        # Nothing else of the source region: no other statement names it.
        others = [s for s in _statements(stack) if s.get("Sid") != "CreateFromSources"]
        assert ":appstream:us-east-1:" not in json.dumps([stack.resolve(s.get("Resource")) for s in others])


def test_a_rotation_changes_only_the_image_name_in_each_region(promotion: ImagePromotion) -> None:
    rotated = _promote(image_name="golden-2027-01")
    for region in REGIONS:
        before, after = _image(promotion.stacks[region]), _image(rotated.stacks[region])
        assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {"ImageName"}
        assert after["ImageName"] == "golden-2027-01"
        resources = Template.from_stack(promotion.stacks[region]).to_json()["Resources"]
        assert resources.keys() == Template.from_stack(rotated.stacks[region]).to_json()["Resources"].keys()


def test_the_source_region_is_a_target_under_another_name_as_a_plain_copy() -> None:
    promotion = _promote(image_name="golden-2026-12-final", regions=["us-east-1", "eu-west-1"])
    assert _image(promotion.stacks["us-east-1"])["Source"] == {"Type": "Copy", "SourceImageName": "golden-2026-12"}
    assert _image(promotion.stacks["eu-west-1"])["Source"]["SourceRegion"] == "us-east-1"


def test_defaults_the_stack_prefix_to_the_id_and_the_account_to_the_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "444455556666")
    promotion = _promote(account=None, stack_name_prefix="Images", regions=["eu-west-1"])
    assert (promotion.stacks["eu-west-1"].stack_name, promotion.stacks["eu-west-1"].account) == (
        "Images-eu-west-1",
        "444455556666",
    )
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT")
    agnostic = _promote(account=None, regions=["eu-west-1"])
    assert agnostic.stacks["eu-west-1"].stack_name == "Golden-eu-west-1"
    assert re.match(r"\$\{Token", agnostic.stacks["eu-west-1"].account)


def test_a_fleet_in_the_regions_stack_uses_its_copy_and_no_export_is_made() -> None:
    app = App()
    promotion = _promote(app)
    streaming_fleet(
        promotion.stacks["eu-west-1"], "Fleet", name="golden", image_name=promotion.image("eu-west-1").image_name
    )
    assembly = app.synth()
    [fleet] = Template.from_stack(promotion.stacks["eu-west-1"]).find_resources("AWS::AppStream::Fleet").values()
    assert fleet["Properties"]["ImageName"] == {
        "Ref": promotion.stacks["eu-west-1"].get_logical_id(
            promotion.image("eu-west-1").resource.node.default_child  # type: ignore[arg-type]
        )
    }
    assert "Outputs" not in assembly.get_stack_by_name("Golden-eu-west-1").template


def test_a_fleet_in_another_stack_is_refused_at_synth_as_the_rotation_would_fail() -> None:
    """CloudFormation refuses to change an export another stack imports, and a rotation changes the name."""
    app = App()
    promotion = _promote(app)
    fleets = Stack(app, "Fleets", env=Environment(account=ACCOUNT, region="eu-west-1"))
    streaming_fleet(fleets, "Fleet", name="golden", image_name=promotion.image("eu-west-1").image_name)
    with pytest.raises(
        Exception,
        match=re.escape(
            "Golden/eu-west-1/Image: the image's name or attributes are used "
            "by another stack, through the CloudFormation export Golden-eu-west-1:"
        ),
    ) as raised:
        app.synth()
    assert "Declare what uses the image (its fleets) in Golden-eu-west-1, the image's stack." in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"regions": []}, "Golden: regions: is empty"),
        ({"regions": "eu-west-1"}, "Golden: regions: expected a list of region names, got str"),
        ({"regions": ["eu-west-1", "eu-west-1"]}, "Golden: regions[1]: eu-west-1 is already regions[0]"),
        ({"regions": ["eu-west-1", "ireland"]}, "Golden: regions[1]: 'ireland' is not a region name"),
        ({"regions": ["eu-north-9"]}, "Golden: regions[0]: AppStream is not served in eu-north-9; it is in "),
        ({"regions": ["eu-west-1", "us-east-1"]}, "Golden: regions[1]: us-east-1 is the source_region"),
        ({"source_region": "virginia"}, "Golden: source_region: 'virginia' is not a region name"),
        ({"account": "1234"}, "Golden: account: '1234' is not a 12-digit account id"),
        ({"shared_with": ["210987654321"]}, "Golden: shared_with[0]: expected ImageShare(...)"),
        ({"tags": {"team": 7}}, "Golden: tags['team']: expected a string"),
        ({"keep": "2"}, "Golden: keep: expected a whole number of images, 0 to 10"),
        ({"stack_name_prefix": "1st"}, "Golden: stack_name_prefix: '1st' does not make CloudFormation stack names"),
        ({"image_name": None}, "Golden: image_name: expected a string"),
    ],
)
def test_props_are_checked_naming_the_prop_and_the_construct_path(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        _promote(**overrides)


def test_the_allowed_regions_are_named_and_the_scope_must_make_stacks() -> None:
    with pytest.raises(ValueError, match=r"it is in .*\beu-west-1\b.*\bus-west-2\b"):
        _promote(regions=["eu-north-9"])
    stack: Any = Stack(App(), "Images")  # not an App or a Stage
    with pytest.raises(ValueError, match=re.escape("Images/Golden: scope: expected an App or a Stage")):
        ImagePromotion(
            stack, "Golden", image_name="g", source_image_name="s", source_region="us-east-1", regions=["eu-west-1"]
        )


def test_a_name_has_one_owner_per_region() -> None:
    app = App()
    _promote(app)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Again/eu-west-1/Image: image_name: golden-2026-12 is already declared by Golden/eu-west-1/Image"
        ),
    ):
        ImagePromotion(
            app,
            "Again",
            image_name="golden-2026-12",
            source_image_name="golden-2026-12",
            source_region="us-east-1",
            regions=["eu-west-1"],
        )
    # The same name in another region is another image.
    later = ImagePromotion(
        app,
        "Later",
        image_name="golden-2026-12",
        source_image_name="golden-2026-12",
        source_region="us-east-1",
        regions=["us-west-2"],
    )
    assert _image(later.stacks["us-west-2"])["ImageName"] == "golden-2026-12"


def test_a_plain_image_of_a_promoted_name_in_the_same_region_is_refused_and_in_another_region_allowed() -> None:
    app = App()
    _promote(app)
    here = Stack(app, "Here", env=Environment(region="eu-west-1"))
    with pytest.raises(ValueError, match=re.escape("Here/Mine: image_name: golden-2026-12 is already declared by")):
        AppStreamImage(here, "Mine", image_name="golden-2026-12")
    elsewhere = Stack(app, "Elsewhere", env=Environment(region="sa-east-1"))
    AppStreamImage(elsewhere, "Mine", image_name="golden-2026-12")  # another region: another image

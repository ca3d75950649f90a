"""AppStreamImage's promotion props at synth: `export=ImageExport(...)` rendered as the resource's Export, its IAM
(CreateExportImageTask held to this stack's images, GetExportImageTask, iam:PassRole of that role only, to AppStream
only), `ami_id`, and the provider's validation named in the construct's terms."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from appstream_image_local.iam import action_definition
from appstream_image_provider import AppStreamImage, ImageExport, ImageSource
from provider.appstream.properties import parse

# aws-cdk-lib runs in this process: the tests share one worker (tests/conftest.py).
pytestmark = pytest.mark.jsii

ROLE = "arn:aws:iam::111122223333:role/appstream-export"


def _statements(template: Template) -> list[dict[str, Any]]:
    return [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _stack(**export: Any) -> tuple[Stack, AppStreamImage]:
    stack = Stack(App(), "Exports")
    role = iam.Role.from_role_arn(stack, "ExportRole", ROLE)
    image = AppStreamImage(
        stack,
        "Golden",
        image_name="golden-2026-11",
        source=ImageSource.copy_of("golden-base"),
        export=ImageExport(ami_name="golden-2026-11-ami", role=role, **export),
    )
    return stack, image


def test_export_is_rendered_and_the_provider_accepts_it() -> None:
    stack, image = _stack(ami_description="Golden, November", tags={"team": "euc"})
    [(logical_id, resource)] = Template.from_stack(stack).find_resources("Custom::AppStreamImage").items()
    props = resource["Properties"]
    assert props["Export"] == {
        "AmiName": "golden-2026-11-ami",
        "IamRoleArn": ROLE,
        "AmiDescription": "Golden, November",
        "TagSpecifications": [{"Key": "team", "Value": "euc"}],
    }
    exported = parse(props).export
    assert exported is not None
    assert (exported.ami_name, exported.tags) == ("golden-2026-11-ami", (("team", "euc"),))
    assert stack.resolve(image.ami_id) == {"Fn::GetAtt": [logical_id, "AmiId"]}


def test_export_iam_is_scoped_to_owned_images_and_passes_that_role_to_appstream_only() -> None:
    stack, _ = _stack()
    statements = _statements(Template.from_stack(stack))
    # The Service Authorization Reference gives both actions no resource ARN: "*", the export held by the image's tag.
    assert action_definition("appstream", "CreateExportImageTask") == (False, frozenset({"aws:ResourceTag/${TagKey}"}))
    assert action_definition("appstream", "GetExportImageTask") == (False, frozenset())
    [exporting] = [s for s in statements if s["Action"] == "appstream:CreateExportImageTask"]
    assert exporting["Resource"] == "*"
    assert exporting["Condition"] == {"StringLike": {"aws:ResourceTag/appstream-image-provider:owner": "Exports/*"}}
    [reading] = [s for s in statements if s["Action"] == "appstream:GetExportImageTask"]
    assert (reading["Resource"], reading.get("Condition")) == ("*", None)
    passing = [s for s in statements if s["Action"] == "iam:PassRole"]
    to_appstream = [
        s for s in passing if s["Condition"]["StringEquals"]["iam:PassedToService"] == "appstream.amazonaws.com"
    ]
    assert [s["Resource"] for s in to_appstream] == [ROLE]
    assert [(s["Resource"], s["Condition"]) for s in passing if s["Resource"] == ROLE] == [
        (ROLE, {"StringEquals": {"iam:PassedToService": "appstream.amazonaws.com"}})
    ]  # that role to AppStream only
    assert "ec2:" not in json.dumps(statements)  # the AMI is the user's: the provider may not touch EC2 images


def test_without_export_no_export_permission_is_granted() -> None:
    stack = Stack(App(), "NoExports")
    AppStreamImage(stack, "Golden", image_name="golden-2026-11", source=ImageSource.copy_of("golden-base"))
    text = json.dumps(_statements(Template.from_stack(stack)))
    assert "CreateExportImageTask" not in text
    assert "appstream.amazonaws.com" not in text


def test_two_exports_with_one_role_pass_it_once() -> None:
    stack = Stack(App(), "Twice")
    role = iam.Role.from_role_arn(stack, "ExportRole", ROLE)
    for n in (1, 2):
        AppStreamImage(
            stack,
            f"Golden{n}",
            image_name=f"golden-{n}",
            source=ImageSource.copy_of("golden-base"),
            export=ImageExport(ami_name=f"golden-{n}-ami", role=role),
        )
    statements = _statements(Template.from_stack(stack))
    assert len([s for s in statements if s["Action"] == "appstream:CreateExportImageTask"]) == 1
    assert len([s for s in statements if s["Action"] == "iam:PassRole" and s["Resource"] == ROLE]) == 1


@pytest.mark.parametrize(
    ("ami_name", "tags", "message"),
    [
        ("ab", {}, "Exports/Golden: export.ami_name: 'ab' does not match"),
        ("golden ami", {}, "Exports/Golden: export.ami_name: 'golden ami' does not match"),
        ("golden-ami", {"appstream-image-provider:owner": "x"}, "Exports/Golden: export.tags[0].key:"),
    ],
)
def test_export_validation_names_the_prop_and_the_construct(ami_name: str, tags: dict[str, str], message: str) -> None:
    stack = Stack(App(), "Exports")
    role = iam.Role.from_role_arn(stack, "ExportRole", ROLE)
    with pytest.raises(ValueError, match=re.escape(message)):
        AppStreamImage(
            stack,
            "Golden",
            image_name="golden-2026-11",
            source=ImageSource.copy_of("golden-base"),
            export=ImageExport(ami_name=ami_name, role=role, tags=tags),
        )


def test_export_needs_an_irole_and_the_wait_for_available() -> None:
    stack = Stack(App(), "Exports")
    with pytest.raises(ValueError, match=r"Exports/Bad: export.role: expected an iam.IRole"):
        AppStreamImage(stack, "Bad", image_name="bad-1", export=ImageExport(ami_name="bad-ami", role=ROLE))  # type: ignore[arg-type]
    role = iam.Role.from_role_arn(stack, "ExportRole", ROLE)
    with pytest.raises(ValueError, match=r"Exports/NoWait: export: starts once the image is AVAILABLE"):
        AppStreamImage(
            stack,
            "NoWait",
            image_name="no-wait-1",
            wait_for_available=False,
            export=ImageExport(ami_name="no-wait-ami", role=role),
        )


def test_ami_id_is_refused_with_available_timeout_naming_the_ami_name_instead() -> None:
    stack = Stack(App(), "Long")
    role = iam.Role.from_role_arn(stack, "ExportRole", ROLE)
    image = AppStreamImage(
        stack,
        "Golden",
        image_name="golden-2026-11",
        source=ImageSource.copy_of("golden-base"),
        available_timeout=Duration.hours(6),
        export=ImageExport(ami_name="golden-2026-11-ami", role=role),
    )
    with pytest.raises(ValueError, match=r"Long/Golden: ami_id: with available_timeout .* \(ImageExport\.ami_name\)"):
        _ = image.ami_id


def test_the_standalone_template_exports_only_with_its_export_role_set() -> None:
    from appstream_image_provider import standalone

    template = standalone.template()
    assert template["Parameters"]["ExportRoleArn"]["Default"] == ""
    [(_, policy)] = [(k, r) for k, r in template["Resources"].items() if "ExportOwnedImages" in json.dumps(r)]
    assert policy["Condition"] == "ExportsImages"
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [passing] = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passing["Resource"] == {"Ref": "ExportRoleArn"}
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "appstream.amazonaws.com"}}
    [exporting] = [s for s in statements if s["Action"] == "appstream:CreateExportImageTask"]
    assert exporting["Condition"] == {"StringLike": {"aws:ResourceTag/appstream-image-provider:owner": "*/*"}}


# -- ImageSource.copy_of(..., region=...): a cross-region copy --------------------------------------------------------


def test_a_copy_from_another_region_renders_its_region_and_may_copy_only_that_source_there() -> None:
    stack = Stack(App(), "Copies")
    AppStreamImage(stack, "Golden", image_name="golden", source=ImageSource.copy_of("golden", region="us-west-2"))
    template = Template.from_stack(stack)
    [resource] = template.find_resources("Custom::AppStreamImage").values()
    assert resource["Properties"]["Source"] == {
        "Type": "Copy",
        "SourceImageName": "golden",
        "SourceRegion": "us-west-2",
    }
    [creating] = [s for s in _statements(template) if s.get("Sid") == "CreateFromSources"]
    arns = [json.dumps(stack.resolve(r)) for r in creating["Resource"]]
    source = [a for a in arns if '":appstream:us-west-2:"' in a]
    assert len(source) == 1  # the source, in its region
    assert source[0].endswith(':image/golden"]]}')
    here = [a for a in arns if '{"Ref": "AWS::Region"}' in a]
    assert len(here) == 1  # the copy, in the stack's region
    assert len(arns) == 2


def test_a_source_region_appstream_does_not_serve_is_refused_naming_the_prop() -> None:
    stack = Stack(App(), "Copies")
    with pytest.raises(ValueError, match=re.escape("Copies/Golden: source.region: 'oregon' is not a region name")):
        AppStreamImage(stack, "Golden", image_name="golden", source=ImageSource.copy_of("golden", region="oregon"))
    with pytest.raises(
        ValueError, match=re.escape("Copies/Same: source.source_image_name: must differ from image_name")
    ):
        AppStreamImage(stack, "Same", image_name="silver", source=ImageSource.copy_of("silver"))

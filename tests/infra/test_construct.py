"""The AppStreamImage construct and its provider: properties, IAM, function settings, ordering, validation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack, Tags
from aws_cdk.assertions import Match, Template

from appstream_image_local.iam import action_definition
from appstream_image_provider import Adopt, ImportedApplication, OnDelete, ProviderOptions
from appstream_image_provider.appstream_image import AppStreamImage, ImageShare, ImageSource, InUse
from provider.appstream.properties import parse
from stacks.fleet import streaming_fleet

# aws-cdk-lib runs in this process: the tests share one worker (tests/conftest.py).
pytestmark = pytest.mark.jsii

ACCOUNT = "111122223333"


def image_arn(name: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":appstream:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":image/{name}",
            ],
        ]
    }


def custom_resources(template: Template) -> dict[str, Any]:
    return template.find_resources("Custom::AppStreamImage")


@pytest.fixture(scope="module")
def stack_and_template() -> tuple[Stack, Template]:
    app = App()
    stack = Stack(app, "Images")
    AppStreamImage(stack, "Adopted", image_name="builder-output-2026-11")
    golden = AppStreamImage(
        stack,
        "Golden",
        image_name="golden-2026-11",
        source=ImageSource.copy_of("golden-base", description="monthly"),
        shared_with=[ImageShare("210987654321", allow_image_builder=False), ImageShare("111122223333")],
        in_use=InUse.WAIT,
        wait_for_available=False,
        service_timeout=Duration.minutes(20),
    )
    AppStreamImage(
        stack,
        "Patched",
        image_name="golden-2026-12",
        source=ImageSource.updated_from("golden-2026-11", display_name="Patched"),
        removal_policy=RemovalPolicy.RETAIN,
    )
    for n in range(3):
        AppStreamImage(stack, f"Extra{n}", image_name=f"extra-{n}")
    Tags.of(golden).add("team", "euc")
    streaming_fleet(stack, "Fleet", name="fleet", image_name=golden.image_name)
    return stack, Template.from_stack(stack)


def logical_id(template: Template, image_name: str) -> str:
    for key, resource in custom_resources(template).items():
        if resource["Properties"]["ImageName"] == image_name:
            return key
    raise AssertionError(image_name)


def test_one_provider_function_serves_every_image(stack_and_template: tuple[Stack, Template]) -> None:
    _, template = stack_and_template
    functions = template.find_resources("AWS::Lambda::Function")
    assert len(functions) == 1
    [function_id] = functions
    tokens = {json.dumps(r["Properties"]["ServiceToken"]) for r in custom_resources(template).values()}
    assert tokens == {json.dumps({"Fn::GetAtt": [function_id, "Arn"]})}
    assert len(custom_resources(template)) == 6


def test_properties_are_passed_through(stack_and_template: tuple[Stack, Template]) -> None:
    _, template = stack_and_template
    golden = custom_resources(template)[logical_id(template, "golden-2026-11")]["Properties"]
    assert {k: v for k, v in golden.items() if k != "ServiceToken"} == {
        "ServiceTimeout": "1200",
        "ImageName": "golden-2026-11",
        "Source": {"Type": "Copy", "SourceImageName": "golden-base", "Description": "monthly"},
        "SharedWith": [
            {"AccountId": "210987654321", "AllowFleet": True, "AllowImageBuilder": False},
            {"AccountId": "111122223333", "AllowFleet": True, "AllowImageBuilder": True},
        ],
        "Tags": [{"Key": "team", "Value": "euc"}],
        "WaitForAvailable": False,
        "InUse": "Wait",
    }
    adopted = custom_resources(template)[logical_id(template, "builder-output-2026-11")]["Properties"]
    assert adopted["InUse"] == "Wait"  # the default: a rotation's cleanup waits for the fleet to let go
    patched = custom_resources(template)[logical_id(template, "golden-2026-12")]
    assert patched["Properties"]["Source"] == {
        "Type": "Update",
        "SourceImageName": "golden-2026-11",
        "DisplayName": "Patched",
    }
    assert patched["DeletionPolicy"] == "Retain"
    assert patched["UpdateReplacePolicy"] == "Retain"


def test_synthesized_properties_pass_the_providers_validation(stack_and_template: tuple[Stack, Template]) -> None:
    _, template = stack_and_template
    for resource in custom_resources(template).values():
        props = dict(resource["Properties"])
        props["ServiceToken"] = "arn:aws:lambda:us-east-1:1:function:f"
        parsed = parse(props)
        # CloudFormation delivers scalars as strings: the provider must read them the same way.
        as_strings = json.loads(json.dumps(props).replace("true", '"true"').replace("false", '"false"'))
        assert parse(as_strings) == parsed


def test_every_iam_statement_is_scoped(stack_and_template: tuple[Stack, Template]) -> None:
    _, template = stack_and_template
    statements = [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {s.get("Sid", "logs"): s for s in statements}
    assert set(by_sid) == {
        "logs",
        "ReadImagesAndUsers",
        "ReadStacks",
        "PollingSchedules",
        "FindPollingSchedules",
        "PassTheSchedulerRole",
        "RemoveOldPollingRules",
        "RemoveOldPollingPermissions",
        "InvokeTheProvider",
        "CreateFromSources",
        "ManageDeclaredImages",
        "DeleteOwnedDeclaredImages",
        "TagDeclaredImages",
        "RetireImagesThisStackOwns",
    }
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        assert statement["Effect"] == "Allow"
    assert by_sid["logs"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    [log_group_id] = template.find_resources("AWS::Logs::LogGroup")
    assert by_sid["logs"]["Resource"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    assert by_sid["ReadImagesAndUsers"]["Action"] == [
        "appstream:DescribeImages",
        "appstream:DescribeFleets",
        "appstream:DescribeImageBuilders",
        "appstream:ListTagsForResource",
        "appstream:ListExportImageTasks",
    ]
    assert by_sid["ReadImagesAndUsers"]["Resource"] == "*"
    assert by_sid["ReadStacks"]["Action"] == "cloudformation:DescribeStacks"  # a rollback, an owner stack gone
    assert by_sid["ReadStacks"]["Resource"]["Fn::Join"][1][-1] == ":stack/*/*"
    declared = ["builder-output-2026-11", "golden-2026-11", "golden-2026-12", "extra-0", "extra-1", "extra-2"]
    assert sorted(by_sid["ManageDeclaredImages"]["Action"]) == sorted(
        [
            "appstream:DescribeImagePermissions",
            "appstream:UpdateImagePermissions",
            "appstream:DeleteImagePermissions",
            "appstream:UntagResource",
        ]
    )
    delete = by_sid["DeleteOwnedDeclaredImages"]
    assert delete["Action"] == "appstream:DeleteImage"
    assert delete["Condition"] == {"StringLike": {"aws:ResourceTag/appstream-image-provider:owner": "Images/*"}}
    for sid in ("ManageDeclaredImages", "DeleteOwnedDeclaredImages", "TagDeclaredImages"):
        assert sorted(json.dumps(r) for r in by_sid[sid]["Resource"]) == sorted(
            json.dumps(image_arn(n)) for n in declared
        )
    assert by_sid["TagDeclaredImages"]["Action"] == "appstream:TagResource"
    assert sorted(by_sid["CreateFromSources"]["Action"]) == ["appstream:CopyImage", "appstream:CreateUpdatedImage"]
    assert sorted(json.dumps(r) for r in by_sid["CreateFromSources"]["Resource"]) == sorted(
        json.dumps(image_arn(n)) for n in [*declared, "golden-base"]
    )
    # Scheduled polling: one-time schedules in the provider's own schedule group, invoking it through their role.
    [group_id] = template.find_resources("AWS::Scheduler::ScheduleGroup")
    [function_id] = template.find_resources("AWS::Lambda::Function")
    [scheduler_role_id] = [
        lid
        for lid, role in template.find_resources("AWS::IAM::Role").items()
        if role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "scheduler.amazonaws.com"}
    ]
    assert sorted(by_sid["PollingSchedules"]["Action"]) == ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    assert by_sid["PollingSchedules"]["Resource"]["Fn::Join"][1][-3:] == [":schedule/", {"Ref": group_id}, "/*"]
    assert by_sid["PollingSchedules"]["Resource"]["Fn::Join"][1][2] == ":scheduler:"
    assert action_definition("scheduler", "ListSchedules") == (False, frozenset())  # no resource-level permissions
    assert by_sid["FindPollingSchedules"]["Action"] == "scheduler:ListSchedules"
    assert by_sid["FindPollingSchedules"]["Resource"] == "*"
    assert by_sid["PassTheSchedulerRole"] == {
        "Sid": "PassTheSchedulerRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": {"Fn::GetAtt": [scheduler_role_id, "Arn"]},
        "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
    }
    assert by_sid["InvokeTheProvider"]["Action"] == "lambda:InvokeFunction"
    assert by_sid["InvokeTheProvider"]["Resource"] == {"Fn::GetAtt": [function_id, "Arn"]}
    [invoke] = [p for p in template.find_resources("AWS::IAM::Policy").values() if "InvokeTheProvider" in json.dumps(p)]
    assert invoke["Properties"]["Roles"] == [{"Ref": scheduler_role_id}]  # the scheduler role's only permission
    trust = template.find_resources("AWS::IAM::Role")[scheduler_role_id]["Properties"]["AssumeRolePolicyDocument"]
    [trusted] = trust["Statement"]
    assert trusted["Action"] == "sts:AssumeRole"
    assert trusted["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trusted["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Join"][1][-2:] == [
        ":schedule-group/",
        {"Ref": group_id},
    ]
    # The old scheme's rules and permissions are only removed now (a run from an old rule): no PutRule, PutTargets,
    # AddPermission.
    assert sorted(by_sid["RemoveOldPollingRules"]["Action"]) == ["events:DeleteRule", "events:RemoveTargets"]
    assert by_sid["RemoveOldPollingRules"]["Resource"]["Fn::Join"][1][-1] == ":rule/AppStreamImagePoll-*"
    assert by_sid["RemoveOldPollingPermissions"]["Action"] == "lambda:RemovePermission"
    assert by_sid["RemoveOldPollingPermissions"]["Resource"] == {"Fn::GetAtt": [function_id, "Arn"]}
    granted = {a for st in statements for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert granted.isdisjoint({"events:PutRule", "events:PutTargets", "lambda:AddPermission"})
    variables = template.find_resources("AWS::Lambda::Function")[function_id]["Properties"]["Environment"]["Variables"]
    assert variables["APPSTREAM_IMAGE_SCHEDULE_GROUP"] == {"Ref": group_id}
    assert variables["APPSTREAM_IMAGE_SCHEDULER_ROLE"] == {"Fn::GetAtt": [scheduler_role_id, "Arn"]}
    retire = by_sid["RetireImagesThisStackOwns"]
    assert sorted(retire["Action"]) == sorted(
        [
            "appstream:DeleteImage",
            "appstream:DescribeImagePermissions",
            "appstream:DeleteImagePermissions",
            "appstream:UpdateImagePermissions",  # a refused delete gives the sharing back
            "appstream:UntagResource",  # released (OnDelete: Release) after its name left the template
            "appstream:TagResource",  # given back: an adoption's tag values put back
        ]
    )
    assert retire["Resource"] == image_arn("*")
    assert retire["Condition"] == {"StringLike": {"aws:ResourceTag/appstream-image-provider:owner": "Images/*"}}


def test_function_runtime_architecture_memory_timeout_and_logs(stack_and_template: tuple[Stack, Template]) -> None:
    _, template = stack_and_template
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "MemorySize": 128,
            "Timeout": 900,
            "Handler": "provider.handler.handler",
            "LoggingConfig": {
                "LogGroup": {"Ref": Match.string_like_regexp("AppStreamImageProviderLogs")},
                "LogFormat": "JSON",  # Lambda's native JSON lines; the provider adds context and redaction
                "ApplicationLogLevel": "INFO",
                "SystemLogLevel": "WARN",
            },
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_a_fleet_using_the_image_is_deleted_before_it(stack_and_template: tuple[Stack, Template]) -> None:
    _, template = stack_and_template
    fleet = template.find_resources("AWS::AppStream::Fleet")["Fleet"]
    assert fleet["Properties"]["ImageName"] == {"Ref": logical_id(template, "golden-2026-11")}


def test_custom_resources_depend_on_the_provider_policies(stack_and_template: tuple[Stack, Template]) -> None:
    _, template = stack_and_template
    policies = set(template.find_resources("AWS::IAM::Policy"))
    for resource in custom_resources(template).values():
        depends = set(resource.get("DependsOn", []))
        assert {p for p in policies if "Polling" in p or "Images" in p} <= depends


def test_attributes_are_get_atts() -> None:
    stack = Stack(App(), "S")
    image = AppStreamImage(stack, "I", image_name="x1")
    resolved = {
        name: stack.resolve(getattr(image, name))
        for name in ("image_arn", "state", "platform", "visibility", "created_time", "base_image_arn", "display_name")
    }
    attrs = {name: value["Fn::GetAtt"][1] for name, value in resolved.items()}
    assert attrs == {
        "image_arn": "Arn",
        "state": "State",
        "platform": "Platform",
        "visibility": "Visibility",
        "created_time": "CreatedTime",
        "base_image_arn": "BaseImageArn",
        "display_name": "DisplayName",
    }
    assert stack.resolve(image.appstream_agent_version)["Fn::GetAtt"][1] == "AppstreamAgentVersion"
    assert "Ref" in stack.resolve(image.image_name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_name": "-bad"}, "image_name: '-bad' does not match"),
        ({"image_name": "x" * 102}, "image_name:"),
        (
            {"image_name": "ok", "shared_with": [ImageShare("123")]},
            "shared_with[0].account_id: '123' is not a 12-digit",
        ),
        (
            {"image_name": "ok", "shared_with": [ImageShare(ACCOUNT), ImageShare(ACCOUNT)]},
            "shared_with[1].account_id: 111122223333 is listed twice",
        ),
        ({"image_name": "ok", "service_timeout": Duration.seconds(0)}, "service_timeout: 0 is outside 1-3600"),
        ({"image_name": "ok", "service_timeout": Duration.hours(2)}, "service_timeout: 7200 is outside 1-3600"),
        ({"image_name": "ok", "source": ImageSource.copy_of("ok")}, "source.source_image_name: must differ"),
        ({"image_name": "ok", "source": ImageSource.copy_of("bad name")}, "source.source_image_name: 'bad name'"),
        ({"image_name": "AWS-x", "source": ImageSource.updated_from("src")}, "cannot start with Amazon"),
        ({"image_name": "ok", "source": ImageSource("Clone", "x")}, "source: use ImageSource.existing()"),
        (
            {"image_name": "ok", "source": ImageSource.copy_of("src", description="d" * 257)},
            "source.description: at most 256",
        ),
        ({"image_name": "ok", "in_use": "Force"}, "S/I: in_use: 'Force' is not one of InUse.WAIT, InUse.FAIL"),
        ({"image_name": 42}, "S/I: image_name: expected a string, got int 42"),
        ({"image_name": "ok", "shared_with": ["210987654321"]}, "shared_with[0]: expected ImageShare(...), got str"),
        ({"image_name": "ok", "shared_with": [ImageShare(210987654321)]}, "account_id: expected a 12-digit string"),  # type: ignore[arg-type]
        ({"image_name": "ok", "service_timeout": Duration.millis(1500)}, "is not a whole number of seconds"),
        ({"image_name": "ok", "service_timeout": 600}, "service_timeout: expected a Duration"),
        ({"image_name": "ok", "wait_for_available": "yes"}, "wait_for_available: expected True or False"),
        ({"image_name": "ok", "removal_policy": RemovalPolicy.SNAPSHOT}, "removal_policy: only DESTROY and RETAIN"),
    ],
)
def test_invalid_props_raise_at_synth_time_naming_the_prop(kwargs: dict[str, Any], message: str) -> None:
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match=re.escape(message)):
        AppStreamImage(stack, "I", **kwargs)


def test_props_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        AppStreamImage(Stack(App(), "S"), "I", "positional-name")  # type: ignore[misc]


def test_delete_image_is_allowed_only_on_declared_or_stack_owned_images(
    stack_and_template: tuple[Stack, Template],
) -> None:
    _, template = stack_and_template
    declared = {json.dumps(image_arn(r["Properties"]["ImageName"])) for r in custom_resources(template).values()}
    deleting = [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "appstream:DeleteImage" in s["Action"]
    ]
    assert len(deleting) == 2
    for statement in deleting:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "Condition" in statement:  # only images whose ownership tag names this stack
            assert statement["Condition"] == {
                "StringLike": {"aws:ResourceTag/appstream-image-provider:owner": "Images/*"}
            }
        else:
            assert {json.dumps(r) for r in resources} <= declared


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("cost-center", "#42", "Images/Bad: tags[0].value: the value of tag 'cost-center' contains '#'"),
        ("a,b", "v", "Images/Bad: tags[0].key: tag key 'a,b' contains ','"),
        ("appstream-image-provider:owner", "x", "is reserved for the provider's own tags"),
        ("team", "v" * 257, "must be at most 256 characters"),
    ],
)
def test_tags_appstream_would_reject_fail_at_synth_naming_the_tag_and_path(key: str, value: str, message: str) -> None:
    app = App()
    stack = Stack(app, "Images")
    image = AppStreamImage(stack, "Bad", image_name="ok")
    Tags.of(image).add(key, value)
    with pytest.raises(RuntimeError, match=re.escape(message)):
        app.synth()


def test_tags_appstream_accepts_synthesize() -> None:
    app = App()
    stack = Stack(app, "Images")
    image = AppStreamImage(stack, "Good", image_name="ok")
    Tags.of(image).add("équipe", "Données 42 +=@:/._-")
    app.synth()
    [resource] = custom_resources(Template.from_stack(stack)).values()
    assert resource["Properties"]["Tags"] == [{"Key": "équipe", "Value": "Données 42 +=@:/._-"}]


def test_the_provider_s_own_validation_runs_at_synth_on_what_the_resource_sends() -> None:
    stack = Stack(App(), "S")
    odd = ImageSource("Copy", "golden-base", display_name="Only updates take a display name")
    message = "S/I: source: unknown keys 'display_name'; allowed: description, source_image_name, region, type"
    with pytest.raises(ValueError, match=re.escape(message)):
        AppStreamImage(stack, "I", image_name="golden-2026-11", source=odd)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"image_name": "ok", "source": ImageSource.copy_of("ok")},
            "S/I: source.source_image_name: must differ from image_name",
        ),
        (
            {
                "image_name": "ok",
                "source": ImageSource.imported(
                    workspace_image_id="wsi-0123456789", applications=[ImportedApplication("bad name", "C:\\a.exe")]
                ),
            },
            "S/I: source.applications[0].name: 'bad name' is not an application name",
        ),
        (
            {
                "image_name": "ok",
                "source": ImageSource.imported(
                    workspace_image_id="wsi-0123456789",
                    applications=[ImportedApplication(f"app{n}", "C:\\a.exe") for n in range(51)],
                ),
            },
            "S/I: source.applications: at most 50 entries are allowed, got 51",
        ),
        (
            {"image_name": "ok", "source": ImageSource("Import", "ami-0123456789abcdef0")},
            "S/I: source.iam_role_arn: required to import an AMI",
        ),
    ],
)
def test_the_provider_s_messages_name_the_construct_s_props(kwargs: dict[str, Any], message: str) -> None:
    """A user trial: `Source.AppCatalogConfig[0].Name` came out as source.app_catalog_config[0].name, and a
    problem's own words kept the resource's names (must differ from ImageName)."""
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        AppStreamImage(Stack(App(), "S"), "I", **kwargs)
    assert not re.search(r"\b(Source|ImageName|AppCatalogConfig|AvailableSignal)\b", str(caught.value))


@pytest.mark.parametrize(
    ("path", "prop"),
    [
        ("ImageName", "image_name"),
        ("Source", "source"),
        ("Source.Type", "source"),
        ("Source.SourceImageName", "source.source_image_name"),
        ("Source.Description", "source.description"),
        ("Source.DisplayName", "source.display_name"),
        ("Source.SourceAmiId", "source.source_ami_id"),
        ("Source.WorkspaceImageId", "source.workspace_image_id"),
        ("Source.IamRoleArn", "source.iam_role_arn"),
        ("Source.AgentSoftwareVersion", "source.agent_software_version"),
        ("Source.IntendedInstanceType", "source.intended_instance_type"),
        ("Source.AppCatalogConfig", "source.applications"),
        ("Source.AppCatalogConfig[3].AbsoluteAppPath", "source.applications[3].absolute_app_path"),
        ("SharedWith[0].AccountId", "shared_with[0].account_id"),
        ("SharedWith[1].AllowImageBuilder", "shared_with[1].allow_image_builder"),
        ("Tags[2].Value", "tags[2].value"),
        ("WaitForAvailable", "wait_for_available"),
        ("InUse", "in_use"),
        ("ServiceTimeout", "service_timeout"),
        ("SharedOnDelete", "shared_on_delete"),
        ("OnDelete", "on_delete"),
        ("Adopt", "adopt"),
        ("AvailableSignal", "available_timeout"),
        ("AvailableSignal.Timeout", "available_timeout"),
    ],
)
def test_every_resource_property_path_becomes_the_construct_s_prop(path: str, prop: str) -> None:
    from appstream_image_provider.at_synth import in_construct_terms as _in_construct_terms
    from provider.errors import InvalidProperties

    assert _in_construct_terms(InvalidProperties("", path, "is wrong")) == f"{prop}: is wrong"


def test_only_the_resource_s_names_in_a_problem_change_not_the_user_s_values() -> None:
    from appstream_image_provider.at_synth import in_construct_terms as _in_construct_terms
    from provider.errors import InvalidProperties

    problem = "'ImageName' is listed twice; false does not go with AvailableSignal"
    assert _in_construct_terms(InvalidProperties("", "Tags[1].Key", problem)) == (
        "tags[1].key: 'ImageName' is listed twice; false does not go with available_timeout"
    )


@pytest.mark.parametrize("value", ["Wait", "Fail"])
def test_in_use_takes_cloudformation_s_strings_too(value: str) -> None:
    stack = Stack(App(), "S")
    AppStreamImage(stack, "I", image_name="ok", in_use=value)  # type: ignore[arg-type]
    [resource] = custom_resources(Template.from_stack(stack)).values()
    assert resource["Properties"]["InUse"] == value


def test_shared_on_delete_fail_is_rendered_and_the_default_is_left_out() -> None:
    from appstream_image_provider import SharedOnDelete

    stack = Stack(App(), "S")
    AppStreamImage(stack, "Strict", image_name="strict", shared_on_delete=SharedOnDelete.FAIL)
    AppStreamImage(stack, "Default", image_name="default")
    resources = {r["Properties"]["ImageName"]: r for r in custom_resources(Template.from_stack(stack)).values()}
    assert resources["strict"]["Properties"]["SharedOnDelete"] == "Fail"
    assert "SharedOnDelete" not in resources["default"]["Properties"]  # upgrades change no existing resource
    with pytest.raises(ValueError, match=r"S/Bad: shared_on_delete: 'Keep' is not one of SharedOnDelete.REVOKE"):
        AppStreamImage(stack, "Bad", image_name="bad", shared_on_delete="Keep")  # type: ignore[arg-type]


def test_two_images_with_one_name_in_an_app_fail_naming_both() -> None:
    app = App()
    AppStreamImage(Stack(app, "A"), "Golden", image_name="golden-2026-11")
    with pytest.raises(ValueError, match=r"B/Golden: image_name: golden-2026-11 is already declared by A/Golden"):
        AppStreamImage(Stack(app, "B"), "Golden", image_name="golden-2026-11")
    AppStreamImage(Stack(App(), "A"), "Golden", image_name="golden-2026-11")  # another app: no conflict


# -- provider options users expect (compare the CDK Provider framework) ------------------------------------


def test_provider_options_set_the_function_its_role_and_logs() -> None:
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_logs as logs

    from appstream_image_provider.provider_function import ProviderOptions

    stack = Stack(App(), "S")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    group = ec2.SecurityGroup(stack, "Sg", vpc=vpc)
    boundary = iam.ManagedPolicy(stack, "Boundary", statements=[iam.PolicyStatement(actions=["*"], resources=["*"])])
    options = ProviderOptions(
        memory_size=256,
        function_name="golden-images-provider",
        permissions_boundary=boundary,
        vpc=vpc,
        security_groups=(group,),
        log_retention=logs.RetentionDays.ONE_WEEK,
    )
    AppStreamImage(stack, "A", image_name="a-1", provider_options=options)
    AppStreamImage(stack, "B", image_name="b-1", provider_options=options)  # the same options: one function
    template = Template.from_stack(stack)
    [function] = template.find_resources("AWS::Lambda::Function").values()
    props = function["Properties"]
    assert (props["MemorySize"], props["FunctionName"]) == (256, "golden-images-provider")
    assert props["VpcConfig"]["SecurityGroupIds"] == [
        {"Fn::GetAtt": [next(iter(template.find_resources("AWS::EC2::SecurityGroup"))), "GroupId"]}
    ]
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 7})
    roles = template.find_resources("AWS::IAM::Role").values()
    [role] = [r for r in roles if "lambda.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])]
    assert len(roles) == 2  # the function's, and the one its schedules invoke it with
    for made in roles:
        assert made["Properties"]["PermissionsBoundary"] == {
            "Ref": next(iter(template.find_resources("AWS::IAM::ManagedPolicy")))
        }
    assert "AWSLambdaVPCAccessExecutionRole" in json.dumps(role["Properties"]["ManagedPolicyArns"])


def test_a_role_and_log_group_of_your_own_get_the_provider_s_policies() -> None:
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_logs as logs

    from appstream_image_provider.provider_function import ProviderOptions

    stack = Stack(App(), "S")
    role = iam.Role(stack, "Mine", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    group = logs.LogGroup(stack, "MyLogs")
    AppStreamImage(stack, "I", image_name="ok", provider_options=ProviderOptions(role=role, log_group=group))
    from appstream_image_provider import ImageProvider

    template = Template.from_stack(stack)
    mine = stack.get_logical_id(role.node.default_child)  # type: ignore[arg-type]
    scheduler_role = stack.get_logical_id(ImageProvider.of(stack).scheduler_role.node.default_child)  # type: ignore[arg-type]
    assert sorted(template.find_resources("AWS::IAM::Role")) == sorted([mine, scheduler_role])  # and the schedules'
    [function] = template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Role"]["Fn::GetAtt"][0] == stack.get_logical_id(role.node.default_child)  # type: ignore[arg-type]
    assert function["Properties"]["LoggingConfig"]["LogGroup"] == {
        "Ref": stack.get_logical_id(group.node.default_child)
    }  # type: ignore[arg-type]
    roles = [p["Properties"]["Roles"] for p in template.find_resources("AWS::IAM::Policy").values()]
    assert roles
    assert sorted(json.dumps(r) for r in roles if r != [{"Ref": mine}]) == [json.dumps([{"Ref": scheduler_role}])]


def test_an_existing_provider_by_service_token_makes_no_function() -> None:
    from aws_cdk import Fn

    stack = Stack(App(), "S")
    token = Fn.import_value("AppStreamImageProvider-ServiceToken")
    AppStreamImage(stack, "I", image_name="golden-2026-11", service_token=token)
    template = Template.from_stack(stack)
    assert template.find_resources("AWS::Lambda::Function") == {}
    assert template.find_resources("AWS::IAM::Policy") == {}
    [resource] = custom_resources(template).values()
    assert resource["Properties"]["ServiceToken"] == {"Fn::ImportValue": "AppStreamImageProvider-ServiceToken"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"memory_size": 64}, "memory_size: 64 MB is outside 128-10240"),
        ({"function_name": "bad name!"}, "function_name: 'bad name!' must be 1-64"),
        ({"security_groups": ("x",)}, "vpc_subnets / security_groups: need vpc"),
    ],
)
def test_bad_provider_options_name_the_field(options: dict[str, Any], message: str) -> None:
    from appstream_image_provider.provider_function import ProviderOptions

    with pytest.raises(ValueError, match=re.escape(message)):
        AppStreamImage(Stack(App(), "S"), "I", image_name="ok", provider_options=ProviderOptions(**options))


def test_images_of_one_stack_must_agree_on_provider_options() -> None:
    stack = Stack(App(), "S")
    AppStreamImage(stack, "A", image_name="a-1", provider_options=ProviderOptions(memory_size=256))
    AppStreamImage(stack, "Same", image_name="s-1", provider_options=ProviderOptions(memory_size=256))
    with pytest.raises(ValueError, match=re.escape("S/B: provider_options: differ from S/A's")):
        AppStreamImage(stack, "B", image_name="b-1", provider_options=ProviderOptions(memory_size=512))
    with pytest.raises(ValueError, match="provider_options: not with service_token"):
        AppStreamImage(stack, "C", image_name="c-1", provider_options=ProviderOptions(), service_token="arn:x")
    AppStreamImage(stack, "D", image_name="d-1", service_token="arn:x")  # another provider: its own settings
    assert len(Template.from_stack(stack).find_resources("AWS::Lambda::Function")) == 1


@pytest.mark.parametrize(
    ("first", "second", "difference"),
    [
        (ProviderOptions(memory_size=256), None, "memory_size=128 here, 256 there"),
        (None, ProviderOptions(memory_size=512), "memory_size=512 here, 128 there"),
        (
            ProviderOptions(function_name="images-provider"),
            ProviderOptions(memory_size=256),
            "memory_size=256 here, 128 there; function_name=None here, 'images-provider' there",
        ),
    ],
)
def test_an_image_asking_for_other_provider_options_fails_naming_both_paths(
    first: ProviderOptions | None, second: ProviderOptions | None, difference: str
) -> None:
    """A user trial: an image without provider_options after one with them silently got that one's function."""
    stack = Stack(App(), "S")
    AppStreamImage(stack, "First", image_name="a-1", provider_options=first)
    with pytest.raises(ValueError, match="S/Second: provider_options: ") as caught:
        AppStreamImage(stack, "Second", image_name="b-1", provider_options=second)
    assert str(caught.value) == (
        f"S/Second: provider_options: differ from S/First's, which made S's one provider function ({difference}); "
        "every AppStreamImage of a stack shares that function: give them all the same provider_options "
        "(leaving it out means ProviderOptions())"
    )


def test_a_provider_made_directly_is_named_when_an_image_asks_for_other_options() -> None:
    from appstream_image_provider import ImageProvider

    stack = Stack(App(), "S")
    ImageProvider.of(stack, ProviderOptions(memory_size=256))
    with pytest.raises(ValueError, match=re.escape("S/I: provider_options: differ from S/AppStreamImageProvider's")):
        AppStreamImage(stack, "I", image_name="a-1")
    AppStreamImage(stack, "J", image_name="b-1", provider_options=ProviderOptions(memory_size=256))


def test_provider_options_of_another_type_name_the_prop() -> None:
    with pytest.raises(ValueError, match=re.escape("S/I: provider_options: expected ProviderOptions(...), got dict")):
        AppStreamImage(Stack(App(), "S"), "I", image_name="a-1", provider_options={"memory_size": 256})  # type: ignore[arg-type]


def test_a_copy_from_what_looks_like_an_aws_public_image_warns_at_synth() -> None:
    from aws_cdk.assertions import Annotations as Found
    from aws_cdk.assertions import Match

    stack = Stack(App(), "S")
    public = ImageSource.copy_of("AppStream-WinServer2022-11-01-2026")
    AppStreamImage(stack, "I", image_name="golden-2026-11", source=public)
    Found.from_stack(stack).has_warning("/S/I", Match.string_like_regexp("only images this account owns"))
    private = Stack(App(), "P")
    AppStreamImage(private, "J", image_name="golden-2026-12", source=ImageSource.copy_of("golden-base"))
    assert not Found.from_stack(private).find_warning("/P/J", Match.any_value())


def test_every_module_has_one_import_path_in_a_checkout() -> None:
    """No link and no second copy: the construct's provider modules are the top-level provider package."""
    import importlib.util

    import provider.errors
    from appstream_image_provider import _shared

    assert _shared.errors is provider.errors
    assert _shared.errors.InvalidProperties is provider.errors.InvalidProperties
    assert importlib.util.find_spec("appstream_image_provider.provider") is None
    with pytest.raises(provider.errors.InvalidProperties):  # what the construct raises is the provider's class
        _shared.properties.parse({"ImageName": "bad name"})


def test_the_construct_validates_with_the_providers_rules_only_and_passes_tokens_through() -> None:
    """One validation: the provider's message (CloudFormation's property name made the prop's), no second copy."""
    from aws_cdk import Fn

    from provider.appstream.fields import image_name
    from provider.errors import InvalidProperties

    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="S/I: image_name: ") as caught:
        AppStreamImage(stack, "I", image_name="-bad")
    with pytest.raises(InvalidProperties) as provider_says:
        image_name("-bad")
    assert str(caught.value) == f"S/I: image_name: {provider_says.value.problem}"  # word for word after the prop
    token = Fn.import_value("SharedImageName")  # known at deploy time only: passes through
    AppStreamImage(stack, "FromExport", image_name=token, shared_with=[ImageShare(Fn.import_value("AccountId"))])


def test_an_imported_image_renders_its_source_and_may_pass_only_its_role_to_appstream() -> None:
    from appstream_image_provider import ImportedApplication

    stack = Stack(App(), "Imports")
    role = "arn:aws:iam::123456789012:role/appstream-import"
    source = ImageSource.imported(
        source_ami_id="ami-0123456789abcdef0",
        iam_role_arn=role,
        display_name="Imported",
        agent_software_version="ALWAYS_LATEST",
        intended_instance_type="stream.standard.medium",
        applications=[ImportedApplication("notepad", "C:\\\\Windows\\\\notepad.exe")],
    )
    AppStreamImage(stack, "Imported", image_name="imported-2026-12", source=source)
    template = Template.from_stack(stack)
    [resource] = custom_resources(template).values()
    assert resource["Properties"]["Source"] == {
        "Type": "Import",
        "SourceAmiId": "ami-0123456789abcdef0",
        "IamRoleArn": role,
        "DisplayName": "Imported",
        "AgentSoftwareVersion": "ALWAYS_LATEST",
        "IntendedInstanceType": "stream.standard.medium",
        "AppCatalogConfig": [{"Name": "notepad", "AbsoluteAppPath": "C:\\\\Windows\\\\notepad.exe"}],
    }
    statements = [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    passing = [s for s in statements if s["Action"] == "iam:PassRole"]
    passed = {s["Condition"]["StringEquals"]["iam:PassedToService"]: s for s in passing}
    assert set(passed) == {"appstream.amazonaws.com", "scheduler.amazonaws.com"}  # the import's, the schedules'
    assert passed["appstream.amazonaws.com"]["Resource"] == role
    [importing] = [s for s in statements if s["Action"] == "appstream:CreateImportedImage"]
    assert importing["Condition"] == {"StringLike": {"aws:RequestTag/appstream-image-provider:owner": "Imports/*"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source_ami_id": "ami-0123456789abcdef0"}, "source.iam_role_arn: required to import an AMI"),
        ({}, "exactly one of source_ami_id and workspace_image_id"),
        ({"source_ami_id": "ami-bad", "iam_role_arn": "arn:aws:iam::1:role/x"}, "source.source_ami_id: 'ami-bad'"),
    ],
)
def test_import_props_are_validated_at_synth_naming_the_prop(kwargs: dict[str, Any], message: str) -> None:
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match=re.escape(message)):
        AppStreamImage(stack, "I", image_name="imported", source=ImageSource.imported(**kwargs))


# -- what a Delete does (OnDelete) and what an adoption takes (Adopt) ---------------------------------------


def test_on_delete_and_adopt_are_exported_with_the_contract_s_values() -> None:
    from provider import contract

    assert tuple(m.value for m in OnDelete) == contract.ON_DELETE_MODES
    assert tuple(m.value for m in Adopt) == contract.ADOPT_MODES
    assert Adopt.IF_UNOWNED.value == contract.DEFAULT_ADOPT


def test_on_delete_and_adopt_are_rendered_only_when_set() -> None:
    stack = Stack(App(), "S")
    AppStreamImage(stack, "Adopted", image_name="adopted")
    AppStreamImage(stack, "Copied", image_name="copied", source=ImageSource.copy_of("golden-base"))
    AppStreamImage(stack, "Deleted", image_name="deleted", on_delete=OnDelete.DELETE)
    AppStreamImage(stack, "Released", image_name="released", on_delete=OnDelete.RELEASE)
    AppStreamImage(
        stack, "Kept", image_name="kept", source=ImageSource.copy_of("golden-base"), on_delete=OnDelete.RELEASE
    )
    AppStreamImage(stack, "Retained", image_name="retained", adopt=Adopt.IF_OWNER_GONE)
    AppStreamImage(stack, "Unowned", image_name="unowned", adopt=Adopt.IF_UNOWNED)
    resources = {
        r["Properties"]["ImageName"]: r["Properties"] for r in custom_resources(Template.from_stack(stack)).values()
    }
    rendered = {name: {k: props[k] for k in ("OnDelete", "Adopt") if k in props} for name, props in resources.items()}
    assert rendered == {
        "adopted": {},  # the defaults are left out: an existing stack's template does not change
        "copied": {},
        "deleted": {"OnDelete": "Delete"},
        "released": {"OnDelete": "Release"},  # given, it is sent, even when it is the source's default
        "kept": {"OnDelete": "Release"},
        "retained": {"Adopt": "IfOwnerGone"},
        "unowned": {},
    }
    parsed = {name: parse({k: v for k, v in props.items() if k != "ServiceToken"}) for name, props in resources.items()}
    assert {name: (p.deletes, p.adopt) for name, p in parsed.items()} == {
        "adopted": (False, "IfUnowned"),
        "copied": (True, "IfUnowned"),
        "deleted": (True, "IfUnowned"),
        "released": (False, "IfUnowned"),
        "kept": (False, "IfUnowned"),
        "retained": (False, "IfOwnerGone"),
        "unowned": (False, "IfUnowned"),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"on_delete": "Keep"},
            "S/I: on_delete: 'Keep' is not one of OnDelete.DELETE, OnDelete.RELEASE (or None, the default: "
            "RELEASE for ImageSource.existing(), DELETE for an image the resource makes)",
        ),
        (
            {"on_delete": "Delete"},
            "S/I: on_delete: 'Delete' is not one of OnDelete.DELETE, OnDelete.RELEASE",
        ),
        ({"adopt": "IfOwnerGone"}, "S/I: adopt: 'IfOwnerGone' is not one of Adopt.IF_UNOWNED, Adopt.IF_OWNER_GONE"),
        ({"adopt": None}, "S/I: adopt: None is not one of Adopt.IF_UNOWNED, Adopt.IF_OWNER_GONE"),
        (
            {"adopt": Adopt.IF_OWNER_GONE, "source": ImageSource.copy_of("golden-base")},
            "S/I: adopt: Adopt.IF_OWNER_GONE takes over an existing image, so it goes with "
            "source=ImageSource.existing() only; ImageSource.copy_of(...) makes its own image and adopts none "
            "(allowed with it: Adopt.IF_UNOWNED, the default)",
        ),
        (
            {"adopt": Adopt.IF_OWNER_GONE, "source": ImageSource.updated_from("golden-base")},
            "S/I: adopt: Adopt.IF_OWNER_GONE takes over an existing image, so it goes with "
            "source=ImageSource.existing() only; ImageSource.updated_from(...) makes its own image",
        ),
        (
            {"adopt": Adopt.IF_OWNER_GONE, "source": ImageSource.imported(workspace_image_id="wsi-0123456789")},
            "S/I: adopt: Adopt.IF_OWNER_GONE takes over an existing image, so it goes with "
            "source=ImageSource.existing() only; ImageSource.imported(...) makes its own image",
        ),
    ],
)
def test_bad_on_delete_and_adopt_fail_at_synth_naming_the_prop_path_and_allowed_values(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        AppStreamImage(Stack(App(), "S"), "I", image_name="golden-2026-11", **kwargs)
    assert not re.search(r"\bSource\b", str(caught.value))  # the construct's names, not the resource's


def test_the_docstring_tells_removal_policy_retain_from_on_delete_release() -> None:
    doc = AppStreamImage.__doc__ or ""
    init = AppStreamImage.__init__.__doc__ or ""
    assert "RemovalPolicy.RETAIN" in doc
    assert "sends no Delete" in doc
    assert "ownership tag" in doc
    assert "adopt=Adopt.IF_OWNER_GONE" in doc
    assert ":param on_delete: default none, which means `OnDelete.RELEASE` for `ImageSource.existing()`" in init
    assert ":param adopt: default `Adopt.IF_UNOWNED`" in init

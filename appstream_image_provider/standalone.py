"""The provider as one plain CloudFormation template: no CDK bootstrap, code from your own bucket.

`python -m appstream_image_provider.standalone OUTDIR` (`make dist`) writes the Lambda code as a
zip and a template whose parameters are the code's bucket and key, the image-name prefix, the
value of an optional required tag and the ServiceToken's export name. Upload the zip, then
`aws cloudformation deploy` the template (see the README).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk import App, BootstraplessSynthesizer, CfnCondition, CfnParameter, CfnResource, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from . import __version__, asset
from ._shared import contract
from .provider_stack import DEFAULT_EXPORT, PREFIX, declare_shared_provider

# IAM condition keys are JSON keys, which CloudFormation cannot take from a parameter: the key is fixed.
REQUIRED_TAG_KEY = "appstream-image-provider:scope"
REQUIRE_TAG = "RequireTag"
STACK_NAME = "AppStreamImageProvider"
TEMPLATE = f"appstream-image-provider-{__version__}.template.json"
LAMBDA_ZIP = f"appstream-image-provider-{__version__}-lambda.zip"
BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"  # S3's bucket naming rules (general purpose buckets)
ROLE_OR_NONE = r"^$|^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$"  # a role's ARN, or empty for none
EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same sources give the same bytes


class StandaloneProviderStack(Stack):
    """The shared provider (as AppStreamImageProviderStack), its code and scope as template parameters."""

    def __init__(self, scope: Construct, construct_id: str = STACK_NAME) -> None:
        super().__init__(scope, construct_id, synthesizer=BootstraplessSynthesizer(), analytics_reporting=False)
        self.template_options.description = (
            f"Custom::AppStreamImage provider {__version__}: create, update and delete AppStream images, "
            "waiting until done. Exports its ServiceToken."
        )
        bucket = CfnParameter(
            self, "CodeBucket", allowed_pattern=BUCKET_NAME, description="S3 bucket holding the provider's zip"
        )
        key = CfnParameter(
            self, "CodeKey", default=LAMBDA_ZIP, min_length=1, description="S3 key of the provider's zip"
        )
        prefix = CfnParameter(
            self,
            "ImageNamePrefix",
            default="",
            allowed_pattern=PREFIX.pattern,
            description="The provider may act on images whose names start with this (empty: every image)",
        )
        tag_value = CfnParameter(
            self,
            "RequiredTagValue",
            default="",
            max_length=contract.MAX_TAG_VALUE,
            allowed_pattern=contract.TAG_VALUE_PATTERN,
            description=f"If set, only images tagged {REQUIRED_TAG_KEY}=<this value> (new images get it "
            "from their Tags)",
        )
        export = CfnParameter(
            self, "ServiceTokenExportName", default=DEFAULT_EXPORT, min_length=1, max_length=255,
            description="Export name of the ServiceToken output",
        )  # fmt: skip
        CfnCondition(self, REQUIRE_TAG, expression=Fn.condition_not(Fn.condition_equals(tag_value.value_as_string, "")))
        code_bucket = s3.Bucket.from_bucket_name(self, "CodeBucketRef", bucket.value_as_string)
        provider = declare_shared_provider(
            self,
            image_name_prefix=prefix.value_as_string,
            resource_tag=(REQUIRED_TAG_KEY, tag_value.value_as_string),
            export_name=export.value_as_string,
            code=lambda_.Code.from_bucket(code_bucket, key.value_as_string),
        )
        tag_text = Fn.condition_if(
            REQUIRE_TAG, f" that carry the tag {REQUIRED_TAG_KEY}={tag_value.value_as_string}", ""
        ).to_string()
        provider.function.add_environment(
            contract.SCOPE_ENV, Fn.join("", [f"images named {prefix.value_as_string}*", tag_text])
        )
        # A shared provider's images are owned by the stacks that use it (ImageProvider.owned_by_any_stack).
        self._role_to_pass(
            "ImportRoleArn",
            "ImportsImages",
            "If set, Source Type Import may pass this role to AppStream (and only it); empty: no imports",
            provider.grant_import,
        )
        self._role_to_pass(
            "ExportRoleArn",
            "ExportsImages",
            "If set, Export may pass this role to AppStream (and only it); empty: no exports",
            provider.grant_export,
        )

    def _role_to_pass(
        self, parameter: str, condition: str, description: str, grant: Callable[[str], iam.Policy]
    ) -> None:
        """A role parameter the provider may pass to AppStream (`grant`), its policy there only when one is given."""
        role = CfnParameter(self, parameter, default="", allowed_pattern=ROLE_OR_NONE, description=description)
        given = Fn.condition_not(Fn.condition_equals(role.value_as_string, ""))
        policy = grant(role.value_as_string).node.default_child
        assert isinstance(policy, CfnResource)
        policy.cfn_options.condition = CfnCondition(self, condition, expression=given)


def _optional_tag(template: dict[str, Any]) -> dict[str, Any]:
    """Make the required-tag conditions of every policy apply only under the RequireTag condition.

    CDK's PolicyStatement has no place for Fn::If around a Condition block, so it is added here: around
    the whole Condition when it checks only the required tag, else around each operator block that
    does (an ownership condition beside it stays).
    """
    marks = (f"aws:ResourceTag/{REQUIRED_TAG_KEY}", f"aws:RequestTag/{REQUIRED_TAG_KEY}")
    no_value = {"Ref": "AWS::NoValue"}
    for resource in template["Resources"].values():
        document = resource.get("Properties", {}).get("PolicyDocument")
        if not document:
            continue
        statements = []
        for statement in document["Statement"]:
            blocks: dict[str, dict[str, Any]] = statement.get("Condition", {})
            keys = {key for block in blocks.values() for key in block}
            if not keys & set(marks):
                statements.append(statement)
            elif keys == {marks[1]}:  # allows tagging new images that carry the tag: only with a tag
                statements.append({"Fn::If": [REQUIRE_TAG, statement, no_value]})
            elif keys <= set(marks):
                condition = statement.pop("Condition")
                statements.append({**statement, "Condition": {"Fn::If": [REQUIRE_TAG, condition, no_value]}})
            else:
                for operator, block in blocks.items():
                    if set(block) <= set(marks):
                        blocks[operator] = {"Fn::If": [REQUIRE_TAG, block, no_value]}
                    elif set(block) & set(marks):
                        raise ValueError(f"{operator} mixes the required tag with other keys: {sorted(block)}")
                statements.append(statement)
        document["Statement"] = statements
    return template


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {str(value["Ref"])} if "Ref" in value else set()
        if "Fn::GetAtt" in value:
            found.add(str(value["Fn::GetAtt"][0]))
        return found.union(*(_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    return set()


def _no_redundant_depends_on(template: dict[str, Any]) -> dict[str, Any]:
    """Drop DependsOn entries a Ref or Fn::GetAtt already implies (cfn-lint W3005)."""
    for resource in template["Resources"].values():
        if "DependsOn" in resource:
            implied = _references(resource.get("Properties", {}))
            kept = [d for d in resource["DependsOn"] if d not in implied]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
    return template


def template() -> dict[str, Any]:
    """The standalone provider template, as a dict."""
    with tempfile.TemporaryDirectory(prefix="appstream-image-provider-standalone-") as out:
        app = App(outdir=out, analytics_reporting=False)
        StandaloneProviderStack(app)
        assembly = app.synth()
        body = assembly.get_stack_by_name(STACK_NAME).template
    return _no_redundant_depends_on(_optional_tag(json.loads(json.dumps(body))))


def lambda_zip(path: Path) -> Path:
    """The Lambda code (provider/ and the pinned crhelper), byte for byte reproducible."""
    root = asset.build()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in asset._listing(root):
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (root / name).read_bytes())
    return path


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "dist")
    out.mkdir(parents=True, exist_ok=True)
    code = lambda_zip(out / LAMBDA_ZIP)
    (out / TEMPLATE).write_text(json.dumps(template(), indent=1, sort_keys=True) + "\n")
    digest = hashlib.sha256(code.read_bytes()).hexdigest()
    print(f"{code} (sha256 {digest})\n{out / TEMPLATE}")  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

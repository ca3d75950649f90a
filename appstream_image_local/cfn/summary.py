"""Submitted templates and GetTemplateSummary, for the AWS CLI's `aws cloudformation deploy`.

A template is read as CloudFormation reads it (TemplateBody, a TemplateURL of the local S3, or a stack's
own), with AWS's "Template format error" messages; GetTemplateSummary answers what `deploy` asks of a
stack before it updates it. CloudFormationApi (api.py) mixes `TemplateSummaries` in.

What the AWS CLI's `cloudformation` commands call, measured with the AWS CLI v1 (awscli 1.46.3 from PyPI,
`--debug`, and the API's `requests` log) against this local cloud; v2 read from its source (aws/aws-cli
branch v2: customizations/cloudformation/deployer.py, deploy.py, s3uploader.py, the CloudFormation waiters):
the same calls, only a no-op deploy's exit code differs.

- `deploy`, a new stack: DescribeStacks ("Stack with id NAME does not exist": create) -> CreateChangeSet
  (ChangeSetType CREATE, TemplateBody, Parameters, Capabilities, Description, Tags) -> DescribeChangeSet
  until CREATE_COMPLETE (waiter change_set_create_complete, every 5 s) -> ExecuteChangeSet (DisableRollback
  false) -> DescribeStacks until CREATE_COMPLETE (waiter stack_create_complete, every 30 s in v1 and v2).
- `deploy`, an existing stack: DescribeStacks -> GetTemplateSummary(StackName), of which it reads only
  Parameters (a parameter the command does not override is sent as UsePreviousValue if the stack has it)
  -> CreateChangeSet (UPDATE) -> DescribeChangeSet -> ExecuteChangeSet -> DescribeStacks until UPDATE_COMPLETE.
- `deploy` with no changes: as above up to DescribeChangeSet, which answers FAILED with "The submitted
  information didn't contain changes. ..."; the CLI prints "No changes to deploy. Stack NAME is up to date"
  and exits 255 in v1 (0 with --no-fail-on-empty-changeset); v2 exits 0 unless --fail-on-empty-changeset.
- `deploy --s3-bucket B`: S3 HeadObject (upload_with_dedup) and PutObject of the template, then
  CreateChangeSet with a path-style TemplateURL on the S3 endpoint (here the local S3, https://localhost:PORT).
- `package --s3-bucket B`: S3 only, HeadObject per local artifact (Lambda code, nested templates, ...) and
  PutObject of those not there yet; no CloudFormation call. The local cloud's S3 (moto) takes the uploads.
- `describe-stack-events`: DescribeStackEvents, following NextToken (newest first).
- `wait stack-create-complete` / `stack-update-complete` / `stack-delete-complete`: DescribeStacks every 30 s
  until the waiter's status; for delete, "Stack with id NAME does not exist" (ValidationError) is success.
- `delete-stack`: DeleteStack only.

Not modelled: ResourceIdentifierSummaries (resource import), CAPABILITY_AUTO_EXPAND for transforms
(DeclaredTransforms is listed; the local cloud runs no transform), StackSets, and `deploy --disable-rollback`
(ExecuteChangeSet's DisableRollback true is accepted, and a failed operation still rolls back).
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from appstream_image_local.cfn.driver import Cloud
from appstream_image_local.cfn.query import ApiError
from appstream_image_local.cfn.records import IAM_TYPES, NAMES, Record
from appstream_image_local.cfn.template import Template, TemplateError

# Template anatomy, format version: "If you don't specify a value, CloudFormation assumes the latest".
FORMAT_VERSION = "2010-09-09"
SOURCES = ("StackName", "StackSetName", "TemplateBody", "TemplateURL")


def _format_error(message: str) -> ApiError:
    return ApiError("ValidationError", f"Template format error: {message}")


def read_template(body: str) -> Template:
    """A submitted template (JSON or YAML), or CloudFormation's ValidationError for one it cannot read."""
    try:
        return Template.parse(body)
    except TemplateError as error:
        cause = error.__cause__
        if isinstance(cause, json.JSONDecodeError):
            # AWS counts one column past the offending character: '{"this is invalid JSON"="bobbins"}' is
            # "(line 1, column 25)" in localstack's AWS-recorded snapshot (validate-invalid-json); Python says 24.
            raise _format_error(f"JSON not well-formed. (line {cause.lineno}, column {cause.colno + 1})") from error
        if isinstance(cause, yaml.MarkedYAMLError) and cause.problem_mark is not None:
            mark = cause.problem_mark
            raise _format_error(f"YAML not well-formed. (line {mark.line + 1}, column {mark.column + 1})") from error
        if isinstance(cause, yaml.YAMLError):
            raise _format_error("YAML not well-formed.") from error
        if str(error).endswith("not a template"):  # a list or a scalar, not a mapping
            raise _format_error("unsupported structure.") from error
        # localstack's AWS-recorded snapshot (test_get_template_summary_no_resources) has this message.
        raise _format_error("At least one Resources member must be defined.") from error


def capabilities(template: Template) -> tuple[list[str], str]:
    """The capability the template's IAM resources need, and CloudFormation's CapabilitiesReason for it.

    Acknowledging IAM resources (CreateStack, Capabilities): a named IAM resource needs CAPABILITY_NAMED_IAM,
    any other CAPABILITY_IAM; the reason lists the IAM resource types, as the console and ValidateTemplate show
    "The following resource(s) require capabilities: [AWS::IAM::InstanceProfile, AWS::IAM::Role]".
    """
    kinds = {str(r.get("Type")) for r in template.resources.values()} & set(IAM_TYPES)
    if not kinds:
        return [], ""
    named = any(
        str(r.get("Type")) in NAMES and NAMES[str(r.get("Type"))] in (r.get("Properties") or {})
        for r in template.resources.values()
    )
    reason = f"The following resource(s) require capabilities: [{', '.join(sorted(kinds))}]"
    return ["CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM"], reason


def _declaration(key: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A ParameterDeclaration (API reference): constraints carry only AllowedValues, always present."""
    default = spec.get("Default")
    allowed = spec.get("AllowedValues")
    return {
        "ParameterKey": key,
        "DefaultValue": ",".join(map(str, default)) if isinstance(default, list) else default,
        "ParameterType": str(spec.get("Type", "String")),
        "NoEcho": str(spec.get("NoEcho", "false")).lower() == "true",
        "Description": spec.get("Description"),
        "ParameterConstraints": {"AllowedValues": [str(v) for v in allowed]} if isinstance(allowed, list) else {},
    }


def template_summary(template: Template) -> dict[str, Any]:
    """GetTemplateSummary's answer for a template (API reference, GetTemplateSummary, Response Elements)."""
    body = template.body
    needed, reason = capabilities(template)
    transforms = body.get("Transform")
    metadata = body.get("Metadata")
    return {
        "Parameters": [_declaration(k, dict(v or {})) for k, v in template.parameters.items()],
        "Description": body.get("Description"),
        "Capabilities": needed or None,
        "CapabilitiesReason": reason or None,
        # One entry per resource, in template order, repeated types included (the AWS CLI's example answer).
        "ResourceTypes": [str(r.get("Type")) for r in template.resources.values()],
        "Version": str(body.get("AWSTemplateFormatVersion") or FORMAT_VERSION),
        "Metadata": json.dumps(metadata, separators=(",", ":")) if metadata is not None else None,
        "DeclaredTransforms": ([transforms] if isinstance(transforms, str) else transforms) or None,
    }


class TemplateSummaries:
    """Where a request's template comes from, and GetTemplateSummary."""

    cloud: Cloud
    _lock: threading.RLock

    def _find(self, name_or_id: str) -> Record | None:
        raise NotImplementedError  # api.CloudFormationApi

    def _template(self, form: dict[str, str], record: Record | None) -> tuple[str, Template]:
        """The body and template of CreateStack, UpdateStack and CreateChangeSet."""
        if form.get("UsePreviousTemplate") == "true":
            if record is None or not record.template_body:
                raise ApiError("ValidationError", "UsePreviousTemplate: the stack has no template")
            body = record.template_body
        elif "TemplateBody" in form:
            body = form["TemplateBody"]
        elif "TemplateURL" in form:
            body = self._fetch(form["TemplateURL"])
        else:
            raise ApiError("ValidationError", "Either Template URL or Template Body must be specified.")
        return body, read_template(body)

    def _fetch(self, url: str) -> str:
        """A template from the local S3, by a path-style URL (scheme://host:port/bucket/key)."""
        parts = urlsplit(url)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        if parts.scheme not in ("https", "http") or not key:  # AWS's answer to a URL it cannot read
            raise ApiError("ValidationError", "TemplateURL must be a supported URL.")
        try:
            return str(self.cloud.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except Exception as error:  # CloudFormation prefixes S3's own message ("S3 error: Access Denied")
            message = getattr(error, "response", {}).get("Error", {}).get("Message") or str(error)
            raise ApiError("ValidationError", f"S3 error: {message}") from error

    def action_GetTemplateSummary(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802 - AWS's action names
        """Of a template (TemplateBody, TemplateURL), or of a stack: live by name or id, deleted by id."""
        given = [name for name in SOURCES if form.get(name)]
        if len(given) != 1:  # API reference: "You must specify only one of the following parameters"
            raise ApiError(
                "ValidationError",
                "You must specify only one of the following parameters: StackName, StackSetName, TemplateBody, "
                "or TemplateURL.",
            )
        if given == ["StackSetName"]:  # no StackSets offline: the error DescribeStackSet gives for a missing one
            raise ApiError("StackSetNotFoundException", f"StackSet {form['StackSetName']} not found", 404)
        if given == ["StackName"]:
            name = form["StackName"]
            with self._lock:
                record = self._find(name)
                if record is None:
                    raise ApiError("ValidationError", f"Stack with id {name} does not exist")
                if record.status == "REVIEW_IN_PROGRESS":  # localstack's AWS-recorded snapshot has this message
                    raise ApiError("ValidationError", f"GetTemplateSummary cannot be called on {record.status} stacks.")
                body = record.template_body
                stack = self.cloud.stacks.get(record.name)
            if not body and stack is not None and stack.stack_id == record.stack_id:
                return template_summary(stack.template)  # deployed with the driver itself, not through this API
            return template_summary(read_template(body))
        _, template = self._template(form, None)
        return template_summary(template)

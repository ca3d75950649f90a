"""The local driver: plays CloudFormation's part for templates that use Custom::AppStreamImage.

It orders resources by their dependencies, resolves intrinsics, sends custom resources the
events CloudFormation sends (presigned S3 ResponseURL on local moto over TLS), reads and
validates each response, fires crhelper's polling rules on their schedule, honours
ServiceTimeout and the Retain policies, and rolls back failed deployments.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import string
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from local.cfn.intrinsics import Scope, evaluate, resolve
from local.cfn.lambda_runner import Function, LambdaRunner, default_environment
from local.cfn.template import Template, TemplateError
from local.moto_tls import MotoTls

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "cloudformation-custom-resource-responses"
MAX_RESPONSE = 4096
MAX_PHYSICAL_ID = 1024
DEFAULT_SERVICE_TIMEOUT = 3600
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")
CUSTOM = ("AWS::CloudFormation::CustomResource",)


class ResourceFailed(Exception):
    """A resource operation failed; `physical_id` is what CloudFormation would keep for it."""

    def __init__(self, reason: str, physical_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.physical_id = physical_id


class StackFailed(Exception):
    """A deploy, update or destroy did not complete (after rolling back where CloudFormation would)."""


@dataclass
class Live:
    logical_id: str
    type: str
    physical_id: str
    properties: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"


@dataclass
class Stack:
    name: str
    stack_id: str
    template: Template
    parameters: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Live] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    conditions: dict[str, bool] = field(default_factory=dict)
    status: str = "CREATE_IN_PROGRESS"


@dataclass
class RequestStats:
    invocations: int = 0
    scheduled: int = 0
    seconds: float = 0.0


def cfn_strings(value: Any) -> Any:
    """CloudFormation hands every scalar property to a custom resource as a string."""
    if isinstance(value, dict):
        return {k: cfn_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cfn_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _wanted(stack: Stack, template: Template, logical_id: str) -> bool:
    condition = template.resources[logical_id].get("Condition")
    return condition is None or stack.conditions.get(str(condition), False)


def _variables(props: dict[str, Any]) -> dict[str, str]:
    """A function's Environment.Variables, and its LoggingConfig as the variables Lambda sets for it."""
    variables = {str(k): str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()}
    logging_config = props.get("LoggingConfig") or {}
    variables["AWS_LAMBDA_LOG_FORMAT"] = str(logging_config.get("LogFormat", "Text"))
    if logging_config.get("LogFormat") == "JSON":
        variables["AWS_LAMBDA_LOG_LEVEL"] = str(logging_config.get("ApplicationLogLevel", "INFO"))
    return variables


def _suffix(length: int = 12) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


class Cloud:
    """CloudFormation, Lambda and EventBridge for one account and region, on this machine."""

    def __init__(
        self,
        *,
        appstream_url: str,
        moto: MotoTls,
        workdir: Path,
        printer: Callable[[str], None] = print,
        function_timeout: float | None = None,
        fleet_switch_seconds: float = 2.0,
        schedule_scale: float = 1.0,
    ) -> None:
        """`function_timeout` overrides every function's Timeout (as editing the template would);
        `schedule_scale` shortens rate() schedules (0.1: a rate(1 minute) rule fires every 6 s)."""
        self.appstream_url = appstream_url
        self.moto = moto
        self._print = printer
        self._function_timeout = function_timeout
        self._fleet_switch = fleet_switch_seconds
        self._schedule_scale = schedule_scale
        env = default_environment({**moto.env(), "AWS_ENDPOINT_URL_APPSTREAM": appstream_url, "AWS_REGION": REGION})
        self._env = env
        self.runner = LambdaRunner(env, workdir / "logs")
        self.functions: dict[str, Function] = {}
        self.exports: dict[str, str] = {}
        self.stacks: dict[str, Stack] = {}
        self.leaks: list[str] = []
        self.violations: list[str] = []
        self.stats: list[RequestStats] = []
        self._workdir = workdir
        self._started = time.monotonic()
        self._rules: dict[str, float] = {}
        self._rule_periods: dict[str, float] = {}
        self._last_rule_scan = 0.0
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto ignores credentials
            region_name=REGION,
        )
        config = Config(retries={"mode": "standard"}, s3={"addressing_style": "path"}, signature_version="s3v4")
        self.s3 = session.client("s3", endpoint_url=moto.url, verify=str(moto.cert), config=config)
        self.events = session.client("events", endpoint_url=moto.url, verify=str(moto.cert))
        self.lambda_ = session.client("lambda", endpoint_url=moto.url, verify=str(moto.cert))
        self.iam = session.client("iam", endpoint_url=moto.url, verify=str(moto.cert))
        with contextlib.suppress(self.s3.exceptions.BucketAlreadyOwnedByYou):  # another Cloud on this moto made it
            self.s3.create_bucket(Bucket=BUCKET)
        try:
            self._role = self.iam.create_role(RoleName="local-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        except self.iam.exceptions.EntityAlreadyExistsException:
            self._role = self.iam.get_role(RoleName="local-lambda")["Role"]["Arn"]

    # -- stack operations ------------------------------------------------------------------------------

    def deploy(self, name: str, template_path: str | Path, parameters: dict[str, str] | None = None) -> Stack:
        """Create the stack, or update it when it exists; roll back on failure (then raise StackFailed)."""
        template = Template.load(template_path)
        if name in self.stacks:
            return self._update(self.stacks[name], template, parameters or {})
        stack = Stack(name, f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}", template)
        stack.parameters = self._parameters(template, parameters or {})
        self.stacks[name] = stack
        started = time.monotonic()
        self._emit(stack, "CREATE_IN_PROGRESS", "AWS::CloudFormation::Stack", name)
        try:
            for logical_id in self._ordered(stack, template):
                self._create(stack, template, logical_id)
        except ResourceFailed as failure:
            self._emit(stack, "ROLLBACK_IN_PROGRESS", "AWS::CloudFormation::Stack", name, failure.reason)
            self._delete_all(stack, template, rollback=True)
            stack.status = "ROLLBACK_COMPLETE"
            self._emit(stack, "ROLLBACK_COMPLETE", "AWS::CloudFormation::Stack", name)
            del self.stacks[name]
            raise StackFailed(f"{name}: {failure.reason}") from failure
        self._outputs(stack, template)
        stack.status = "CREATE_COMPLETE"
        self._emit(
            stack, "CREATE_COMPLETE", "AWS::CloudFormation::Stack", name, f"in {time.monotonic() - started:.1f}s"
        )
        return stack

    def destroy(self, name: str) -> None:
        stack = self.stacks[name]
        started = time.monotonic()
        self._emit(stack, "DELETE_IN_PROGRESS", "AWS::CloudFormation::Stack", name)
        for export in stack.exports:
            self.exports.pop(export, None)
        try:
            self._delete_all(stack, stack.template, rollback=False)
        except ResourceFailed as failure:
            stack.status = "DELETE_FAILED"
            self._emit(stack, "DELETE_FAILED", "AWS::CloudFormation::Stack", name, failure.reason)
            raise StackFailed(f"{name}: {failure.reason}") from failure
        del self.stacks[name]
        self._emit(
            stack, "DELETE_COMPLETE", "AWS::CloudFormation::Stack", name, f"in {time.monotonic() - started:.1f}s"
        )

    def _update(self, stack: Stack, template: Template, parameters: dict[str, str]) -> Stack:
        old_template, old_resources = stack.template, dict(stack.resources)
        old_parameters = stack.parameters
        stack.template, stack.parameters = template, self._parameters(template, parameters)
        started = time.monotonic()
        self._emit(stack, "UPDATE_IN_PROGRESS", "AWS::CloudFormation::Stack", stack.name)
        created: list[str] = []
        changed: dict[str, Live] = {}
        self._attempt: tuple[str, dict[str, Any]] | None = None
        try:
            for logical_id in self._ordered(stack, template):
                if logical_id not in old_resources:
                    self._create(stack, template, logical_id)
                    created.append(logical_id)
                elif self._update_resource(stack, template, logical_id, old_resources[logical_id]):
                    changed[logical_id] = old_resources[logical_id]
        except ResourceFailed as failure:
            self._emit(stack, "UPDATE_ROLLBACK_IN_PROGRESS", "AWS::CloudFormation::Stack", stack.name, failure.reason)
            self._roll_back_update(
                stack,
                old_template=old_template,
                old_parameters=old_parameters,
                created=created,
                changed=changed,
                old_resources=old_resources,
            )
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            self._emit(stack, "UPDATE_ROLLBACK_COMPLETE", "AWS::CloudFormation::Stack", stack.name)
            raise StackFailed(f"{stack.name}: {failure.reason}") from failure
        self._emit(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "AWS::CloudFormation::Stack", stack.name)
        for logical_id in reversed(old_template.order()):
            old = old_resources.get(logical_id)
            if old is None:
                continue
            current = stack.resources.get(logical_id)
            removed = logical_id not in template.resources
            replaced = current is not None and current.physical_id != old.physical_id
            if not (removed or replaced):
                continue
            policy = old.deletion_policy if removed else old.update_replace_policy
            if policy == "Retain":
                self._emit(stack, "DELETE_SKIPPED", old.type, logical_id, f"{old.physical_id} retained")
                continue
            try:
                self._delete_resource(stack, old)
            except ResourceFailed as failure:  # CloudFormation reports it and leaves the resource behind
                self._emit(stack, "DELETE_FAILED", old.type, logical_id, f"{failure.reason} (abandoned)")
        self._outputs(stack, template)
        stack.status = "UPDATE_COMPLETE"
        self._emit(
            stack, "UPDATE_COMPLETE", "AWS::CloudFormation::Stack", stack.name, f"in {time.monotonic() - started:.1f}s"
        )
        return stack

    def _roll_back_update(
        self,
        stack: Stack,
        *,
        old_template: Template,
        old_parameters: dict[str, str],
        created: list[str],
        changed: dict[str, Live],
        old_resources: dict[str, Live],
    ) -> None:
        failed_new = [lid for lid, live in stack.resources.items() if lid not in old_resources and lid not in created]
        for logical_id in reversed([*created, *failed_new]):
            live = stack.resources.pop(logical_id, None)
            if live is not None:
                self._try_delete(stack, live)
        if self._attempt is not None and self._attempt[0] in old_resources:
            # The resource whose update failed gets an Update back to its old properties too.
            logical_id, attempted = self._attempt
            old = old_resources[logical_id]
            if attempted != old.properties and logical_id not in changed:
                try:
                    self._update_live(stack, replace(old, properties=attempted), old.properties)
                except ResourceFailed as failure:
                    self._emit(stack, "UPDATE_FAILED", old.type, logical_id, failure.reason)
                stack.resources[logical_id] = old
        for logical_id, old in reversed(list(changed.items())):
            current = stack.resources[logical_id]
            if current.physical_id != old.physical_id:  # replaced: delete the new one, keep the old
                self._try_delete(stack, current)
            elif current.properties != old.properties:
                try:
                    self._update_live(stack, current, old.properties)
                except ResourceFailed as failure:
                    self._emit(stack, "UPDATE_FAILED", old.type, logical_id, failure.reason)
            stack.resources[logical_id] = old
        stack.template, stack.parameters = old_template, old_parameters

    def _try_delete(self, stack: Stack, live: Live) -> None:
        try:
            self._delete_resource(stack, live)
        except ResourceFailed as failure:
            self._emit(stack, "DELETE_FAILED", live.type, live.logical_id, failure.reason)

    def _delete_all(self, stack: Stack, template: Template, *, rollback: bool) -> None:
        for logical_id in reversed(template.order()):
            live = stack.resources.get(logical_id)
            if live is None:
                continue
            if not rollback and live.deletion_policy == "Retain":
                self._emit(stack, "DELETE_SKIPPED", live.type, logical_id, f"{live.physical_id} retained")
                del stack.resources[logical_id]
                continue
            if rollback:
                self._try_delete(stack, live)
            else:
                self._delete_resource(stack, live)
            stack.resources.pop(logical_id, None)

    # -- one resource ------------------------------------------------------------------------------------

    def _ordered(self, stack: Stack, template: Template) -> list[str]:
        """Creation order, leaving out resources whose Condition is false."""
        scope = self._scope(stack)
        stack.conditions = scope.conditions
        for name, condition in template.body.get("Conditions", {}).items():
            scope.conditions[name] = evaluate(condition, scope)
        return [lid for lid in template.order() if _wanted(stack, template, lid)]

    def _create(self, stack: Stack, template: Template, logical_id: str) -> None:
        resource = template.resources[logical_id]
        kind = str(resource.get("Type"))
        self._emit(stack, "CREATE_IN_PROGRESS", kind, logical_id)
        try:
            props = resolve(resource.get("Properties", {}), self._scope(stack))
            physical_id, attributes = self._handler(kind).create(self, stack, logical_id, kind, props)
        except TemplateError as err:
            self._emit(stack, "CREATE_FAILED", kind, logical_id, str(err))
            raise ResourceFailed(str(err)) from err
        except ResourceFailed as failure:
            self._emit(stack, "CREATE_FAILED", kind, logical_id, failure.reason)
            if failure.physical_id:  # the rollback sends Delete with the id the failure carried
                stack.resources[logical_id] = Live(
                    logical_id, kind, failure.physical_id, props, {}, *self._policies(resource)
                )
            raise
        stack.resources[logical_id] = Live(logical_id, kind, physical_id, props, attributes, *self._policies(resource))
        self._emit(stack, "CREATE_COMPLETE", kind, logical_id)

    def _update_resource(self, stack: Stack, template: Template, logical_id: str, old: Live) -> bool:
        resource = template.resources[logical_id]
        props = resolve(resource.get("Properties", {}), self._scope(stack))
        live = stack.resources[logical_id]
        live.deletion_policy, live.update_replace_policy = self._policies(resource)
        if props == old.properties:
            return False
        self._emit(stack, "UPDATE_IN_PROGRESS", old.type, logical_id)
        self._attempt = (logical_id, props)
        try:
            self._update_live(stack, live, props)
        except ResourceFailed as failure:
            self._emit(stack, "UPDATE_FAILED", old.type, logical_id, failure.reason)
            raise
        note = f"replaced {old.physical_id} with {live.physical_id}" if live.physical_id != old.physical_id else ""
        self._emit(stack, "UPDATE_COMPLETE", old.type, logical_id, note)
        return True

    def _update_live(self, stack: Stack, live: Live, props: dict[str, Any]) -> None:
        physical_id, attributes = self._handler(live.type).update(self, stack, live, props)
        stack.resources[live.logical_id] = Live(
            live.logical_id, live.type, physical_id, props, attributes, live.deletion_policy, live.update_replace_policy
        )

    def _delete_resource(self, stack: Stack, live: Live) -> None:
        self._emit(stack, "DELETE_IN_PROGRESS", live.type, live.logical_id)
        try:
            self._handler(live.type).delete(self, stack, live)
        except ResourceFailed as failure:
            self._emit(stack, "DELETE_FAILED", live.type, live.logical_id, failure.reason)
            raise
        self._emit(stack, "DELETE_COMPLETE", live.type, live.logical_id)

    @staticmethod
    def _policies(resource: dict[str, Any]) -> tuple[str, str]:
        return str(resource.get("DeletionPolicy", "Delete")), str(resource.get("UpdateReplacePolicy", "Delete"))

    def _handler(self, kind: str) -> ResourceHandler:
        if kind.startswith("Custom::") or kind in CUSTOM:
            return CustomResourceHandler()
        return HANDLERS.get(kind, NoOpHandler())

    # -- scopes, parameters, outputs ---------------------------------------------------------------------

    def _parameters(self, template: Template, given: dict[str, str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, spec in template.body.get("Parameters", {}).items():
            if name in given:
                values[name] = given[name]
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no value and no default")
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, values[name]):
                raise TemplateError(f"parameter {name}: {values[name]!r} does not match {pattern}")
        unknown = set(given) - set(values)
        if unknown:
            raise TemplateError(f"unknown parameters {sorted(unknown)}")
        return values

    def _scope(self, stack: Stack) -> Scope:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
            "AWS::StackId": stack.stack_id,
        }

        def attribute(logical_id: str, name: str) -> str:
            live = stack.resources.get(logical_id)
            if live is None:
                raise TemplateError(f"Fn::GetAtt {logical_id}.{name}: {logical_id} does not exist (yet)")
            if name not in live.attributes:
                raise TemplateError(f"Fn::GetAtt {logical_id}.{name}: the resource has no attribute {name}")
            return live.attributes[name]

        return Scope(
            pseudo,
            dict(stack.parameters),
            {lid: live.physical_id for lid, live in stack.resources.items()},
            attribute,
            self.exports,
            stack.conditions,
        )

    def _outputs(self, stack: Stack, template: Template) -> None:
        scope = self._scope(stack)
        exported: list[str] = []
        stack.outputs = {}
        for name, output in template.body.get("Outputs", {}).items():
            value = str(resolve(output["Value"], scope))
            stack.outputs[name] = value
            if "Export" in output:
                export = str(resolve(output["Export"]["Name"], scope))
                self.exports[export] = value
                exported.append(export)
        for export in set(stack.exports) - set(exported):
            self.exports.pop(export, None)
        stack.exports = exported

    def _emit(self, stack: Stack, status: str, kind: str, logical_id: str, reason: str = "") -> None:
        elapsed = time.monotonic() - self._started
        line = f"{elapsed:7.1f}s | {stack.name:<24} | {status:<36} | {kind:<28} | {logical_id}"
        self._print(f"{line}  {reason}".rstrip())

    # -- the custom resource protocol ------------------------------------------------------------------

    def request(
        self,
        stack: Stack,
        request_type: str,
        logical_id: str,
        kind: str,
        props: dict[str, Any],
        *,
        physical_id: str = "",
        old_props: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Send one event to the ServiceToken's function and wait for its response, as CloudFormation does."""
        token = str(props.get("ServiceToken", ""))
        function = self.functions.get(token)
        if function is None:
            raise ResourceFailed(f"ServiceToken {token} is not a function in this account", physical_id)
        request_id = str(uuid.uuid4())
        key = f"{stack.name}/{logical_id}/{request_id}"
        url = self.s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=7200)
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": token,
            "ResponseURL": url,
            "StackId": stack.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": kind,
            "ResourceProperties": cfn_strings(props),
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = physical_id
        if old_props is not None:
            event["OldResourceProperties"] = cfn_strings(old_props)
        timeout = float(props.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT))
        stats = RequestStats()
        self.stats.append(stats)
        started = time.monotonic()
        self.invoke(function, event)
        stats.invocations += 1
        body = self._await_response(key, started + timeout, stats)
        stats.seconds = time.monotonic() - started
        self.runner.wait_all()
        self._check_cleanup(function)
        if body is None:
            invented = physical_id or f"{stack.name}-{logical_id}-{_suffix()}"[:MAX_PHYSICAL_ID]
            raise ResourceFailed(
                f"CloudFormation did not receive a response from your Custom Resource within {timeout:.0f}s "
                f"(RequestId {request_id})",
                invented,
            )
        response = self._validate(body, event)
        new_id = str(response["PhysicalResourceId"])
        if response["Status"] == "FAILED":
            raise ResourceFailed(str(response.get("Reason") or "no reason given"), new_id)
        return new_id, {str(k): str(v) for k, v in (response.get("Data") or {}).items()}

    def _await_response(self, key: str, deadline: float, stats: RequestStats) -> bytes | None:
        while time.monotonic() < deadline:
            try:
                return bytes(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                    raise
            self.runner.reap()
            stats.scheduled += self._fire_due_rules()
            time.sleep(0.1)
        return None

    def _fire_due_rules(self) -> int:
        """EventBridge: invoke the target of every ENABLED rate() rule whose time has come."""
        now = time.monotonic()
        if now - self._last_rule_scan >= 1.0:
            self._last_rule_scan = now
            names = {r["Name"]: r for r in self._all_rules() if r.get("State") == "ENABLED"}
            for name, rule in names.items():
                match = RATE.match(str(rule.get("ScheduleExpression", "")))
                if match and name not in self._rules:
                    unit = 3600 if match.group(2).startswith("hour") else 60
                    period = int(match.group(1)) * unit * self._schedule_scale
                    self._rule_periods[name] = period
                    self._rules[name] = now + period
            for name in [n for n in self._rules if n not in names]:
                del self._rules[name]
        fired = 0
        for name, due in list(self._rules.items()):
            if due > now:
                continue
            self._rules[name] = due + self._rule_periods[name]
            try:
                targets = self.events.list_targets_by_rule(Rule=name)["Targets"]
            except ClientError:
                continue
            for target in targets:
                function = self.functions.get(":".join(str(target["Arn"]).split(":")[:7]))
                if function is not None:
                    self.invoke(function, json.loads(target.get("Input", "{}")))
                    fired += 1
        return fired

    def _all_rules(self) -> list[dict[str, Any]]:
        return list(self.events.list_rules().get("Rules", []))

    def _check_cleanup(self, function: Function) -> None:
        """After a request, no polling rule may target the function and no permission may remain."""
        found = [f"rule {rule['Name']} left behind" for rule in self._all_rules()]  # only the provider makes rules
        try:
            policy = json.loads(self.lambda_.get_policy(FunctionName=function.name)["Policy"])
            found += [f"permission {s.get('Sid')} left on {function.name}" for s in policy.get("Statement", [])]
        except ClientError:
            pass
        for leak in found:
            self._print(f"        ! {leak}")
        self.leaks.extend(found)

    def _validate(self, body: bytes, event: dict[str, Any]) -> dict[str, Any]:
        """The checks CloudFormation applies to a response, plus the physical id rules."""

        def bad(problem: str) -> ResourceFailed:
            self.violations.append(f"{event['LogicalResourceId']} {event['RequestType']}: {problem}")
            return ResourceFailed(f"Invalid response: {problem}", str(event.get("PhysicalResourceId", "")))

        if len(body) > MAX_RESPONSE:
            raise bad(f"Response object is too long ({len(body)} bytes)")
        try:
            response = json.loads(body)
        except ValueError as err:
            raise bad("the body is not JSON") from err
        if response.get("Status") not in ("SUCCESS", "FAILED"):
            raise bad(f"Status {response.get('Status')!r}")
        for name in ("StackId", "RequestId", "LogicalResourceId"):
            if response.get(name) != event[name]:
                raise bad(f"{name} {response.get(name)!r} does not match the request")
        physical_id = response.get("PhysicalResourceId")
        if not isinstance(physical_id, str) or not physical_id or len(physical_id) > MAX_PHYSICAL_ID:
            raise bad("PhysicalResourceId must be a non-empty string of at most 1 KB")
        if response["Status"] == "FAILED" and not response.get("Reason"):
            raise bad("a FAILED response needs a Reason")
        if event["RequestType"] == "Delete" and physical_id != event["PhysicalResourceId"]:
            raise bad(f"Delete answered with physical id {physical_id}, not {event['PhysicalResourceId']}")
        data = response.get("Data") or {}
        if not isinstance(data, dict):
            raise bad("Data must be an object")
        return dict(response)

    # -- functions and fleets ------------------------------------------------------------------------------

    def invoke(self, function: Function, event: dict[str, Any]) -> None:
        """Lambda runs the function with its role: the local AppStream service enforces the role's policies."""
        policies = self.role_policies(function)
        if policies is not None:
            role = function.role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
            self.appstream_control(
                "/_local/iam/principals",
                {
                    "access_key": function.environment["AWS_ACCESS_KEY_ID"],
                    "arn": f"{role}/{function.name}",
                    "policies": policies,
                },
            )
        self.runner.invoke(function, event)

    def role_policies(self, function: Function) -> list[dict[str, Any]] | None:
        """The policy documents of the function's role (inline and AWS::IAM::Policy); None: no role found."""
        stack = self.stacks.get(function.stack)
        if stack is None:
            return None
        role = next(
            (
                live
                for live in stack.resources.values()
                if live.type == "AWS::IAM::Role" and live.attributes.get("Arn") == function.role_arn
            ),
            None,
        )
        if role is None:
            return None
        documents = [dict(p["PolicyDocument"]) for p in role.properties.get("Policies", [])]
        documents += [
            dict(live.properties["PolicyDocument"])
            for live in stack.resources.values()
            if live.type == "AWS::IAM::Policy" and role.physical_id in live.properties.get("Roles", [])
        ]
        return documents

    def register_function(
        self,
        name: str,
        code_dir: Path,
        handler: str,
        timeout: float,
        memory: int,
        *,
        role: str = "",
        stack: str = "",
        environment: dict[str, str] | None = None,
    ) -> Function:
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        timeout = self._function_timeout if self._function_timeout is not None else timeout
        key = "ASIA" + hashlib.sha256(arn.encode()).hexdigest()[:16].upper()  # this function's role credentials
        variables = {**(environment or {}), "AWS_ACCESS_KEY_ID": key}
        function = Function(name, arn, code_dir, handler, timeout, memory, variables, role, stack)
        self.functions[arn] = function
        self.lambda_.create_function(
            FunctionName=name,
            Runtime="python3.14",
            Role=self._role,
            Handler=handler,
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
            Timeout=int(timeout),
        )
        return function

    def unregister_function(self, arn: str) -> None:
        function = self.functions.pop(arn, None)
        if function is not None:
            self.lambda_.delete_function(FunctionName=function.name)

    def appstream_control(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - the local service's loopback URL
            f"{self.appstream_url}{path}", data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def fleet_switch_seconds(self) -> float:
        return self._fleet_switch


class ResourceHandler:
    """How the driver creates, updates and deletes one resource type."""

    def create(
        self, cloud: Cloud, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]
    ) -> tuple[str, dict[str, str]]:
        physical_id = f"{stack.name}-{logical_id}-{_suffix()}"
        return physical_id, {"Arn": f"arn:aws:local:{REGION}:{ACCOUNT}:{kind}/{physical_id}"}

    def update(self, cloud: Cloud, stack: Stack, live: Live, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
        return live.physical_id, live.attributes

    def delete(self, cloud: Cloud, stack: Stack, live: Live) -> None:
        return


class NoOpHandler(ResourceHandler):
    """Resources the offline mode only records (roles, policies, log groups, outputs ...)."""


class CustomResourceHandler(ResourceHandler):
    def create(
        self, cloud: Cloud, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]
    ) -> tuple[str, dict[str, str]]:
        return cloud.request(stack, "Create", logical_id, kind, props)

    def update(self, cloud: Cloud, stack: Stack, live: Live, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
        return cloud.request(
            stack, "Update", live.logical_id, live.type, props, physical_id=live.physical_id, old_props=live.properties
        )

    def delete(self, cloud: Cloud, stack: Stack, live: Live) -> None:
        cloud.request(stack, "Delete", live.logical_id, live.type, live.properties, physical_id=live.physical_id)


class FunctionHandler(ResourceHandler):
    """AWS::Lambda::Function with its code from the cloud assembly's asset directory."""

    def create(
        self, cloud: Cloud, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]
    ) -> tuple[str, dict[str, str]]:
        name = str(props.get("FunctionName") or f"{stack.name}-{logical_id}-{_suffix()}"[:64])
        function = cloud.register_function(
            name,
            self._code_dir(stack, props),
            str(props["Handler"]),
            float(props.get("Timeout", 3)),
            int(props.get("MemorySize", 128)),
            role=str(props.get("Role", "")),
            stack=stack.name,
            environment=_variables(props),
        )
        return name, {"Arn": function.arn}

    def update(self, cloud: Cloud, stack: Stack, live: Live, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
        cloud.unregister_function(live.attributes["Arn"])
        function = cloud.register_function(
            live.physical_id,
            self._code_dir(stack, props),
            str(props["Handler"]),
            float(props.get("Timeout", 3)),
            int(props.get("MemorySize", 128)),
            role=str(props.get("Role", "")),
            stack=stack.name,
            environment=_variables(props),
        )
        return live.physical_id, {"Arn": function.arn}

    def delete(self, cloud: Cloud, stack: Stack, live: Live) -> None:
        cloud.unregister_function(live.attributes.get("Arn", ""))

    @staticmethod
    def _code_dir(stack: Stack, props: dict[str, Any]) -> Path:
        code = props.get("Code", {})
        key = str(code.get("S3Key", ""))
        if stack.template.path is None or not key.endswith(".zip"):
            raise ResourceFailed("only functions whose code is a cloud assembly asset (S3Key <hash>.zip) can run")
        directory = stack.template.path.parent / f"asset.{key[: -len('.zip')]}"
        if not directory.is_dir():
            raise ResourceFailed(f"asset directory {directory.name} is missing from the cloud assembly")
        return directory


class FleetHandler(ResourceHandler):
    """AWS::AppStream::Fleet in the local AppStream service: what makes an image 'in use'."""

    def create(
        self, cloud: Cloud, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]
    ) -> tuple[str, dict[str, str]]:
        name = str(props.get("Name") or f"{stack.name}-{logical_id}")
        cloud.appstream_control("/_local/fleets/create", {"name": name, "image_name": props.get("ImageName", "")})
        return name, {"Arn": f"arn:aws:appstream:{REGION}:{ACCOUNT}:fleet/{name}"}

    def update(self, cloud: Cloud, stack: Stack, live: Live, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
        # A fleet keeps streaming the old image until its instances recycle, then lets go of it.
        cloud.appstream_control(
            "/_local/fleet",
            {
                "name": live.physical_id,
                "image_name": props.get("ImageName", ""),
                "after_seconds": cloud.fleet_switch_seconds(),
            },
        )
        return live.physical_id, live.attributes

    def delete(self, cloud: Cloud, stack: Stack, live: Live) -> None:
        cloud.appstream_control("/_local/fleets/delete", {"name": live.physical_id})


class RoleHandler(ResourceHandler):
    """AWS::IAM::Role: recorded, with the Arn IAM gives it (its policies are read when functions run)."""

    def create(
        self, cloud: Cloud, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]
    ) -> tuple[str, dict[str, str]]:
        name = str(props.get("RoleName") or f"{stack.name}-{logical_id}-{_suffix()}"[:64])
        return name, {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "RoleId": f"AROA{_suffix(16)}"}


HANDLERS: dict[str, ResourceHandler] = {
    "AWS::IAM::Role": RoleHandler(),
    "AWS::Lambda::Function": FunctionHandler(),
    "AWS::AppStream::Fleet": FleetHandler(),
}

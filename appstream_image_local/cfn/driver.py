"""The local driver's engine: plays CloudFormation's part for templates that use Custom::AppStreamImage.

It orders resources by their dependencies, resolves intrinsics, creates, updates and deletes them
through their handlers (handlers.py), sends custom resources CloudFormation's events and checks
their answers (protocol.py), fires polling rules (scheduler.py) and EventBridge Scheduler's one-time
schedules (schedules.py), runs functions with their roles
(functions.py), honours ServiceTimeout and the Retain policies, and rolls back failed deployments.
The stack model lives in model.py.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local.cfn.functions import Functions
from appstream_image_local.cfn.graph import first_resource_failure, in_parallel
from appstream_image_local.cfn.handlers import handler_for
from appstream_image_local.cfn.intrinsics import evaluate, resolve
from appstream_image_local.cfn.invoker import QUEUE_DELAY
from appstream_image_local.cfn.lambda_runner import LambdaRunner, default_environment
from appstream_image_local.cfn.model import ACCOUNT, REGION, Live, RequestStats, ResourceFailed, Stack, StackFailed
from appstream_image_local.cfn.protocol import Requests
from appstream_image_local.cfn.rollback import Rollbacks
from appstream_image_local.cfn.scheduler import Scheduler
from appstream_image_local.cfn.schedules import Schedules
from appstream_image_local.cfn.scopes import Scopes
from appstream_image_local.cfn.services import Services
from appstream_image_local.cfn.template import Template, TemplateError
from appstream_image_local.moto_tls import MotoTls

__all__ = ["Cloud", "ResourceFailed", "Stack", "StackFailed"]
CLOUDFORMATION_ENDPOINT = "AWS_ENDPOINT_URL_CLOUDFORMATION"  # boto3's per-service endpoint setting
NO_API = "http://127.0.0.1:9"  # the driver alone: a closed loopback port, so a function never reaches AWS's own
BOOTSTRAP_VERSION = "33"  # node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml (CLI 2.1148)


@functools.cache
def _models() -> botocore.loaders.Loader:
    """One reader of botocore's model files for every driver of this process (it keeps what it has read)."""
    return botocore.loaders.create_loader()


def _botocore_session() -> botocore.session.Session:
    """A session of its own (sessions are not shared across threads) whose models are read once per process: six
    clients' models cost a driver about 150 ms of CPU otherwise, and tests start hundreds of drivers."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _models())
    return session


def _wanted(stack: Stack, template: Template, logical_id: str) -> bool:
    condition = template.resources[logical_id].get("Condition")
    return condition is None or stack.conditions.get(str(condition), False)


class Cloud(Rollbacks, Scopes):
    """CloudFormation, Lambda and EventBridge for one account and region (`region`), on this machine."""

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
        handle_scale: float | None = None,
        queue_delay: float = QUEUE_DELAY,
        retry_scale: float = 1.0,
        region: str = REGION,
    ) -> None:
        """`function_timeout` overrides every function's Timeout (as editing the template would);
        `schedule_scale` shortens EventBridge's waits: rate() rules' periods (0.1: a rate(1 minute) rule fires every
        6 s) and the delay of one-time at() schedules (0.1: a run set 2-3 minutes ahead fires in 12-18 s);
        `handle_scale` shortens a wait condition handle URL's 24-hour life (None: as `schedule_scale` does);
        `queue_delay` is Lambda's time from CloudFormation's send to the handler's start, and
        `retry_scale` shortens Lambda's retry delays (1 and 2 minutes) for asynchronous invocations.
        `region` is this CloudFormation's region (its stacks', functions' and rules'; one Cloud per region).
        Nothing is called here: the response bucket is made before the first request."""
        self.region = region
        self.appstream_url = appstream_url
        self.moto = moto
        self.workdir = workdir
        self.fleet_switch = fleet_switch_seconds
        self.exports: dict[str, str] = {}
        self.stacks: dict[str, Stack] = {}
        self._print = printer
        self._function_timeout = function_timeout
        self._started = time.monotonic()
        self._attempts: dict[str, dict[str, Any]] = {}  # resources whose update failed: the properties tried
        #: called with (stack, status, resource type, logical id, reason) for every event (the local API's)
        self.listeners: list[Callable[[Stack, str, str, str, str], None]] = []
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto ignores credentials
            region_name=region,
            botocore_session=_botocore_session(),
        )
        config = Config(retries={"mode": "standard"}, s3={"addressing_style": "path"}, signature_version="s3v4")
        self.s3 = session.client("s3", endpoint_url=moto.url, verify=str(moto.cert), config=config)
        self.events = session.client("events", endpoint_url=moto.url, verify=str(moto.cert))
        self.ssm = session.client("ssm", endpoint_url=moto.url, verify=str(moto.cert))
        self.ecr = session.client("ecr", endpoint_url=moto.url, verify=str(moto.cert))
        lambda_client = session.client("lambda", endpoint_url=moto.url, verify=str(moto.cert))
        iam = session.client("iam", endpoint_url=moto.url, verify=str(moto.cert))
        # Lambda sets both region variables (developer guide, "Defined runtime environment variables"); boto3 reads
        # AWS_DEFAULT_REGION.
        variables = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
        env = default_environment(
            {**moto.env(), "AWS_ENDPOINT_URL_APPSTREAM": appstream_url, CLOUDFORMATION_ENDPOINT: NO_API, **variables}
        )
        self.runner = LambdaRunner(env, workdir / "logs")
        self.functions = Functions(self.runner, lambda_client, iam, appstream_url, self.stacks, region=region)
        self.functions.invoker.queue_delay, self.functions.invoker.retry_scale = queue_delay, retry_scale
        self.scheduler = Scheduler(self.events, schedule_scale)
        self.schedules = Schedules(self.stacks, scale=schedule_scale, region=region)
        self.requests = Requests(
            self.s3, self.functions, self.scheduler, self.runner, printer, schedules=self.schedules,
            handle_scale=schedule_scale if handle_scale is None else handle_scale,
        )  # fmt: skip
        #: what resource handlers may use (not this engine)
        self.services = Services(
            self.s3, self.ssm, self.ecr, self.functions, self.requests, workdir, fleet_switch_seconds,
            self.function_timeout,
        )  # fmt: skip

    def serve_api(self, url: str | None) -> None:
        """The local CloudFormation API in front of this driver answers at `url` (None: no longer).

        Functions then reach it as boto3 reaches CloudFormation (the provider's DescribeStacks), signed with
        their role's key, which the API checks against the role's policies. The driver alone has no API:
        the variable names a closed loopback port and such a call fails (never reaching AWS).
        """
        self.runner.set_variable(CLOUDFORMATION_ENDPOINT, url or NO_API)

    def function_timeout(self, timeout: float) -> float:
        """A function's Timeout, or the override this Cloud was made with."""
        return self._function_timeout if self._function_timeout is not None else timeout

    # -- stack operations ------------------------------------------------------------------------------

    def deploy(self, name: str, template_path: str | Path, parameters: dict[str, str] | None = None) -> Stack:
        """Create the stack, or update it when it exists; roll back on failure (then raise StackFailed).

        Deploying a cloud assembly's template directly, the driver plays the CDK CLI's part: the
        account counts as bootstrapped and assets are read beside the template (handlers.py).
        Through the local CloudFormation API (`cdk bootstrap`, `cdk deploy`) neither applies.
        """
        template = Template.load(template_path)
        self._bootstrapped(template)
        return self.deploy_template(name, template, parameters)

    def _bootstrapped(self, template: Template) -> None:
        """The bootstrap version parameter a CDK template reads, as `cdk bootstrap` leaves it."""
        for spec in template.parameters.values():
            name = str(spec.get("Default", ""))
            if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value<") and name.startswith(
                "/cdk-bootstrap/"
            ):
                try:
                    self.ssm.get_parameter(Name=name)
                except ClientError:  # the version the pinned CLI's bootstrap template writes
                    self.ssm.put_parameter(Name=name, Value=BOOTSTRAP_VERSION, Type="String")

    def deploy_template(
        self, name: str, template: Template, parameters: dict[str, str] | None = None, *, stack_id: str = ""
    ) -> Stack:
        """`deploy` for a parsed template (e.g. from the local CloudFormation API, which names the stack id)."""
        if name in self.stacks:
            return self._update(self.stacks[name], template, parameters or {})
        stack_id = stack_id or f"arn:aws:cloudformation:{self.region}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}"
        stack = Stack(name, stack_id, template)
        try:
            stack.parameters = self.parameters(template, parameters or {})
            self.check_rules(name, template, stack.parameters)
        except TemplateError as error:
            raise StackFailed(f"{name}: {error}") from error
        self.stacks[name] = stack
        started = time.monotonic()
        self._emit(stack, "CREATE_IN_PROGRESS", "AWS::CloudFormation::Stack", name)
        try:
            self._each_in_order(stack, template, lambda logical_id: self._create(stack, template, logical_id))
            taken = self.exports_taken(stack, template)
            if taken:  # the outputs are set once every resource is
                raise ResourceFailed(taken)
        except ResourceFailed as failure:
            self._emit(stack, "ROLLBACK_IN_PROGRESS", "AWS::CloudFormation::Stack", name, failure.reason)
            left = self._delete_all(stack, template, rollback=True)
            if left:  # a delete that fails while a failed create rolls back leaves ROLLBACK_FAILED (user guide)
                stack.status = "ROLLBACK_FAILED"
                self._emit(stack, "ROLLBACK_FAILED", "AWS::CloudFormation::Stack", name,
                           f"The following resource(s) failed to delete: [{', '.join(left)}].")  # fmt: skip
                raise StackFailed(f"{name}: {failure.reason}") from failure
            stack.status = "ROLLBACK_COMPLETE"
            self._emit(stack, "ROLLBACK_COMPLETE", "AWS::CloudFormation::Stack", name)
            del self.stacks[name]
            raise StackFailed(f"{name}: {failure.reason}") from failure
        self._outputs(stack, template)
        self.requests.check_quiet()
        stack.status = "CREATE_COMPLETE"
        self._emit(
            stack, "CREATE_COMPLETE", "AWS::CloudFormation::Stack", name, f"in {time.monotonic() - started:.1f}s"
        )
        return stack

    def destroy(self, name: str, retain: tuple[str, ...] = ()) -> None:
        """Delete the stack; `retain` (DeleteStack's RetainResources, for a DELETE_FAILED stack) are left."""
        stack = self.stacks[name]
        started = time.monotonic()
        self._emit(stack, "DELETE_IN_PROGRESS", "AWS::CloudFormation::Stack", name)
        in_use = self.exports_in_use(stack, None)
        if in_use:  # nothing is deleted while another stack imports one of its exports
            stack.status = "DELETE_FAILED"
            self._emit(stack, "DELETE_FAILED", "AWS::CloudFormation::Stack", name, f"Delete canceled. {in_use}")
            raise StackFailed(f"{name}: Delete canceled. {in_use}")
        for export in stack.exports.values():
            self.exports.pop(export, None)
        for logical_id in retain:
            live = stack.resources.pop(logical_id, None)
            if live is not None:
                self._emit(stack, "DELETE_SKIPPED", live.type, logical_id, f"{live.physical_id} retained")
        try:
            self._delete_all(stack, stack.template, rollback=False)
        except ResourceFailed as failure:
            stack.status = "DELETE_FAILED"
            self._emit(stack, "DELETE_FAILED", "AWS::CloudFormation::Stack", name, failure.reason)
            raise StackFailed(f"{name}: {failure.reason}") from failure
        del self.stacks[name]
        self.requests.check_quiet()
        self._emit(
            stack, "DELETE_COMPLETE", "AWS::CloudFormation::Stack", name, f"in {time.monotonic() - started:.1f}s"
        )

    def _update(self, stack: Stack, template: Template, parameters: dict[str, str]) -> Stack:
        old_template, old_resources = stack.template, dict(stack.resources)
        old_parameters = stack.parameters
        try:
            new_parameters = self.parameters(template, parameters)
            self.check_rules(stack.name, template, new_parameters)
        except TemplateError as error:
            raise StackFailed(f"{stack.name}: {error}") from error
        stack.template, stack.parameters = template, new_parameters
        started = time.monotonic()
        self._emit(stack, "UPDATE_IN_PROGRESS", "AWS::CloudFormation::Stack", stack.name)
        created: list[str] = []
        changed: dict[str, Live] = {}
        self._attempts = {}
        lock = threading.Lock()

        def act(logical_id: str) -> None:
            if logical_id not in old_resources:
                self._create(stack, template, logical_id)
                with lock:
                    created.append(logical_id)
            elif self._update_resource(stack, template, logical_id, old_resources[logical_id]):
                with lock:
                    changed[logical_id] = old_resources[logical_id]

        try:
            self._each_in_order(stack, template, act)
            refused = self.exports_in_use(stack, template) or self.exports_taken(stack, template)
            if refused:  # the outputs are set once every resource is: an export another stack imports must stay
                raise ResourceFailed(refused)
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
            self._rolled_back(stack)
            raise StackFailed(f"{stack.name}: {failure.reason}") from failure
        self._clean_up(stack, template, old_template, old_resources)
        self._outputs(stack, template)
        self.requests.check_quiet()
        stack.status = "UPDATE_COMPLETE"
        self._emit(
            stack, "UPDATE_COMPLETE", "AWS::CloudFormation::Stack", stack.name, f"in {time.monotonic() - started:.1f}s"
        )
        return stack

    # -- one resource ------------------------------------------------------------------------------------

    def _ordered(self, stack: Stack, template: Template) -> list[str]:
        """Creation order, leaving out resources whose Condition is false."""
        scope = self._scope(stack)
        stack.conditions = scope.conditions
        for name, condition in template.body.get("Conditions", {}).items():
            scope.conditions[name] = evaluate(condition, scope)
        return [lid for lid in template.order() if _wanted(stack, template, lid)]

    def _each_in_order(self, stack: Stack, template: Template, act: Callable[[str], None]) -> None:
        """Each wanted resource after what it needs, independent ones at once; the first failure cancels the rest."""
        _, failed = in_parallel(
            self._ordered(stack, template),
            template.dependencies,
            act,
            on_failure=lambda: self.requests.cancel(stack.name),
        )
        self.requests.resume(stack.name)
        failure = first_resource_failure(failed)
        if failure is not None:
            raise failure

    def _create(self, stack: Stack, template: Template, logical_id: str) -> None:
        resource = template.resources[logical_id]
        kind = str(resource.get("Type"))
        self._emit(stack, "CREATE_IN_PROGRESS", kind, logical_id)
        try:
            props = resolve(resource.get("Properties", {}), self._scope(stack))
            physical_id, attributes = handler_for(kind).create(self.services, stack, logical_id, kind, props)
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
        try:
            self._update_live(stack, live, props)
        except ResourceFailed as failure:
            self._emit(stack, "UPDATE_FAILED", old.type, logical_id, failure.reason)
            if not failure.untouched:  # it was sent: the rollback sends it an Update back
                self._attempts[logical_id] = props
            raise
        note = f"replaced {old.physical_id} with {live.physical_id}" if live.physical_id != old.physical_id else ""
        self._emit(stack, "UPDATE_COMPLETE", old.type, logical_id, note)
        return True

    def _update_live(self, stack: Stack, live: Live, props: dict[str, Any]) -> None:
        physical_id, attributes = handler_for(live.type).update(self.services, stack, live, props)
        stack.resources[live.logical_id] = Live(
            live.logical_id, live.type, physical_id, props, attributes, live.deletion_policy, live.update_replace_policy
        )

    def _delete_resource(self, stack: Stack, live: Live) -> None:
        self._emit(stack, "DELETE_IN_PROGRESS", live.type, live.logical_id)
        try:
            handler_for(live.type).delete(self.services, stack, live)
        except ResourceFailed as failure:
            self._emit(stack, "DELETE_FAILED", live.type, live.logical_id, failure.reason)
            raise
        self._emit(stack, "DELETE_COMPLETE", live.type, live.logical_id)

    @staticmethod
    def _policies(resource: dict[str, Any]) -> tuple[str, str]:
        return str(resource.get("DeletionPolicy", "Delete")), str(resource.get("UpdateReplacePolicy", "Delete"))

    def _emit(self, stack: Stack, status: str, kind: str, logical_id: str, reason: str = "") -> None:
        for listener in self.listeners:
            listener(stack, status, kind, logical_id, reason)
        elapsed = time.monotonic() - self._started
        line = f"{elapsed:7.1f}s | {stack.name:<24} | {status:<36} | {kind:<28} | {logical_id}"
        self._print(f"{line}  {reason}".rstrip())

    # -- the custom resource protocol ------------------------------------------------------------------

    def close(self) -> None:
        """Stop Lambda's and EventBridge's background work (the offline cloud is going away)."""
        self.requests.close()

    @property
    def leaks(self) -> list[str]:
        return self.requests.leaks

    @property
    def violations(self) -> list[str]:
        return self.requests.violations

    @property
    def stats(self) -> list[RequestStats]:
        return self.requests.stats

"""The provider function: one per stack (a stack-scoped singleton), its local asset, and the schedule group and
execution role of its scheduled polling (EventBridge Scheduler); its IAM is provider_iam.py's `ProviderPolicies`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from . import asset
from ._shared import contract
from .provider_iam import SCHEDULER, ProviderPolicies, acknowledge, image_arn

# acknowledge and image_arn lived here before provider_iam.py: provider_stack.py imports acknowledge from here.
__all__ = ["FUNCTION_NAME", "ImageProvider", "ProviderOptions", "acknowledge", "image_arn"]

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True, kw_only=True)
class ProviderOptions:
    """Settings of a stack's provider function (compare the CDK Provider framework's). Defaults in comments."""

    memory_size: int = 128  #: MB; 128 is enough (see bench/results.md)
    function_name: str | None = None  #: default: a name CloudFormation generates
    role: iam.IRole | None = None  #: default: a role made for it; the provider's policies attach to either
    permissions_boundary: iam.IManagedPolicy | None = None  #: default: none; applied to the roles it makes
    #: default: not in a VPC. In one, it needs a route (NAT or VPC endpoints) to AppStream, EventBridge Scheduler,
    #: EventBridge, Lambda, S3.
    vpc: ec2.IVpc | None = None
    vpc_subnets: ec2.SubnetSelection | None = None  #: default: the VPC's private subnets (needs `vpc`)
    security_groups: tuple[ec2.ISecurityGroup, ...] = ()  #: default: one made by the function (needs `vpc`)
    log_retention: logs.RetentionDays | None = None  #: default: one month, for the log group it makes
    log_group: logs.ILogGroup | None = None  #: default: a log group made for it (then not `log_retention`)

    def problems(self) -> list[str]:
        """Each bad combination, naming the field."""
        checks = [
            (not 128 <= self.memory_size <= 10240, f"memory_size: {self.memory_size} MB is outside 128-10240"),
            (
                self.function_name is not None
                and not Token.is_unresolved(self.function_name)
                and not FUNCTION_NAME.match(self.function_name),
                f"function_name: {self.function_name!r} must be 1-64 letters, digits, - or _",
            ),
            (self.role is not None and self.permissions_boundary is not None,
             "permissions_boundary: applies to the role the provider makes; apply it to your own role yourself"),
            (self.vpc is None and (self.vpc_subnets is not None or bool(self.security_groups)),
             "vpc_subnets / security_groups: need vpc"),
            (self.log_group is not None and self.log_retention is not None,
             "log_retention: set it on your own log_group instead"),
        ]  # fmt: skip
        return [message for failed, message in checks if failed]


class ImageProvider(ProviderPolicies):
    """The Lambda behind Custom::AppStreamImage; use `ImageProvider.of(scope)` for the stack's one copy.

    Image actions are allowed only on the images granted with `grant_images` (names or
    `prefix*` patterns) and, for CopyImage / CreateUpdatedImage, their sources; DeleteImage (and
    CreateImportedImage) only on images whose ownership tag matches `owners` (default: this stack's,
    `contract.owner_pattern(stack name)`; `owned_by_any_stack()` for a provider other stacks use).
    """

    ID = "AppStreamImageProvider"

    @classmethod
    def of(
        cls, scope: Construct, options: ProviderOptions | None = None, *, code: lambda_.Code | None = None
    ) -> ImageProvider:
        """The stack's provider, made with `options` on first use; later uses must not ask for other options.

        `code` (default: the bundled asset, published by `cdk deploy`) replaces the function's code,
        e.g. `Code.from_bucket` for a template deployed without the CDK.
        """
        stack = Stack.of(scope)
        found = stack.node.try_find_child(cls.ID)
        if isinstance(found, ImageProvider):
            if options is not None and options != found.options:
                raise ValueError(
                    f"provider_options: {stack.node.path}'s provider already exists with other options; "
                    "give every AppStreamImage of a stack the same ProviderOptions"
                )
            return found
        return cls(stack, cls.ID, options=options or ProviderOptions(), code=code)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: ProviderOptions = ProviderOptions(),
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        problems = options.problems()
        if problems:
            raise ValueError(f"{self.node.path}: " + "; ".join(problems))
        self.options = options
        stack = Stack.of(self)
        self.log_group: logs.ILogGroup = options.log_group or logs.LogGroup(
            self,
            "Logs",
            retention=options.log_retention or logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = options.role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Custom::AppStreamImage provider",
        )
        #: the schedule group of this provider's polling: its role may manage schedules in this group only
        self.schedule_group = scheduler.CfnScheduleGroup(self, "Schedules")
        group = self.schedule_group.ref
        group_arn = stack.format_arn(service="scheduler", resource="schedule-group", resource_name=group)
        #: the role the polling's schedules invoke the function with (EventBridge Scheduler's execution role)
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            # EventBridge Scheduler user guide, "Confused deputy prevention": the account and the schedule group.
            assumed_by=iam.ServicePrincipal(
                SCHEDULER,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": group_arn},
                },
            ),
            description="Custom::AppStreamImage provider: EventBridge Scheduler invokes the provider with it",
        )
        if options.permissions_boundary is not None:
            iam.PermissionsBoundary.of(self.role).apply(options.permissions_boundary)
            iam.PermissionsBoundary.of(self.scheduler_role).apply(options.permissions_boundary)
        if options.vpc is not None and options.role is None:
            vpc_access = iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
            self.role.add_managed_policy(vpc_access)
            Validations.of(self.role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaVPCAccessExecutionRole]",
                    reason="Lambda's own policy for the network interfaces a function in a VPC needs",
                )
            )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_13,  # supported until 30 June 2029 (Lambda runtimes page)
            architecture=lambda_.Architecture.ARM_64,
            memory_size=options.memory_size,
            function_name=options.function_name,
            timeout=Duration.minutes(15),  # inline waits run until 10 s before this, then scheduled polling
            # CloudFormation invokes asynchronously: Lambda's retries of a timed-out or crashed run (1 and 2
            # minutes later) would start work after the answer; EventInvokeConfig turns them off.
            retry_attempts=0,
            handler=asset.HANDLER,
            code=code or lambda_.Code.from_asset(str(asset.build())),
            role=self.role,
            log_group=self.log_group,
            vpc=options.vpc,
            vpc_subnets=options.vpc_subnets,
            security_groups=list(options.security_groups) or None,
            # Lambda writes JSON lines (provider/logs.py adds context and redaction) at this level.
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            description="Custom::AppStreamImage: create, update and delete AppStream images, waiting until done",
            environment={
                contract.SCOPE_ENV: "the images this stack declares",
                contract.SCHEDULE_GROUP_ENV: self.schedule_group.ref,
                contract.SCHEDULER_ROLE_ENV: self.scheduler_role.role_arn,
            },
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-L1",
                reason="python3.13 on purpose: Lambda supports it until 30 June 2029, and sources disagree on the "
                "newer runtime's deprecation date (docs/contributing.md, Which Python)",
            )
        )
        self.log_group.grant_write(self.role)
        self._grant_provider_access()

    @property
    def service_token(self) -> str:
        return self.function.function_arn

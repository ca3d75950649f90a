"""Which IAM question each AppStream call asks: the action, the image ARNs, the condition values."""

from __future__ import annotations

from typing import Any

from appstream_image_local.appstream.model import AppStreamBackend
from appstream_image_local.iam import Context, Decision, Principal, action_definition

# Request members naming images (by name or ARN); Service Authorization Reference: these take image ARNs.
IMAGE_NAMES = {
    "DeleteImage": ("Name",),
    "CopyImage": ("SourceImageName", "DestinationImageName"),
    "CreateUpdatedImage": ("existingImageName", "newImageName"),
    "CreateImportedImage": ("Name",),
    "UpdateImagePermissions": ("Name",),
    "DeleteImagePermissions": ("Name",),
    "DescribeImagePermissions": ("Name",),
}
IMAGE_ARNS = {"TagResource": "ResourceArn", "UntagResource": "ResourceArn", "ListTagsForResource": "ResourceArn"}
REQUEST_TAGS = {"TagResource": "Tags", "CreateUpdatedImage": "newImageTags", "CreateImportedImage": "Tags"}
UNTAG_KEYS = {"UntagResource": "TagKeys"}


def _context(keys: frozenset[str], resource_tags: dict[str, str], params: dict[str, Any], operation: str) -> Context:
    context: Context = {}
    if "aws:ResourceTag/${TagKey}" in keys:
        context.update({f"aws:ResourceTag/{k}": [v] for k, v in resource_tags.items()})
    tags = params.get(REQUEST_TAGS.get(operation, "")) or {}
    if "aws:RequestTag/${TagKey}" in keys:
        context.update({f"aws:RequestTag/{k}": [str(v)] for k, v in tags.items()})
    if "aws:TagKeys" in keys:
        tag_keys = list(tags) or list(params.get(UNTAG_KEYS.get(operation, "")) or [])
        if tag_keys:
            context["aws:TagKeys"] = tag_keys
    return context


def authorize(backend: AppStreamBackend, principal: Principal, operation: str, params: dict[str, Any]) -> Decision:
    """The first denial among the resources the call touches, or an allow."""
    action = f"appstream:{operation}"
    resource_level, keys = action_definition("appstream", operation)
    arns: list[str] = []
    if resource_level:
        arns += [backend.image_arn(str(params[m])) for m in IMAGE_NAMES.get(operation, ()) if m in params]
        if operation in IMAGE_ARNS:
            arns.append(str(params[IMAGE_ARNS[operation]]))
    decision = Decision(True, action, "*")
    for arn in arns or ["*"]:
        context = _context(keys, backend.tags_of_arn(arn), params, operation)
        decision = principal.decide(action, arn, context)
        if not decision.allowed:
            return decision
    return decision


def denial_message(principal: Principal, decision: Decision) -> str:
    """As AWS words it."""
    return (
        f"User: {principal.arn} is not authorized to perform: {decision.action} on resource: "
        f"{decision.resource} {decision.reason}"
    )

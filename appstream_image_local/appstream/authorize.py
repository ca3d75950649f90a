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
# Actions with no resource ARN ("*") whose aws:ResourceTag is the named image's (Service Authorization Reference:
# CreateExportImageTask lists only aws:ResourceTag/${TagKey}, on "*").
TAGS_OF_NAMED = {"CreateExportImageTask": "ImageName"}
IMAGE_ARNS = {"TagResource": "ResourceArn", "UntagResource": "ResourceArn", "ListTagsForResource": "ResourceArn"}
REQUEST_TAGS = {"TagResource": "Tags", "CreateUpdatedImage": "newImageTags", "CreateImportedImage": "Tags"}
UNTAG_KEYS = {"UntagResource": "TagKeys"}
# Calls that hand AppStream a role: the caller needs iam:PassRole on it, passed to AppStream (IAM user guide,
# "Grant a user permissions to pass a role to an AWS service").
PASSES_ROLE = {"CreateImportedImage": "IamRoleArn", "CreateExportImageTask": "IamRoleArn"}
APPSTREAM = "appstream.amazonaws.com"


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
        if operation == "CopyImage" and params.get("DestinationRegion") not in (None, backend.region):
            # The copy is made in DestinationRegion: its ARN names that region (the source's names this one).
            here = backend.image_arn(str(params["DestinationImageName"]))
            there = here.replace(f":appstream:{backend.region}:", f":appstream:{params['DestinationRegion']}:", 1)
            arns = [there if arn == here else arn for arn in arns]
        if operation in IMAGE_ARNS:
            arns.append(str(params[IMAGE_ARNS[operation]]))
    decision = Decision(True, action, "*")
    named = params.get(TAGS_OF_NAMED.get(operation, ""))
    for arn in arns or ["*"]:
        tags = backend.tags_of_arn(backend.image_arn(str(named)) if arn == "*" and named else arn)
        context = _context(keys, tags, params, operation)
        decision = principal.decide(action, arn, context)
        if not decision.allowed:
            return decision
    role = params.get(PASSES_ROLE.get(operation, ""))
    if role:
        decision = principal.decide("iam:PassRole", str(role), {"iam:PassedToService": [APPSTREAM]})
    return decision


def denial_message(principal: Principal, decision: Decision) -> str:
    """As AWS words it."""
    return (
        f"User: {principal.arn} is not authorized to perform: {decision.action} on resource: "
        f"{decision.resource} {decision.reason}"
    )

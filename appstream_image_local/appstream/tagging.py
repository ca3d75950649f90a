"""Tags: TagResource, UntagResource and ListTagsForResource on images.

Only this account's private images can be tagged (another account's ARN is not found here), at most
`Limits.tags` tags each (AWS's quota: 50).
"""

from __future__ import annotations

from typing import Any

from appstream_image_local.appstream.errors import ApiError
from appstream_image_local.appstream.model import AppStreamBackend
from appstream_image_local.appstream.records import Image


def _taggable(backend: AppStreamBackend, arn: str) -> Image:
    """TagResource / UntagResource: only this account's resources; others' ARNs are not found here."""
    image = backend._image_by_arn(arn)
    if image.visibility != "PRIVATE" or image.state == "DELETING":
        raise ApiError("ResourceNotFoundException", f"The resource {arn} does not exist.")
    return image


def tag_resource(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    with backend._lock:
        image = _taggable(backend, params["ResourceArn"])
        backend._check_tags(params["Tags"], image.tags)
        image.tags.update(params["Tags"])
        return {}


def untag_resource(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    with backend._lock:
        image = _taggable(backend, params["ResourceArn"])
        for key in params["TagKeys"]:
            image.tags.pop(key, None)
        return {}


def list_tags_for_resource(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    with backend._lock:
        image = backend._image_by_arn(params["ResourceArn"])
        return {"Tags": dict(image.tags)}

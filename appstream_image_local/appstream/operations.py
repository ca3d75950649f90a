"""The local AppStream's operations by API name, and which of them only read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appstream_image_local.appstream import copies, exports, sharing, tagging
from appstream_image_local.appstream.imports import create_imported_image
from appstream_image_local.appstream.model import AppStreamBackend

OPERATIONS: dict[str, Callable[[AppStreamBackend, dict[str, Any]], dict[str, Any]]] = {
    "DescribeImages": AppStreamBackend.describe_images,
    "DeleteImage": AppStreamBackend.delete_image,
    "CopyImage": copies.copy_image,
    "CreateUpdatedImage": AppStreamBackend.create_updated_image,
    "DescribeImagePermissions": sharing.describe_image_permissions,
    "UpdateImagePermissions": sharing.update_image_permissions,
    "DeleteImagePermissions": sharing.delete_image_permissions,
    "TagResource": tagging.tag_resource,
    "UntagResource": tagging.untag_resource,
    "ListTagsForResource": tagging.list_tags_for_resource,
    "DescribeFleets": AppStreamBackend.describe_fleets,
    "DescribeImageBuilders": AppStreamBackend.describe_image_builders,
    "CreateImportedImage": create_imported_image,
    "CreateExportImageTask": exports.create_export_image_task,
    "GetExportImageTask": exports.get_export_image_task,
    "ListExportImageTasks": exports.list_export_image_tasks,
}


READ_ONLY = frozenset(
    {
        "DescribeImages",
        "DescribeImagePermissions",
        "ListTagsForResource",
        "DescribeFleets",
        "DescribeImageBuilders",
        "GetExportImageTask",
        "ListExportImageTasks",
    }
)

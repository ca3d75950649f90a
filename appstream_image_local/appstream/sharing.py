"""Image sharing: DescribeImagePermissions, UpdateImagePermissions and DeleteImagePermissions.

Only this account's private AVAILABLE images can be shared, with at most `Limits.shares` accounts (AWS's
quota: 100). A change is accepted at once and takes effect after the permission lag: reads right after a
write may still show the old sharing, as AppStream's eventual consistency does.
"""

from __future__ import annotations

from typing import Any

from appstream_image_local.appstream.errors import ApiError, not_found
from appstream_image_local.appstream.model import AppStreamBackend
from appstream_image_local.appstream.records import ACCOUNT_ID, Image, page


def describe_image_permissions(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    with backend._lock:
        image = backend._image(params["Name"])
        wanted = params.get("SharedAwsAccountIds")
        items = [
            {"sharedAccountId": account, "imagePermissions": dict(perms)}
            for account, perms in sorted(image.permissions.items())
            if not wanted or account in wanted
        ]
        return {"Name": image.name} | page(items, params, "SharedImagePermissionsList", limit=100)


def _change_permission(backend: AppStreamBackend, image: Image, account: str, perms: dict[str, bool] | None) -> None:
    """Accepted now, effective after the permission lag (read-after-write is eventual)."""
    image.pending.append((backend.now() + backend.scaled(backend.limits.permission_lag), account, perms))


def update_image_permissions(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    account = params["SharedAccountId"]
    if not ACCOUNT_ID.match(account):
        raise ApiError("ValidationException", f"The account id {account} is not a 12-digit AWS account id.")
    with backend._lock:
        image = backend._image(params["Name"])
        backend._own_private(image, "shared", "ResourceNotAvailableException")
        if image.state != "AVAILABLE":
            raise ApiError("ResourceNotAvailableException", f"The image {image.name} is {image.state}.")
        shares = backend._effective(image)
        if account not in shares and len(shares) >= backend.limits.shares:
            raise ApiError(
                "LimitExceededException", f"An image can be shared with at most {backend.limits.shares} accounts."
            )
        perms = params["ImagePermissions"]
        _change_permission(
            backend,
            image,
            account,
            {
                "allowFleet": bool(perms.get("allowFleet", False)),
                "allowImageBuilder": bool(perms.get("allowImageBuilder", False)),
            },
        )
        return {}


def delete_image_permissions(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    with backend._lock:
        image = backend._image(params["Name"])
        account = params["SharedAccountId"]
        if account not in image.permissions and account not in backend._effective(image):
            raise not_found("image permission for account", account)
        _change_permission(backend, image, account, None)
        return {}

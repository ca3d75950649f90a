"""AppStream image calls. Each takes a boto3 client; retries for throttling and 5xx live in its config."""

from __future__ import annotations

import functools
import json
import os
import re
import time
import weakref
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from ..contract import ATTRIBUTES
from ..errors import AccessDenied, NotPermitted
from .properties import Share
from .sources import Source

if TYPE_CHECKING:
    from mypy_boto3_appstream import AppStreamClient

Image = Mapping[str, Any]
NOT_FOUND = "ResourceNotFoundException"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0  # AppStream answers in well under a second; a stuck call is retried sooner
RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 8},
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
    user_agent_extra="appstream-image-provider",
)
TRANSIENT = frozenset(
    {"ThrottlingException", "InternalServiceError", "ServiceUnavailableException", "InternalFailure", "RequestTimeout"}
)


# One more retry may take botocore's largest backoff (standard mode: 20 s) plus an attempt (connect, then read).
MAX_BACKOFF = 20.0
RETRY_HEADROOM = MAX_BACKOFF + CONNECT_TIMEOUT + READ_TIMEOUT
RETRY_BOUND = "appstream-image-provider-retry-bound"  # the unique id of the handler bound_retries registers


def _bounded(
    response: Any = None, caught_exception: Exception | None = None, operation: Any = None, *, until: float, **_: Any
) -> None:
    """needs-retry, ahead of botocore's own handler: no retry that would outlast `until` (epoch seconds).

    botocore's standard mode retries LimitExceeded and throttling for up to about 71 s; past `until`
    the call ends with the error it got, so the invocation can still answer in time.
    """
    if time.time() + RETRY_HEADROOM < until:
        return
    if caught_exception is not None:
        raise caught_exception
    parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
    if isinstance(parsed, dict) and parsed.get("Error", {}).get("Code"):
        raise ClientError(parsed, getattr(operation, "name", "AppStream"))  # type: ignore[arg-type]


_BOUNDS: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()  # client -> its retries' bound


def bound_retries(client: AppStreamClient, until: float) -> None:
    """From now on, botocore retries none of `client`'s calls past `until` (this invocation's last moment)."""
    _BOUNDS[client] = until
    events = client.meta.events
    events.unregister("needs-retry.appstream", unique_id=RETRY_BOUND)
    events.register_first("needs-retry.appstream", functools.partial(_bounded, until=until), unique_id=RETRY_BOUND)


# AppStream's service model, shipped in the Lambda asset (asset.py) as provider/models/: the runtime's botocore may
# predate an operation the provider calls (CreateImportedImage), so its model is read from there first.
MODELS = Path(__file__).parent.parent / "models"


def appstream_client(config: Config = RETRY_CONFIG) -> AppStreamClient:
    """The provider's client: the endpoint comes from boto3's own settings (AWS_ENDPOINT_URL_APPSTREAM)."""
    boto = boto3.session.Session(botocore_session=_session())
    return boto.client("appstream", region_name=os.environ.get("AWS_REGION"), config=config)


@functools.cache
def _regional(region: str, endpoint: str | None, config: Config, credentials: tuple[str, str, str]) -> AppStreamClient:
    boto = boto3.session.Session(*credentials, botocore_session=_session())
    return boto.client("appstream", region_name=region, endpoint_url=endpoint, config=config)


def _session() -> botocore.session.Session:
    session = botocore.session.get_session()
    if MODELS.is_dir():
        session.get_component("data_loader").search_paths.insert(0, str(MODELS))
    return session


def in_region(client: AppStreamClient, region: str) -> AppStreamClient:
    """A client like `client` (its retry config and, for a local endpoint, its endpoint) signing for `region`.

    On AWS each region is its own endpoint (appstream2.<region>.amazonaws.com): the regional default is used; an
    endpoint set for testing (AWS_ENDPOINT_URL_APPSTREAM, a local service) serves every region behind one URL.
    """
    if region == client.meta.region_name:
        return client
    endpoint = client.meta.endpoint_url
    local = endpoint if ".amazonaws.com" not in endpoint else None
    # The same principal as `client` (botocore keeps a client's credentials on its request signer).
    frozen = client._request_signer._credentials.get_frozen_credentials()  # type: ignore[attr-defined]
    regional = _regional(region, local, client.meta.config, (frozen.access_key, frozen.secret_key, frozen.token))
    if client in _BOUNDS:  # its retries end when the home client's do: this invocation's
        bound_retries(regional, _BOUNDS[client])
    return regional


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


DENIED = ("AccessDeniedException", "AccessDenied")
RESOURCE_IN_MESSAGE = re.compile(r"on resource: (arn:\S+)")


def access_denied(err: ClientError, image: str, scope: str) -> AccessDenied:
    """Name the resource IAM denied (from its message: the source of a copy, say) and what the scope allows."""
    granted = scope or "the images its stack declares"
    message = str(err.response.get("Error", {}).get("Message", ""))
    found = RESOURCE_IN_MESSAGE.search(message)
    arn = found.group(1).rstrip(".") if found else ""
    denied = arn.rsplit("/", 1)[-1] if arn else image
    action = f"appstream:{err.operation_name}"
    if arn.count(":") >= 5 and arn.split(":")[4] == "":  # an AWS public image's ARN names no account
        return AccessDenied(
            f"Access denied: {action} on image {denied}, a public AWS image. CopyImage and CreateUpdatedImage "
            f"take only images this account owns: launch an image builder from {denied}, create a private image "
            "from it, and use that as the Source"
        )
    return AccessDenied(
        f"Access denied: the provider's role may not call {action} on image {denied}. "
        f"It may manage only {granted}; deploy the provider with a scope that includes image {denied}"
    )


def describe(client: AppStreamClient, name: str) -> Image | None:
    """The image, or None when AppStream says it does not exist (an error or an empty list)."""
    try:
        images = client.describe_images(Names=[name]).get("Images", [])
    except ClientError as err:
        if error_code(err) == NOT_FOUND:
            return None
        raise
    return next((image for image in images if image.get("Name") == name), None)


def attributes(image: Image) -> dict[str, str]:
    """The Fn::GetAtt attributes; CreatedTime as ISO 8601."""
    out: dict[str, str] = {}
    for attr in ATTRIBUTES:
        value = image.get(attr)
        if isinstance(value, datetime):
            value = value.isoformat()
        out[attr] = "" if value is None else str(value)
    return out


def expected_attributes(name: str, stack_id: str, state: str) -> dict[str, str]:
    """The attributes of an image not made yet (waiting for a copy or update slot): its ARN in the stack's
    partition, region and account, its name and why it is not there; the rest empty, so every GetAtt resolves."""
    parts = stack_id.split(":")
    partition, region, account = (parts[1], parts[3], parts[4]) if len(parts) > 4 else ("aws", "", "")
    known = {"Arn": f"arn:{partition}:appstream:{region}:{account}:image/{name}", "Name": name, "State": state}
    return {attr: known.get(attr, "") for attr in ATTRIBUTES}


def tags_of(client: AppStreamClient, arn: str) -> dict[str, str]:
    return dict(client.list_tags_for_resource(ResourceArn=arn).get("Tags", {}))


def tag(client: AppStreamClient, arn: str, tags: Mapping[str, str]) -> None:
    if tags:
        client.tag_resource(ResourceArn=arn, Tags=dict(tags))


def untag(client: AppStreamClient, arn: str, keys: list[str]) -> None:
    if keys:
        client.untag_resource(ResourceArn=arn, TagKeys=keys)


def shared_accounts(client: AppStreamClient, name: str) -> dict[str, Share]:
    shares: dict[str, Share] = {}
    token = ""
    while True:  # DescribeImagePermissions has no boto3 paginator
        page = (
            client.describe_image_permissions(Name=name, NextToken=token)
            if token
            else client.describe_image_permissions(Name=name)
        )
        for entry in page.get("SharedImagePermissionsList", []):
            perms = entry["imagePermissions"]
            account = entry["sharedAccountId"]
            shares[account] = Share(account, perms.get("allowFleet", False), perms.get("allowImageBuilder", False))
        token = page.get("NextToken", "")
        if not token:
            return shares


def share(client: AppStreamClient, name: str, grant: Share) -> None:
    client.update_image_permissions(
        Name=name,
        SharedAccountId=grant.account_id,
        ImagePermissions={"allowFleet": grant.allow_fleet, "allowImageBuilder": grant.allow_image_builder},
    )


def unshare(client: AppStreamClient, name: str, account_id: str) -> None:
    """Revoke one account's permission; already revoked counts as done."""
    try:
        client.delete_image_permissions(Name=name, SharedAccountId=account_id)
    except ClientError as err:
        if error_code(err) != NOT_FOUND:
            raise


def start_delete(client: AppStreamClient, name: str) -> None:
    """DeleteImage; ResourceNotFound means done. Other errors propagate for the caller's table."""
    try:
        client.delete_image(Name=name)
    except ClientError as err:
        code = error_code(err)
        if code == NOT_FOUND:
            return
        if code == "OperationNotPermittedException":
            raise NotPermitted(f"AppStream does not permit deleting image {name}: {err}") from err
        raise


def copy(client: AppStreamClient, source: str, destination: str, description: str, *, into: str = "") -> None:
    """CopyImage, called in the source's region (`client`'s) into region `into` (default: the same region)."""
    params: dict[str, Any] = {
        "SourceImageName": source,
        "DestinationImageName": destination,
        "DestinationRegion": into or client.meta.region_name,
    }
    if description:
        params["DestinationImageDescription"] = description
    client.copy_image(**params)


def create_updated(
    client: AppStreamClient, source: str, new_name: str, *, display_name: str, description: str, tags: Mapping[str, str]
) -> bool:
    """CreateUpdatedImage; False when AppStream says there is nothing to update (canUpdateImage false: nothing made)."""
    params: dict[str, Any] = {"existingImageName": source, "newImageName": new_name, "newImageTags": dict(tags)}
    if display_name:
        params["newImageDisplayName"] = display_name
    if description:
        params["newImageDescription"] = description
    return client.create_updated_image(**params).get("canUpdateImage", True) is not False


def create_imported(client: AppStreamClient, name: str, source: Source, tags: Mapping[str, str]) -> None:
    """CreateImportedImage from an AMI or a WorkSpaces image, tagged from the start."""
    origin = "SourceAmiId" if source.source_image_name.startswith("ami-") else "WorkspaceImageId"
    params: dict[str, Any] = {"Name": name, origin: source.source_image_name, "Tags": dict(tags)}
    optional = {
        "IamRoleArn": source.iam_role_arn,
        "Description": source.description,
        "DisplayName": source.display_name,
        "AgentSoftwareVersion": source.agent_software_version,
    }
    params |= {k: v for k, v in optional.items() if v}
    if source.intended_instance_type:
        params["RuntimeValidationConfig"] = {"IntendedInstanceType": source.intended_instance_type}
    if source.app_catalog:
        params["AppCatalogConfig"] = json.loads(source.app_catalog)
    client.create_imported_image(**params)


def in_progress(client: AppStreamClient, state: str) -> list[str]:
    """This account's images in `state` (COPYING: copies running; CREATING: updates running)."""
    names: list[str] = []
    for page in client.get_paginator("describe_images").paginate(Type="PRIVATE"):
        names += [str(i["Name"]) for i in page.get("Images", []) if i.get("State") == state]
    return names


def fleets_using(client: AppStreamClient, name: str, arn: str) -> list[str]:
    """Fleets that reference the image (`fleet <name>`)."""
    users: list[str] = []
    for fleets in client.get_paginator("describe_fleets").paginate():
        users += [f"fleet {f['Name']}" for f in fleets.get("Fleets", []) if name in (f.get("ImageName"), _tail(f))]
    return users


def users_of(client: AppStreamClient, name: str, arn: str) -> list[str]:
    """Fleets and image builders that reference the image, for an in-use Reason."""
    users = fleets_using(client, name, arn)
    for builders in client.get_paginator("describe_image_builders").paginate():
        users += [f"image builder {b['Name']}" for b in builders.get("ImageBuilders", []) if b.get("ImageArn") == arn]
    return users


def _tail(resource: Mapping[str, Any]) -> str:
    return str(resource.get("ImageArn", "")).rsplit("/", 1)[-1]

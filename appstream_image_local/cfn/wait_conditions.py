"""AWS::CloudFormation::WaitConditionHandle and AWS::CloudFormation::WaitCondition, as CloudFormation runs them.

(CloudFormation user guide: AWS::CloudFormation::WaitCondition, WaitConditionHandle.) A handle has no
properties; its Ref is a presigned S3 PUT URL, so anyone holding it can signal. The URL is SigV4-signed as AWS
signs it, X-Amz-Expires=86399 from X-Amz-Date: a signal later than that gets 403 (moto_strict). Its life is
shortened by Cloud's `handle_scale` (by default its `schedule_scale`), by signing it as of earlier: the URL still
says when it expires, as a provider reads it. A wait condition waits for `Count`
SUCCESS signals (default 1) within `Timeout` seconds (at most 43200); a FAILURE signal, or the
timeout, fails it with the signal's Reason. Its `Data` attribute is a JSON object of the signals'
UniqueId -> Data. Signals are JSON PUTs to the handle URL: the bucket keeps every version, so two
signals in quick succession are both read. Updates are not supported: a changed wait condition
fails (give it a new logical id, and a new handle).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

from appstream_image_local.cfn.model import REGION, Live, ResourceFailed, Stack, bucket_location
from appstream_image_local.cfn.protocol import Cancelled

if TYPE_CHECKING:
    from appstream_image_local.cfn.services import Services

MAX_TIMEOUT = 43200
SIGNAL_LOOK_EVERY = 1.0  # seconds
# Seconds a handle URL stays valid: the X-Amz-Expires of the URLs CloudFormation hands out, from the handle's making
# (cloudformation-lambda-rules.md, "Quotas and concurrency": seen on real stacks).
HANDLE_LIFETIME = 86399
Made = tuple[str, dict[str, str]]


def bucket(region: str) -> str:
    """The bucket a region's wait condition handles write to (as AWS names it)."""
    return f"cloudformation-waitcondition-{region}"


def _bucket(services: Services, region: str) -> None:
    with contextlib.suppress(services.s3.exceptions.BucketAlreadyOwnedByYou):
        services.s3.create_bucket(Bucket=bucket(region), **bucket_location(region))
    services.s3.put_bucket_versioning(Bucket=bucket(region), VersioningConfiguration={"Status": "Enabled"})


def _key(url: str, region: str) -> str:
    """The object a handle URL of `region` writes (path-style: /<bucket>/<key>?...)."""
    path = url.split("?", 1)[0].split("/", 3)[-1]
    found, _, key = path.partition("/")
    if found != bucket(region) or not key:
        raise ResourceFailed(f"Handle {url[:80]}... is not a wait condition handle of this stack")
    return key


def presigned_put(
    endpoint: str, path: str, signed_at: datetime.datetime, expires: int, *, key: str = "local", region: str = REGION
) -> str:
    """A SigV4 query-signed PUT URL of `path` (path-style S3), signed as of `signed_at` (botocore signs as of now).

    Amazon S3 API reference, "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)"; the
    secret is moto's, which checks no signature.
    """
    parts = urllib.parse.urlsplit(endpoint)
    stamp, day = signed_at.strftime("%Y%m%dT%H%M%SZ"), signed_at.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    query = urllib.parse.urlencode(
        {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{key}/{scope}",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "host",
        },
        quote_via=urllib.parse.quote,
        safe="-_.~",
    )
    resource = urllib.parse.quote(path, safe="/-_.~")
    canonical = f"PUT\n{resource}\n{query}\nhost:{parts.netloc}\n\nhost\nUNSIGNED-PAYLOAD"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    signing = f"AWS4{key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing, f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}".encode(), hashlib.sha256)
    return f"{endpoint}{resource}?{query}&X-Amz-Signature={signature.hexdigest()}"


def handle_url(
    endpoint: str, key: str, *, scale: float = 1.0, now: datetime.datetime | None = None, region: str = REGION
) -> str:
    """A presigned PUT of the handle's object that expires HANDLE_LIFETIME * scale seconds from `now` (a scale
    below 1 signs it as of that much earlier; X-Amz-Expires stays AWS's)."""
    made = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    signed_at = made - datetime.timedelta(seconds=HANDLE_LIFETIME * max(1.0 - scale, 0.0))
    return presigned_put(endpoint, f"/{bucket(region)}/{key}", signed_at, HANDLE_LIFETIME, region=region)


class WaitConditionHandleHandler:
    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        if props:
            raise ResourceFailed(f"Properties validation failed: {kind} takes no properties, got {sorted(props)}")
        _bucket(services, stack.region)
        key = f"{stack.stack_id.split('/')[-1]}/{logical_id}/{uuid.uuid4()}"
        endpoint, scale = str(services.s3.meta.endpoint_url), services.requests.handle_scale
        return handle_url(endpoint, key, scale=scale, region=stack.region), {}

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        return live.physical_id, live.attributes

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        return


def signals(services: Services, key: str, region: str = REGION) -> list[dict[str, Any]]:
    """Every signal PUT to the handle, oldest first (malformed ones are skipped, as CloudFormation ignores them)."""
    versions = services.s3.list_object_versions(Bucket=bucket(region), Prefix=key).get("Versions", [])
    found = []
    for version in sorted(versions, key=lambda v: v["LastModified"]):
        body = services.s3.get_object(Bucket=bucket(region), Key=key, VersionId=version["VersionId"])["Body"].read()
        with contextlib.suppress(ValueError):
            signal = json.loads(body)
            if isinstance(signal, dict) and signal.get("Status") in ("SUCCESS", "FAILURE"):
                found.append(signal)
    return found


class WaitConditionHandler:
    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        handle = str(props.get("Handle", ""))
        try:
            timeout = int(str(props.get("Timeout", "")))
            count = int(str(props.get("Count", 1)))
        except ValueError:
            timeout = count = 0
        if not 1 <= timeout <= MAX_TIMEOUT or count < 1:
            raise ResourceFailed(
                f"Properties validation failed: Timeout must be 1-{MAX_TIMEOUT} seconds and Count at least 1 "
                f"(got {props.get('Timeout')!r}, {props.get('Count', 1)!r})"
            )
        key = _key(handle, stack.region)
        seen: dict[str, str] = {}
        failure: list[str] = []

        def done() -> bool:
            for signal in signals(services, key, stack.region):
                unique = str(signal.get("UniqueId", ""))
                if signal["Status"] == "FAILURE":
                    failure.append(str(signal.get("Reason") or f"signal {unique} was FAILURE"))
                    return True
                seen[unique] = str(signal.get("Data", ""))
            return len(seen) >= count

        started = time.monotonic()
        try:
            # A look at the handle's signals each second: many wait conditions at once stay cheap for the local S3.
            services.requests.pump_until(
                done, started, timeout, f"{stack.name} {logical_id}", awaited="signals", cancellable=stack.name,
                every=SIGNAL_LOOK_EVERY,
            )  # fmt: skip
        except Cancelled as cancelled:
            raise ResourceFailed("Resource creation cancelled", f"{stack.stack_id}/{logical_id}") from cancelled
        if failure:
            raise ResourceFailed(f"WaitCondition received failed message: '{failure[0]}' for uniqueId: {logical_id}")
        if len(seen) < count:
            raise ResourceFailed(f"WaitCondition timed out. Received {len(seen)} conditions when expecting {count}")
        # The Data attribute as the user guide shows it: {"Signal1":"Application has completed configuration."}.
        return f"{stack.stack_id}/{logical_id}", {"Data": json.dumps(seen, separators=(",", ":"))}

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        # "Updates aren't supported" (AWS::CloudFormation::WaitCondition): a new one needs a new logical id.
        raise ResourceFailed(
            "Update of resource type AWS::CloudFormation::WaitCondition is not supported: give it a new logical id "
            "and a new handle",
            live.physical_id,
            untouched=True,
        )

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        return

"""AWS::CloudFormation::WaitConditionHandle and AWS::CloudFormation::WaitCondition, as CloudFormation runs them.

(CloudFormation user guide: AWS::CloudFormation::WaitCondition, WaitConditionHandle.) A handle has no
properties; its Ref is a presigned S3 PUT URL, so anyone holding it can signal. A wait condition waits for `Count`
SUCCESS signals (default 1) within `Timeout` seconds (at most 43200); a FAILURE signal, or the
timeout, fails it with the signal's Reason. Its `Data` attribute is a JSON object of the signals'
UniqueId -> Data. Signals are JSON PUTs to the handle URL: the bucket keeps every version, so two
signals in quick succession are both read. Updates are not supported: a changed wait condition
fails (give it a new logical id, and a new handle).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from appstream_image_local.cfn.model import REGION, Live, ResourceFailed, Stack
from appstream_image_local.cfn.protocol import Cancelled

if TYPE_CHECKING:
    from appstream_image_local.cfn.services import Services

BUCKET = f"cloudformation-waitcondition-{REGION}"
MAX_TIMEOUT = 43200
SIGNAL_LOOK_EVERY = 1.0  # seconds
HANDLE_LIFETIME = 7 * 24 * 3600  # seconds the presigned URL stays valid (S3's SigV4 maximum)
Made = tuple[str, dict[str, str]]


def _bucket(services: Services) -> None:
    with contextlib.suppress(services.s3.exceptions.BucketAlreadyOwnedByYou):
        services.s3.create_bucket(Bucket=BUCKET)
    services.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def _key(url: str) -> str:
    """The object a handle URL writes (path-style: /<bucket>/<key>?...)."""
    path = url.split("?", 1)[0].split("/", 3)[-1]
    bucket, _, key = path.partition("/")
    if bucket != BUCKET or not key:
        raise ResourceFailed(f"Handle {url[:80]}... is not a wait condition handle of this stack")
    return key


class WaitConditionHandleHandler:
    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        if props:
            raise ResourceFailed(f"Properties validation failed: {kind} takes no properties, got {sorted(props)}")
        _bucket(services)
        key = f"{stack.stack_id.split('/')[-1]}/{logical_id}/{uuid.uuid4()}"
        params = {"Bucket": BUCKET, "Key": key}
        url = str(services.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=HANDLE_LIFETIME))
        return url, {}

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        return live.physical_id, live.attributes

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        return


def signals(services: Services, key: str) -> list[dict[str, Any]]:
    """Every signal PUT to the handle, oldest first (malformed ones are skipped, as CloudFormation ignores them)."""
    versions = services.s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    found = []
    for version in sorted(versions, key=lambda v: v["LastModified"]):
        body = services.s3.get_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])["Body"].read()
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
        key = _key(handle)
        seen: dict[str, str] = {}
        failure: list[str] = []

        def done() -> bool:
            for signal in signals(services, key):
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

"""The local AppStream's records and limits: images, fleets, builders, AWS's quotas and lags, request rates."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appstream_image_local.appstream.errors import ApiError

ACCOUNT_ID = re.compile(r"^\d{12}$")
RESERVED_PREFIXES = ("amazon", "aws", "appstream")
TRANSITIONAL = frozenset({"PENDING", "COPYING", "CREATING", "IMPORTING", "VALIDATING"})
GONE = "GONE"
DEFAULT_PAGE = 25


@dataclass
class Limits:
    """AWS's quotas and lags (AppStream's API reference and admin guide; read-after-write is eventual).

    The quotas are the admin guide's defaults ("Amazon AppStream 2.0 Service Quotas": Images 10,
    Image builders (total) 10, concurrent image copies per destination Region 2, concurrent image
    updates 5, accounts an image can be shared with 100); tags per resource: 50 (the Tags shape).

    Quotas answer LimitExceededException; the lags are seconds of the service's clock (scaled by
    time_scale, like every transition); `rate` is requests per second per operation (service clock),
    with `burst` requests in hand, answering ThrottlingException past them.
    """

    copies: int = 2  # concurrent CopyImage per destination region
    updates: int = 5  # concurrent CreateUpdatedImage
    images: int = 10  # private images per account and region
    builders: int = 10  # image builders, the one each running CreateUpdatedImage launches among them
    shares: int = 100  # accounts an image can be shared with
    tags: int = 50  # tags per resource
    visibility_lag: float = 0.5  # a new image is invisible to DescribeImages (and tagging) this long
    permission_lag: float = 0.5  # a sharing change takes effect this long after it is accepted
    rate: float = 25.0  # requests per second per operation
    burst: int = 50


@dataclass
class Durations:
    """How long each transition lasts, in seconds of the service's clock."""

    copy: float = 2.0
    update: float = 2.0
    delete: float = 1.0
    import_: float = 2.0  # CreateImportedImage: IMPORTING
    validate: float = 1.0  # then VALIDATING (the runtime validation), then AVAILABLE or FAILED
    export: float = 2.0  # CreateExportImageTask: EXPORTING, then COMPLETED (with an AmiId) or FAILED


@dataclass
class Image:
    name: str
    arn: str
    state: str
    visibility: str = "PRIVATE"
    platform: str = "WINDOWS_SERVER_2022"
    description: str = ""
    display_name: str = ""
    created: float = 0.0
    base_image_arn: str = ""
    agent_version: str = "LATEST"
    builder_name: str = ""
    state_until: float | None = None
    next_state: str = "AVAILABLE"
    reason: dict[str, str] | None = None
    next_reason: dict[str, str] | None = None
    delete_seconds: float | None = None
    copies_end: str = "AVAILABLE"  # the state copies and updates made from this image end in
    updatable: bool = True  # CreateUpdatedImage answers canUpdateImage false (and makes nothing) when False
    image_errors: list[dict[str, Any]] = field(default_factory=list)
    next_errors: list[dict[str, Any]] = field(default_factory=list)
    later: list[tuple[float, str]] = field(default_factory=list)  # further (seconds, state) steps after next_state
    tags: dict[str, str] = field(default_factory=dict)
    permissions: dict[str, dict[str, bool]] = field(default_factory=dict)
    visible_at: float = 0.0  # read-after-write: DescribeImages finds the image from this time on
    pending: list[tuple[float, str, dict[str, bool] | None]] = field(default_factory=list)  # permission changes

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Name": self.name,
            "Arn": self.arn,
            "State": self.state,
            "Visibility": self.visibility,
            "Platform": self.platform,
            "CreatedTime": self.created,
            "ImageBuilderSupported": True,
            "AppstreamAgentVersion": self.agent_version,
            "ImageSharedWithOthers": "TRUE" if self.permissions else "FALSE",
        }
        for key, value in (
            ("DisplayName", self.display_name),
            ("Description", self.description),
            ("BaseImageArn", self.base_image_arn),
            ("ImageBuilderName", self.builder_name),
        ):
            if value:
                out[key] = value
        if self.reason:
            out["StateChangeReason"] = dict(self.reason)
        if self.image_errors:
            out["ImageErrors"] = [dict(e) for e in self.image_errors]
        return out


@dataclass
class Fleet:
    name: str
    arn: str
    image_name: str
    state: str = "RUNNING"
    release_at: float | None = None
    release_to: str = ""

    def wire(self, image_arn: str) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Arn": self.arn,
            "ImageName": self.image_name,
            "ImageArn": image_arn,
            "InstanceType": "stream.standard.small",
            "ComputeCapacityStatus": {"Desired": 1},
            "State": self.state,
            "CreatedTime": 0,
        }


@dataclass
class Builder:
    name: str
    arn: str
    image_name: str
    state: str = "RUNNING"

    def wire(self, image_arn: str) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Arn": self.arn,
            "ImageArn": image_arn,
            "InstanceType": "stream.standard.small",
            "State": self.state,
        }


def page(items: list[Any], params: dict[str, Any], key: str, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
    token = params.get("NextToken")
    try:
        start = int(token) if token is not None else 0
    except ValueError as exc:
        raise ApiError("InvalidParameterCombinationException", "The NextToken is not valid.") from exc
    size = int(params.get("MaxResults") or limit)
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out


class TokenBuckets:
    """Per-operation request rates on the service's clock: AWS throttles bursts with ThrottlingException."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # operation -> (tokens, last refill)

    def take(self, operation: str) -> bool:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(operation, (float(self._limits.burst), now))
            tokens = min(float(self._limits.burst), tokens + (now - last) * self._limits.rate)
            allowed = tokens >= 1.0
            self._buckets[operation] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

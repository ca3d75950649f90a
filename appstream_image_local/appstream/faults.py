"""Fault injection: throttling bursts, 5xx, latency, dropped connections, ConcurrentModification."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appstream_image_local.appstream.errors import ApiError

KINDS = {
    "throttle": ("ThrottlingException", 400, "Rate exceeded"),
    "server_error": ("InternalServiceError", 500, "The service encountered an internal error."),
    "unavailable": ("ServiceUnavailableException", 503, "The service is unavailable."),
    "concurrent_modification": (
        "ConcurrentModificationException",
        400,
        "An API operation is in progress on this resource. Try again later.",
    ),
}
OTHER_KINDS = ("latency", "drop", "error")
# Errors any AWS JSON operation may answer, whatever its model lists.
COMMON_ERRORS = frozenset(
    {
        "ValidationException",
        "AccessDeniedException",
        "ThrottlingException",
        "InternalFailure",
        "InternalServiceError",
        "ServiceUnavailableException",
        "SerializationException",
        "UnknownOperationException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "UnrecognizedClientException",
    }
)


@dataclass
class Fault:
    """One fault rule: `kind` on `operation` ("*" for all), `count` times (None: forever).

    Kind "error" answers with any AppStream error `code` (and HTTP `status`).
    """

    kind: str
    operation: str = "*"
    count: int | None = None
    probability: float = 1.0
    seconds: float = 0.0
    code: str = ""
    status: int = 400
    skip: int = 0  # let the first `skip` matching calls through (e.g. fail only after a CopyImage)

    def __post_init__(self) -> None:
        if self.kind not in KINDS and self.kind not in OTHER_KINDS:
            allowed = ", ".join([*KINDS, *OTHER_KINDS])
            raise ValueError(f"fault kind {self.kind!r} is not one of: {allowed}")
        if self.kind == "error" and not self.code:
            raise ValueError("fault kind 'error' needs a code, such as OperationNotPermittedException")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability {self.probability} is not between 0 and 1")

    def error_code(self) -> str:
        """The error this rule answers with ("" for latency and dropped connections)."""
        return self.code if self.kind == "error" else KINDS[self.kind][0] if self.kind in KINDS else ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        return cls(**data)


@dataclass
class Decision:
    """What to do to one request before (or instead of) handling it."""

    delay: float = 0.0
    error: ApiError | None = None
    drop: bool = False
    kinds: tuple[str, ...] = ()


class FaultInjector:
    """Thread-safe list of fault rules, matched in order for every request."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._random = random.Random(seed)
        self.injected: dict[str, int] = {}

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._rules.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def decide(self, operation: str, answerable: Callable[[str], bool] = lambda _: True) -> Decision:
        """What to do to this request; an error rule applies only where `answerable(code)` (AWS's model says so)."""
        decision = Decision()
        kinds: list[str] = []
        with self._lock:
            for rule in list(self._rules):
                if rule.operation not in ("*", operation) or not answerable(rule.error_code()):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if self._random.random() >= rule.probability:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                kinds.append(rule.kind)
                self.injected[rule.kind] = self.injected.get(rule.kind, 0) + 1
                if rule.kind == "latency":
                    decision.delay += rule.seconds
                    continue
                if rule.kind == "drop":
                    decision.drop = True
                elif rule.kind == "error":
                    decision.error = ApiError(rule.code, f"Injected {rule.code}.", rule.status)
                else:
                    code, status, message = KINDS[rule.kind]
                    decision.error = ApiError(code, message, status)
                break
        decision.kinds = tuple(kinds)
        return decision

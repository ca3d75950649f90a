"""EventBridge, for crhelper's polling: ENABLED rate() rules fire their targets on schedule.

Rules stay for stacks that still poll with them; EventBridge Scheduler's one-time schedules are schedules.py.
A rule invokes a Lambda function only if the function's resource-based policy lets events.amazonaws.com
invoke it for that rule (`allows_invoke`; the engine checks it before each delivery).
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from appstream_image_local.cfn.model import ACCOUNT
from appstream_image_local.cfn.schedules import conditions_hold, listed, names_service

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")
SCAN_EVERY = 1.0  # seconds between looks at the rule list
PRINCIPAL = "events.amazonaws.com"  # the service principal a rule invokes a function as
REFUSED = "EventBridge did not invoke"  # how each reported refusal starts


def allows_invoke(statements: Iterable[Mapping[str, Any]], function_arn: str, source_arn: str) -> bool:
    """Whether a function's resource-based policy lets EventBridge invoke it for the rule `source_arn` (Lambda
    developer guide, "Using resource-based policies in Lambda"; an explicit Deny wins)."""
    context = {"AWS:SourceArn": [source_arn], "AWS:SourceAccount": [ACCOUNT]}
    allowed = False
    for statement in statements:
        if not names_service(statement.get("Principal"), PRINCIPAL):
            continue
        if not any(fnmatch.fnmatchcase("lambda:invokefunction", a.lower()) for a in listed(statement.get("Action"))):
            continue
        resources = listed(statement.get("Resource", "*"))
        if not any(r == function_arn or fnmatch.fnmatchcase(function_arn, r) for r in resources):
            continue
        if not conditions_hold(statement, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


class Scheduler:
    """Reads the rules from moto's EventBridge and says which targets are due; `scale` shortens periods."""

    def __init__(self, events: Any, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._events = events
        self.scale = scale  #: a period here is the rule's period times this (0.1: rate(1 minute) fires every 6 s)
        self._clock = clock
        self._due: dict[str, float] = {}
        self._periods: dict[str, float] = {}
        self._arns: dict[str, str] = {}  # rule name -> its ARN
        self._last_scan = float("-inf")
        self._lock = threading.Lock()  # one round at a time: a due rule fires once

    def rules(self) -> list[dict[str, Any]]:
        return list(self._events.list_rules().get("Rules", []))

    def targets(self) -> dict[str, dict[str, Any]]:
        """Rule name -> the input event of its (first) target, for every rule that has one."""
        found: dict[str, dict[str, Any]] = {}
        for rule in self.rules():
            try:
                targets = self._events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            except ClientError:
                continue
            if targets:
                found[rule["Name"]] = json.loads(targets[0].get("Input", "{}"))
        return found

    def due_targets(self) -> list[tuple[str, dict[str, Any]]]:
        """(target ARN, input event) for every rule whose time has come; each rule then waits a period."""
        return [(target, event) for _, target, event in self.due()]

    def due(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(rule ARN, target ARN, input event) for every rule whose time has come; each rule then waits a period."""
        with self._lock:
            return self._due_now()

    def _due_now(self) -> list[tuple[str, str, dict[str, Any]]]:
        now = self._clock()
        if now - self._last_scan >= SCAN_EVERY:
            self._scan(now)
        fired: list[tuple[str, str, dict[str, Any]]] = []
        for name, due in list(self._due.items()):
            if due > now:
                continue
            self._due[name] = due + self._periods[name]
            try:
                targets = self._events.list_targets_by_rule(Rule=name)["Targets"]
            except ClientError:
                continue
            rule = self._arns.get(name, name)
            fired += [(rule, str(t["Arn"]), json.loads(t.get("Input", "{}"))) for t in targets]
        return fired

    def _scan(self, now: float) -> None:
        self._last_scan = now
        enabled = {r["Name"]: r for r in self.rules() if r.get("State") == "ENABLED"}
        self._arns = {name: str(rule.get("Arn", name)) for name, rule in enabled.items()}
        for name, rule in enabled.items():
            match = RATE.match(str(rule.get("ScheduleExpression", "")))
            if match and name not in self._due:
                unit = 3600 if match.group(2).startswith("hour") else 60
                self._periods[name] = int(match.group(1)) * unit * self.scale
                self._due[name] = now + self._periods[name]
        for name in [n for n in self._due if n not in enabled]:
            del self._due[name]

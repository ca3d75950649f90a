"""EventBridge, for crhelper's polling: ENABLED rate() rules fire their targets on schedule."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")
SCAN_EVERY = 1.0  # seconds between looks at the rule list


class Scheduler:
    """Reads the rules from moto's EventBridge and says which targets are due; `scale` shortens periods."""

    def __init__(self, events: Any, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._events = events
        self._scale = scale
        self._clock = clock
        self._due: dict[str, float] = {}
        self._periods: dict[str, float] = {}
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
        with self._lock:
            return self._due_targets()

    def _due_targets(self) -> list[tuple[str, dict[str, Any]]]:
        now = self._clock()
        if now - self._last_scan >= SCAN_EVERY:
            self._scan(now)
        fired: list[tuple[str, dict[str, Any]]] = []
        for name, due in list(self._due.items()):
            if due > now:
                continue
            self._due[name] = due + self._periods[name]
            try:
                targets = self._events.list_targets_by_rule(Rule=name)["Targets"]
            except ClientError:
                continue
            fired += [(str(t["Arn"]), json.loads(t.get("Input", "{}"))) for t in targets]
        return fired

    def _scan(self, now: float) -> None:
        self._last_scan = now
        enabled = {r["Name"]: r for r in self.rules() if r.get("State") == "ENABLED"}
        for name, rule in enabled.items():
            match = RATE.match(str(rule.get("ScheduleExpression", "")))
            if match and name not in self._due:
                unit = 3600 if match.group(2).startswith("hour") else 60
                self._periods[name] = int(match.group(1)) * unit * self._scale
                self._due[name] = now + self._periods[name]
        for name in [n for n in self._due if n not in enabled]:
            del self._due[name]

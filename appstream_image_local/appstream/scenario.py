"""Scenarios: seed images, fleets, builders, durations and faults from a JSON or YAML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from appstream_image_local.appstream.faults import Fault, FaultInjector
from appstream_image_local.appstream.model import AppStreamBackend
from appstream_image_local.appstream.records import Durations, Limits

SCENARIO_KEYS = frozenset(
    {
        "region",
        "account",
        "durations",
        "limits",
        "time_scale",
        "images",
        "fleets",
        "builders",
        "amis",
        "faults",
        "seed",
        "description",
    }
)
IMAGE_KEYS = frozenset(
    {
        "name", "state", "settle_seconds", "then", "delete_seconds", "visibility", "platform",
        "description", "display_name", "base_image_arn", "agent_version", "builder_name", "tags", "permissions",
        "copies_end", "updatable",
    }
)  # fmt: skip


SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"  # shipped: demo, aws-durations


def scenario_path(name_or_path: str | Path) -> Path:
    """A shipped scenario by name ("aws-durations"), else a path."""
    shipped = SCENARIOS / f"{name_or_path}.json"
    return shipped if shipped.is_file() else Path(name_or_path)


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) if str(path).endswith((".yaml", ".yml")) else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"scenario {path}: expected a mapping at the top level")
    return data


def load_scenario(data: dict[str, Any], *, time_scale: float | None = None) -> tuple[AppStreamBackend, FaultInjector]:
    """Build a backend and a fault injector from a scenario mapping; unknown keys are errors."""
    unknown = set(data) - SCENARIO_KEYS
    if unknown:
        raise ValueError(f"scenario: unknown keys {sorted(unknown)}; allowed: {sorted(SCENARIO_KEYS)}")
    backend = AppStreamBackend(
        region=data.get("region", "us-east-1"),
        account=str(data.get("account", "123456789012")),
        durations=Durations(**data.get("durations", {})),
        limits=Limits(**data.get("limits", {})),
        time_scale=time_scale if time_scale is not None else float(data.get("time_scale", 1.0)),
    )
    for spec in data.get("images", []):
        unknown = set(spec) - IMAGE_KEYS
        if unknown:
            raise ValueError(f"scenario image {spec.get('name')!r}: unknown keys {sorted(unknown)}")
        attrs = dict(spec)
        name = attrs.pop("name")
        backend.add_image(name, **attrs)
    for spec in data.get("fleets", []):
        backend.add_fleet(
            spec["name"],
            spec["image_name"],
            release_after=spec.get("release_after"),
            release_to=spec.get("release_to", ""),
        )
    for spec in data.get("amis", []):
        backend.add_ami(spec["id"], compatible=spec.get("compatible", True), fails=spec.get("fails", False))
    for spec in data.get("builders", []):
        backend.add_builder(spec["name"], spec["image_name"])
    faults = FaultInjector(seed=int(data.get("seed", 0)))
    faults.add(*(Fault.from_dict(f) for f in data.get("faults", [])))
    return backend, faults

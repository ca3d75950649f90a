"""Templates: load JSON or YAML (with CloudFormation's short tags), find dependencies, order resources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SHORT_TAGS = {
    "Ref": "Ref",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "ImportValue": "Fn::ImportValue",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Condition": "Condition",
    "GetAZs": "Fn::GetAZs",
    "Base64": "Fn::Base64",
    "FindInMap": "Fn::FindInMap",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads !Ref, !GetAtt, !Sub ... as their long forms."""


def _construct(tag: str) -> Any:
    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {tag: value}

    return build


for _short, _long in SHORT_TAGS.items():
    _Loader.add_constructor(f"!{_short}", _construct(_long))


class TemplateError(ValueError):
    """The template cannot be deployed (bad structure, unknown reference, cycle)."""


@dataclass
class Template:
    body: dict[str, Any]
    path: Path | None = None
    resources: dict[str, dict[str, Any]] = field(init=False)
    _dependents: dict[str, set[str]] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        resources = self.body.get("Resources")
        if not isinstance(resources, dict) or not resources:
            raise TemplateError("the template has no Resources")
        self.resources = resources

    @classmethod
    def load(cls, path: str | Path) -> Template:
        path = Path(path)
        return cls.parse(path.read_text(encoding="utf-8"), path)

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> Template:
        """A template from its text, JSON or YAML (as CloudFormation takes either)."""
        try:
            body = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
        except (ValueError, yaml.YAMLError) as error:
            raise TemplateError(f"{path or 'template'}: {error}") from error
        if not isinstance(body, dict):
            raise TemplateError(f"{path or 'template'}: not a template")
        return cls(body, path)

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.body.get("Parameters", {}))

    def dependencies(self, logical_id: str) -> set[str]:
        """Resources this one needs first: Ref, Fn::GetAtt, ${...} in Fn::Sub, and DependsOn."""
        resource = self.resources[logical_id]
        found = set(_references(resource.get("Properties", {}))) & set(self.resources)
        depends = resource.get("DependsOn", [])
        found |= set([depends] if isinstance(depends, str) else depends)
        missing = found - set(self.resources)
        if missing:
            raise TemplateError(f"{logical_id} depends on unknown resources {sorted(missing)}")
        return found - {logical_id}

    def dependents(self, logical_id: str) -> set[str]:
        """Resources that need this one (it is deleted after them): the reverse of `dependencies`."""
        if self._dependents is None:
            reverse: dict[str, set[str]] = {name: set() for name in self.resources}
            for name in self.resources:
                for needed in self.dependencies(name):
                    reverse[needed].add(name)
            self._dependents = reverse
        return set(self._dependents[logical_id])

    def order(self) -> list[str]:
        """Creation order: every resource after what it depends on (stable by logical id)."""
        done: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                raise TemplateError(f"dependency cycle through {name}")
            visiting.add(name)
            for dep in sorted(self.dependencies(name)):
                visit(dep)
            visiting.discard(name)
            done.append(name)

        for name in sorted(self.resources):
            visit(name)
        return done


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield (target.split(".", 1)[0] if isinstance(target, str) else str(target[0]))
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text = sub if isinstance(sub, str) else sub[0]
            for part in text.split("${")[1:]:
                yield part.split("}", 1)[0].split(".", 1)[0]
        for child in value.values():
            yield from _references(child)
    elif isinstance(value, list):
        for child in value:
            yield from _references(child)

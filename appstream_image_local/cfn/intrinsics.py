"""Intrinsic functions, resolved as CloudFormation would for the resources a template declares."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from appstream_image_local.cfn.template import TemplateError

NO_VALUE = object()
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Scope:
    """What references resolve to: parameters, pseudo parameters, resources, attributes, exports."""

    pseudo: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    attributes: Callable[[str, str], str] | None = None
    exports: Mapping[str, str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        for table in (self.pseudo, self.parameters, self.refs):
            if name in table:
                return table[name]
        raise TemplateError(f"Ref to {name}, which is not (yet) defined")

    def get_att(self, logical_id: str, attribute: str) -> str:
        if self.attributes is None:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} outside a stack")
        return self.attributes(logical_id, attribute)


def resolve(value: Any, scope: Scope) -> Any:
    """The value with every intrinsic function replaced by its result (AWS::NoValue dropped)."""
    if isinstance(value, list):
        return [v for v in (resolve(item, scope) for item in value) if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        function = _FUNCTIONS.get(key)
        if function is not None:
            return function(arg, scope)
    out = {}
    for key, item in value.items():
        resolved = resolve(item, scope)
        if resolved is not NO_VALUE:
            out[key] = resolved
    return out


def _ref(arg: Any, scope: Scope) -> Any:
    return scope.ref(str(arg))


def _get_att(arg: Any, scope: Scope) -> str:
    target, attribute = arg.split(".", 1) if isinstance(arg, str) else (arg[0], resolve(arg[1], scope))
    return scope.get_att(str(target), str(attribute))


def _join(arg: Any, scope: Scope) -> str:
    delimiter, items = arg
    return str(delimiter).join(str(v) for v in resolve(items, scope))


def _sub(arg: Any, scope: Scope) -> str:
    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], resolve(arg[1], scope))

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(variables[name])
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return scope.get_att(logical_id, attribute)
        return str(scope.ref(name))

    return _SUB.sub(replace, str(text)).replace("${!", "${")


def _select(arg: Any, scope: Scope) -> Any:
    index, items = arg
    return resolve(items, scope)[int(resolve(index, scope))]


def _split(arg: Any, scope: Scope) -> list[str]:
    delimiter, text = arg
    return str(resolve(text, scope)).split(str(delimiter))


def _import(arg: Any, scope: Scope) -> str:
    name = str(resolve(arg, scope))
    if name not in scope.exports:
        raise TemplateError(f"Fn::ImportValue: no stack exports {name!r}")
    return scope.exports[name]


def _if(arg: Any, scope: Scope) -> Any:
    condition, when_true, when_false = arg
    return resolve(when_true if scope.conditions.get(condition, False) else when_false, scope)


def evaluate(condition: Any, scope: Scope) -> bool:
    """A Conditions entry or a Rules assertion: Fn::Equals / And / Or / Not / Condition / Contains."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((key, arg),) = condition.items()
        if key == "Fn::Equals":
            left, right = (resolve(v, scope) for v in arg)
            return bool(left == right)
        if key == "Fn::And":
            return all(evaluate(c, scope) for c in arg)
        if key == "Fn::Or":
            return any(evaluate(c, scope) for c in arg)
        if key == "Fn::Not":
            return not evaluate(arg[0], scope)
        if key == "Condition":
            return scope.conditions[str(arg)]
        if key == "Fn::Contains":  # Rules only (the CDK's bootstrap version check)
            values, value = arg
            return resolve(value, scope) in [str(v) for v in resolve(values, scope)]
    raise TemplateError(f"unsupported condition {condition!r}")


_FUNCTIONS: dict[str, Callable[[Any, Scope], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Join": _join,
    "Fn::Sub": _sub,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::ImportValue": _import,
    "Fn::If": _if,
}

"""Every constraint of botocore's AppStream model, checked as AWS checks it server side.

botocore's ParamValidator checks required members, types and `min` only (client side); AWS also
enforces `pattern`, `max`, list and map sizes, enums and numeric ranges, answering
ValidationException with a message that names the member. This walks the operation's input
shape generically, so every member of every served operation is covered.
Patterns use Java's `\\p{L}` classes, which the `regex` module reads as AWS does (`re` cannot).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import regex
from botocore.model import ListShape, MapShape, Shape, StringShape, StructureShape


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


def _member(path: str, name: str) -> str:
    """AWS names members in camelCase in its messages (`tags`, `destinationImageName`)."""
    return f"{path}.{name[:1].lower()}{name[1:]}" if path else f"{name[:1].lower()}{name[1:]}"


def _length_problems(value: Any, shape: Shape, noun: str) -> list[str]:
    problems = []
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        problems.append(f"Member must have {noun} greater than or equal to {low}")
    if high is not None and len(value) > high:
        problems.append(f"Member must have {noun} less than or equal to {high}")
    return problems


def _scalar_problems(value: Any, shape: Shape) -> list[str]:
    problems: list[str] = []
    if isinstance(shape, StringShape) and isinstance(value, str):
        problems += _length_problems(value, shape, "length")
        pattern = shape.metadata.get("pattern")
        if pattern and not _compiled(pattern).search(value):
            problems.append(f"Member must satisfy regular expression pattern: {pattern}")
        if shape.enum and value not in shape.enum:
            problems.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    elif shape.type_name in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            problems.append(f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            problems.append(f"Member must have value less than or equal to {high}")
    return problems


def _walk(value: Any, shape: Shape, path: str, out: list[str]) -> None:
    def report(problems: list[str], shown: Any = value) -> None:
        out.extend(f"Value '{shown}' at '{path}' failed to satisfy constraint: {p}" for p in problems)

    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _walk(value[name], member, _member(path, name), out)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        report(_length_problems(value, shape, "length"))
        for n, item in enumerate(value):
            _walk(item, shape.member, f"{path}.{n + 1}.member", out)
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        report(_length_problems(value, shape, "length"))
        for key, item in value.items():
            keys = _scalar_problems(key, shape.key)
            if keys:
                out.append(
                    f"Value '{key}' at '{path}' failed to satisfy constraint: Map keys must satisfy constraint: "
                    f"[{'; '.join(keys)}]"
                )
            values = _scalar_problems(item, shape.value)
            if values:
                out.append(
                    f"Value '{item}' at '{path}' failed to satisfy constraint: Map value must satisfy constraint: "
                    f"[{'; '.join(values)}]"
                )
    else:
        report(_scalar_problems(value, shape))


def constraint_problems(params: dict[str, Any], shape: StructureShape) -> list[str]:
    """Each violated constraint, as AWS words it: `Value 'x' at 'member' failed to satisfy constraint: ...`."""
    out: list[str] = []
    _walk(params, shape, "", out)
    return out


def validation_message(problems: list[str]) -> str:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: {'; '.join(problems)}"

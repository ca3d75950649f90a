"""The checks every property shares: strings, booleans, choices, objects, lists, patterns, image names; and the
synth-time pass-through of values not known yet (CDK tokens). CloudFormation sends scalars as strings."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..contract import IMAGE_NAME
from ..errors import InvalidProperties

# Synth time: values only known at deploy time (CDK tokens) pass through; their structure is still checked.
_OPAQUE: contextvars.ContextVar[Callable[[str], bool]] = contextvars.ContextVar("opaque", default=lambda _: False)


@contextlib.contextmanager
def passing_through(opaque: Callable[[str], bool]) -> Iterator[None]:
    """Within this block, `parse` skips the checks of every string `opaque(value)` says is not known yet."""
    token = _OPAQUE.set(opaque)
    try:
        yield
    finally:
        _OPAQUE.reset(token)


def opaque(text: str) -> bool:
    return _OPAQUE.get()(text)


def fail(prop: str, problem: str) -> InvalidProperties:
    return InvalidProperties(f"Invalid property {prop}: {problem}", prop, problem)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def text_of(value: Any, prop: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fail(prop, f"expected a string, got {type(value).__name__}")
    return str(value)


def boolean(value: Any, prop: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(prop, f"expected true or false, got {show(value)}")


def choice(value: Any, prop: str, allowed: tuple[str, ...]) -> str:
    text = text_of(value, prop)
    if text not in allowed and not opaque(text):
        raise fail(prop, f"{show(text)} is not one of {', '.join(allowed)}")
    return text


def image_name(value: Any, prop: str = "ImageName") -> str:
    text = text_of(value, prop)
    if not IMAGE_NAME.match(text) and not opaque(text):
        raise fail(
            prop,
            f"{show(text)} does not match {IMAGE_NAME.pattern} (a letter or digit, then letters, digits, _ . -)",
        )
    return text


def mapping(value: Any, prop: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(prop, f"expected an object, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise fail(
            prop, f"unknown keys {', '.join(show(k) for k in unknown[:5])}; allowed: {', '.join(sorted(allowed))}"
        )
    return value


def entries(value: Any, prop: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise fail(prop, f"expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise fail(prop, f"at most {limit} entries are allowed, got {len(value)}")
    return value


def matching(value: Any, prop: str, pattern: Any, what: str) -> str:
    text = text_of(value, prop)
    if not pattern.match(text) and not opaque(text):
        raise fail(prop, f"{show(text)} is not {what} (pattern {pattern.pattern})")
    return text

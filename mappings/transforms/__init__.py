"""Named transforms: the small pure functions a mapping spec refers to by name.

A transform takes the value found at a rule's path (never None: the engine stops at a
missing value), the source's `MappingContext`, and the keyword arguments written under
the rule's `args`; it returns the mapped value or None. A transform returns plain data
(str, number, date, dict, list), never schema models: the engine validates once at the end.

Register one with `@transform("name")`. A new tool's transforms live in a module of this
package that is imported below, so that `registry()` sees them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mappings.context import MappingContext

TransformFn = Callable[..., Any]

_REGISTRY: dict[str, TransformFn] = {}
_TEXT_UNCHANGED: set[str] = set()
_Fn = TypeVar("_Fn", bound=TransformFn)


def transform(name: str, *, text_unchanged: bool = False) -> Callable[[_Fn], _Fn]:
    """Register `fn(value, ctx, **args)` under `name` (the function keeps its own type).

    `text_unchanged`: without args, the transform returns a `str` value as it is (the generated
    mapping code then calls it only for other values; tests/test_mappings_transforms_text.py
    checks each transform that says so)."""

    def register(fn: _Fn) -> _Fn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"transform {name!r} is already registered")
        _REGISTRY[name] = fn
        if text_unchanged:
            _TEXT_UNCHANGED.add(name)
        return fn

    return register


def text_unchanged(name: str) -> bool:
    """Whether transform `name`, without args, returns text values unchanged."""
    return name in _TEXT_UNCHANGED


def registry() -> dict[str, TransformFn]:
    """All registered transforms by name."""
    return _REGISTRY


def bad_args(name: str, args: dict[str, Any]) -> str | None:
    """Why `args` do not fit transform `name` (None when they do)."""
    fn = _REGISTRY[name]
    try:
        inspect.signature(fn).bind(None, None, **args)
    except TypeError as exc:
        return str(exc)
    return None


def bind(name: str, ctx: MappingContext, args: dict[str, Any]) -> Callable[[Any], Any]:
    """The transform with its context and arguments fixed: `value -> result`."""
    fn = _REGISTRY[name]
    if not args:
        return lambda value: fn(value, ctx)
    return lambda value: fn(value, ctx, **args)


# Built-in transforms register themselves on import.
from mappings.transforms import adf, common, jira  # noqa: E402

# isort: split
import mappings.transforms.aha  # noqa: E402
import mappings.transforms.github  # noqa: E402
import mappings.transforms.gitlab  # noqa: E402
import mappings.transforms.linear  # noqa: E402
import mappings.transforms.productboard  # noqa: E402
import mappings.transforms.redmine  # noqa: E402
import mappings.transforms.textile  # noqa: E402, F401

__all__ = ["TransformFn", "adf", "bad_args", "bind", "common", "jira", "registry", "text_unchanged", "transform"]

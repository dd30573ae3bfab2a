"""Find a tool's connector class by its tool name.

Connectors register through the `opshub.connectors` entry point group (pyproject.toml), so a
new tool (or a third-party package) adds a connector without editing shared code.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from connectors.base import Connector

GROUP = "opshub.connectors"


def _load(ep: EntryPoint) -> type[Connector]:
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"entry point {ep.name} = {ep.value} is not a Connector class")
    return cls


@cache
def available() -> dict[str, type[Connector]]:
    return {ep.name: _load(ep) for ep in entry_points(group=GROUP)}


@cache
def connector_class(tool: str) -> type[Connector]:
    # Only the tool's own entry point is loaded: importing every installed connector (and
    # its config model) to use one was start-up time of every `opshub sync` (issue 13).
    for ep in entry_points(group=GROUP, name=tool):
        return _load(ep)
    known = ", ".join(sorted(available())) or "none installed"
    raise KeyError(f"no connector for tool {tool!r} (known: {known})")

"""Find a tool's connector class by its tool name.

Connectors register through the `opshub.connectors` entry point group (pyproject.toml), so a
new tool (or a third-party package) adds a connector without editing shared code.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from connectors.base import Connector

GROUP = "opshub.connectors"


@cache
def available() -> dict[str, type[Connector]]:
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a Connector class")
        found[ep.name] = cls
    return found


def connector_class(tool: str) -> type[Connector]:
    try:
        return available()[tool]
    except KeyError:
        known = ", ".join(sorted(available())) or "none installed"
        raise KeyError(f"no connector for tool {tool!r} (known: {known})") from None

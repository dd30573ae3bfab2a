"""Raw tool records -> WorkItems, through the tool's declarative mapping (mappings/).

The hub's one place that calls the mapping engine: the sync engine, the webhook inbox
worker and `opshub mappings preview` all normalise through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.schema import WorkItem
from mappings import Mapper, MappingError, mapper_for


class Normaliser:
    def __init__(self, tool: str, context: dict[str, Any], overrides: dict[str, Any]) -> None:
        self.tool = tool
        self._mapper: Mapper = mapper_for(tool, context, overrides)

    def map(self, record: dict[str, Any]) -> WorkItem:
        """One record; raises MappingError when it cannot be mapped."""
        return self._mapper.map(record)

    def map_many(
        self, records: list[dict[str, Any]], native_id: Callable[[dict[str, Any]], str]
    ) -> tuple[list[WorkItem], list[dict[str, str]]]:
        """Map a page; a record that fails is reported with its error and skipped."""
        items: list[WorkItem] = []
        errors: list[dict[str, str]] = []
        for record in records:
            try:
                items.append(self._mapper.map(record))
            except MappingError as exc:
                errors.append({"native_id": exc.native_id or _safe_id(native_id, record), "error": exc.message})
            except Exception as exc:  # noqa: BLE001 - a bug on one record must not stop the run
                errors.append({"native_id": _safe_id(native_id, record), "error": f"{type(exc).__name__}: {exc}"})
        return items, errors


def _safe_id(native_id: Callable[[dict[str, Any]], str], record: dict[str, Any]) -> str:
    try:
        return native_id(record)
    except Exception:  # noqa: BLE001 - only used to label an error
        return "?"

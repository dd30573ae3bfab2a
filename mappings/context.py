"""What a mapping needs to know about the source a record came from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MappingContext:
    """Facts about one configured source, given by its connector (`Connector.mapping_context()`).

    `fields` is the tool's field catalog (Jira: `GET /rest/api/3/field`, a list of
    `{id, name, custom, schema}`), used to resolve custom fields by display name.
    `key_index` optionally maps human keys (`PROJ-7`) to native ids, for references that
    carry only a key (Jira's classic Epic Link field).
    """

    source: str
    tool: str
    base_url: str = ""
    fields: Sequence[Mapping[str, Any]] = ()
    key_index: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: MappingContext | Mapping[str, Any]) -> MappingContext:
        """Accept a MappingContext or the plain dict a connector returns."""
        if isinstance(value, MappingContext):
            return value
        catalog = value.get("fields")
        if catalog is None:
            catalog = value.get("field_catalog") or ()
        return cls(
            source=str(value["source"]),
            tool=str(value.get("tool") or ""),
            base_url=str(value.get("base_url") or "").rstrip("/"),
            fields=tuple(catalog),
            key_index=dict(value.get("key_index") or {}),
        )

    def field_ids_by_name(self) -> dict[str, str]:
        """Display name (case-folded) -> field id; the first field wins when names repeat."""
        out: dict[str, str] = {}
        for entry in self.fields:
            name, fid = entry.get("name"), entry.get("id")
            if isinstance(name, str) and isinstance(fid, str):
                out.setdefault(name.strip().casefold(), fid)
        return out

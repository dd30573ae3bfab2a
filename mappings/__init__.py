"""Mappings: declarative specs (one per tool) that turn a tool's raw record into a WorkItem.

Public API (see mappings/README.md for the spec and override formats):

- `load_spec(tool)`, `merge_overrides(spec, overrides)`, `check(spec, overrides, field_catalog)`,
  `check_all({source: (tool, overrides)})`
- `Mapper(spec, context).map(raw) -> WorkItem` (raises `MappingError(native_id, message)`),
  `mapper_for(tool, context, overrides)` (validate, merge, check and compile in one pass),
  `preview(tool, raw, context, overrides)`
- `MappingContext` (source, tool, base_url, field catalog, key index), `SpecError`

Depends only on the shared schema (hub.schema): no store, no app, no connectors.
"""

from mappings.context import MappingContext
from mappings.engine import Mapper, check, check_all, load_spec, mapper_for, merge_overrides, preview
from mappings.errors import MappingError, SpecError
from mappings.spec import MappingSpec, Rule, available_tools

__all__ = [
    "Mapper",
    "MappingContext",
    "MappingError",
    "MappingSpec",
    "Rule",
    "SpecError",
    "available_tools",
    "check",
    "check_all",
    "load_spec",
    "mapper_for",
    "merge_overrides",
    "preview",
]

"""The mapping spec: how one tool's raw record becomes a WorkItem, as data.

A spec (`mappings/<tool>.yaml`) has:

- `fields`: one *rule* per WorkItem field. A rule finds a value and shapes it:

  - `path`: dotted path into the raw record (`fields.status.statusCategory.key`; a number
    indexes a list; `$` is the record itself). `field:NAME` is a custom field by display
    name through the source's field catalog, where NAME is either a *role* from
    `custom_fields` (`field:estimate`) or a display name (`field:Story Points`).
  - or `first`: a list of rules, the first that yields a value wins;
  - or `object`: sub-rules building an object (`required` lists keys without which the
    object is dropped; without `required`, an object with no values is dropped);
  - or `const` / `param` (a value from `params`).

  Then, in this order: `transform` (a registered function, with `args`), `table` (look the
  value up in a value table, case-insensitively; a miss is "no value"; a list value gives
  its first item that the table has, e.g. the first label with a rule), `default`.
  A string rule is short for `{path: ...}`.
- `tables`: named value tables (status name -> category, priority name -> level ...).
- `custom_fields`: role -> display names tried in order (a source overrides them by role).
- `custom_field_list`: for tools whose records carry their custom fields inline as a list of
  `{id, name, value}` (Redmine's `custom_fields`), the path of that list: `field:NAME` then
  reads the `value` of the entry whose name (case-insensitive), id or `key` is NAME, with no
  catalog. A list of paths is searched in order (Aha!: `[score_facts, custom_fields]`).
- `params`: named constants rules can refer to (e.g. the estimate's unit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.schema import ItemKind, PriorityLevel, StatusCategory
from mappings.errors import SpecError

# PyYAML's libyaml-backed safe loader when the wheel has it: the same safe constructor and
# resolver classes over a parser in C, ~10x faster on a spec (jira.yaml 8.4 -> 0.8 ms), which
# every `opshub` process that checks its config pays at start-up (issue 13: the sync is timed
# whole). https://pyyaml.org/wiki/PyYAMLDocumentation ("CLoader ... LibYAML based")
SPEC_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SPEC_DIR = Path(__file__).resolve().parent

# WorkItem fields a spec may fill (the hub sets id, source, tool, raw, deleted, version, synced_at).
TARGET_FIELDS = (
    "native_id",
    "key",
    "url",
    "kind",
    "kind_raw",
    "title",
    "description",
    "status",
    "priority",
    "assignees",
    "reporter",
    "labels",
    "container",
    "parent_id",
    "links",
    "created_at",
    "updated_at",
    "completed_at",
    "start_on",
    "due_on",
    "estimate",
    "iteration",
    "release",
    "rice",
    "custom",
)
REQUIRED_FIELDS = ("native_id", "status", "updated_at")

# Where a value must be one of a vocabulary: checked for tables, constants and defaults.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "kind": tuple(k.value for k in ItemKind),
    "status.category": tuple(s.value for s in StatusCategory),
    "priority.level": tuple(p.value for p in PriorityLevel),
    "estimate.unit": ("points", "hours", "days"),
}


class Rule(BaseModel):
    """How to find and shape one value (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    first: list[Rule] | None = None
    object: dict[str, Rule] | None = None
    required: list[str] | None = None
    const: Any = None
    param: str | None = None
    transform: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    table: str | None = None
    default: Any = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"path": data}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Rule:
        given = [n for n in ("path", "first", "object", "const", "param") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"a rule takes one of path, first, object, const, param; got {', '.join(given)}")
        if not given and self.default is None:
            raise ValueError("a rule needs path, first, object, const, param or default")
        return self


class MappingSpec(BaseModel):
    """One tool's mapping: rules per WorkItem field, value tables, custom field roles."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    description: str | None = None
    fields: dict[str, Rule]
    tables: dict[str, dict[str, Any]] = Field(default_factory=dict)
    custom_fields: dict[str, list[str]] = Field(default_factory=dict)
    custom_field_list: str | list[str] | None = None
    params: dict[str, Any] = Field(default_factory=dict)


def spec_path(tool: str) -> Path:
    return SPEC_DIR / f"{tool}.yaml"


def available_tools() -> list[str]:
    """Tools with a spec file in this package."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))


def parse_spec(data: Any, origin: str = "spec") -> MappingSpec:
    """Validate spec data, turning pydantic errors into SpecError lines with key paths."""
    try:
        return MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([f"{origin}: {_where(err['loc'])}: {err['msg']}" for err in exc.errors()]) from None


def read_spec(tool: str) -> MappingSpec:
    """Load and validate `mappings/{tool}.yaml`."""
    path = spec_path(tool)
    if not path.exists():
        known = ", ".join(available_tools()) or "none"
        raise SpecError([f"no mapping spec for tool {tool!r} (known: {known})"])
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SPEC_LOADER)  # noqa: S506 - SPEC_LOADER is a safe loader
    except yaml.YAMLError as exc:
        raise SpecError([f"{path.name}: invalid YAML: {exc}"]) from None
    return parse_spec(data, path.name)


def _where(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's union/validator markers, keep the user's keys.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return ".".join(parts) or "(top)"

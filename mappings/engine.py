"""The mapping engine: load a tool's spec, merge a source's overrides, check, compile, map.

    # one pass: validate the overrides, merge them, check the result, compile it
    mapper = mapper_for("jira", await connector.mapping_context(), source_config.mapping)
    item = mapper.map(raw_issue)  # WorkItem, or MappingError

`merge_overrides(spec, overrides)` + `Mapper(spec, context)` do the same in two steps (the
Mapper checks a spec it did not get from that pass).

Compiling resolves every path, custom field name, table and transform once, into plain
closures, so mapping a record is a walk over prepared getters plus one validation of the
finished WorkItem.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from types import CodeType, MappingProxyType
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from hub.schema import Container, Estimate, Iteration, PersonRef, Priority, Release, Rice, Status, WorkItem
from mappings import transforms
from mappings.context import MappingContext
from mappings.errors import MappingError, SpecError
from mappings.spec import (
    REQUIRED_FIELDS,
    TARGET_FIELDS,
    VOCABULARIES,
    MappingSpec,
    Rule,
    available_tools,
    parse_spec,
    read_spec,
)

Getter = Callable[[Any], Any]

# Shape of the objects a rule may build, for checking `object` keys.
_OBJECT_MODELS: dict[str, type[BaseModel]] = {
    "status": Status,
    "priority": Priority,
    "container": Container,
    "estimate": Estimate,
    "iteration": Iteration,
    "release": Release,
    "rice": Rice,
    "reporter": PersonRef,
}
FALLBACKS_KEY = "_opshub_fallbacks"
"""`WorkItem.custom` key listing the vocabulary fallbacks a mapping took: `[{field, raw}]`.

Why a reserved `custom` key rather than a schema field: it is present only on the items that
fell back, so the shared schema (OpenAPI, `opshub schema`, every stored document and golden
record) stays unchanged, and the store keeps it with the item because `custom` is part of the
stored document. The `_opshub_` prefix keeps it apart from a source's friendly custom names.
"""
# WorkItem target -> (field reported in `FALLBACKS_KEY`, where the tool's raw name is mapped to).
# A fallback is a rule's `default` answering although the tool gave a name: no table entry (nor
# a later option such as Jira's status category) placed it, so the value is a guess that a
# ProductOps person should turn into a mapping override (see hub/insights/quality.py).
FALLBACK_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kind": ("kind", ("kind_raw",)),
    "status.category": ("status", ("status", "name")),
    "priority.level": ("priority", ("priority", "name")),
}
_fell_back: ContextVar[list[str] | None] = ContextVar("mapping_fell_back", default=None)
# Override keys that are not a table or a custom field role.
RESERVED_OVERRIDE_KEYS = ("custom", "fields", "params")


# ---------------------------------------------------------------------------- loading


@functools.lru_cache(maxsize=32)
def _cached_spec(tool: str) -> MappingSpec:
    return read_spec(tool)


def load_spec(tool: str) -> MappingSpec:
    """The tool's spec from `mappings/{tool}.yaml` (a fresh copy: callers may change it)."""
    return _cached_spec(tool).model_copy(deep=True)


# -------------------------------------------------------------------------- overrides
#
# One pass per spec: `_prepare` validates a source's overrides against the tool's spec, merges
# them and checks the merged spec once; `mapper_for` compiles that result without checking it
# again. (Before, `mapper_for` checked overrides, then the merged spec, then the spec again in
# `Mapper`, and `check(spec, overrides)` did the overrides twice and the merged spec twice.)


def _display_names(value: Any) -> list[str] | None:
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def _q(key: str) -> str:
    """A key as it appears in an error path: bare when simple, quoted otherwise."""
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _not_in_vocabulary(value: Any, target: str, at: str, noun: str | None = None) -> str:
    vocab = VOCABULARIES[target]
    return f"{at}: {value!r} is not a valid {noun or target} (expected one of {', '.join(vocab)})"


def _override_errors(spec: MappingSpec, overrides: Mapping[str, Any], where: str) -> list[str]:
    """Problems with a source's overrides, checked against the tool's spec (before merging)."""
    if not isinstance(overrides, Mapping):
        return [f"{where}: must be a table of overrides, got {type(overrides).__name__}"]
    targets = _table_targets(spec)
    errors: list[str] = []
    for key, value in overrides.items():
        at = f"{where}.{_q(key)}"
        if key in spec.tables:
            errors += _table_override_errors(value, sorted(targets.get(key, ())), at)
        elif key in spec.custom_fields:
            errors += _role_override_errors(spec, key, value, at)
        elif key in _RESERVED_OVERRIDE_CHECKS:
            errors += _RESERVED_OVERRIDE_CHECKS[key](spec, value, at)
        else:
            known = sorted({*spec.tables, *spec.custom_fields, *RESERVED_OVERRIDE_KEYS})
            errors.append(f"{at}: unknown override (known: {', '.join(known)})")
    return errors


def _table_override_errors(value: Any, targets: list[str], at: str) -> list[str]:
    """`status = {"Ready For QA" = "in_progress"}`: each value must be in its targets' vocabularies."""
    if not isinstance(value, Mapping):
        return [f"{at}: must be a table of name = value, got {value!r}"]
    return [
        _not_in_vocabulary(mapped, target, f"{at}.{_q(str(name))}")
        for name, mapped in value.items()
        for target in targets
        if target in VOCABULARIES and mapped not in VOCABULARIES[target]
    ]


def _role_override_errors(spec: MappingSpec, role: str, value: Any, at: str) -> list[str]:
    """`estimate = "Story Points"` / `["A", "B"]` / `{field = ..., unit = ...}`."""
    if not isinstance(value, Mapping):
        if _display_names(value) is None:
            return [f"{at}: must be a display name, a list of them, or {{ field = ... }}, got {value!r}"]
        return []
    has_unit = f"{role}_unit" in spec.params
    errors = [_role_key_error(key, value[key], has_unit, at) for key in value if key != "field"]
    if "field" not in value:
        errors.append(f"{at}: missing `field` (the custom field's display name)")
    elif _display_names(value["field"]) is None:
        errors.append(f"{at}.field: must be a display name or a list of them, got {value['field']!r}")
    return [e for e in errors if e]


def _role_key_error(key: Any, value: Any, has_unit: bool, at: str) -> str:
    """A key beside `field` in a role override: only `unit`, and only for roles with a unit."""
    if key == "unit" and has_unit:
        return (
            ""
            if value in VOCABULARIES["estimate.unit"]
            else _not_in_vocabulary(value, "estimate.unit", f"{at}.unit", "unit")
        )
    return f"{at}.{_q(str(key))}: unknown key (allowed: {'field, unit' if has_unit else 'field'})"


def _custom_override_errors(spec: MappingSpec, value: Any, at: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{at}: must be a table of friendly name = custom field display name"]
    return [e for name, rule in value.items() for e in _rule_input_errors(rule, f"{at}.{_q(str(name))}")]


def _fields_override_errors(spec: MappingSpec, value: Any, at: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{at}: must be a table of WorkItem field = rule"]
    errors: list[str] = []
    for name, rule in value.items():
        if name not in TARGET_FIELDS:
            errors.append(f"{at}.{_q(str(name))}: unknown WorkItem field (known: {', '.join(TARGET_FIELDS)})")
        else:
            errors += _rule_input_errors(rule, f"{at}.{_q(str(name))}")
    return errors


def _params_override_errors(spec: MappingSpec, value: Any, at: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{at}: must be a table of name = value"]
    known = ", ".join(spec.params) or "none"
    return [f"{at}.{_q(str(name))}: unknown parameter (known: {known})" for name in value if name not in spec.params]


_RESERVED_OVERRIDE_CHECKS: dict[str, Callable[[MappingSpec, Any, str], list[str]]] = {
    "custom": _custom_override_errors,
    "fields": _fields_override_errors,
    "params": _params_override_errors,
}


def _rule_input_errors(rule: Any, at: str) -> list[str]:
    if isinstance(rule, str):
        return [] if rule.strip() else [f"{at}: empty"]
    if not isinstance(rule, Mapping):
        return [f"{at}: must be a display name or a rule table, got {rule!r}"]
    data = _custom_rule_data(rule, None)
    try:
        Rule.model_validate(data)
    except ValidationError as exc:
        return [f"{at}{_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]
    return []


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return "".join(f".{p}" for p in parts)


def _custom_rule_data(rule: Any, transform: str | None) -> Any:
    """`"Team"` / `{field = "Team"}` -> a rule reading that custom field."""
    if isinstance(rule, str):
        data: dict[str, Any] = {"path": f"field:{rule.strip()}"}
        if transform:
            data["transform"] = transform
        return data
    if isinstance(rule, Mapping) and "field" in rule:
        data = {k: v for k, v in rule.items() if k != "field"}
        data["path"] = f"field:{rule['field']}"
        if transform and "transform" not in data:
            data["transform"] = transform
        return data
    return dict(rule) if isinstance(rule, Mapping) else rule


def _merged_data(spec: MappingSpec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's data with valid overrides applied (SpecError if `custom` cannot apply)."""
    data = spec.model_dump(exclude_unset=True)
    data.setdefault("tables", {})
    data.setdefault("custom_fields", {})
    data.setdefault("params", {})
    for key, value in overrides.items():
        if key in spec.tables:
            data["tables"][key] = {**data["tables"].get(key, {}), **{str(k): v for k, v in value.items()}}
        elif key in spec.custom_fields:
            _merge_role(data, key, value)
        elif key == "params":
            data["params"].update(value)
        elif key == "fields":
            data["fields"].update(value)
        elif key == "custom":
            _merge_custom(data, value, spec.params.get("custom_transform"))
    return data


def _merge_role(data: dict[str, Any], role: str, value: Any) -> None:
    data["custom_fields"][role] = _display_names(value["field"] if isinstance(value, Mapping) else value)
    if isinstance(value, Mapping) and "unit" in value:
        data["params"][f"{role}_unit"] = value["unit"]


def _merge_custom(data: dict[str, Any], value: Mapping[str, Any], default_transform: str | None) -> None:
    custom = data["fields"].setdefault("custom", {"object": {}})
    if "object" not in custom:
        raise SpecError(["mapping.custom: the spec's custom rule is not an object; override fields.custom"])
    for name, rule in value.items():
        custom["object"][str(name)] = _custom_rule_data(rule, default_transform)


def _prepare(spec: MappingSpec, overrides: Mapping[str, Any] | None) -> tuple[MappingSpec, list[str]]:
    """The one pass: validate the overrides, merge them, check the result.

    Returns the merged spec and its problems (none: it is ready to compile). Without overrides
    it is the spec itself, checked.
    """
    if not overrides:
        return spec, _spec_errors(spec)
    errors = _override_errors(spec, overrides, "mapping")
    if errors:
        return spec, errors
    try:
        merged = parse_spec(_merged_data(spec, overrides), "mapping")
    except SpecError as exc:
        return spec, exc.errors
    return merged, _spec_errors(merged)


def merge_overrides(spec: MappingSpec, overrides: Mapping[str, Any] | None) -> MappingSpec:
    """The spec with a source's overrides applied (see mappings/README.md); SpecError if invalid."""
    if not overrides:
        return spec
    merged, errors = _prepare(spec, overrides)
    if errors:
        raise SpecError(errors)
    return merged


# ------------------------------------------------------------------------------ check


def _walk(rule: Rule, target: str) -> Iterable[tuple[Rule, str, str]]:
    """Every rule under `rule` with its WorkItem target path and its path in the spec."""
    stack: list[tuple[Rule, str, str]] = [(rule, target, f"fields.{target}")]
    while stack:
        current, tgt, where = stack.pop()
        yield current, tgt, where
        for i, sub in enumerate(current.first or ()):
            stack.append((sub, tgt, f"{where}.first[{i}]"))
        for key, sub in (current.object or {}).items():
            stack.append((sub, f"{tgt}.{key}", f"{where}.object.{_q(key)}"))


def _table_targets(spec: MappingSpec) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, rule in spec.fields.items():
        for sub, target, _ in _walk(rule, name):
            if sub.table:
                out.setdefault(sub.table, set()).add(target)
    return out


def _field_names(path: str, spec: MappingSpec) -> list[str]:
    name = path[len("field:") :].strip()
    return spec.custom_fields.get(name, [name])


def check(
    spec: MappingSpec,
    overrides: Mapping[str, Any] | None = None,
    field_catalog: Iterable[Mapping[str, Any]] | None = None,
) -> list[str]:
    """Every problem with a spec (and a source's overrides), one line each with the key's path.

    With `field_catalog` (the tool's field list), display names a source set that the
    catalog lacks are reported too.
    """
    merged, errors = _prepare(spec, overrides)
    if errors or not overrides or field_catalog is None:
        return errors
    return list(dict.fromkeys(_catalog_errors(merged, overrides, field_catalog)))


def _spec_errors(spec: MappingSpec) -> list[str]:
    """Every problem with a (merged) spec: one walk over its rules."""
    registry = transforms.registry()
    errors: list[str] = []
    clash = set(spec.tables) & set(spec.custom_fields)
    if clash:
        errors.append(f"tables and custom_fields share names: {', '.join(sorted(clash))}")
    errors += [
        f"fields.{name}: missing (every WorkItem needs it)" for name in REQUIRED_FIELDS if name not in spec.fields
    ]
    for name, top in spec.fields.items():
        if name not in TARGET_FIELDS:
            errors.append(f"fields.{_q(name)}: unknown WorkItem field (known: {', '.join(TARGET_FIELDS)})")
            continue
        for rule, target, where in _walk(top, name):
            errors += _path_errors(rule, where)
            errors += _transform_errors(rule, where, registry)
            errors += _reference_errors(spec, rule, where)
            errors += _vocabulary_errors(spec, rule, target, where)
            errors += _object_errors(rule, target, where)
    return list(dict.fromkeys(errors))


def _path_errors(rule: Rule, where: str) -> list[str]:
    if rule.path is None:
        return []
    custom = rule.path.startswith("field:")
    segments = rule.path[len("field:") :] if custom else rule.path
    if not segments.strip() or (not custom and "" in rule.path.split(".")):
        return [f"{where}.path: malformed path {rule.path!r}"]
    return []


def _transform_errors(rule: Rule, where: str, registry: Mapping[str, Any]) -> list[str]:
    if rule.transform is None:
        return [f"{where}.args: given without a transform"] if rule.args else []
    if rule.transform not in registry:
        return [f"{where}.transform: unknown transform {rule.transform!r} (known: {', '.join(sorted(registry))})"]
    problem = transforms.bad_args(rule.transform, rule.args)
    return [f"{where}.args: {problem}"] if problem else []


def _reference_errors(spec: MappingSpec, rule: Rule, where: str) -> list[str]:
    """A rule's `table` and `param` must name one the spec has."""
    errors = []
    if rule.table is not None and rule.table not in spec.tables:
        errors.append(f"{where}.table: unknown table {rule.table!r} (known: {', '.join(sorted(spec.tables))})")
    if rule.param is not None and rule.param not in spec.params:
        errors.append(f"{where}.param: unknown parameter {rule.param!r}")
    return errors


def _vocabulary_errors(spec: MappingSpec, rule: Rule, target: str, where: str) -> list[str]:
    """Where the target has a vocabulary: the rule's constants, its param and its table's values."""
    vocab = VOCABULARIES.get(target)
    if not vocab:
        return []
    errors = [
        _not_in_vocabulary(value, target, f"{where}.{label}")
        for label, value in (("const", rule.const), ("default", rule.default))
        if value is not None and value not in vocab
    ]
    if rule.param is not None and spec.params.get(rule.param) not in (None, *vocab):
        errors.append(_not_in_vocabulary(spec.params[rule.param], target, f"params.{rule.param}"))
    if rule.table in spec.tables:
        errors += [
            _not_in_vocabulary(value, target, f"tables.{rule.table}.{_q(str(key))}")
            for key, value in spec.tables[rule.table].items()
            if value not in vocab
        ]
    return errors


def _object_errors(rule: Rule, target: str, where: str) -> list[str]:
    """An `object` rule's keys must be fields of the object built; `required` keys must be its keys."""
    errors = []
    model = _OBJECT_MODELS.get(target)
    if rule.object is not None and model is not None:
        errors += [
            f"{where}.object.{_q(key)}: {target} has no field {key!r} (fields: {', '.join(model.model_fields)})"
            for key in rule.object
            if key not in model.model_fields
        ]
    errors += [
        f"{where}.required: {key!r} is not a key of this rule's object"
        for key in rule.required or ()
        if rule.object is None or key not in rule.object
    ]
    return errors


def _catalog_errors(spec: MappingSpec, overrides: Mapping[str, Any], catalog: Iterable[Mapping[str, Any]]) -> list[str]:
    """Display names the overrides set that the tool's field catalog has no field for."""
    fields = list(catalog)
    known = {str(f.get("name", "")).strip().casefold() for f in fields} | {str(f.get("id", "")) for f in fields}
    errors: list[str] = []
    for key, value in overrides.items():
        if key in spec.custom_fields:
            errors += _role_catalog_errors(key, value, known)
        elif key == "custom" and isinstance(value, Mapping):
            errors += [
                f"mapping.custom.{_q(str(name))}: no custom field named {display!r} in the field catalog"
                for name, display in ((n, _custom_display_name(r)) for n, r in value.items())
                if isinstance(display, str) and display.strip().casefold() not in known
            ]
    return errors


def _role_catalog_errors(role: str, value: Any, known: set[str]) -> list[str]:
    names = _display_names(value["field"] if isinstance(value, Mapping) else value) or []
    missing = [n for n in names if n.casefold() not in known]
    if missing and len(missing) == len(names):
        return [
            f"mapping.{_q(role)}.field: no custom field named {' or '.join(map(repr, missing))} in the field catalog"
        ]
    return []


def _custom_display_name(rule: Any) -> Any:
    return rule if isinstance(rule, str) else rule.get("field") if isinstance(rule, Mapping) else None


def check_all(specs_and_overrides: Mapping[str, tuple[str, Mapping[str, Any] | None]] | None = None) -> list[str]:
    """Check every shipped spec, then each source's overrides: `{source: (tool, overrides)}`.

    Lines are prefixed with the spec file or `sources.<name>.` so they point at the config key.
    """
    errors: list[str] = []
    for tool in available_tools():
        try:
            spec = load_spec(tool)
        except SpecError as exc:
            errors += exc.errors
            continue
        errors += [f"{tool}.yaml: {e}" for e in check(spec)]
    for source, (tool, overrides) in (specs_and_overrides or {}).items():
        try:
            spec = load_spec(tool)
        except SpecError as exc:
            errors += [f"sources.{source}: {e}" for e in exc.errors]
            continue
        errors += [
            f"sources.{source}.{e}" if e.startswith("mapping") else f"sources.{source}: {e}"
            for e in check(spec, overrides)
        ]
    return errors


# ---------------------------------------------------------------------------- compile


def _path_getter(parts: tuple[str | int, ...]) -> Getter:
    """A getter for a parsed dotted path; one and two keys (the common shapes) get their own."""
    if not parts:
        return lambda raw: raw
    if len(parts) == 1 and isinstance(parts[0], str):
        only = parts[0]
        return lambda raw: raw.get(only) if raw.__class__ is dict else None
    if len(parts) == 2 and isinstance(parts[0], str) and isinstance(parts[1], str):
        return _two_keys_getter(parts[0], parts[1])
    return _walking_getter(parts)


def _two_keys_getter(a: str, b: str) -> Getter:
    def get2(raw: Any) -> Any:
        if raw.__class__ is not dict:
            return None
        mid = raw.get(a)
        return mid.get(b) if mid.__class__ is dict else None

    return get2


def _walking_getter(parts: tuple[str | int, ...]) -> Getter:
    def get(raw: Any) -> Any:
        value = raw
        for part in parts:
            if value.__class__ is dict:
                value = value.get(part)
            elif value.__class__ is list and part.__class__ is int:
                value = value[part] if -len(value) <= part < len(value) else None
            else:
                return None
            if value is None:
                return None
        return value

    return get


def _none(raw: Any) -> Any:
    return None


def _inline_field_getter(entries: Getter, names: list[str]) -> Getter:
    """`field:NAME` for records that carry custom fields inline as `[{id, name, value}]`."""
    wanted = [n.strip().casefold() for n in names]

    def get(raw: Any) -> Any:
        found = entries(raw)
        if found.__class__ is not list:
            return None
        by_key: dict[str, Any] = {}
        for entry in found:
            if entry.__class__ is dict:
                for key in (entry.get("name"), entry.get("id"), entry.get("key")):
                    if key is not None:
                        by_key.setdefault(str(key).strip().casefold(), entry)
        for name in wanted:
            entry = by_key.get(name)
            if entry is not None:
                value = entry.get("value")
                return None if value == "" or value == [] else value
        return None

    return get


def _first_of(getters: list[Getter]) -> Getter:
    """The first getter's value that is not None."""

    def get(raw: Any) -> Any:
        for getter in getters:
            value = getter(raw)
            if value is not None:
                return value
        return None

    return get


def _table_hit(table: Mapping[str, Any], value: Any) -> Any:
    """A value table lookup: exact, then case-folded; a list gives its first item that hits."""
    hit = table.get(value) if value.__class__ is str else None
    if hit is not None:
        return hit
    if value.__class__ is list:
        for item in value:
            hit = _table_hit(table, item)
            if hit is not None:
                return hit
        return None
    if value.__class__ is dict:
        return None
    return table.get(str(value).strip().casefold())


class _Compiler:
    def __init__(self, spec: MappingSpec, ctx: MappingContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.field_ids = ctx.field_ids_by_name()
        self.unresolved: list[str] = []
        self.read: set[str] = set()
        self.tables = {name: self._table(table) for name, table in spec.tables.items()}

    @staticmethod
    def _table(table: Mapping[Any, Any]) -> dict[str, Any]:
        # Exact keys first, then case-folded ones: a hit costs one dict lookup.
        out = {str(k).strip().casefold(): v for k, v in table.items()}
        out.update({str(k): v for k, v in table.items()})
        return out

    def path(self, path: str) -> Getter:
        found = self.path_parts(path)
        return found if callable(found) else _path_getter(found)

    def path_parts(self, path: str) -> tuple[str | int, ...] | Getter:
        """A path as its keys, or as a getter when it is no plain walk (inline custom fields)."""
        if path == "$":
            return ()
        if path.startswith("field:"):
            names = _field_names(path, self.spec)
            lists = self.spec.custom_field_list
            if isinstance(lists, str):
                return _inline_field_getter(self.path(lists), names)
            if lists:
                return _first_of([_inline_field_getter(self.path(p), names) for p in lists])
            for name in names:
                fid = self.field_ids.get(name.casefold())
                if fid is None and name.startswith("customfield_"):
                    fid = name
                if fid is not None:
                    self.read.add(f"fields.{fid}")
                    return ("fields", fid)
            self.unresolved.append(path)
            return _none
        parts = tuple(int(p) if p.lstrip("-").isdigit() else p for p in path.split("."))
        self.read.add(".".join(str(p) for p in parts[:2]))
        return parts

    def rule(self, rule: Rule, target: str = "") -> Getter:
        fallback = FALLBACK_TARGETS.get(target)
        if fallback is not None and rule.default is not None:
            return self._noting_fallback(rule, fallback[0])
        source = self._source(rule, target)
        fn = transforms.bind(rule.transform, self.ctx, rule.args) if rule.transform else None
        table = self.tables[rule.table] if rule.table else None
        return _shaped(source, fn, table, rule.default)

    def _noting_fallback(self, rule: Rule, field: str) -> Getter:
        """The rule, noting `field` in the current `Mapper.map` call when its default answers."""
        inner = self.rule(rule.model_copy(update={"default": None}))
        default = rule.default

        def noting(raw: Any) -> Any:
            value = inner(raw)
            if value is not None:
                return value
            noted = _fell_back.get()
            if noted is not None:
                noted.append(field)
            return default

        return noting

    def _source(self, rule: Rule, target: str = "") -> Getter:
        if rule.path is not None:
            return self.path(rule.path)
        if rule.first is not None:
            return _first_of([self.rule(r) for r in rule.first])
        if rule.object is not None:
            parts = [(key, self.rule(sub, f"{target}.{key}")) for key, sub in rule.object.items()]
            return _object_builder(parts, tuple(rule.required or ()))
        constant = self.spec.params.get(rule.param) if rule.param is not None else rule.const
        return lambda raw: constant


# Specialised closures for the common shapes of a rule: one call less per value on the hot path.


def _shaped(source: Getter, fn: Getter | None, table: dict[str, Any] | None, default: Any) -> Getter:
    """`source`, then the transform `fn`, then the value `table`, then `default`."""
    if fn is None and table is None:
        if default is None:
            return source
        return lambda raw: d if (d := source(raw)) is not None else default
    if table is None and fn is not None:
        return _with_transform(source, fn, default)
    if fn is None and table is not None:
        return _with_table(source, table, default)
    return _with_transform_and_table(source, fn, table, default)


def _with_transform(source: Getter, transform: Getter, default: Any) -> Getter:
    if default is None:
        return lambda raw: None if (v := source(raw)) is None else transform(v)

    def run_transform(raw: Any) -> Any:
        value = source(raw)
        if value is None:
            return default
        value = transform(value)
        return default if value is None else value

    return run_transform


def _with_table(source: Getter, lookup: dict[str, Any], default: Any) -> Getter:
    def run_table(raw: Any) -> Any:
        value = source(raw)
        if value is None:
            return default
        hit = lookup.get(value) if value.__class__ is str else None
        if hit is None:
            hit = _table_hit(lookup, value)
        return default if hit is None else hit

    return run_table


def _with_transform_and_table(source: Getter, fn: Getter | None, table: dict[str, Any] | None, default: Any) -> Getter:
    def run(raw: Any) -> Any:
        value = source(raw)
        if value is None:
            return default
        if fn is not None:
            value = fn(value)
            if value is None:
                return default
        if table is not None:
            hit = table.get(value) if value.__class__ is str else None
            if hit is None:
                hit = _table_hit(table, value)
            value = hit
        return default if value is None else value

    return run


def _object_builder(parts: list[tuple[str, Getter]], required: tuple[str, ...]) -> Getter:
    """An `object` rule: the keys that have a value; None when empty or a `required` key is missing."""

    def build(raw: Any) -> Any:
        out = {}
        for key, getter in parts:
            value = getter(raw)
            if value is not None:
                out[key] = value
        if not out:
            return None
        for key in required:
            if key not in out:
                return None
        return out

    return build


_NO_KEYS: Mapping[str, Any] = MappingProxyType({})
"""What the generated code reads keys from when a top-level value is no dict (read-only: shared)."""


def _note(field: str, noted: list[str] | None) -> None:
    """Note a vocabulary fallback in `noted` (given by `Mapper.map`), else in the current
    `_fell_back` list as `_noting_fallback` does (a caller of `fill(raw, out)` sets it)."""
    if noted is None:
        noted = _fell_back.get()
    if noted is not None:
        noted.append(field)


@functools.lru_cache(maxsize=64)
def _compiled(source: str, filename: str) -> CodeType:
    """`compile()` costs ~7 ms, twice what the rest of a mapper's set-up does; the values live in
    the function's globals, so one spec shape gives one source text, compiled once per process."""
    code: CodeType = compile(source, filename, "exec")
    return code


class _Fill(Protocol):
    """The generated `fill(raw, out, noted=None)`: fallbacks go to `noted`, else to `_fell_back`."""

    def __call__(self, raw: dict[str, Any], out: dict[str, Any], noted: list[str] | None = None) -> None: ...


class _Generator:
    """The compiled spec written out as one Python function, `fill(raw, out)`.

    The closures above cost a Python call per path, transform wrapper, table and `first`/`object`
    level: ~250 calls per Jira issue, about a third of its mapping CPU (bench/README.md, "i13map").
    The generated function does the same steps inline, in the same order, and calls only the
    transforms themselves; the closures stay the reference (`Mapper.map` falls back to them to
    name the field that failed, and tests/test_mappings_engine.py checks that both agree). Code
    generation from a checked spec, as `dataclasses` and `collections.namedtuple` do for their
    methods: every key and name is written as a `repr()` literal and every other value (tables,
    transforms, defaults, args) is passed in the function's globals, never as source text.
    """

    def __init__(self, compiler: _Compiler) -> None:
        self.compiler = compiler
        self.lines: list[str] = []
        self.globals: dict[str, Any] = {"_table_hit": _table_hit, "_note": _note, "_NO_KEYS": _NO_KEYS}
        self.roots: dict[str, str] = {}
        self.root_dicts: dict[str, str] = {}
        self.count = 0

    def value(self, value: Any, prefix: str) -> str:
        """A global name bound to `value`."""
        name = f"_{prefix}{len(self.globals)}"
        self.globals[name] = value
        return name

    def var(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def function(self, fields: Iterable[tuple[str, Rule]]) -> _Fill:
        self.emit(0, "def fill(raw, out, noted=None):")
        for name, rule in fields:
            var = self.var()
            self.rule(rule, name, var, 1)
            self.emit(1, f"if {var} is not None:")
            self.emit(2, f"out[{name!r}] = {var}")
        self.emit(1, "return None")
        head = [f"    {name} = raw.get({key!r})" for key, name in self.roots.items()]
        head += [
            f"    {name} = {self.roots[key]} if {self.roots[key]}.__class__ is dict else _NO_KEYS"
            for key, name in self.root_dicts.items()
        ]
        self.lines[1:1] = head
        self.globals["_ctx"] = self.compiler.ctx
        namespace: dict[str, Any] = {}
        exec(_compiled("\n".join(self.lines), f"<mapping {self.compiler.spec.tool}>"), self.globals, namespace)  # noqa: S102
        fill: _Fill = namespace["fill"]
        return fill

    def rule(self, rule: Rule, target: str, var: str, indent: int) -> None:
        """Code that sets `var` to the rule's value (`_Compiler.rule`, step by step)."""
        fallback = FALLBACK_TARGETS.get(target)
        if fallback is not None and rule.default is not None:
            self.rule(rule.model_copy(update={"default": None}), "", var, indent)
            self.emit(indent, f"if {var} is None:")
            self.emit(indent + 1, f"_note({fallback[0]!r}, noted)")
            self.emit(indent + 1, f"{var} = {self.value(rule.default, 'default')}")
            return
        self.source(rule, target, var, indent)
        if rule.transform:
            fn = self.value(transforms.registry()[rule.transform], "transform")
            args = f", **{self.value(rule.args, 'args')}" if rule.args else ""
            if not rule.args and transforms.text_unchanged(rule.transform):
                # Text would come back as it is (`string` of an id): no call for it.
                self.emit(indent, f"if {var} is not None and {var}.__class__ is not str:")
            else:
                self.emit(indent, f"if {var} is not None:")
            self.emit(indent + 1, f"{var} = {fn}({var}, _ctx{args})")
        if rule.table:
            table = self.value(self.compiler.tables[rule.table], "table")
            # `_table_hit` inline for text (exact, then case-folded); other shapes call it.
            self.emit(indent, f"if {var}.__class__ is str:")
            self.emit(indent + 1, f"hit = {table}.get({var})")
            self.emit(indent + 1, f"{var} = {table}.get({var}.strip().casefold()) if hit is None else hit")
            self.emit(indent, f"elif {var} is not None:")
            self.emit(indent + 1, f"{var} = _table_hit({table}, {var})")
        if rule.default is not None:
            self.emit(indent, f"if {var} is None:")
            self.emit(indent + 1, f"{var} = {self.value(rule.default, 'default')}")

    def source(self, rule: Rule, target: str, var: str, indent: int) -> None:
        if rule.path is not None:
            found = self.compiler.path_parts(rule.path)
            if found is _none:  # a custom field the site does not have: no call to learn that
                self.emit(indent, f"{var} = None")
            elif callable(found):
                self.emit(indent, f"{var} = {self.value(found, 'get')}(raw)")
            else:
                self.walk(found, var, indent)
        elif rule.first is not None:
            if not rule.first:
                self.emit(indent, f"{var} = None")
            for i, sub in enumerate(rule.first):
                if i:
                    self.emit(indent, f"if {var} is None:")
                    indent += 1
                self.rule(sub, "", var, indent)
        elif rule.object is not None:
            built = f"o{self.var()}"
            self.emit(indent, f"{built} = {{}}")
            for key, sub in rule.object.items():
                part = self.var()
                self.rule(sub, f"{target}.{key}", part, indent)
                self.emit(indent, f"if {part} is not None:")
                self.emit(indent + 1, f"{built}[{key!r}] = {part}")
            required = "".join(f" and {key!r} in {built}" for key in rule.required or ())
            self.emit(indent, f"{var} = {built} if {built}{required} else None")
        else:
            constant = self.compiler.spec.params.get(rule.param) if rule.param is not None else rule.const
            self.emit(indent, f"{var} = {self.value(constant, 'const')}")

    def walk(self, parts: tuple[str | int, ...], var: str, indent: int) -> None:
        """`_path_getter(parts)` inline: `raw` is a dict (`Mapper.map` sends anything else to the
        closures), and its top-level keys are read once per record (`root`): a mapping reads
        `raw` and never changes it (transforms are pure, mappings/transforms/__init__.py)."""
        source = "raw"
        if parts and isinstance(parts[0], str):
            root, parts = parts[0], parts[1:]
            source = self.root(root)
            if parts and isinstance(parts[0], str):
                # A key under a top-level key (`fields.summary`): the dict check of `fields` is made
                # once per record, not once per field (`root_dict`).
                self.emit(indent, f"{var} = {self.root_dict(root)}.get({parts[0]!r})")
                source, parts = var, parts[1:]
            elif not parts:
                self.emit(indent, f"{var} = {source}")
        elif not parts:
            self.emit(indent, f"{var} = {source}")
        for part in parts:
            step = f"{source}.get({part!r}) if {source}.__class__ is dict else None"
            if not isinstance(part, str):
                step = (
                    f"{source}.get({part!r}) if {source}.__class__ is dict else ({source}[{part!r}] "
                    f"if {source}.__class__ is list and -len({source}) <= {part!r} < len({source}) else None)"
                )
            self.emit(indent, f"{var} = {step}")
            source = var

    def root(self, key: str) -> str:
        """The local holding `raw.get(key)`, read at the top of the function."""
        name = self.roots.get(key)
        if name is None:
            name = self.roots[key] = f"r{len(self.roots)}"
        return name

    def root_dict(self, key: str) -> str:
        """The local holding `raw.get(key)` when that is a dict, else an empty mapping: keys under
        it are then read with a plain `.get`, as `x.get(k) if x.__class__ is dict else None` would."""
        name = self.root_dicts.get(key)
        if name is None:
            self.root(key)
            name = self.root_dicts[key] = f"d{len(self.root_dicts)}"
        return name


class Mapper:
    """A spec compiled for one source: `map(raw) -> WorkItem`. Build once per source and reuse."""

    def __init__(
        self,
        spec: MappingSpec,
        context: MappingContext | Mapping[str, Any],
        *,
        keep_raw: bool = True,
        checked: bool = False,
    ) -> None:
        # `checked`: the caller has just checked this very spec (`mapper_for` does, in the one
        # pass that merges the overrides); any other spec is checked here, as it may be hand-made.
        problems = [] if checked else _spec_errors(spec)
        if problems:
            raise SpecError(problems)
        self.spec = spec
        self.context = MappingContext.coerce(context)
        self.keep_raw = keep_raw
        compiler = _Compiler(spec, self.context)
        self._fields = tuple((name, compiler.rule(rule, name)) for name, rule in spec.fields.items())
        self._fill = _Generator(compiler).function(spec.fields.items())
        self._native_id = dict(self._fields)["native_id"]
        self.unresolved = sorted(set(compiler.unresolved))
        """Custom field references the source's field catalog has no field for."""
        self.fields_read = sorted(p.split(".", 1)[1] for p in compiler.read if p.startswith("fields."))
        """Field ids the spec reads under `fields` (for Jira's explicit `fields=` search parameter)."""

    def map(self, raw: Mapping[str, Any]) -> WorkItem:
        """The WorkItem for one raw record; MappingError (with the record's id) if it cannot be mapped."""
        if not isinstance(raw, dict):
            raise MappingError(None, f"a record must be a JSON object, got {type(raw).__name__}")
        out: dict[str, Any] = {"source": self.context.source, "tool": self.spec.tool}
        noted: list[str] = []
        if raw.__class__ is dict:
            try:
                # The generated code notes fallbacks in `noted` directly; only the closures need
                # the context variable (set per call it costs ~0.5 % of a mapping).
                self._fill(raw, out, noted)
            except Exception:  # noqa: BLE001 - the closures say which field failed
                out = {"source": self.context.source, "tool": self.spec.tool}
                noted.clear()
                self._fill_noting(raw, out, noted)
        else:  # a dict subclass: the generated code assumes `raw.get` is dict's own
            self._fill_noting(raw, out, noted)
        if noted:
            _record_fallbacks(out, noted)
        native_id = out.get("native_id")
        if native_id is None:
            raise MappingError(None, "no native id in the record")
        if "updated_at" not in out:
            raise MappingError(native_id, "no update time in the record (updated_at)")
        if native_id.__class__ is str and "id" not in out:
            # The id WorkItem's `_hub_id` validator would set: given here, the validator only
            # compares it, instead of assigning through pydantic's `__setattr__` per item.
            out["id"] = f"{out['source']}:{native_id}"
        try:
            # The validator itself, as `WorkItem.model_validate(out)` calls it, without that
            # wrapper's Python frame and its six keyword defaults passed into pydantic-core.
            item: WorkItem = WorkItem.__pydantic_validator__.validate_python(out)
        except ValidationError as exc:
            raise MappingError(native_id, _describe(exc)) from None
        if self.keep_raw:
            # `item.raw = raw` without pydantic's `BaseModel.__setattr__` (WorkItem has no
            # validate_assignment, so that only stores the value and marks the field set):
            # https://docs.pydantic.dev/latest/api/base_model/#pydantic.BaseModel.model_fields_set
            item.__dict__["raw"] = raw
            item.__pydantic_fields_set__.add("raw")
        return item

    def _fill_noting(self, raw: Mapping[str, Any], out: dict[str, Any], noted: list[str]) -> None:
        """`_fill_with_closures`, its vocabulary fallbacks noted in `noted`."""
        token = _fell_back.set(noted)
        try:
            self._fill_with_closures(raw, out)
        finally:
            _fell_back.reset(token)

    def _fill_with_closures(self, raw: Mapping[str, Any], out: dict[str, Any]) -> None:
        """The reference path (the same values as `_fill`); a failure names its field."""
        name = ""
        try:
            for name, getter in self._fields:
                value = getter(raw)
                if value is not None:
                    out[name] = value
        except Exception as exc:  # a transform met a shape it cannot handle
            raise MappingError(_native(out, raw), f"{name}: {type(exc).__name__}: {exc}") from exc

    def native_id(self, raw: Mapping[str, Any]) -> str | None:
        """The record's native id, as the spec finds it (for error reports)."""
        try:
            value = self._native_id(raw)
        except Exception:  # noqa: BLE001 - only used to label errors
            return None
        return None if value is None else str(value)


def _record_fallbacks(out: dict[str, Any], noted: list[str]) -> None:
    """Keep the fallbacks whose raw name the tool gave under `custom[FALLBACKS_KEY]`.

    A default taken with no name at all (an issue without a priority) is no vocabulary gap:
    there is nothing to add to a table, so it is not recorded.
    """
    raw_at = {field: where for field, where in FALLBACK_TARGETS.values()}
    found = []
    for field in dict.fromkeys(noted):
        value: Any = out
        for key in raw_at[field]:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and str(value).strip():
            found.append({"field": field, "raw": str(value)})
    if found:
        custom = out.get("custom")
        out["custom"] = {**(custom if isinstance(custom, dict) else {}), FALLBACKS_KEY: found}


def _native(out: Mapping[str, Any], raw: Mapping[str, Any]) -> str | None:
    value = out.get("native_id", raw.get("id"))
    return None if value is None else str(value)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "item"
        parts.append(f"{where}: {err['msg']} (got {err.get('input')!r:.80})")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- helpers


def mapper_for(
    tool: str,
    context: MappingContext | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    keep_raw: bool = True,
) -> Mapper:
    """The compiled mapper for a source: its tool's spec with its overrides, on its context.

    One pass: the overrides are validated and merged and the result checked once (`_prepare`),
    then compiled; SpecError lists every problem.
    """
    spec, problems = _prepare(load_spec(tool), overrides)
    if problems:
        raise SpecError(problems)
    return Mapper(spec, context, keep_raw=keep_raw, checked=True)


def preview(
    tool: str,
    raw: Mapping[str, Any],
    context: MappingContext | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> WorkItem:
    """The WorkItem a raw record becomes (for `opshub mappings preview`); raw is left out."""
    return mapper_for(tool, context, overrides, keep_raw=False).map(raw)

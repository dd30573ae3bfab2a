"""Vocabulary drift on the real payloads in ../shared/fixtures (issue 10, "What must be shown").

Every record the fixtures hold (found by each tool's record shape, in lists, webhook envelopes
and detail answers alike) is mapped with the tool's shipped spec; a record the spec refuses
(a thin list entry, a parent stub without an update time) is counted as refused, never
half-mapped. Then:

- every fallback recorded on an item is a real one: the tool's raw name has no entry in the
  table that field's rule looks it up in, and the value is the rule's default;
- stored in a hub, the quality report's drift list has exactly those values with their counts;
- a mapping override for each drifting value removes it from the drift list.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.insights.quality import QualityService
from hub.schema import WorkItem
from hub.store import ItemQuery, Store
from mappings.engine import FALLBACK_TARGETS, FALLBACKS_KEY, Mapper, _walk, load_spec, merge_overrides
from mappings.errors import MappingError
from mappings.spec import MappingSpec
from tests.conftest import shared_fixtures

pytestmark = pytest.mark.fixtures

# A tool's record, recognised by the keys only its work items carry together.
SHAPES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "jira": lambda d: "fields" in d and "key" in d,
    "redmine": lambda d: "subject" in d and "tracker" in d,
    "github": lambda d: "number" in d and "html_url" in d and "state" in d and "/pull/" not in str(d["html_url"]),
    "gitlab": lambda d: ("iid" in d and "project_id" in d) or d.get("object_kind") in ("issue", "work_item"),
    "linear": lambda d: ("identifier" in d and "state" in d) or ("number" in d and "teamId" in d and "stateId" in d),
    "productboard": lambda d: isinstance(d.get("links"), dict) and "status" in d and "name" in d,
    "aha": lambda d: "reference_num" in d and "workflow_status" in d,
}
CONTEXT = {"base_url": "https://fixtures.example"}


def _records(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for entry in node:
            yield from _records(entry)
    elif isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _records(value)


def _mapped(tool: str, overrides: dict[str, Any] | None = None) -> tuple[list[WorkItem], int]:
    mapper = Mapper(
        merge_overrides(load_spec(tool), overrides), {"source": f"fx-{tool}", "tool": tool, **CONTEXT}, keep_raw=False
    )
    found: dict[str, WorkItem] = {}
    refused = 0
    for path in sorted(shared_fixtures(tool).glob("*.json")):
        for record in _records(json.loads(path.read_text())):
            if not SHAPES[tool](record):
                continue
            try:
                item = mapper.map(record)
            except MappingError:
                refused += 1
                continue
            # The same record in several fixtures (list and detail): keep the newest, as the store does.
            if item.id not in found or item.updated_at >= found[item.id].updated_at:
                found[item.id] = item
    return list(found.values()), refused


def _table_of(spec: MappingSpec, field: str) -> str:
    """The table the first lookup of `field`'s rule uses: where an override goes."""
    target = next(t for t, (f, _) in FALLBACK_TARGETS.items() if f == field)
    top = target.split(".")[0]
    tables = [rule.table for rule, at, _ in _walk(spec.fields[top], top) if at == target and rule.table]
    return tables[-1]  # _walk pops a stack: the last one found is the first written


def _drift_of(items: list[WorkItem]) -> Counter[tuple[str, str, str]]:
    return Counter((item.source, f["field"], f["raw"]) for item in items for f in item.custom.get(FALLBACKS_KEY, []))


TOOLS = sorted(SHAPES)


@pytest.mark.parametrize("tool", TOOLS)
def test_recorded_fallbacks_are_real_ones(tool: str) -> None:
    items, _ = _mapped(tool)
    assert items, f"no {tool} record found in the fixtures"
    spec = load_spec(tool)
    for item in items:
        for fallback in item.custom.get(FALLBACKS_KEY, []):
            table = {str(k).casefold() for k in spec.tables[_table_of(spec, fallback["field"])]}
            assert fallback["raw"].casefold() not in table, (item.id, fallback)


def _drift_report(store: Store) -> Counter[tuple[str, str, str]]:
    report = QualityService(store.engine).report(ItemQuery(), as_of=datetime(2030, 1, 1, tzinfo=UTC))
    return Counter({(d.source, d.field, d.raw): d.count for d in report.drift})


def test_every_fixture_is_mapped_and_the_drift_list_matches_the_recorded_fallbacks(sqlite_store: Store) -> None:
    """On the shipped specs the real payloads take no fallback: each raw kind, status and
    priority name is in a table or placed by the tool's own category. The report says so."""
    everything = [item for tool in TOOLS for item in _mapped(tool)[0]]
    sqlite_store.items.apply(everything)
    assert _drift_report(sqlite_store) == _drift_of(everything) == Counter()


def test_a_renamed_value_in_real_records_drifts_and_an_override_removes_it(sqlite_store: Store) -> None:
    """Real Redmine issues whose server renamed its priorities ("Normal" -> "Whenever", as the
    admin may): each one falls back to `none`, the drift list counts them all, and the override
    `priority = { Whenever = "low" }` empties it once the issues are mapped again."""
    items, _ = _mapped("redmine")
    renamed = [
        record
        for path in sorted(shared_fixtures("redmine").glob("*.json"))
        for record in _records(json.loads(path.read_text()))
        if SHAPES["redmine"](record) and (record.get("priority") or {}).get("name") == "Normal"
    ]
    for record in renamed:
        record["priority"]["name"] = "Whenever"
    context = {"source": "fx-redmine", "tool": "redmine", **CONTEXT}
    drifting = {item.id: item for item in map(Mapper(load_spec("redmine"), context, keep_raw=False).map, renamed)}
    assert drifting and all(item.priority.level == "none" for item in drifting.values())
    sqlite_store.items.apply(list(drifting.values()))
    assert _drift_report(sqlite_store) == Counter({("fx-redmine", "priority", "Whenever"): len(drifting)})

    fixed = Mapper(merge_overrides(load_spec("redmine"), {"priority": {"Whenever": "low"}}), context, keep_raw=False)
    later = datetime(2029, 1, 1, tzinfo=UTC)  # the next sync, after the override
    sqlite_store.items.apply([fixed.map(r).model_copy(update={"updated_at": later}) for r in renamed])
    assert _drift_report(sqlite_store) == Counter()
    assert len(items) > len(drifting)  # the other Redmine issues were never part of it

"""The mapping engine records the vocabulary fallbacks it takes (issue 10, data-quality report).

A fallback is a rule's `default` answering although the tool gave a raw name (see
`mappings.engine.FALLBACK_TARGETS`); it is kept on the item under `custom["_opshub_fallbacks"]`.
"""

from __future__ import annotations

import copy
from typing import Any

from mappings.engine import FALLBACKS_KEY, Mapper, load_spec, merge_overrides

CONTEXT = {"source": "dept-redmine", "tool": "redmine", "base_url": "https://redmine.acme.example"}

ISSUE: dict[str, Any] = {
    "id": 1203,
    "project": {"id": 4, "name": "Infrastructure"},
    "tracker": {"id": 1, "name": "Bug"},
    "status": {"id": 2, "name": "In Progress", "is_closed": False},
    "priority": {"id": 2, "name": "Normal"},
    "subject": "Backups fail on Sundays",
    "created_on": "2026-11-01T09:15:00Z",
    "updated_on": "2026-11-05T08:00:00Z",
}


def _map(raw: dict[str, Any], overrides: dict[str, Any] | None = None) -> Any:
    spec = merge_overrides(load_spec("redmine"), overrides)
    return Mapper(spec, CONTEXT, keep_raw=False).map(raw)


def _with(**changes: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(ISSUE)
    for key, value in changes.items():
        raw[key] = {**raw[key], **value}
    return raw


def test_names_in_the_tables_record_no_fallback() -> None:
    item = _map(ISSUE)
    assert FALLBACKS_KEY not in item.custom
    assert (item.kind, item.status.category, item.priority.level) == ("bug", "in_progress", "medium")


def test_unknown_kind_and_priority_names_are_recorded_with_the_raw_name() -> None:
    item = _map(_with(tracker={"name": "Change request"}, priority={"name": "Whenever"}))
    assert item.kind == "other" and item.priority.level == "none"
    assert item.custom[FALLBACKS_KEY] == [
        {"field": "kind", "raw": "Change request"},
        {"field": "priority", "raw": "Whenever"},
    ]


def test_a_status_placed_by_the_tools_own_category_is_not_a_fallback() -> None:
    """Redmine's `is_closed` says where an unknown status belongs: no guess was made."""
    item = _map(_with(status={"name": "Deployed", "is_closed": True}))
    assert item.status.category == "done"
    assert FALLBACKS_KEY not in item.custom


def test_a_status_that_falls_to_the_default_is_recorded() -> None:
    raw = _with(status={"name": "Waiting"})
    del raw["status"]["is_closed"]  # Redmine < 5 has no is_closed
    item = _map(raw)
    assert item.status.category == "todo"
    assert item.custom[FALLBACKS_KEY] == [{"field": "status", "raw": "Waiting"}]


def test_a_default_taken_without_any_raw_name_is_not_drift() -> None:
    raw = copy.deepcopy(ISSUE)
    del raw["priority"]
    item = _map(raw)
    assert item.priority.level == "none"
    assert FALLBACKS_KEY not in item.custom


def test_an_override_removes_the_fallback() -> None:
    raw = _with(priority={"name": "Whenever"})
    assert _map(raw).custom[FALLBACKS_KEY] == [{"field": "priority", "raw": "Whenever"}]
    item = _map(raw, {"priority": {"Whenever": "low"}})
    assert item.priority.level == "low"
    assert FALLBACKS_KEY not in item.custom


def test_the_mapper_can_be_reused_and_each_record_gets_only_its_own_fallbacks() -> None:
    mapper = Mapper(load_spec("redmine"), CONTEXT, keep_raw=False)
    first = mapper.map(_with(priority={"name": "Whenever"}))
    second = mapper.map(ISSUE)
    assert first.custom[FALLBACKS_KEY] == [{"field": "priority", "raw": "Whenever"}]
    assert FALLBACKS_KEY not in second.custom

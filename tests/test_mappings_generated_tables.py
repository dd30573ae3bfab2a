"""The generated mapping's table lookups (exact, then stripped and case-folded) agree with the
closures' `_table_hit` on odd text and odd shapes (the generated code inlines the text case), and
`Mapper.map` notes vocabulary fallbacks on both paths."""

from __future__ import annotations

import itertools
from typing import Any

from mappings import engine
from mappings.engine import FALLBACKS_KEY, Mapper, load_spec

_NAMES: list[Any] = [
    "High",
    " high ",
    "HIGH",
    "\tHigh\n",
    "Highest ",
    "in progress",
    "Backlog",
    " backlog",
    "Won't Do",
    "won't do ",
    "Épica",
    "",
    " ",
    "unknown",
    7,
    -1,
    2.5,
    True,
    ["High"],
    ["x", " low "],
    {"name": "High"},
    [],
]


def _filled(fill: Any, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    noted: list[str] = []
    token = engine._fell_back.set(noted)
    try:
        fill(raw, out)
    finally:
        engine._fell_back.reset(token)
    return out, noted


def test_generated_table_lookups_agree_with_the_closures() -> None:
    mapper = Mapper(load_spec("jira"), {"source": "s", "tool": "jira"})
    for name, level in itertools.product(_NAMES, [-1, 1, "1", " -1 "]):
        raw = {
            "id": "1",
            "fields": {
                "updated": "2025-01-01T00:00:00Z",
                "issuetype": {"name": name, "hierarchyLevel": level},
                "status": {"name": name, "statusCategory": {"key": name}},
                "resolution": {"name": name},
                "priority": {"name": name},
            },
        }
        assert _filled(mapper._fill, raw) == _filled(mapper._fill_with_closures, raw), (name, level)


def test_table_text_is_matched_stripped_and_case_folded() -> None:
    mapper = Mapper(load_spec("jira"), {"source": "s", "tool": "jira"})
    raw = {"id": "1", "fields": {"updated": "2025-01-01T00:00:00Z", "priority": {"name": "\t HIGH \n"}}}
    out, noted = _filled(mapper._fill, raw)
    assert out["priority"] == {"level": "high", "name": "\t HIGH \n"}
    assert noted == ["kind", "status"]


def test_both_paths_note_fallbacks_in_the_list_map_gives() -> None:
    """`Mapper.map` hands its list to the generated code, and to the closures (the path that names
    a failing field) through the context variable."""
    mapper = Mapper(load_spec("jira"), {"source": "s", "tool": "jira"})
    raw = {"id": "1", "fields": {"updated": "2025-01-01T00:00:00Z", "priority": {"name": "P9"}}}
    for fill in (mapper._fill, mapper._fill_noting):
        out: dict[str, Any] = {}
        noted: list[str] = []
        fill(raw, out, noted)
        assert noted == ["kind", "status", "priority"], fill
    item = mapper.map(raw)
    assert item.custom[FALLBACKS_KEY] == [{"field": "priority", "raw": "P9"}]

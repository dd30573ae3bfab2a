"""WorkItem's validators: a change to how one is implemented keeps its results and its errors.

Labels were made unique by a field validator of their own; `_hub_id`, WorkItem's one after
validator, now does it (one trip out of pydantic-core less per item, bench/README.md
"i13norm"). The reference below is the old field validator on a subclass; both must give the
same item, or the same errors at the same places, on many odd inputs.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError, field_validator

from hub.schema import WorkItem


class _LabelsByFieldValidator(WorkItem):
    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


_LABELS: list[Any] = [
    [],
    ["a"],
    ["a", "a"],
    ["b", "a", "b", "a", "c"],
    ["", "", " "],
    ["A", "a", "A"],
    ("x", "x"),
    ["x", 1],
    [None],
    "ab",
    None,
    {"a": 1},
    [["a"]],
    ["é", "é", "e"],
]
_IDS: list[Any] = [None, "", "s:1", "s:2", 5]
_SOURCES: list[Any] = ["s", "", "bad source"]


def _outcome(model: type[WorkItem], data: dict[str, Any]) -> Any:
    try:
        item = model.model_validate(data)
    except ValidationError as exc:
        return [(e["loc"], e["type"], e["msg"]) for e in exc.errors(include_url=False)]
    return item.model_dump(), sorted(item.model_fields_set)


def test_labels_dedup_in_the_model_validator_matches_the_old_field_validator() -> None:
    checked = 0
    for labels, hub_id, source in itertools.product(_LABELS, _IDS, _SOURCES):
        data: dict[str, Any] = {
            "source": source,
            "tool": "jira",
            "native_id": "1",
            "status": {"category": "todo"},
            "updated_at": datetime(2025, 1, 2, tzinfo=UTC),
        }
        if labels is not None:
            data["labels"] = labels
        if hub_id is not None:
            data["id"] = hub_id
        assert _outcome(WorkItem, data) == _outcome(_LabelsByFieldValidator, data), data
        checked += 1
    assert checked == len(_LABELS) * len(_IDS) * len(_SOURCES)


def test_labels_are_unique_in_first_seen_order() -> None:
    item = WorkItem.model_validate(
        {
            "source": "s",
            "tool": "jira",
            "native_id": "1",
            "status": {"category": "todo"},
            "updated_at": "2025-01-02T00:00:00Z",
            "labels": ["b", "a", "b"],
        }
    )
    assert item.labels == ["b", "a"]
    assert item.id == "s:1"

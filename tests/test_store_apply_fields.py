"""A new item's change lists its filled document fields (hub/store/apply.py `_filled_fields`),
which reads them by truth value: equal to "not None, "", [] or {}" only while no document
field can hold a number or a bool (0 and False are filled, yet false)."""

from __future__ import annotations

import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel

from hub.schema import WorkItem
from hub.store.apply import _DOC_FIELDS, _filled_fields
from tests.factories import make_item


def _reference(item: WorkItem) -> list[str]:
    """The rule as written: every document field but None, "", [] and {}."""
    values = item.__dict__
    return [name for name in _DOC_FIELDS if values[name] is not None and values[name] not in ("", [], {})]


_EMPTIES: dict[str, Any] = {"description": "", "key": None, "labels": [], "custom": {}, "url": None, "kind_raw": ""}
_FILLED: dict[str, Any] = {
    "description": "text",
    "key": "K-1",
    "labels": ["a"],
    "custom": {"x": 0},
    "url": "https://example.com/1",
    "kind_raw": "Story",
    "container": {"id": "1"},
    "due_on": date(2025, 1, 1),
    "estimate": {"value": 0, "unit": "points"},
}


@given(st.sets(st.sampled_from(sorted(_FILLED))))
def test_filled_fields_equal_the_rule(filled: set[str]) -> None:
    """Fails if `_filled_fields` keeps an empty value, or drops a filled one (e.g. tests
    `is not None` only)."""
    fields: dict[str, Any] = {name: _FILLED[name] if name in filled else _EMPTIES.get(name) for name in _FILLED}
    item = make_item("1", **fields)
    assert _filled_fields(item) == _reference(item)


def _leaf_types(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaf_types(arg)]
    return [datetime if annotation is AwareDatetime else origin or annotation]


def test_no_document_field_holds_a_number_or_a_bool() -> None:
    """The truth-value reading stays exact: every document field's type is one whose false
    values are only None, "", [] and {} (a model, an enum of non-empty values, a date)."""
    allowed = (str, list, dict, type(None), datetime, date, BaseModel, Enum)
    for name in _DOC_FIELDS:
        for leaf in _leaf_types(WorkItem.model_fields[name].annotation):
            assert isinstance(leaf, type) and issubclass(leaf, allowed), (name, leaf)
            assert not issubclass(leaf, int | float | Decimal) or issubclass(leaf, Enum), (name, leaf)
            if issubclass(leaf, Enum):
                assert all(member.value not in ("", 0) for member in leaf), (name, leaf)

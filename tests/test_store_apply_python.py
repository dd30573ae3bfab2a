"""The store's per-item Python done in C (bench/README.md "i13py12"): each shortcut gives what
the rule as written gives.

- `changed_fields`: an update's changed top-level fields, by `map`/`compress` over the two
  documents (hub/store/apply.py);
- `storable_keys`: the one search over the ids' and people's strings (every string of a
  person is searched);
- `_sqlite_time`: memoised (hub/store/bulk.py), so a cached text must be the one the value
  itself would give, whatever zone an equal time came in first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.schema import WorkItem
from hub.store.apply import changed_fields, storable_keys
from hub.store.bulk import _sqlite_text, _sqlite_time
from tests.factories import make_item

_VALUES = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.integers(-2, 2),
    st.booleans(),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from("ab"), st.integers(0, 1), max_size=2),
)
_DOCS = st.dictionaries(st.sampled_from(["title", "status", "labels", "custom", "due_on", "url"]), _VALUES)


def _reference(doc: dict[str, Any], old_doc: dict[str, Any]) -> list[str]:
    """The rule as written: every key of either document whose values differ."""
    return sorted(k for k in doc.keys() | old_doc.keys() if doc.get(k) != old_doc.get(k))


@given(_DOCS, _DOCS)
def test_changed_fields_equal_the_rule(doc: dict[str, Any], old_doc: dict[str, Any]) -> None:
    """Fails if a key only the stored document has is missed (`doc.keys()` alone), or the
    comparison is turned (`eq` for `ne`)."""
    assert changed_fields(doc, old_doc) == _reference(doc, old_doc)


@pytest.mark.parametrize("who", ["assignee", "reporter"])
@pytest.mark.parametrize("attr", ["native_id", "name", "email", "id"])
@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_storable_keys_cleans_every_string_of_a_person(who: str, attr: str, bad: str) -> None:
    """An item whose only NUL or lone surrogate is in one string of one person is made
    storable before people are resolved (they are written from these strings). Fails if a
    string of a person is left out of the search, or the reporter is not searched."""
    person: dict[str, Any] = {"native_id": "u1", "name": "N", "email": "n@example.com", "id": "per_1"}
    person[attr] = f"x{bad}y" if attr != "email" else f"n{bad}@example.com"
    fields: dict[str, Any] = {"assignees": [person]} if who == "assignee" else {"reporter": person}
    item = make_item("1", **fields)
    clean = storable_keys(item)
    assert isinstance(clean, WorkItem) and clean is not item
    ref = clean.assignees[0] if who == "assignee" else clean.reporter
    assert ref is not None
    assert bad not in (getattr(ref, attr) or "")
    assert "\ufffd" in (getattr(ref, attr) or "")


def test_storable_keys_passes_a_clean_item_and_people_without_optional_strings() -> None:
    """A clean item comes back as itself, also when a person's optional strings are unset."""
    item = make_item("1", assignees=[{"native_id": "u1"}], reporter={"email": "r@example.com"})
    assert storable_keys(item) is item


def test_the_memoised_sqlite_time_is_the_values_own() -> None:
    """An equal instant in another zone, and the naive value of the same wall time, each bind
    to what the unmemoised function gives it (naive means UTC; an aware value is converted).
    Fails if the memo is keyed by the wall clock alone (a +02:00 time would then get the
    text cached for a UTC time of the same wall clock)."""
    plain = _sqlite_text
    base = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    values = [
        base,
        base.astimezone(timezone(timedelta(hours=2))),  # equal to `base`: the same instant
        base.replace(tzinfo=timezone(timedelta(hours=2))),  # same wall clock, two hours earlier
        base.replace(tzinfo=None),  # naive: read as UTC
        base.replace(microsecond=0),  # microseconds always written
    ]
    for _ in range(2):  # the second round reads every text from the memo
        for value in values:
            assert _sqlite_time(value) == plain(value), value
    assert _sqlite_time(None) is None
    assert _sqlite_time(values[1]) == "2026-03-01 12:00:00.123456"
    assert _sqlite_time(values[2]) == "2026-03-01 10:00:00.123456"

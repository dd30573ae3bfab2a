"""Per-item flow facts (`flow_facts`, `flow_days` in hub/db/tables.py), kept in step with the
status history so flow metrics and forecasts read one narrow row per item (issue 9's speed
target: /v1/insights/flow over 100,000 items under 500 ms) instead of every transition.

The facts are a pure function of what the store holds of one item: its row (created_at,
status category, the tool's completed_at) and the canonical history of *all* its stored
transitions (hub/flow/history.py `build_history`). `refresh_flow_facts` recomputes them from
exactly that, inside the writer's transaction, so they cannot depend on the order facts
arrived in, on replays or on a backfill coming after webhooks: whatever the path, they are
what `build_history` makes of the full history (tests/test_flow_facts.py checks it with
hypothesis). Writers call it with the ids whose transitions or flow fields they wrote:
`ItemStore.apply`, `TransitionStore.add` and migration 0005 (for data stored before it).

What each column means is the definition in hub/flow/metrics.py that reads it:

- `completed_at`: the final completion (`completion_time`) of an item done now;
- `cancelled_at`: for an item cancelled now whose history ends cancelled, when it got there
  (else the tool's completed_at), which `completions_in` counts as `LeftOut.cancelled`;
- `done_entries`, `last_done_entry`: for an item open now, its entries into done and the
  last one (`LeftOut.reopened`);
- `start`/`started_at`/`has_history`: the cycle time's start (`cycle_start`);
- `final_category`, `born_day`, `known_from_day` (set only when some days after the
  creation have an unknown category) and the `flow_days` rows: the cumulative flow. A row says from which day (end of day, UTC) the item is in `category`, having been in
  `prev_category` (NULL: not counted, before it was created or while its status is unknown).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, String, any_, bindparam, case, cast, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from hub.db.tables import UTCDateTime, flow_days, flow_facts, items, status_transitions
from hub.flow.history import STARTED, StartFact, Transition, TransitionSource, build_history
from hub.schema import StatusCategory, to_utc
from hub.store.bulk import Statements, _Bulk, keys_in, time_binder, time_reader

CHUNK = 500
FLOW_FIELDS = frozenset({"created_at", "completed_at", "status", "kind", "container", "deleted"})
"""Change fields after which `ItemStore.apply` refreshes an item's facts: the ones they read
or copy (`FILTER_COLUMNS`), and `deleted`."""
FILTER_COLUMNS = ("source", "tool", "kind", "container_id", "container_key", "deleted")
"""`items` columns copied into `flow_facts`: the /v1/items filters a flow request can use."""

_T = status_transitions.c
_CATEGORIES = {category.value: category for category in StatusCategory}
_SOURCES = {source.value: source for source in TransitionSource}
_DONE, _CANCELLED = StatusCategory.done, StatusCategory.cancelled
_FIRST_SEEN = TransitionSource.first_seen


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """One `flow_facts` row and the item's `flow_days` rows `(day, category, prev_category)`."""

    row: dict[str, Any]
    days: list[tuple[int, str | None, str | None]]


def derive(
    item_id: str,
    created_at: datetime | None,
    category: StatusCategory,
    completed_at: datetime | None,
    transitions: Iterable[Transition],
    filters: dict[str, Any] | None = None,
) -> ItemFacts:
    """The facts of one item from its row and all its stored transitions (module doc);
    `filters` are the item's `FILTER_COLUMNS`, copied as they are."""
    history = build_history(item_id, transitions)
    created = to_utc(created_at) if created_at is not None else None
    completed = to_utc(completed_at) if completed_at is not None else None
    facts = history.transitions
    reopened = category not in (_DONE, _CANCELLED) and bool(history.done_entries)
    initial: StatusCategory | None = None
    if facts and facts[0].source is not TransitionSource.first_seen:
        initial = facts[0].from_category
    row: dict[str, Any] = {
        "item_id": item_id,
        "created_at": created,
        "category": category._value_,  # `_value_`: `.value` is a Python-level descriptor
        "has_history": bool(facts),
        "start": history.start._value_,
        "started_at": history.started_at,
        "completed_at": (history.done_at or completed) if category is _DONE else None,
        "cancelled_at": (
            (history.final_entry_at or completed)
            if category is _CANCELLED and history.final_category is _CANCELLED
            else None
        ),
        "done_entries": (
            orjson.dumps([entry.isoformat() for entry in history.done_entries]).decode() if reopened else None
        ),
        "last_done_entry": history.done_entries[-1] if reopened else None,
        "final_category": history.final_category._value_ if history.final_category is not None else None,
        "born_day": created.toordinal() if created is not None else None,
        "known_from_day": (
            facts[0].at.toordinal()
            if created is not None and facts and initial is None and facts[0].at.toordinal() > created.toordinal()
            else None
        ),
        **(filters or {}),
    }
    days: list[tuple[int, str | None, str | None]] = []
    if created is not None and facts:
        # hub/flow/metrics.py `cumulative_flow`: not counted before the day it was created;
        # changes before that day count from it; the last change of a day is the day's.
        born = created.toordinal()
        state_from: dict[int, StatusCategory | None] = {born: initial}
        for fact in facts:
            day = fact.at.toordinal()
            state_from[day if day > born else born] = fact.to_category
        previous: StatusCategory | None = None
        for day, state in state_from.items():
            if state is not previous:
                days.append((day, _value(state), _value(previous)))
                previous = state
    return ItemFacts(row, days)


_STARTED_VALUE = {
    category: (StartFact.before_history if category in STARTED else StartFact.not_started)._value_
    for category in StatusCategory
}


def first_seen_rows(
    created_at: datetime | None,
    category: StatusCategory,
    completed_at: datetime | None,
    fact: Transition,
    filters: dict[str, Any],
    to_time: Callable[[datetime | None], Any],
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The flow_facts row (`_FACT_COLUMNS` order, times bound by `to_time`) and flow_days rows
    (`_DAY_COLUMNS` order) of an item whose whole stored history is one first sighting (`fact`,
    source `first_seen`): a new item's usual case (`ItemStore.apply`), without `build_history`
    and `derive`, and built straight as the tuples `refresh_flow_facts` binds, without the
    20-key row dict that `_fact_row` and the day rows would read back (~2 us a new item).

    What `build_history` makes of one first sighting: the category before it unknown (no
    `initial`), no entry time seen (the sighting is not when the item got there), so no start
    time, done entry, final entry or reopening; the start is `before_history` when the
    sighting is already started (in progress or done), else `not_started`. `derive`'s rules
    on that history give the rows below (tests/test_flow_facts.py checks they equal the rows
    bound from `derive`)."""
    created = to_utc(created_at) if created_at is not None else None
    completed = to_utc(completed_at) if completed_at is not None else None
    final = fact.to_category
    day = fact.at.toordinal()
    born = created.toordinal() if created is not None else None
    copied = _FILTERS_OF(filters)
    row = (
        fact.item_id,
        to_time(created),
        category._value_,
        True,  # has_history
        _STARTED_VALUE[final],
        None,  # started_at
        to_time(completed) if category is _DONE else None,
        to_time(completed) if category is _CANCELLED and final is _CANCELLED else None,
        None,  # done_entries
        None,  # last_done_entry
        final._value_,
        born,
        day if born is not None and day > born else None,
        *copied,
    )
    if born is None:
        return row, []
    return row, [(day if day > born else born, fact.item_id, final._value_, None, *copied)]


def _value(category: StatusCategory | None) -> str | None:
    return category._value_ if category is not None else None


@dataclass(frozen=True, slots=True)
class RowInputs:
    """What `derive` reads of an items row: what `apply` just wrote for an item, passed in so
    the row is not read back (`refresh_flow_facts`' `written`)."""

    created_at: datetime | None
    category: StatusCategory
    completed_at: datetime | None  # the tool's, whatever the category (derive_stored's rule applies)
    filters: dict[str, Any]


def refresh_flow_facts(
    conn: Connection,
    item_ids: Iterable[str],
    written: Mapping[str, RowInputs] | None = None,
    fresh: Mapping[str, Sequence[Transition]] | None = None,
) -> None:
    """Recompute and store the facts of these items from what the store holds now, inside the
    caller's transaction. Ids without an item row lose their facts (none are kept).

    `written`: the items rows this transaction has just written (`ItemStore.apply`), by id.
    Their facts are derived from these values and the stored transitions, without reading
    the rows back (the read parsed each closed item's document for its completed_at, and
    took a row lock on PostgreSQL that the transaction already holds: it wrote the row).

    `fresh`: ids of `written` new to the store (no items row before this transaction, so no
    flow rows: facts are kept only for items rows) whose stored transitions are exactly the
    facts given here (none were stored before this transaction wrote these). Their facts are
    derived from those without reading the transitions back and without deleting flow rows
    that cannot exist; one first sighting alone (a new item's usual history) skips
    `build_history` too (`first_seen_rows`)."""
    ids = sorted(set(item_ids))
    bulk, to_time, sql, _ = _writer(conn)
    dialect = conn.dialect.name
    written = written or {}
    fresh = fresh or {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        stored = [item_id for item_id in chunk if item_id not in fresh]
        derived = _derive_chunk(conn, stored, written) if stored else []
        # New items' first sightings come back as their rows already (`first_seen_rows`).
        fact_rows: list[tuple[Any, ...]] = []
        day_rows: list[tuple[Any, ...]] = []
        new_ids = [item_id for item_id in chunk if item_id in fresh]
        derived += _derive_fresh(new_ids, written, fresh, to_time, fact_rows, day_rows)
        if stored:
            keys = sql.keys(stored)
            sql.run(
                conn,
                "flow_days",
                lambda: delete(flow_days).where(keys_in(dialect, flow_days.c.item_id, "ids")),
                ids=keys,
            )
            sql.run(
                conn,
                "flow_facts",
                lambda: delete(flow_facts).where(keys_in(dialect, flow_facts.c.item_id, "ids")),
                ids=keys,
            )
        fact_rows += [_fact_row(facts.row, to_time) for facts in derived]
        # SQLite: new items' rows as one multi-row statement per chunk (`_Bulk._sqlite_rows`),
        # not one execution per row (~20k fewer instructions a new item with report facts':
        # bench/README.md "i13store12"). Not after the DELETEs above: a statement that may fail
        # half done keeps a statement journal of the pages it changes that the transaction had
        # already changed (https://www.sqlite.org/tempfiles.html#statement_journal_files), and
        # the deleted rows' pages are those: +3 us an updated item, measured.
        bulk.insert(conn, flow_facts, _FACT_COLUMNS, fact_rows, one_statement=not stored)
        day_rows += [
            (day, facts.row["item_id"], category, prev, *_FILTERS_OF(facts.row))
            for facts in derived
            for day, category, prev in facts.days
        ]
        bulk.insert(conn, flow_days, _DAY_COLUMNS, day_rows, one_statement=not stored)


def _derive_fresh(
    item_ids: list[str],
    written: Mapping[str, RowInputs],
    fresh: Mapping[str, Sequence[Transition]],
    to_time: Callable[[datetime | None], Any],
    fact_rows: list[tuple[Any, ...]],
    day_rows: list[tuple[Any, ...]],
) -> list[ItemFacts]:
    """The facts of new items (`refresh_flow_facts`' `fresh`) from their rows and facts: a
    first sighting alone appended to `fact_rows` and `day_rows` as bound (`first_seen_rows`),
    any other history returned to be derived and bound as stored items' are."""
    derived: list[ItemFacts] = []
    for item_id in item_ids:
        row, facts = written[item_id], fresh[item_id]
        closed = row.category is _DONE or row.category is _CANCELLED
        completed = row.completed_at if closed else None
        if len(facts) == 1 and facts[0].source is _FIRST_SEEN:
            fact_row, days = first_seen_rows(row.created_at, row.category, completed, facts[0], row.filters, to_time)
            fact_rows.append(fact_row)
            day_rows += days
        else:
            # As read back: the store keeps one fact per identity (`build_history` keeps the
            # same one) and an unnamed status as "" (read as None).
            history = [fact if fact.to_name != "" else replace(fact, to_name=None) for fact in facts]
            derived.append(derive(item_id, row.created_at, row.category, completed, history, row.filters))
    return derived


_FACT_COLUMNS = tuple(column.name for column in flow_facts.columns)
_DAY_COLUMNS = ("day", "item_id", "category", "prev_category", *FILTER_COLUMNS)
_TIMES = frozenset(column.name for column in flow_facts.columns if isinstance(column.type, UTCDateTime))
_FACT_VALUES = itemgetter(*_FACT_COLUMNS)
_FILTERS_OF = itemgetter(*FILTER_COLUMNS)  # a facts row's filter values, read in C (its flow_days rows copy them)
_TIME_AT = tuple(i for i, name in enumerate(_FACT_COLUMNS) if name in _TIMES)


def _fact_row(row: dict[str, Any], to_time: Callable[[datetime | None], Any]) -> tuple[Any, ...]:
    """A `flow_facts` row in `_FACT_COLUMNS` order, times in their stored form."""
    values = list(_FACT_VALUES(row))
    for i in _TIME_AT:
        value = values[i]
        if value is not None:
            values[i] = to_time(value)
    return tuple(values)


_Writer = tuple[_Bulk, Callable[[datetime | None], Any], Statements, Callable[[Any], datetime | None]]
_WRITERS: dict[str, _Writer] = {}


def _writer(conn: Connection) -> _Writer:
    """The store's bulk inserter (hub/store/bulk.py `_Bulk`: one statement per table and
    chunk, tuples, no per-row SQLAlchemy processing), the stored form of a time, the
    precompiled statements (`Statements`) and the reader of a stored time, made once per
    dialect."""
    writer = _WRITERS.get(conn.dialect.name)
    if writer is None:
        dialect = conn.dialect
        writer = _WRITERS[dialect.name] = (
            _Bulk(dialect),
            time_binder(dialect),
            Statements(dialect),
            time_reader(dialect),
        )
    return writer


def _derive_chunk(conn: Connection, chunk: list[str], written: Mapping[str, RowInputs]) -> list[ItemFacts]:
    """The facts of a chunk of ids: the written ones from their inputs, the rest from the store."""
    known = [item_id for item_id in chunk if item_id in written]
    if not known:
        return derive_stored(conn, chunk)
    others = [item_id for item_id in chunk if item_id not in written]
    derived = derive_stored(conn, others) if others else []
    histories = stored_transitions(conn, known)
    for item_id in known:
        row = written[item_id]
        closed = row.category is _DONE or row.category is _CANCELLED
        derived.append(
            derive(
                item_id,
                row.created_at,
                row.category,
                row.completed_at if closed else None,
                histories.get(item_id, ()),
                row.filters,
            )
        )
    return derived


def derive_stored(conn: Connection, item_ids: Sequence[str]) -> list[ItemFacts]:
    """The facts of these stored items (a chunk of ids), from their rows and transitions."""
    # The document is parsed only where its completed_at can matter (hub/flow/metrics.py).
    closed = items.c.status_category.in_([_DONE.value, _CANCELLED.value])
    completed = case((closed, completed_at_column(conn)), else_=None)
    stmt = select(
        items.c.id,
        items.c.created_at,
        items.c.status_category,
        completed,
        *(items.c[name] for name in FILTER_COLUMNS),
    ).where(one_of(conn, items.c.id, list(item_ids)))
    if conn.dialect.name == "postgresql":
        # Two transactions writing facts of one item at once (a history import beside a
        # sync) would each derive from the transitions it sees, and the later one could keep
        # a history without the other's. Locking the item rows (in id order: the chunk is
        # sorted) makes the second wait, then read the first's committed transitions: every
        # statement after the wait sees them (READ COMMITTED). SQLite has one writer at a time.
        stmt = stmt.order_by(items.c.id).with_for_update()
    rows = conn.execute(stmt).all()
    histories = stored_transitions(conn, [row[0] for row in rows])
    return [
        derive(
            item_id,
            created_at,
            _CATEGORIES[category],
            _parse(completed_at),
            histories.get(item_id, ()),
            dict(zip(FILTER_COLUMNS, filters, strict=True)),
        )
        for item_id, created_at, category, completed_at, *filters in rows
    ]


def completed_at_column(conn: Connection) -> ColumnElement[Any]:
    """The tool's `completed_at`, which lives in the item's document only."""
    if conn.dialect.name == "postgresql":
        extracted: ColumnElement[Any] = cast(items.c.doc, JSONB)["completed_at"].astext
        return extracted
    return func.json_extract(items.c.doc, "$.completed_at")


def _parse(value: str | None) -> datetime | None:
    return to_utc(datetime.fromisoformat(value)) if value else None


def stored_transitions(conn: Connection, item_ids: list[str]) -> dict[str, list[Transition]]:
    """The stored transitions of these items, read by primary key a chunk at a time (few
    columns, no per-row enum conversion: also the digest's bulk reader)."""
    categories, sources = _CATEGORIES, _SOURCES
    found: dict[str, list[Transition]] = defaultdict(list)
    _, _, sql, read = _writer(conn)
    dialect = conn.dialect.name

    def build() -> Any:
        columns = (_T.item_id, _T.at, _T.to_category, _T.to_name, _T.from_category, _T.from_name, _T.source)
        return select(*columns).where(keys_in(dialect, _T.item_id, "ids"))

    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start : start + CHUNK]
        for item_id, at, to_category, to_name, from_category, from_name, source in sql.rows(
            conn, "transitions", build, ids=sql.keys(chunk)
        ):
            found[item_id].append(
                Transition(
                    item_id,
                    read(at),  # type: ignore[arg-type]  # NOT NULL
                    categories[to_category],
                    to_name or None,
                    categories[from_category] if from_category else None,
                    from_name,
                    sources[source],
                )
            )
    return found


def one_of(conn: Connection, column: ColumnElement[str], ids: list[str]) -> ColumnElement[bool]:
    """`column IN ids` for a chunk of ids; on PostgreSQL `column = ANY(array)`, one parameter
    (psycopg rewrites a long IN list's placeholders in Python:
    https://www.psycopg.org/psycopg3/docs/basic/adapt.html#lists-adaptation)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(String), unique=True))
    return column.in_(ids)


def backfill_flow_facts(conn: Connection, batch: int = 2000) -> int:
    """Facts for every stored item (migration 0005, and `opshub` repairs): returns the count."""
    done = 0
    last = ""
    while True:
        ids = list(
            conn.execute(select(items.c.id).where(items.c.id > last).order_by(items.c.id).limit(batch)).scalars()
        )
        if not ids:
            return done
        refresh_flow_facts(conn, ids)
        done += len(ids)
        last = ids[-1]

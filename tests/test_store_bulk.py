"""The bulk path's own time binding (hub/store/bulk.py `time_binder`) writes exactly
what SQLAlchemy's column type writes: SQLite compares stored times as text, so one differing
character would misorder rows written by the two paths."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, select, text
from sqlalchemy.dialects import postgresql, sqlite

from hub.db.tables import UTCDateTime, items
from hub.schema import ItemDeletion
from hub.store import Store, bulk
from hub.store.apply import raw_json
from hub.store.bulk import Statements, keys_in, time_binder, time_reader
from hub.store.queries import ItemQuery
from tests.factories import BASE_TIME, make_item

_ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), ZoneInfo("Europe/Berlin")]
)
_TIMES = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30)),
    _ZONES,
)


@given(value=st.one_of(st.none(), _TIMES))
def test_bound_times_equal_sqlalchemys(value: datetime | None) -> None:
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        assert processor is not None
        expected, got = processor(value), time_binder(dialect)(value)
        assert got == expected and type(got) is type(expected)
        if isinstance(got, datetime):
            assert got.tzinfo is UTC


def test_precompiled_statements_read_what_sqlalchemy_reads(store: Store) -> None:
    """`Statements` (hub/store/bulk.py): a statement compiled once runs with each call's values
    on the transaction's DBAPI cursor, and `time_reader` makes the driver's time what the
    column type makes of it, on both backends."""
    store.items.apply([make_item(str(n), minutes=n) for n in range(5)])
    dialect = store.engine.dialect
    sql, read = Statements(dialect), time_reader(dialect)
    built: list[int] = []

    def build() -> object:
        built.append(1)
        return select(items.c.id, items.c.updated_at, items.c.deleted).where(
            keys_in(dialect.name, items.c.id, "ids"), items.c.deleted.is_(False)
        )

    with store.engine.connect() as conn:
        for wanted in (["acme-jira:1", "acme-jira:3"], ["acme-jira:0", "acme-jira:4", "nope"], []):
            rows = sql.rows(conn, "by id", build, ids=sql.keys(wanted))
            expected = conn.execute(
                select(items.c.id, items.c.updated_at, items.c.deleted).where(items.c.id.in_(wanted))
            ).all()
            got = sorted((item_id, read(at), bool(deleted)) for item_id, at, deleted in rows)
            assert got == sorted((item_id, at, deleted) for item_id, at, deleted in expected)
            assert all(at.tzinfo is UTC for _, at, _ in got)
    assert len(built) == 1  # compiled once, whatever the values


def _stored(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM items ORDER BY id")).all()
        changes = conn.execute(text("SELECT seq, item_id, op, fields FROM changes ORDER BY seq")).all()
        # Report and flow facts are multi-row statements on SQLite too (chunked the same way).
        facts = [
            tuple(row)
            for table in ("item_report_facts", "flow_facts", "flow_days")
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
        ]
        # FTS5 compares its index with items and raises SQLITE_CORRUPT_VTAB if they differ.
        conn.execute(text("INSERT INTO items_text(items_text, rank) VALUES ('integrity-check', 1)"))
    synced = list(items.c.keys()).index("synced_at")
    return [tuple(v for i, v in enumerate(row) if i != synced) for row in rows] + [tuple(c) for c in changes] + facts


def test_items_written_in_chunks_equal_one_row_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite writes `items` (and report and flow facts) as multi-row statements
    (`_Bulk._sqlite_rows`, for the text index's triggers): chunked at the parameter limit
    (here 3 items rows a statement), inserts, upserts with
    a changed or kept title, a tombstone, and the text index end as row-at-a-time executemany
    leaves them. The limit is the connection's own (`setlimit`): a statement over it fails with
    "too many SQL variables", so chunks that ignored it would fail here."""
    limit = 3 * len(items.c) + 2
    batches = [
        [make_item(n, minutes=n, title=f"Item {n} – café") for n in range(8)],
        [make_item(n, minutes=20 + n, title=f"Renamed {n}" if n % 2 else f"Item {n} – café") for n in range(3, 11)],
        [ItemDeletion(source="acme-jira", native_id="4", deleted_at=BASE_TIME + timedelta(hours=2))],
    ]
    found = []
    for one_row in (False, True):
        if one_row:
            monkeypatch.setattr(
                bulk._Bulk, "_sqlite_rows", staticmethod(lambda cur, sql, _w, rows: cur.executemany(sql, rows))
            )
        store = Store.open(f"sqlite:///{tmp_path / f'hub{one_row}.db'}")
        event.listen(
            store.engine, "connect", lambda dbapi, _rec: dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        )
        store.engine.dispose()  # the pool's next connections get the lower limit
        try:
            for batch in batches:
                store.items.apply(batch)
            found.append(_stored(store))
            assert [d["id"] for d in store.queries.list_items(ItemQuery(q="renamed"))[0]] == [
                f"acme-jira:{n}" for n in (9, 7, 5, 3)
            ]
        finally:
            store.close()
    assert found[0] == found[1]


def test_json_columns_bound_as_utf8_bytes_are_stored_as_text(sqlite_store: Store) -> None:
    """SQLite's items rows take `doc` and `raw` as the UTF-8 bytes their JSON is made as, cast
    to TEXT in the statement (`_Bulk._row_sql`): stored as TEXT (a BLOB would change what
    `typeof`, `length`, comparisons and the JSON functions see), the same text as a str bound.
    Fails without the CAST: the values are stored as BLOBs."""
    raw = {"fields": {"summary": "Zähler — ✓", "nul": "a\u0000b"}}
    item = make_item("1", title="Zähler — ✓", raw=raw)
    sqlite_store.items.apply([item])
    with sqlite_store.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT typeof(doc), typeof(raw), raw, length(raw), json_extract(raw, '$.fields.summary'),"
                " json_extract(doc, '$.title') FROM items"
            )
        ).one()
    stored = raw_json(raw)
    assert tuple(row) == ("text", "text", stored, len(stored), "Zähler — ✓", "Zähler — ✓")

"""Migration 0019 (issue 13 API speed): the text index behind GET /v1/items?q=.

`q` stays a case-insensitive substring test on key and title (`ILIKE '%q%'`, the query's
LIKE metacharacters literal). The index only changes how a page finds its rows: PostgreSQL's
planner may answer from the pg_trgm GIN index or walk; SQLite reads the FTS5 trigram table's
matches (hub/store/queries.py `TextPlan`). Every plan must return the same pages as the walk
without the index: same rows, same order, same cursors, on random titles with non-ASCII
letters, quotes and LIKE metacharacters, after inserts, title changes and tombstones."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, inspect, select, text

from hub.db.engine import alembic_config, migrate, schema_status
from hub.db.tables import items
from hub.schema import ItemDeletion
from hub.store import Store
from hub.store.queries import ItemQuery, TextPlan
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

# Letters that fold (ASCII and not), LIKE and FTS5 metacharacters, a quote, a space.
ALPHABET = list("abcAB") + list("éÉßöÖ") + ["%", "_", "\\", '"', "'", " ", "*", "-"]
SOURCES = [("acme-jira", "jira"), ("acme-linear", "linear")]
LATER = BASE_TIME + timedelta(days=30)


def random_text(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(low, high)))


def random_items(rng: random.Random, count: int, version: int = 0) -> list[Any]:
    found = []
    for n in range(count):
        source, tool = SOURCES[n % 2]
        found.append(
            make_item(
                n,
                minutes=rng.randint(0, 50) + version * 100,  # ties in updated_at: the id decides
                source=source,
                tool=tool,
                key=random_text(rng, 2, 6) if n % 5 else None,
                title=random_text(rng, 0, 14),
            )
        )
    return found


def queries(rng: random.Random, stored: list[Any]) -> list[ItemQuery]:
    """Substrings of stored titles and keys (1-5 characters, case flipped), random strings,
    each alone and with a source filter."""
    terms = {"%", "_", "\\", '"', "é", "É", "ab", "abc", "%_", '"a', "zzz"}
    while len(terms) < 30:
        item = rng.choice(stored)
        text_ = rng.choice([item.title, item.key or ""])
        if text_:
            start = rng.randrange(len(text_))
            term = text_[start : start + rng.randint(1, 5)]
            terms.add(term.swapcase() if rng.random() < 0.3 else term)
        terms.add(random_text(rng, 3, 4))
    found = []
    for term in sorted(terms):
        found.append(ItemQuery(q=term))
        found.append(ItemQuery(q=term, source=["acme-linear"]))
    return found


@contextmanager
def pg_plan(store: Store, plan: str) -> Iterator[None]:
    """PostgreSQL: steer the planner to the trigram bitmap (`index`) or to the walk (`walk`)."""
    setting = "enable_indexscan" if plan == "index" else "enable_bitmapscan"

    def before(_conn: Any, cursor: Any, *_args: Any) -> None:
        cursor.execute(f"SET {setting} = off; SET enable_seqscan = off")

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
        store.engine.dispose()  # the settings leave with the connections


def all_pages(store: Store, query: ItemQuery, sort: str) -> list[tuple[list[str], str | None]]:
    pages = []
    cursor = None
    while True:
        docs, cursor = store.queries.list_items(query, sort=sort, limit=9, cursor=cursor)
        pages.append(([d["id"] for d in docs], cursor))
        if cursor is None:
            return pages


def ascii_lower(value: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in value)


def answers(store: Store, cases: list[ItemQuery]) -> dict[str, list[Any]]:
    """Every page of every case, per plan."""
    if store.engine.dialect.name == "sqlite":
        plans: list[Any] = [TextPlan.WALK, TextPlan.INDEX, None]
        found: dict[str, list[Any]] = {}
        for plan in plans:
            store.queries.text_plan = plan
            found[str(plan)] = [all_pages(store, q, sort) for q in cases for sort in ("-updated_at", "updated_at")]
        store.queries.text_plan = None
        return found
    found = {}
    for plan in ("walk", "index"):
        with pg_plan(store, plan):
            found[plan] = [all_pages(store, q, sort) for q in cases for sort in ("-updated_at", "updated_at")]
    return found


def assert_fts_in_step(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        with store.engine.begin() as conn:  # raises SQLITE_CORRUPT_VTAB if the index and items differ
            conn.execute(text("INSERT INTO items_text(items_text, rank) VALUES ('integrity-check', 1)"))


def assert_same_answers(store: Store, cases: list[ItemQuery], live: dict[str, Any]) -> None:
    by_plan = answers(store, cases)
    first, *others = by_plan.values()
    for other in others:
        assert other == first
    if store.engine.dialect.name != "sqlite":
        return
    # The substring semantics themselves, on SQLite (LIKE folds ASCII case only).
    for query, pages in zip(cases, first[::2], strict=True):
        term = ascii_lower(query.q or "")
        expected = {
            item_id
            for item_id, it in live.items()
            if (term in ascii_lower(it.title) or term in ascii_lower(it.key or ""))
            and (not query.source or it.source in query.source)
        }
        ids = [i for page, _ in pages for i in page]
        assert len(ids) == len(set(ids))
        assert set(ids) == expected, query


def test_postgresql_can_answer_from_the_trigram_index(store: Store) -> None:
    """The GIN index serves the hub's own `q` condition (ILIKE with its ESCAPE clause)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL's")
    reset_database(store)
    store.items.apply(
        [make_item(n, minutes=n, title="Login timeout" if n % 10 == 0 else "Fix export") for n in range(300)]
    )
    conditions = store.queries._conditions(ItemQuery(q="time%out_", include_deleted=True), [])
    compiled = select(items.c.id).where(*conditions).compile(dialect=store.engine.dialect)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params))
    assert "Bitmap Index Scan on ix_items_text_trgm" in plan


def test_every_plan_answers_as_the_walk(store: Store) -> None:
    reset_database(store)
    rng = random.Random(13)
    stored = random_items(rng, 160)
    store.items.apply(stored)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE items"))
    cases = queries(rng, stored)
    live = {it.id: it for it in stored}
    assert_same_answers(store, cases, live)
    assert_fts_in_step(store)

    # Writes keep the index in step: new titles and keys, new items, tombstones.
    changed = random_items(rng, 200, version=1)[::2]
    store.items.apply(changed)
    live.update({it.id: it for it in changed})
    gone = stored[1::7]
    store.items.apply([ItemDeletion(source=it.source, native_id=it.native_id, deleted_at=LATER) for it in gone])
    for it in gone:
        live.pop(it.id, None)
    assert_fts_in_step(store)
    assert_same_answers(store, cases, live)


def test_sqlite_plans(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The three plans read as intended, and the hub picks by the number of matches."""
    sqlite_store.items.apply(
        [make_item(n, minutes=n, title="Login timeout" if n % 10 == 0 else "Fix export") for n in range(300)]
    )
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(sqlite_store.engine, "before_cursor_execute", note)
    monkeypatch.setattr("hub.store.queries.TEXT_INDEX_MAX", 40)

    def plan_of(q: str) -> str:
        seen.clear()
        sqlite_store.queries.list_items(ItemQuery(q=q), limit=5)
        page = next(s for s in seen if "sort_value" in s)
        with sqlite_store.engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + page, _params(page, q)).all()
        return " | ".join(str(r[3]) for r in rows)

    rare = plan_of("timeout")  # 30 matches
    assert "USING INDEX sqlite_autoindex_items_1 (id=?)" in rare and "TEMP B-TREE FOR ORDER BY" in rare
    assert "items_text VIRTUAL TABLE" in rare
    medium = plan_of("export")  # 270 matches, over TEXT_INDEX_MAX: a plain walk
    assert "SCAN items USING INDEX ix_items_updated" in medium
    assert "items_text" not in medium and "TEMP B-TREE" not in medium
    short = plan_of("ex")  # no trigram: the walk
    assert "items_text" not in short
    seen.clear()
    sqlite_store.queries.list_items(ItemQuery(q="export"), limit=5)
    assert not [s for s in seen if "count(*)" in s]  # counted once a minute per term


def _params(statement: str, q: str) -> tuple[Any, ...]:
    """The page statement's parameters, in order (the text index's phrase, the patterns, limit)."""
    found: list[Any] = []
    if "MATCH" in statement:
        found.append(f'"{q}"')
    found += [f"%{q}%", f"%{q}%", 6, 0]
    return tuple(found)


def test_migration_0019_upgrade_and_downgrade(store: Store) -> None:
    reset_database(store)
    store.items.apply([make_item(n, minutes=n, title=f"Login timeout {n}") for n in range(40)])
    query = ItemQuery(q="timeout 1")
    page, _ = store.queries.list_items(query, limit=100)
    assert len(page) == 11  # 1, 10..19
    sqlite = store.engine.dialect.name == "sqlite"

    def has_text_index() -> bool:
        if sqlite:
            return "items_text" in inspect(store.engine).get_table_names()
        with store.engine.connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_items_text_trgm'")).first())

    assert has_text_index()
    assert_fts_in_step(store)

    command.downgrade(alembic_config(store.engine), "0018")
    assert not has_text_index()
    store.queries.text_plan = None
    assert store.queries.list_items(ItemQuery(q="ti"), limit=100)[0]  # no trigram: no index needed
    store.items.apply(
        [make_item(n, minutes=100 + n, title=f"Renamed timeout {n}") for n in range(30, 35)]
    )  # no triggers

    migrate(store.engine)
    assert schema_status(store.engine)[0] == schema_status(store.engine)[1]
    assert has_text_index()
    assert_fts_in_step(store)  # rebuilt from items, the writes made while it was away included
    assert [d["id"] for d in store.queries.list_items(query, limit=100)[0]] == [d["id"] for d in page]
    renamed, _ = store.queries.list_items(ItemQuery(q="renamed"), limit=100)
    assert len(renamed) == 5


def test_sqlite_text_index_survives_renumbered_rowids(sqlite_store: Store) -> None:
    """Migration 0022: the text index is keyed by each item's own docid, not by items' rowid,
    which VACUUM may renumber (https://www.sqlite.org/lang_vacuum.html) as a table copy does.
    Here every rowid is changed in place (no trigger fires: rowid is no trigger column), the
    store is vacuumed, and every plan still finds every matching item; writes after it too."""
    rng = random.Random(22)
    stored = random_items(rng, 60)
    sqlite_store.items.apply(stored)
    live = {it.id: it for it in stored}
    with sqlite_store.engine.begin() as conn:
        conn.execute(text("UPDATE items SET rowid = 1000 - rowid"))
    sqlite_store.engine.dispose()
    vacuum = sqlite3.connect(str(sqlite_store.engine.url.database), isolation_level=None)
    vacuum.execute("VACUUM")
    vacuum.close()
    assert_fts_in_step(sqlite_store)
    cases = queries(rng, stored)
    assert_same_answers(sqlite_store, cases, live)
    changed = random_items(rng, 80, version=1)[::3]
    sqlite_store.items.apply(changed)
    live.update({it.id: it for it in changed})
    assert_fts_in_step(sqlite_store)
    assert_same_answers(sqlite_store, cases, live)

"""Migration 0021 (issue 13, PostgreSQL's share): the large text and bytes columns of items and
the inbox are compressed with lz4 on PostgreSQL (a value written after it is, and reads back
the same), the downgrade restores the server's default, and SQLite is left alone.

Since 0023 the inbox's headers and body are in `webhook_inbox_bodies` (lz4 there too); below
0023 they are back in `webhook_inbox`, where 0021 set them."""

from __future__ import annotations

import orjson
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select, text

from hub.db.engine import alembic_config, migrate, schema_status
from hub.db.tables import items, webhook_inbox_bodies
from hub.group_commit import NewDelivery
from hub.store import Store
from hub.store.inbox import InboxStore
from tests.conftest import reset_database
from tests.factories import make_item

COLUMNS = {("items", "doc"), ("items", "raw"), ("webhook_inbox", "body"), ("webhook_inbox", "headers")}
# At head (0023 on): the inbox's two columns are in their own table.
HEAD_COLUMNS = {
    ("items", "doc"),
    ("items", "raw"),
    ("webhook_inbox_bodies", "body"),
    ("webhook_inbox_bodies", "headers"),
}


def compression(engine: Engine, columns: set[tuple[str, str]] = COLUMNS) -> dict[tuple[str, str], str]:
    """attcompression of the migration's columns ('' is the server's default, 'l' lz4, 'p' pglz)."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT c.relname, a.attname, a.attcompression FROM pg_attribute a"
                " JOIN pg_class c ON c.oid = a.attrelid"
                " WHERE c.relname IN ('items', 'webhook_inbox', 'webhook_inbox_bodies')"
                " AND a.attnum > 0 AND NOT a.attisdropped"
            )
        )
        return {(table, column): str(method) for table, column, method in found if (table, column) in columns}


def lz4_available(engine: Engine) -> bool:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
    return bool(found)


def write_large(store: Store, n: int) -> tuple[str, bytes]:
    """An item and an inbox delivery large enough to be compressed (rows over ~2 KB)."""
    text_ = " ".join(f"word{i} {n}" for i in range(600))
    item = make_item(n, description=text_, raw={"fields": {"description": text_}})
    store.items.apply([item])
    body = orjson.dumps({"text": text_})
    InboxStore(store.engine).add_many([NewDelivery("s", f"d{n}", {"x-long": text_}, body)])
    return item.id, body


def write_large_below_0023(store: Store, n: int) -> str:
    """write_large at a revision before 0023 (the inbox row carries its body): the inbox row by SQL."""
    text_ = " ".join(f"word{i} {n}" for i in range(600))
    item = make_item(n, description=text_, raw={"fields": {"description": text_}})
    store.items.apply([item])
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO webhook_inbox (source, delivery_id, received_at, headers, body, status)"
                " VALUES ('s', :d, now(), :h, :b, 'pending')"
            ),
            {"d": f"d{n}", "h": orjson.dumps({"x-long": text_}).decode(), "b": orjson.dumps({"text": text_})},
        )
    return item.id


def stored_methods(engine: Engine, item_id: str, delivery_id: str, *, head: bool = True) -> tuple[str | None, ...]:
    inbox = "webhook_inbox_bodies b JOIN webhook_inbox i ON i.id = b.id" if head else "webhook_inbox i"
    with engine.connect() as conn:
        doc_raw = conn.execute(
            text("SELECT pg_column_compression(doc), pg_column_compression(raw) FROM items WHERE id = :i"),
            {"i": item_id},
        ).one()
        body_headers = conn.execute(
            text(
                f"SELECT pg_column_compression(body), pg_column_compression(headers) FROM {inbox} WHERE delivery_id = :d"
            ),
            {"d": delivery_id},
        ).one()
    return (*doc_raw, *body_headers)


def test_0021_compresses_with_lz4_on_postgresql_and_downgrades(store: Store) -> None:
    reset_database(store)
    engine = store.engine
    before = ScriptDirectory.from_config(alembic_config(engine)).get_revision("0021").down_revision
    assert isinstance(before, str)
    if engine.dialect.name != "postgresql":
        item_id, body = write_large(store, 1)
        command.downgrade(alembic_config(engine), before)
        migrate(engine)  # nothing to do on SQLite, both ways
        with engine.connect() as conn:
            assert conn.execute(select(webhook_inbox_bodies.c.body)).scalar() == body
            assert conn.execute(select(items.c.id)).scalar() == item_id
        return
    if not lz4_available(engine):
        assert set(compression(engine, HEAD_COLUMNS).values()) == {""}  # a server without lz4: left as it was
        return
    assert compression(engine, HEAD_COLUMNS) == dict.fromkeys(HEAD_COLUMNS, "l")
    item_id, body = write_large(store, 1)
    assert stored_methods(engine, item_id, "d1") == ("lz4", "lz4", "lz4", "lz4")
    with engine.connect() as conn:
        assert conn.execute(select(webhook_inbox_bodies.c.body)).scalar() == body  # reads back as written

    command.downgrade(alembic_config(engine), before)
    assert compression(engine) == dict.fromkeys(COLUMNS, "")
    default = engine.connect().execute(text("SHOW default_toast_compression")).scalar()
    second = write_large_below_0023(store, 2)
    assert stored_methods(engine, second, "d2", head=False) == (default,) * 4
    assert stored_methods(engine, item_id, "d1", head=False)[:2] == ("lz4",) * 2  # values keep their method

    migrate(engine)
    assert schema_status(engine)[0] == schema_status(engine)[1]
    assert compression(engine, HEAD_COLUMNS) == dict.fromkeys(HEAD_COLUMNS, "l")

"""Migration 0025 (side columns whole): a store at 0024 holding items, labels, links, people,
status history and facts keeps every row through the upgrade, then stores long values whole;
on PostgreSQL the downgrade refuses, and keeps them, while a value is longer than the old width."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError

from hub.db.engine import alembic_config, migrate, schema_status
from hub.store import Store
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

WIDENED: dict[str, dict[str, int]] = importlib.import_module("hub.migrations.versions.0025_side_columns_whole").WIDENED


def rows_of(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the migration alters, in a stable order."""
    with engine.connect() as conn:
        return {table: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {table}"))), key=repr) for table in WIDENED}


def column_types(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
            )
        )
        return {data_type for table, column, data_type in found if column in WIDENED.get(table, {})}


def analysed_columns(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT tablename, attname FROM pg_stats WHERE schemaname = 'public'"))
        return {(table, column) for table, column in found}


def seeded(i: int, done: bool = False) -> Any:
    status = {"category": "done", "name": "Done"} if done else {"category": "todo", "name": "To Do"}
    return make_item(
        i,
        minutes=i + (60 * 24 * 3 if done else 0),
        created_at=BASE_TIME - timedelta(days=2),  # flow_days counts the days from creation
        labels=["alpha", f"label-{i}"],
        container={"id": f"c-{i % 3}", "key": f"TEAM{i % 3}"},
        parent_id="acme-jira:1" if i > 1 else None,
        links=[{"type": "relates", "url": f"https://acme.atlassian.net/browse/PROJ-{i + 1}"}],
        assignees=[{"native_id": f"u-{i % 2}", "email": f"person{i % 2}@example.com"}],
        status=status,
    )


def test_0025_keeps_every_row_and_then_stores_long_values_whole(store: Store) -> None:
    reset_database(store)
    engine = store.engine
    postgres = engine.dialect.name == "postgresql"
    command.downgrade(alembic_config(engine), "0024")
    if postgres:
        assert column_types(engine) == {"character varying"}
    store.items.apply([seeded(i) for i in range(1, 7)])
    store.items.apply([seeded(i, done=True) for i in (2, 3)])  # status history: transitions from To Do
    before = rows_of(engine)
    counts = {table: len(rows) for table, rows in before.items()}
    assert all(counts.values()), counts  # every table holds rows

    migrate(engine)
    assert schema_status(engine)[0] == schema_status(engine)[1] == "0025"
    if postgres:
        assert column_types(engine) == {"text"}
        # ALTER COLUMN TYPE drops the columns' statistics: the migration gathers them again.
        assert analysed_columns(engine) >= {("item_labels", "label"), ("items", "key"), ("flow_facts", "container_id")}
    assert rows_of(engine) == before

    label = "l" * 300
    store.items.apply([make_item(99, labels=[label], key="K" * 250)])
    assert store.queries.get_item("acme-jira:99")["labels"] == [label]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT label FROM item_labels WHERE item_id = 'acme-jira:99'")).scalar() == label

    if postgres:  # the old widths would cut the new label: the downgrade refuses and keeps it
        with pytest.raises(DataError, match="value too long"):
            command.downgrade(alembic_config(engine), "0024")
        assert schema_status(engine)[0] == "0025"
        assert column_types(engine) == {"text"}
    else:  # SQLite: nothing changed either way
        command.downgrade(alembic_config(engine), "0024")
        migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT label FROM item_labels WHERE item_id = 'acme-jira:99'")).scalar() == label

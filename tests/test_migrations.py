"""Alembic migrations: the migrated schema equals the table metadata, on both backends;
migrate() is idempotent; downgrade to base and upgrade again works."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, String, create_engine, inspect, make_url, text

from hub.db.engine import alembic_config, make_engine, migrate, schema_status
from hub.db.tables import SQLITE_TEXT_TABLES, metadata
from tests.conftest import PG_ADMIN_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a brand-new, unmigrated database."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) when PostgreSQL is down
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"opshub_mig_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def schema_diff(engine: Engine) -> list[Any]:
    dialect = engine.dialect.name

    def on_this_backend(obj: Any, name: Any, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        # An index of one backend only (hub/db/tables.py `postgresql_only`, `sqlite_only`) is no difference
        # on the other.
        # SQLite's FTS5 table and its shadow tables (migration 0019) have no metadata.
        if type_ == "table" and name in SQLITE_TEXT_TABLES:
            return dialect != "sqlite"
        return type_ != "index" or obj.info.get("dialect", dialect) == dialect

    def string_lengths_on_postgresql(
        _context: Any, _inspected: Any, _column: Any, inspected_type: Any, metadata_type: Any
    ) -> bool | None:
        # SQLite gives VARCHAR(n) and TEXT the same affinity and enforces no declared length
        # (https://www.sqlite.org/datatype3.html#affinity_name_examples): migration 0025 widens
        # columns to TEXT on PostgreSQL only, rather than rebuild SQLite's tables for nothing.
        # Returning None leaves the comparison to Alembic (https://alembic.sqlalchemy.org/en/latest/autogenerate.html#comparing-types).
        if dialect == "sqlite" and isinstance(inspected_type, String) and isinstance(metadata_type, String):
            return False
        return None

    with engine.connect() as conn:
        opts = {
            "compare_type": string_lengths_on_postgresql,
            "compare_server_default": False,
            "include_object": on_this_backend,
        }
        context = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(context, metadata))


def user_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"} - SQLITE_TEXT_TABLES


def test_migration_matches_metadata(empty_engine: Engine) -> None:
    migrate(empty_engine)
    assert schema_diff(empty_engine) == []
    assert user_tables(empty_engine) == set(metadata.tables)
    current, head = schema_status(empty_engine)
    assert current == head is not None
    with empty_engine.connect() as conn:  # the change counter row the store locks
        assert conn.execute(text("SELECT id, last_seq FROM change_counter")).all() == [(1, 0)]


def test_migrate_twice_is_idempotent(empty_engine: Engine) -> None:
    migrate(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(text("UPDATE change_counter SET last_seq = 41"))
    migrate(empty_engine)
    assert schema_diff(empty_engine) == []
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT last_seq FROM change_counter")).scalar() == 41  # data kept


def test_downgrade_to_base_then_upgrade(empty_engine: Engine) -> None:
    migrate(empty_engine)
    command.downgrade(alembic_config(empty_engine), "base")
    assert user_tables(empty_engine) == set()
    assert schema_status(empty_engine)[0] is None
    migrate(empty_engine)
    assert schema_diff(empty_engine) == []
    current, head = schema_status(empty_engine)
    assert current == head

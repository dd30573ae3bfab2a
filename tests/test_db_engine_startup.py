"""Start-up cost of opening a store: migrate() leaves a database already at head alone
without loading alembic, and the SQLite cache/mmap settings reach the connection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

import hub.db.engine as db_engine
from hub.db.engine import alembic_config, current_revision, head_revision, make_engine, migrate
from hub.settings import Settings
from hub.store import Store
from tests.test_migrations import empty_engine  # noqa: F401 - the fixture: both backends

ROOT = Path(__file__).resolve().parent.parent


def test_head_revision_read_from_files_is_alembics_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        assert head_revision() == ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    finally:
        engine.dispose()


def test_at_head_migrate_does_not_call_alembic(empty_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    assert current_revision(empty_engine) is None  # no alembic_version table yet
    migrate(empty_engine)
    assert current_revision(empty_engine) == head_revision()

    def boom(_engine: Engine) -> None:
        raise AssertionError("alembic was loaded for a database already at head")

    monkeypatch.setattr(db_engine, "alembic_config", boom)
    migrate(empty_engine)  # the fast path: no alembic_config, no upgrade


def test_behind_head_still_upgrades(empty_engine: Engine) -> None:  # noqa: F811
    migrate(empty_engine)
    command.downgrade(alembic_config(empty_engine), "0012")
    assert current_revision(empty_engine) == "0012"
    migrate(empty_engine)
    assert current_revision(empty_engine) == head_revision()


def test_unknown_revision_goes_to_alembic(tmp_path: Path) -> None:
    """A database stamped with a revision this code does not know is alembic's to refuse."""
    engine = make_engine(f"sqlite:///{tmp_path / 'u.db'}")
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        with pytest.raises(Exception, match="ffff"):
            migrate(engine)
    finally:
        engine.dispose()


def test_opening_a_migrated_store_imports_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    Store.open(url).close()  # creates and migrates
    code = textwrap.dedent(
        f"""
        import sys
        from hub.store import Store
        Store.open({url!r}).close()
        print(sorted(m for m in sys.modules if m == "alembic" or m.startswith("alembic.")))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _pragmas(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
        mmap = conn.exec_driver_sql("PRAGMA mmap_size").scalar_one()
    return int(cache), int(mmap)


def test_sqlite_cache_and_mmap_defaults(tmp_path: Path) -> None:
    settings = Settings()
    assert (settings.sqlite_cache_mib, settings.sqlite_mmap_mib) == (32, 0)
    store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        assert _pragmas(store) == (-32 * 1024, 0)
    finally:
        store.close()


def test_sqlite_cache_and_mmap_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SQLITE_CACHE_MIB", "8")
    monkeypatch.setenv("HUB_SQLITE_MMAP_MIB", "16")
    settings = Settings()
    store = Store.open(
        f"sqlite:///{tmp_path / 'e.db'}",
        sqlite_cache_mib=settings.sqlite_cache_mib,
        sqlite_mmap_mib=settings.sqlite_mmap_mib,
    )
    try:
        assert _pragmas(store) == (-8 * 1024, 16 * 1024 * 1024)
    finally:
        store.close()


def test_sqlite_settings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SQLITE_MMAP_MIB", "-1")
    with pytest.raises(ValueError, match="sqlite_mmap_mib"):
        Settings()


def test_index_hints_reach_the_hubs_sqlite_engines_only(tmp_path: Path) -> None:
    """`INDEXED BY` (hub/store/queries.py) is rendered by the hub's SQLite engines, and the
    stock SQLite compiler of the process is left as SQLAlchemy ships it; SQLite refuses a hint
    naming an index that does not exist, so executing it proves it reached the statement."""
    from sqlalchemy import select
    from sqlalchemy.dialects import sqlite

    from hub.db.tables import items

    statement = select(items.c.id).with_hint(items, "INDEXED BY no_such_index", "sqlite")
    assert "INDEXED BY" not in str(statement.compile(dialect=sqlite.dialect()))
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        assert "items INDEXED BY no_such_index" in str(statement.compile(dialect=engine.dialect))
        migrate(engine)
        with engine.connect() as conn, pytest.raises(Exception, match="no such index"):
            conn.execute(statement)
    finally:
        engine.dispose()

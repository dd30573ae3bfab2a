"""Engine factory and migrations for the two supported backends.

SQLite (embedded default): one file in WAL mode so readers never block the writer;
`busy_timeout` lets concurrent writers queue instead of failing. We take over pysqlite's
transaction handling (the SQLAlchemy-documented recipe) so that write transactions can
start with BEGIN IMMEDIATE: a deferred transaction that reads first and writes later can
fail with SQLITE_BUSY when another writer got in between, which busy_timeout cannot fix.

PostgreSQL: psycopg 3. Several hub processes may share one database; migrations take an
advisory lock so that two processes starting at once do not both run them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, ProgrammingError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
# SQLite page cache and memory map per connection, in MiB (HUB_SQLITE_CACHE_MIB and
# HUB_SQLITE_MMAP_MIB in hub/settings.py; these are their defaults). Issue 13: 64 MiB of cache
# and a 256 MiB mmap per connection grew a 100k-issue sync's peak RSS to 437 MiB, and
# neither made the sync faster. https://www.sqlite.org/pragma.html#pragma_cache_size
SQLITE_CACHE_MIB = 32
SQLITE_MMAP_MIB = 0
_MIGRATION_LOCK_KEY = 0x0F5_4B  # arbitrary, fixed: pg_advisory_lock key for migrations

# Execution option read by the SQLite "begin" hook: "BEGIN" or "BEGIN IMMEDIATE".
SQLITE_BEGIN = "sqlite_begin"


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and pick the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class HubSQLiteCompiler(SQLiteCompiler):
    """SQLAlchemy's SQLite compiler, plus FROM hints: `Select.with_hint(table, text, "sqlite")`
    is rendered after the table's name (the stock compiler drops it), for `INDEXED BY`
    (https://www.sqlite.org/lang_indexedby.html; hub/store/queries.py `_ITEMS_BY_ID`). Set on
    the hub's own engines only (make_engine), so other SQLAlchemy users in the process keep
    the stock behaviour."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def make_engine(
    url: str, *, sqlite_cache_mib: int = SQLITE_CACHE_MIB, sqlite_mmap_mib: int = SQLITE_MMAP_MIB, **kwargs: Any
) -> Engine:
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        engine.dialect.statement_compiler = HubSQLiteCompiler
        _configure_sqlite(engine, cache_mib=sqlite_cache_mib, mmap_mib=sqlite_mmap_mib)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_pre_ping", True)
        # Sessions in UTC: psycopg then returns times with `timezone.utc`, which the
        # UTCDateTime columns pass through, instead of the server zone's ZoneInfo converted
        # per value (a flow request reads tens of thousands of times).
        kwargs.setdefault("connect_args", {"options": "-c timezone=UTC"})
        return create_engine(url, **kwargs)
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def _configure_sqlite(engine: Engine, *, cache_mib: int, mmap_mib: int) -> None:
    # cache_size in KiB is written negative (https://www.sqlite.org/pragma.html#pragma_cache_size);
    # mmap_size in bytes, 0 = off (https://www.sqlite.org/pragma.html#pragma_mmap_size).
    cache_pragma = f"PRAGMA cache_size=-{int(cache_mib) * 1024}"
    mmap_pragma = f"PRAGMA mmap_size={int(mmap_mib) * 1024 * 1024}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute(cache_pragma)
        # Checkpoint the WAL every ~40 MB instead of every 4 MB: a batch of 500 items writes
        # a few MB, and checkpointing after nearly every batch was a quarter of apply's time.
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.execute(mmap_pragma)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(SQLITE_BEGIN, "BEGIN"))


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """The one way the store opens a transaction that writes.

    SQLite: `BEGIN IMMEDIATE` takes the write lock up front. A plain (deferred) `BEGIN`
    that reads and then writes is upgraded to a writer only at its first write; if another
    connection wrote in between, SQLite cannot wait for it (the snapshot is stale) and
    fails at once with "database is locked", whatever busy_timeout says. Taking the lock at
    BEGIN makes concurrent writers queue on busy_timeout instead.
    PostgreSQL: a plain transaction (row locks are taken by the statements themselves).
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        with conn.begin():
            yield conn


class StatementTimeout(Exception):
    """A read ran past its statement timeout and PostgreSQL cancelled it."""


# SQLSTATE of a statement cancelled by statement_timeout (query_canceled):
# https://www.postgresql.org/docs/current/errcodes-appendix.html
_QUERY_CANCELED = "57014"


@contextmanager
def read_connection(engine: Engine, *, statement_timeout_ms: int | None = None) -> Iterator[Connection]:
    """A connection for reads that answer a client, bounded in time on PostgreSQL.

    A read a client asked for must not run for minutes after the client gave up (a filter
    with thousands of values once took 100 s and 2.9 GB in the backend). `set_config(...,
    true)` is `SET LOCAL`: it lasts for this connection's transaction only, so the pooled
    connection goes back with the server's default, and writers are never bounded by it.
    A cancelled statement raises StatementTimeout, which the API answers as a 503 problem.
    SQLite has no statement timeout; there a read holds no lock a writer waits for (WAL).
    """
    with engine.connect() as conn:
        try:
            if statement_timeout_ms and engine.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(int(statement_timeout_ms))}
                )
            yield conn
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED:
                raise StatementTimeout(f"the query ran longer than {statement_timeout_ms} ms") from exc
            raise


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # alembic loads lazily: see migrate()

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision of hub/migrations/versions, read from the files' text.

    The one revision no other revision names as its `down_revision` (the chain is linear;
    tests/test_db_engine_startup.py checks this equals alembic's own head). None when the
    files do not show exactly one head: then migrate() asks alembic.
    """
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found:
            revisions.add(found.group(1))
        downs.update(_DOWN_REVISION.findall(source))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The database's revision (alembic_version), or None without the table; no alembic import."""
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError):  # no table yet (SQLite: OperationalError)
        return None
    return None if row is None else str(row[0])


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe with several processes).

    Fast path: a database already at head is left alone without importing alembic and
    loading every migration script (about 0.2 CPU-s of each CLI command's start-up). Any
    other state (behind, ahead, unknown) goes through alembic as before.
    """
    head = head_revision()
    if head is not None and current_revision(engine) == head:
        return
    from alembic import command

    cfg = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as lock_conn:
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            try:
                command.upgrade(cfg, "head")
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                lock_conn.commit()
    else:
        command.upgrade(cfg, "head")


def schema_status(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision in the database, newest revision in the code)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head

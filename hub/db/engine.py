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

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_LOCK_KEY = 0x0F5_4B  # arbitrary, fixed: pg_advisory_lock key for migrations

# Execution option read by the SQLite "begin" hook: "BEGIN" or "BEGIN IMMEDIATE".
SQLITE_BEGIN = "sqlite_begin"


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and pick the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-65536")
        # Checkpoint the WAL every ~40 MB instead of every 4 MB: a batch of 500 items writes
        # a few MB, and checkpointing after nearly every batch was a quarter of apply's time.
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.execute("PRAGMA mmap_size=268435456")
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
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe with several processes)."""
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
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head

"""Shared test fixtures.

`store` (and everything built on it) runs once on SQLite and once on PostgreSQL. The
PostgreSQL variant uses a throw-away database made for this test session; it skips with a
reason when PostgreSQL is unreachable, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

import hub.store
from connectors.egress import EgressPolicy, configure_default
from hub.db.engine import make_engine, migrate
from hub.db.tables import metadata
from hub.store import Store

# The one place the tests widen where the hub may send requests (connectors/egress.py): the
# fakes, the local Redmine and the test receivers listen on loopback over plain http. Set as
# environment variables so every Settings() (and every `opshub` subprocess) sees the same; the
# defaults stay strict. `opshub demo` needs the same allowance.
TEST_EGRESS_ALLOW = ["127.0.0.1", "::1", "localhost"]
os.environ["HUB_EGRESS_ALLOW"] = json.dumps(TEST_EGRESS_ALLOW)
os.environ["HUB_EGRESS_ALLOW_HTTP"] = "true"
TEST_EGRESS_POLICY = EgressPolicy(allow=tuple(TEST_EGRESS_ALLOW), allow_http=True)
configure_default(TEST_EGRESS_POLICY)


@pytest.fixture(autouse=True)
def _test_egress_policy() -> Iterator[None]:
    """create_app sets the process-wide policy from its settings: a test whose app is stricter
    must not leave that policy to the tests after it."""
    yield
    configure_default(TEST_EGRESS_POLICY)


# Every Store.open on a new SQLite file ran the whole migration chain through alembic: ~55 ms
# on a quick machine, ~130 on a slow one, about 1,500 times a run (17-19 % of the CPU of the
# store and API test files: bench/README.md, "Session 7").
# In this process a database with no table at all is given a copy of one migrated by that same
# chain once per test process, through SQLite's backup API (the engine's connection stays
# open); anything else (a database at an older revision, PostgreSQL) migrates as before. The
# chain itself is still run by tests/test_migrations*.py, tests/test_db_engine_startup.py and
# by every `opshub` subprocess. OPSHUB_TEST_REAL_MIGRATIONS=1 turns the copy off for a whole run.
_real_migrate = hub.store.migrate  # type: ignore[attr-defined]  # the name Store.open calls, patched below
_template_path: Path | None = None
_ALWAYS_REAL = os.environ.get("OPSHUB_TEST_REAL_MIGRATIONS") == "1"


def _migrate_from_template(engine: Engine) -> None:
    global _template_path
    if _ALWAYS_REAL or engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        _real_migrate(engine)
        return
    with engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar_one():
            conn.rollback()
            _real_migrate(engine)  # not new: at head (the fast path) or older (alembic)
            return
        conn.rollback()
        if _template_path is None:
            folder = tempfile.mkdtemp(prefix="opshub-schema-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = Path(folder) / "template.db"
            template = make_engine(f"sqlite:///{path}")
            try:
                _real_migrate(template)
            finally:
                template.dispose()
            _template_path = path
        target = conn.connection.driver_connection
        assert isinstance(target, sqlite3.Connection)
        source = sqlite3.connect(_template_path)
        try:
            source.backup(target)
        finally:
            source.close()


hub.store.migrate = _migrate_from_template  # type: ignore[attr-defined]


IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# OPSHUB_SHARED_FIXTURES points elsewhere (a test of the suite itself sets it to a missing path).
SHARED_FIXTURES = Path(
    os.environ.get("OPSHUB_SHARED_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)


def shared_fixtures(subdir: str = "") -> Path:
    """Path to the real published payloads in ../shared/fixtures (skip, or fail in CI, when absent)."""
    path = SHARED_FIXTURES / subdir
    if not path.exists():
        message = f"real payloads not found at {path} (they live beside the repo in ../shared/fixtures)"
        if IN_CI:
            pytest.fail(message)
        # Also called at import time (parametrize lists of payload files): there, skip the
        # whole module with the reason instead of erroring the collection of the suite.
        pytest.skip(message, allow_module_level=True)
    return path


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not reachable ({reason}); set HUB_TEST_POSTGRES_URL or start it")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this session, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"opshub_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        _unavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_pg_store: Store | None = None


def reset_database(store: Store, *, truncate: bool = False) -> None:
    """Empty every table (keeps the migrated schema), restart identities and the change counter.

    DELETE, children first, on both backends. On PostgreSQL a TRUNCATE of the 25 tables makes
    new files for every table and index and syncs them at commit: ~650 ms a reset on a slow
    machine against ~25 ms for DELETE of a test's few rows, and the suite resets before every
    PostgreSQL test and hypothesis example (https://www.postgresql.org/docs/current/sql-truncate.html).
    DELETE leaves the planner's statistics (`pg_class.reltuples`) as the last ANALYZE saw them:
    a test of the store's own ANALYZE thresholds asks for `truncate=True`, which resets them too.
    """
    names = [t.name for t in reversed(metadata.sorted_tables) if t.name != "change_counter"]
    with store.engine.begin() as conn:
        if truncate and store.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
            names = []
        for name in names:
            conn.execute(text(f"DELETE FROM {name}"))
        if store.engine.dialect.name == "postgresql":
            # What TRUNCATE's RESTART IDENTITY did: the identity columns' sequences start again.
            for sequence in conn.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            ).scalars():
                conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        conn.execute(text("UPDATE change_counter SET last_seq = 0"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
        yield url
        return
    global _pg_store
    url = request.getfixturevalue("postgres_url")
    if _pg_store is None or str(_pg_store.engine.url.database) != make_url(url).database:
        _pg_store = Store.open(url)
    reset_database(_pg_store)
    yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A Store on an empty migrated database, once per backend."""
    s = Store.open(db_url, migrate_schema=db_url.startswith("sqlite"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only, for tests whose subject is not the backend."""
    s = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        yield s
    finally:
        s.close()


__all__ = ["IN_CI", "migrate", "reset_database", "shared_fixtures"]

_reset = reset_database  # the older name, still imported by tests/test_e2e_roadmap.py


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    """The session's PostgreSQL database, emptied (skips, or fails under CI, without PostgreSQL)."""
    store = Store.open(postgres_url)
    try:
        reset_database(store)
        yield store
    finally:
        store.close()

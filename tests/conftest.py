"""Shared test fixtures.

`store` (and everything built on it) runs once on SQLite and once on PostgreSQL. The
PostgreSQL variant uses a throw-away database made for this test session; it skips with a
reason when PostgreSQL is unreachable, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connectors.egress import EgressPolicy, configure_default
from hub.db.engine import migrate
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


def reset_database(store: Store) -> None:
    """Empty every table (fast, keeps the migrated schema) and restart the change counter."""
    names = [t.name for t in reversed(metadata.sorted_tables) if t.name != "change_counter"]
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))
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

"""Property-based conformance of the API to its own OpenAPI document (schemathesis).

For every operation, generated requests (with a valid admin key, so the admin routes run too) must never get a 5xx and
every response must match the documented schema for its status and content type, on both
backends (the same seeded data in SQLite and in the session's PostgreSQL database).

Examples per operation: 25 locally (about 10 s per backend), EXAMPLES_IN_CI = 50 under
CI=true (`CI=true ./scripts/test`). It was 200 while the API had 15 operations; at 32
operations x 2 backends that alone would take about a third of the 15-minute CI budget, so
CI now draws 50 per operation (2026-11-30: the whole suite went from 17.4 to under 15 min).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import update

from hub.api import create_app
from hub.config import HubConfig
from hub.db.tables import webhook_inbox
from hub.schema import ItemDeletion
from hub.settings import Settings
from hub.store import Store
from hub.store.inbox import DEAD, PROCESSING, InboxStore
from hub.store.keys import Scope
from tests.api_support import bearer
from tests.conftest import IN_CI, reset_database
from tests.factories import make_item

EXAMPLES_IN_CI = 50
EXAMPLES = EXAMPLES_IN_CI if IN_CI else 25

# schemathesis' pytest integration needs the schema at import time (its fixture-based loader
# does not work with pytest 9), so the app is a module global; the fixture below gives it
# the store of each backend in turn (app.state.store), seeded, before that backend's cases.
# The app starts on a throw-away in-memory store opened here, in this thread: left to the
# lifespan, it was opened in a worker thread and its connection closed at exit from another
# one ("SQLite objects created in a thread can only be used in that same thread").
_SCHEMA_STORE = Store.open("sqlite://")
APP = create_app(
    store=_SCHEMA_STORE, settings=Settings(database_url="sqlite://", background_tasks=False), config=HubConfig()
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
_SCHEMA_STORE.close()


def _seed(store: Store) -> str:
    """A variety of items (people, tombstones, RICE, raw payloads) and inbox rows; returns an admin key."""
    kinds = ["story", "bug", "epic", "feature", "idea"]
    items = [
        make_item(
            i,
            minutes=i,
            source="acme-gh" if i % 2 else "acme-jira",
            tool="github" if i % 2 else "jira",
            kind=kinds[i % len(kinds)],
            labels=[f"l{i % 3}"],
            assignees=[{"email": f"p{i % 4}@example.com", "name": f"P{i % 4}"}],
            container={"id": f"c{i % 2}", "key": f"K{i % 2}"},
            rice={"reach": i, "impact": 1, "confidence": 0.5, "effort": i % 3},
            estimate={"value": i, "unit": "points"},
            raw={"n": i},
        )
        for i in range(40)
    ]
    store.items.apply(items)
    store.items.apply([ItemDeletion(source="acme-jira", native_id="0")])
    # Inbox rows for the admin inbox routes: some dead (replayable), one processing (409).
    inbox = InboxStore(store.engine)
    for i in range(6):
        inbox.add("acme-jira", f"delivery-{i}", {"x-atlassian-webhook-identifier": f"delivery-{i}"}, b"{}")
    with store.engine.begin() as conn:
        t = webhook_inbox.c
        conn.execute(update(webhook_inbox).where(t.id <= 4).values(status=DEAD, error="seeded", attempts=8))
        conn.execute(update(webhook_inbox).where(t.id == 5).values(status=PROCESSING))
    _, token = store.keys.create(Scope.admin, name="schemathesis")
    return token


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def read_token(request: pytest.FixtureRequest) -> Iterator[str]:
    """The app on a seeded store of this backend; yields an admin key."""
    db_dir = Path(tempfile.mkdtemp(prefix="opshub-schemathesis-"))
    if request.param == "sqlite":
        store = Store.open(f"sqlite:///{db_dir / 'hub.db'}")
    else:
        store = Store.open(request.getfixturevalue("postgres_url"))
        reset_database(store)
    APP.state.store = store
    try:
        yield _seed(store)
    finally:
        APP.state.store = None
        store.close()
        shutil.rmtree(db_dir, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case, read_token: str) -> None:
    case.call_and_validate(headers=bearer(read_token), checks=[not_a_server_error, response_schema_conformance])

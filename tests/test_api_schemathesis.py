"""Property-based conformance of the API to its own OpenAPI document (schemathesis).

For every operation, generated requests (with a valid read key) must never get a 5xx and
every response must match the documented schema for its status and content type. The
number of examples is bounded so the whole module stays well under a minute.
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

from hub.api import create_app
from hub.schema import ItemDeletion
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from tests.api_support import bearer
from tests.factories import make_item

# schemathesis' pytest integration needs the schema at import time (its fixture-based loader
# does not work with pytest 9), so the app and its SQLite store are module globals; the
# fixture below seeds them before the first case and closes them after the last.
_DB_DIR = Path(tempfile.mkdtemp(prefix="opshub-schemathesis-"))
STORE = Store.open(f"sqlite:///{_DB_DIR / 'hub.db'}")
APP = create_app(store=STORE, settings=Settings(database_url="sqlite://"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def read_token() -> Iterator[str]:
    """Seed a variety of items (people, tombstones, RICE, raw payloads); yield a read key."""
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
    STORE.items.apply(items)
    STORE.items.apply([ItemDeletion(source="acme-jira", native_id="0")])
    _, token = STORE.keys.create(Scope.read, name="schemathesis")
    try:
        yield token
    finally:
        STORE.close()
        shutil.rmtree(_DB_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case, read_token: str) -> None:
    case.call_and_validate(headers=bearer(read_token), checks=[not_a_server_error, response_schema_conformance])

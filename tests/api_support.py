"""Helpers for the API tests: an app over a test store, and a client holding a key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from hub.api import create_app
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope

PROBLEM_JSON = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def api_client(
    store: Store, scope: Scope | None = Scope.read, settings: Settings | None = None, **client_kwargs: Any
) -> Iterator[TestClient]:
    """A TestClient on an app over `store`, sending a fresh key of `scope` (none if None)."""
    app = create_app(store=store, settings=settings or Settings(database_url="sqlite://"))
    headers = bearer(store.keys.create(scope, name="test")[1]) if scope is not None else {}
    with TestClient(app, headers=headers, **client_kwargs) as client:
        yield client


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert body["title"]
    return body

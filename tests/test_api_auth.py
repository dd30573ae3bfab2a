"""API keys, scopes and the error contract: every failure is an RFC 9457 problem.

401 (missing / malformed / wrong / revoked key) on every /v1 route, 403 for a key without
the needed scope, 404 for unknown ids, 422 naming each bad parameter, 500 without leaks,
503 from readyz, and an OpenAPI document that says all of this.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.api.deps import AdminKey, ReadKey
from hub.api.problems import install_problem_handlers
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from tests.api_support import PROBLEM_JSON, api_client, assert_problem, bearer
from tests.factories import make_item

SETTINGS = Settings(database_url="sqlite://")


def _v1_paths(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete URL) for every documented /v1 operation (so a new route cannot skip auth)."""
    fill = {"{item_id}": "x:1", "{person_id}": "p", "{name}": "s", "{inbox_id}": "1", "{sub_id}": "sub_x"}
    required_query = {"/v1/insights/forecast": "?weeks=2"}  # routes that need a parameter to answer 200
    operations = []
    for path, path_item in app.openapi()["paths"].items():
        if path.startswith("/v1"):
            for placeholder, value in fill.items():
                path = path.replace(placeholder, value)
            assert "{" not in path, f"give {path} a value in _v1_paths"
            operations.extend((method.upper(), path + required_query.get(path, "")) for method in path_item)
    return operations


V1_PATHS = _v1_paths(create_app(settings=SETTINGS))


def test_every_v1_route_is_listed() -> None:
    assert {p.split("/")[2] for _, p in V1_PATHS} == {
        "items",
        "people",
        "sources",
        "changes",
        "roadmap",
        "inbox",
        "insights",
        "subscriptions",
    }
    assert ("POST", "/v1/sources/s/sync") in V1_PATHS


@pytest.fixture
def anonymous(store: Store) -> Iterator[TestClient]:
    with api_client(store, scope=None) as c:
        yield c


@pytest.mark.parametrize(("method", "path"), V1_PATHS)
def test_every_v1_route_without_key_is_401(anonymous: TestClient, method: str, path: str) -> None:
    response = anonymous.request(method, path)
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["title"] == "Unauthorized"
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer not-a-key", "Bearer ohk_abc_def", "ohk_abc_def"],
)
def test_malformed_or_unknown_key_is_401(anonymous: TestClient, authorization: str) -> None:
    response = anonymous.get("/v1/items", headers={"Authorization": authorization})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_right_secret_with_wrong_key_id_and_revoked_key_are_401(anonymous: TestClient, store: Store) -> None:
    key, token = store.keys.create(Scope.read)
    _, other_token = store.keys.create(Scope.read)
    assert anonymous.get("/v1/items", headers=bearer(token)).status_code == 200
    # Another key's secret under this key's id.
    forged = f"ohk_{key.id}_{other_token.split('_', 2)[2]}"
    assert_problem(anonymous.get("/v1/items", headers=bearer(forged)), 401)
    assert_problem(anonymous.get("/v1/items", headers=bearer(token + "x")), 401)

    assert store.keys.revoke(key.id)
    response = anonymous.get("/v1/items", headers=bearer(token))
    assert_problem(response, 401)
    assert "invalid_token" in response.headers["www-authenticate"]
    assert anonymous.get("/v1/items", headers=bearer(other_token)).status_code == 200


ADMIN_ONLY = {
    ("POST", "/v1/sources/s/sync"),
    ("GET", "/v1/inbox"),
    ("POST", "/v1/inbox/1/replay"),
    ("POST", "/v1/inbox/dead/replay"),
    *((m, p) for m, p in V1_PATHS if p.startswith("/v1/subscriptions")),
}


@pytest.mark.parametrize("scope", [Scope.read, Scope.admin])
@pytest.mark.parametrize(("method", "path"), sorted(set(V1_PATHS) - ADMIN_ONLY))
def test_read_and_admin_keys_reach_every_read_route(store: Store, scope: Scope, method: str, path: str) -> None:
    store.items.apply([make_item(1)])
    with api_client(store, scope=scope) as client:
        response = client.request(method, path)
    # Some paths name things that do not exist: authorised, then not found.
    assert response.status_code in (200, 404), response.text
    if response.status_code == 404:
        assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(("method", "path"), sorted(ADMIN_ONLY))
def test_admin_routes_refuse_read_keys(store: Store, method: str, path: str) -> None:
    with api_client(store, scope=Scope.read) as client:
        assert_problem(client.request(method, path), 403)
    with api_client(store, scope=Scope.admin) as client:
        # Authorised; the source "s" is not configured, inbox delivery 1 does not exist.
        response = client.request(method, path)
        if response.status_code != 200:
            # 422: a route that takes a body (POST /v1/subscriptions) was sent none.
            assert_problem(response, 422 if response.status_code == 422 else 404)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_routes_need_no_key(anonymous: TestClient, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# ---------------------------------------------------------------- scopes (require_scope)


@pytest.fixture
def scoped_client(store: Store) -> Iterator[TestClient]:
    """A test app with one admin-only and one read route (the API has no admin route yet)."""
    app = FastAPI()
    app.state.store = store
    install_problem_handlers(app)

    @app.get("/admin-only")
    def admin_only(key: AdminKey) -> dict[str, str]:
        return {"key": key.id, "scope": key.scope.value}

    @app.get("/read")
    def read(key: ReadKey) -> dict[str, str]:
        return {"key": key.id, "scope": key.scope.value}

    with TestClient(app) as client:
        yield client


def test_read_key_on_admin_route_is_403_and_admin_key_passes(scoped_client: TestClient, store: Store) -> None:
    read_key, read_token = store.keys.create(Scope.read)
    admin_key, admin_token = store.keys.create(Scope.admin)

    response = scoped_client.get("/admin-only", headers=bearer(read_token))
    body = assert_problem(response, 403)
    assert body["title"] == "Forbidden"
    assert "admin" in body["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]

    assert scoped_client.get("/admin-only", headers=bearer(admin_token)).json() == {
        "key": admin_key.id,
        "scope": "admin",
    }
    # admin includes read; the dependency hands the route the caller's own key.
    assert scoped_client.get("/read", headers=bearer(admin_token)).json()["key"] == admin_key.id
    assert scoped_client.get("/read", headers=bearer(read_token)).json()["key"] == read_key.id
    assert_problem(scoped_client.get("/admin-only"), 401)


# ---------------------------------------------------------------- 404


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with api_client(store) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1/items/acme-jira:404", "acme-jira:404"),
        (f"/v1/items/{quote('acme-gh:org/repo#404', safe=':')}", "acme-gh:org/repo#404"),
        ("/v1/people/per_nobody", "per_nobody"),
        ("/v1/sources/nowhere", "nowhere"),
    ],
)
def test_unknown_ids_are_404_problems(client: TestClient, store: Store, path: str, named: str) -> None:
    store.items.apply([make_item(1, assignees=[{"email": "a@example.com"}])])
    body = assert_problem(client.get(path), 404)
    assert body["title"] == "Not Found"
    assert named in body["detail"]


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v2/items"), 404)
    response = client.post("/v1/items")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


# ---------------------------------------------------------------- 422


@pytest.mark.parametrize(
    ("path", "params", "bad"),
    [
        ("/v1/items", {"kind": "saga"}, "kind"),
        ("/v1/items", {"kind": ["bug", "saga"]}, "kind"),
        ("/v1/items", {"status_category": "open"}, "status_category"),
        ("/v1/items", {"priority_level": "p1"}, "priority_level"),
        ("/v1/items", {"limit": 501}, "limit"),
        ("/v1/items", {"limit": 0}, "limit"),
        ("/v1/items", {"limit": "ten"}, "limit"),
        ("/v1/items", {"updated_after": "yesterday"}, "updated_after"),
        ("/v1/items", {"updated_before": "2026-13-01"}, "updated_before"),
        ("/v1/items", {"updated_after": "9999-12-31T23:00:00-05:00"}, "updated_after"),
        ("/v1/items", {"sort": "title"}, "sort"),
        ("/v1/items", {"include_deleted": "maybe"}, "include_deleted"),
        ("/v1/items", {"source": "a\x00b"}, "source"),
        ("/v1/items/acme-jira:1", {"include": "everything"}, "include"),
        ("/v1/people", {"limit": 100_000}, "limit"),
        ("/v1/changes", {"after": -1}, "after"),
        ("/v1/changes", {"after": 2**63}, "after"),
        ("/v1/changes", {"limit": 501}, "limit"),
    ],
)
def test_bad_parameters_are_422_problems_naming_each(
    client: TestClient, path: str, params: dict[str, object], bad: str
) -> None:
    body = assert_problem(client.get(path, params=params), 422)
    assert [e["name"] for e in body["errors"]] == [bad]
    assert body["errors"][0]["in"] == "query"
    assert body["errors"][0]["detail"]
    assert bad in body["detail"]


def test_several_bad_parameters_are_all_named(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/items", params={"kind": "saga", "limit": 9999, "sort": "x"}), 422)
    assert {e["name"] for e in body["errors"]} == {"kind", "limit", "sort"}


def test_configured_page_limits_apply(store: Store) -> None:
    store.items.apply([make_item(i, minutes=i) for i in range(8)])
    settings = Settings(database_url="sqlite://", page_limit_default=3, page_limit_max=5)
    with api_client(store, settings=settings) as client:
        assert len(client.get("/v1/items").json()["items"]) == 3
        assert len(client.get("/v1/items", params={"limit": 5}).json()["items"]) == 5
        body = assert_problem(client.get("/v1/items", params={"limit": 6}), 422)
        assert body["errors"][0]["name"] == "limit"
        assert "5" in body["errors"][0]["detail"]


# ---------------------------------------------------------------- 500 and 503


def test_unexpected_error_is_a_500_problem_that_leaks_nothing(store: Store) -> None:
    app = create_app(store=store, settings=SETTINGS)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "secret" not in response.text
    assert body["title"] == "Internal Server Error"


def test_readyz_is_503_until_migrated_while_healthz_stays_ok(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = Store.open(url, migrate_schema=False)
    try:
        with TestClient(create_app(store=store, settings=SETTINGS)) as client:
            body = assert_problem(client.get("/readyz"), 503)
            assert "migrate" in body["detail"]
            assert client.get("/healthz").status_code == 200
            from hub.db.engine import migrate

            migrate(store.engine)
            assert client.get("/readyz").status_code == 200
    finally:
        store.close()


def test_app_without_store_opens_migrates_and_closes_its_own(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'own.db'}", migrate_on_start=True)
    app = create_app(settings=settings)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        store: Store = app.state.store
        _, token = store.keys.create(Scope.read)
        assert client.get("/v1/items", headers=bearer(token)).json() == {"items": [], "next_cursor": None}
    assert app.state.store is None  # closed at shutdown


# ---------------------------------------------------------------- OpenAPI tells the truth


def test_openapi_documents_security_and_problem_responses() -> None:
    app = create_app(settings=SETTINGS)
    with TestClient(app) as client:
        doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    problem_ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    operations = [(path, op) for path, item in doc["paths"].items() for op in item.values()]
    assert len(operations) > len(doc["paths"])  # POST routes are checked too
    for path, operation in operations:
        responses = operation["responses"]
        for status, response in responses.items():
            if status >= "400":
                assert response["content"] == {PROBLEM_JSON: problem_ref}, (path, status)
        if path.startswith("/v1"):
            assert operation["security"] == [{"ApiKey": []}]
            assert {"401", "403"} <= responses.keys()
        elif path.startswith("/webhooks"):
            # Deliveries are verified by the tool's signature, never by an API key.
            assert "security" not in operation
            assert "404" in responses
        else:
            assert "security" not in operation
        if "{" in path:
            assert "404" in responses
        if operation.get("parameters"):
            assert "422" in responses
    assert "400" in doc["paths"]["/v1/items"]["get"]["responses"]
    assert doc["paths"]["/v1/items"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemPage"
    }
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]

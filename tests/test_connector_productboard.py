"""Productboard connector quirks (respx and the fake), and the fake checked against the
published OpenAPI description (../shared/fixtures/productboard/openapi-public-api-v1.json)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import httpx
import jsonschema_rs
import pytest
import respx

from connectors.base import DeleteRecord, IgnoreEvent, RefetchRecord, WebhookRejected
from connectors.paging import RepeatedPageToken
from connectors.productboard import ProductboardConfig, ProductboardConnector
from fakes.common import asgi_transport
from fakes.productboard import FakeProductboard
from tests.conftest import shared_fixtures

pytestmark = pytest.mark.anyio
BASE = "https://api.productboard.com"
SECRET = "Bearer hook-secret"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _config(**overrides: Any) -> ProductboardConfig:
    raw = {"tool": "productboard", "token": "tok", "webhook_secret": SECRET, **overrides}
    return ProductboardConfig.model_validate(raw)


def _connector(fake: FakeProductboard | None = None, **overrides: Any) -> ProductboardConnector:
    if fake is None:
        return ProductboardConnector("pb", _config(**overrides))
    config = _config(base_url=fake.base_url, token=fake.token, **overrides)
    return ProductboardConnector("pb", config, transport=asgi_transport(fake.app))


def _feature(fid: str, updated: str) -> dict[str, Any]:
    return {
        "id": fid,
        "name": f"Feature {fid}",
        "description": "<p>x</p>",
        "type": "feature",
        "archived": False,
        "status": {"id": "s1", "name": "Planned"},
        "parent": {"product": {"id": "p1", "links": {"self": f"{BASE}/products/p1"}}},
        "links": {"self": f"{BASE}/features/{fid}", "html": f"https://x.productboard.com/features/{fid}"},
        "timeframe": {"startDate": "none", "endDate": "none", "granularity": "none"},
        "owner": None,
        "createdAt": updated,
        "updatedAt": updated,
        "lastHealthUpdate": None,
    }


# ---------------------------------------------------------------- requests (respx)


@respx.mock
async def test_every_request_sends_x_version_1_and_bearer_token_and_follows_links_next() -> None:
    # Routes match in order: the next page's (it carries pageLimit too) comes first.
    second = respx.get(f"{BASE}/features", params={"pageCursor": "abc"}).respond(
        json={"data": [_feature("c", "2025-01-01T00:00:00Z")], "links": {"next": None}}
    )
    first = respx.get(f"{BASE}/features", params={"pageLimit": "2"}).respond(
        json={
            "data": [_feature("b", "2025-01-02T00:00:00Z"), _feature("a", "2025-01-03T00:00:00Z")],
            # An absolute link on another host (as the API's own examples show): followed on
            # the configured host, so the token never travels elsewhere.
            "links": {"next": "https://api.productboard.info/features?pageCursor=abc&pageLimit=2"},
        }
    )
    async with _connector(page_size=2) as connector:
        ids = [i async for i in connector.list_ids()]
    assert ids == ["b", "a", "c"]
    for route in (first, second):
        request = route.calls.last.request
        assert request.headers["X-Version"] == "1"
        assert request.headers["Authorization"] == "Bearer tok"
        assert request.url.host == "api.productboard.com"


@respx.mock
async def test_a_links_next_that_comes_back_stops_the_run() -> None:
    loop = {"data": [_feature("a", "2025-01-01T00:00:00Z")], "links": {"next": f"{BASE}/features?pageCursor=same"}}
    route = respx.get(f"{BASE}/features").respond(json=loop)
    async with _connector() as connector:
        with pytest.raises(RepeatedPageToken):
            [i async for i in connector.list_ids()]
    assert route.call_count == 2


@respx.mock
async def test_fetch_sorts_the_unordered_listing_and_filters_by_updated_at() -> None:
    respx.get(f"{BASE}/features").respond(
        json={
            "data": [
                _feature("late", "2025-01-03T00:00:00Z"),
                _feature("old", "2024-06-01T00:00:00Z"),
                _feature("early", "2025-01-02T00:00:00Z"),
            ],
            "links": {"next": None},
        }
    )
    empty = {"data": [], "links": {"next": None}}
    for path in ("feature-statuses", "components", "products", "releases", "feature-release-assignments"):
        respx.get(f"{BASE}/{path}").respond(json=empty)
    respx.get(f"{BASE}/hierarchy-entities/custom-fields").respond(json=empty)
    respx.get(f"{BASE}/jira-integrations").respond(json=empty)
    cursor = '{"v":1,"updated":"2025-01-02T00:03:00+00:00","id":"early"}'
    async with _connector() as connector:
        pages = [page async for page in connector.fetch(cursor)]
    records = [r for page in pages for r in page.records]
    # overlap 5m: "early" (3 minutes before the cursor) is re-read, "old" is not.
    assert [r["id"] for r in records] == ["early", "late"]
    assert records[0]["_opshub"]["container"] == {"type": "product", "id": "p1", "name": None}
    assert "2025-01-03" in str(pages[-1].cursor)


@respx.mock
async def test_an_unchanged_incremental_run_reads_only_the_listing() -> None:
    route = respx.get(f"{BASE}/features").respond(
        json={"data": [_feature("a", "2025-01-01T00:00:00Z")], "links": {"next": None}}
    )
    async with _connector() as connector:
        pages = [page async for page in connector.fetch('{"v":1,"updated":"2025-02-01T00:00:00+00:00"}')]
        stats = connector.stats()
    assert [p.records for p in pages] == [[]]
    assert route.call_count == 1 and stats["requests"] == 1


# ---------------------------------------------------------------- enrichment (fake)


async def test_enrichment_joins_hierarchy_release_custom_fields_and_jira() -> None:
    fake = FakeProductboard(40)
    async with _connector(fake, jira_base_url="https://acme.atlassian.net") as connector:
        records = {r["id"]: r for page in [p async for p in connector.fetch(None)] for r in page.records}
        sub_id = next(i for i, r in records.items() if r["type"] == "subfeature")
        one = await connector.fetch_one(sub_id)
    sub = records[sub_id]
    parent_id = sub["parent"]["feature"]["id"]
    assert sub["_opshub"]["parent"] == {"type": "feature", "id": parent_id, "name": fake.features[parent_id]["name"]}
    assert sub["_opshub"]["container"]["type"] == "product"
    assert one is not None and one["_opshub"] == sub["_opshub"]  # the refetch path joins the same
    linked = next(r for r in records.values() if r["_opshub"]["jira"])
    key = fake.jira[linked["id"]][0]
    assert linked["_opshub"]["jira"][0]["url"] == f"https://acme.atlassian.net/browse/{key}"
    with_release = next(r for r in records.values() if r["_opshub"]["releases"])
    assert {x["id"] for x in with_release["_opshub"]["releases"]} == fake.assignments[with_release["id"]]
    names = {c["name"] for r in records.values() for c in r["_opshub"]["custom_fields"]}
    assert {"Reach", "Impact", "Confidence", "Effort"} <= names


async def test_fetch_one_of_a_deleted_feature_is_none() -> None:
    fake = FakeProductboard(5)
    gone = fake.ids()[0]
    fake.delete(gone)
    async with _connector(fake) as connector:
        assert await connector.fetch_one(gone) is None


# ---------------------------------------------------------------- webhooks


def test_probe_echoes_the_validation_token() -> None:
    connector = _connector()
    assert connector.webhook_probe({"validationToken": "a-unique-token"}) == "a-unique-token"
    assert connector.webhook_probe({}) is None


def test_authorization_header_must_equal_the_configured_value() -> None:
    connector = _connector()
    fake = FakeProductboard(3)
    headers, body = fake.webhook("upsert", fake.ids()[0], secret=SECRET)
    connector.verify(headers, body)
    connector.verify({"authorization": SECRET}, body)  # header names are case-insensitive
    for bad in ({"Authorization": "Bearer wrong"}, {"Authorization": SECRET + "x"}, {}):
        with pytest.raises(WebhookRejected):
            connector.verify(bad, body)
    with pytest.raises(WebhookRejected, match="webhook_secret"):
        _connector(webhook_secret=None).verify(headers, body)


def test_notifications_are_thin_and_deduped_within_the_window() -> None:
    now = [1_000_000.0]
    connector = ProductboardConnector("pb", _config(webhook_dedupe_window="10m"), clock=lambda: now[0])
    fid = "9faa70ff-dcee-4686-9203-aa482a4c67ab"

    def body(data: dict[str, Any]) -> bytes:
        return json.dumps({"data": data}).encode()

    updated = body({"id": fid, "eventType": "feature.updated", "links": {"target": f"{BASE}/features/{fid}"}})
    first = connector.parse({}, updated)
    assert first.events == [RefetchRecord(fid)]
    assert connector.parse({}, updated).delivery_id == first.delivery_id  # a retry
    now[0] += 601
    assert connector.parse({}, updated).delivery_id != first.delivery_id  # a later change
    deleted = body({"id": fid, "eventType": "feature.deleted", "links": {"target": f"{BASE}/features/{fid}"}})
    assert connector.parse({}, deleted).events == [DeleteRecord(fid)]
    target = f"{BASE}/hierarchy-entities/custom-fields-values/value?customField.id=c1&hierarchyEntity.id={fid}"
    value = body({"eventType": "hierarchy-entity.custom-field-value.updated", "links": {"target": target}})
    assert connector.parse({}, value).events == [RefetchRecord(fid)]
    note = body({"id": "n1", "eventType": "note.created", "links": {"target": f"{BASE}/notes/n1"}})
    (ignored,) = connector.parse({}, note).events
    assert isinstance(ignored, IgnoreEvent)
    with pytest.raises(ValueError, match="JSON object"):
        connector.parse({}, b"[1]")


# ---------------------------------------------------------------- the fake against the OpenAPI


@cache
def _openapi() -> dict[str, Any]:
    return json.loads((shared_fixtures("productboard") / "openapi-public-api-v1.json").read_text())


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` becomes a null alternative."""
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "discriminator", "example")}
        if node.get("nullable"):
            return {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


def _validator(path: str) -> Any:
    spec = _openapi()
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    document = {"components": {"schemas": _json_schema(spec["components"]["schemas"])}, **_json_schema(schema)}
    return jsonschema_rs.validator_for(document, validate_formats=True)


async def test_a_run_keeping_few_features_enriches_them_per_feature_like_the_full_listing() -> None:
    fake = FakeProductboard(300)
    async with _connector(fake, overlap="0s") as connector:
        pages = [page async for page in connector.fetch(None)]
        cursor = pages[-1].cursor
        by_id = {r["id"]: r for page in pages for r in page.records}
        changed = sorted(fake.ids())[:2]
        for fid in changed:
            fake.edit(fid)
        fake.log.clear()
        again = [r async for page in connector.fetch(cursor) for r in page.records]
    # The changed ones, plus the newest of the last run (the cursor's own time is re-read).
    assert set(changed) <= {r["id"] for r in again}
    assert len(again) <= len(changed) + 1
    for record in again:
        # The same join as the whole-account listings gave (releases, custom values, Jira links).
        assert record["_opshub"] == by_id[record["id"]]["_opshub"]
    listed = [(e.path, e.param("feature.id") or e.param("hierarchyEntity.id")) for e in fake.log.entries]
    assert ("/feature-release-assignments", None) not in listed
    assert ("/hierarchy-entities/custom-fields-values", None) not in listed
    assert {fid for path, fid in listed if path == "/feature-release-assignments"} == {r["id"] for r in again}
    assert fake.log.total <= 3 + 6 + 3 * len(again)  # features, shared lists, per feature


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/features", "/features"),
        ("/features/{id}", None),
        ("/components", "/components"),
        ("/products", "/products"),
        ("/feature-statuses", "/feature-statuses"),
        ("/releases", "/releases"),
        ("/feature-release-assignments", "/feature-release-assignments"),
        ("/hierarchy-entities/custom-fields", "/hierarchy-entities/custom-fields?type=number,dropdown,text,member"),
        ("/hierarchy-entities/custom-fields-values", "/hierarchy-entities/custom-fields-values"),
        ("/jira-integrations", "/jira-integrations"),
        ("/jira-integrations/{id}/connections", None),
    ],
)
async def test_fake_responses_match_the_openapi_schemas(path: str, url: str | None) -> None:
    fake = FakeProductboard(30)
    if path == "/features/{id}":
        url = f"/features/{fake.ids()[0]}"
    elif path == "/jira-integrations/{id}/connections":
        url = f"/jira-integrations/{fake.jira_integration['id']}/connections"
    assert url is not None
    headers = {"Authorization": f"Bearer {fake.token}", "X-Version": "1"}
    async with httpx.AsyncClient(transport=asgi_transport(fake.app), base_url=fake.base_url) as client:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        errors = [str(e) for e in _validator(path).iter_errors(response.json())]
        assert errors == []
        refused = await client.get(url, headers={"Authorization": f"Bearer {fake.token}"})
        assert refused.status_code == 400  # no X-Version


async def test_fake_webhook_matches_the_notification_schema() -> None:
    spec = _openapi()
    callback = spec["paths"]["/webhooks"]["post"]["callbacks"]["entityChange"]
    (operation,) = callback.values()
    schema = operation["post"]["requestBody"]["content"]["application/json"]["schema"]
    document = {"components": {"schemas": _json_schema(spec["components"]["schemas"])}, **_json_schema(schema)}
    validator = jsonschema_rs.validator_for(document, validate_formats=True)
    fake = FakeProductboard(3)
    for kind in ("upsert", "delete", "refetch", "ignore"):
        _, body = fake.webhook(kind, fake.ids()[0], secret=SECRET)  # type: ignore[arg-type]
        assert [str(e) for e in validator.iter_errors(json.loads(body))] == []

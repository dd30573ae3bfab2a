"""Aha! quirks (respx-mocked and against the fake) and the real payloads in ../shared/fixtures/aha."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.aha import AhaConfig, AhaConnector
from connectors.aha.connector import FIELDS
from connectors.base import DeleteRecord, IgnoreEvent, RefetchRecord, WebhookRejected
from connectors.multi import ScopeCursors
from connectors.paging import RepeatedPageToken
from connectors.registry import connector_class
from fakes.aha import FakeAha
from fakes.common import asgi_transport
from tests.conftest import shared_fixtures

pytestmark = pytest.mark.anyio
API = "https://acme.aha.io/api/v1"
SECRET = "aha-hook-secret"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make(**overrides: Any) -> AhaConnector:
    raw = {"tool": "aha", "subdomain": "acme", "api_key": "k-123", "products": ["PRJ1"], "webhook_secret": SECRET}
    return AhaConnector("acme-aha", AhaConfig.model_validate({**raw, **overrides}))


def page(kind: str, records: list[dict[str, Any]], current: int, total: int) -> httpx.Response:
    body = {kind: records, "pagination": {"total_records": 99, "total_pages": total, "current_page": current}}
    return httpx.Response(200, json=body)


def rec(ident: int, updated: str) -> dict[str, Any]:
    return {"id": str(ident), "reference_num": f"PRJ1-{ident}", "updated_at": updated}


# ---------------------------------------------------------------- config


def test_config_subdomain_base_url_and_entry_point() -> None:
    assert make().config.base_url == API
    assert (
        AhaConfig.model_validate(
            {"tool": "aha", "base_url": "https://acme.aha.io/", "api_key": "k", "products": ["PRJ1"]}
        ).base_url
        == API
    )
    assert connector_class("aha") is AhaConnector
    with pytest.raises(ValidationError, match="workspace"):
        make(products=["prj-1"])
    with pytest.raises(ValidationError):
        make(subdomain=None)
    assert "k-123" not in repr(make().config)


# ---------------------------------------------------------------- pulling (respx)


@respx.mock
async def test_lists_ask_for_fields_page_by_the_pagination_block_and_sort_by_update() -> None:
    route = respx.get(f"{API}/products/PRJ1/features").mock(
        side_effect=[
            page("features", [rec(5, "2025-01-03T00:00:00Z"), rec(2, "2025-01-01T00:00:00Z")], 1, 2),
            page("features", [rec(9, "2025-01-02T00:00:00Z")], 2, 2),
        ]
    )
    connector = make(record_types=["features"])
    async with connector:
        pages = [p async for p in connector.fetch(None)]
    records = [r for p in pages for r in p.records]
    assert [r["id"] for r in records] == ["2", "9", "5"]  # Aha! does not sort by update: we do
    assert all(r["_opshub"] == {"type": "feature"} for r in records)
    first, second = (call.request.url.params for call in route.calls)
    assert first["fields"].split(",") == list(FIELDS["features"])  # list endpoints are thin otherwise
    assert "updated_since" not in first
    assert (first["page"], second["page"], first["per_page"]) == ("1", "2", "200")
    assert all(call.request.headers["authorization"] == "Bearer k-123" for call in route.calls)
    assert "k-123" not in str(route.calls[0].request.url)
    cursor = ScopeCursors.parse(pages[-1].cursor)
    assert cursor.get("PRJ1/features").last_id == "5"


@respx.mock
async def test_each_type_resumes_from_its_own_cursor() -> None:
    cursor = json.dumps(
        {
            "v": 1,
            "scopes": {
                "prj1/features": {"updated": "2025-01-03T00:00:00+00:00", "id": "5"},
                "prj1/ideas": {"updated": "2025-02-01T00:00:00+00:00", "id": "8"},
            },
        }
    )
    features = respx.get(f"{API}/products/PRJ1/features").mock(return_value=page("features", [], 1, 0))
    ideas = respx.get(f"{API}/products/PRJ1/ideas").mock(return_value=page("ideas", [], 1, 0))
    epics = respx.get(f"{API}/products/PRJ1/epics").mock(return_value=page("epics", [], 1, 0))
    connector = make(record_types=["features", "ideas", "epics"])
    async with connector:
        pages = [p async for p in connector.fetch(cursor)]
    assert features.calls[0].request.url.params["updated_since"] == "2025-01-02T23:55:00Z"  # minus 5m overlap
    assert ideas.calls[0].request.url.params["updated_since"] == "2025-01-31T23:55:00Z"
    assert "updated_since" not in epics.calls[0].request.url.params  # a type new to the scope: full read
    assert pages == [pages[0]] and pages[0].records == []
    assert ScopeCursors.parse(pages[0].cursor).get("PRJ1/ideas").last_id == "8"


@respx.mock
async def test_a_pagination_block_that_repeats_its_page_stops_the_run() -> None:
    respx.get(f"{API}/products/PRJ1/features").mock(
        return_value=page("features", [rec(1, "2025-01-01T00:00:00Z")], 1, 3)
    )
    connector = make(record_types=["features"])
    async with connector:
        with pytest.raises(RepeatedPageToken):
            _ = [p async for p in connector.fetch(None)]


@respx.mock
async def test_fetch_one_finds_the_type_and_answers_none_when_gone() -> None:
    respx.get(f"{API}/initiatives/77").mock(return_value=httpx.Response(404, json={"error": "Record not found"}))
    respx.get(f"{API}/epics/77").mock(return_value=httpx.Response(404, json={"error": "Record not found"}))
    feature = respx.get(f"{API}/features/77").mock(
        return_value=httpx.Response(200, json={"feature": {**rec(77, "2025-01-01T00:00:00Z"), "product_id": "1"}})
    )
    respx.get(f"{API}/ideas/77").mock(return_value=httpx.Response(404, json={"error": "Record not found"}))
    respx.get(f"{API}/features/78").mock(return_value=httpx.Response(404))
    connector = make(record_types=["features", "initiatives", "epics"])
    async with connector:
        found = await connector.fetch_one("77")
        again = await connector.fetch_one("77")  # the type is remembered: one request
        assert await connector.fetch_one("not-an-id") is None
    assert found is not None and found["_opshub"] == {"type": "feature"} and again == found
    assert feature.call_count == 2


@respx.mock
async def test_fetch_one_refuses_a_record_of_another_workspace() -> None:
    other = {**rec(5, "2025-01-01T00:00:00Z"), "reference_num": "OTHER-5", "product_id": "999"}
    respx.get(f"{API}/features/5").mock(return_value=httpx.Response(200, json={"feature": other}))
    async with make(record_types=["features"]) as connector:
        assert await connector.fetch_one("5") is None


# ---------------------------------------------------------------- the fake


async def test_fake_serves_thin_lists_without_fields_and_jira_keys_and_merged_ideas() -> None:
    fake = FakeAha(60)
    async with httpx.AsyncClient(transport=asgi_transport(fake.app), base_url=fake.base_url) as client:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        thin = (await client.get("/products/PRJ1/features", headers=auth)).json()
        assert set(thin["features"][0]) == {
            "id",
            "reference_num",
            "name",
            "created_at",
            "url",
            "resource",
            "product_id",
        }
        assert thin["pagination"]["current_page"] == 1
        assert (await client.get("/products/PRJ1/features")).status_code == 401
    fake.log.clear()
    connector = AhaConnector(
        "fake-aha",
        AhaConfig.model_validate(
            {"tool": "aha", "base_url": fake.base_url, "api_key": fake.api_key, "products": ["PRJ1"]}
        ),
        transport=asgi_transport(fake.app),
    )
    async with connector:
        records = [r for p in [p async for p in connector.fetch(None)] for r in p.records]
    assert any(f["type"] == "feature" for f in (r["_opshub"] for r in records))
    assert any(r.get("integration_fields") for r in records)
    assert any(r.get("duplicate_of") for r in records)
    assert fake.log.total == 4 and all(e.param("fields") for e in fake.log.entries)


class DeleteDuringListing(httpx.AsyncBaseTransport):
    """Passes requests to the fake; after the first page of the features list, deletes the
    first feature (in id order) in the tool, as a user might while we page."""

    def __init__(self, fake: FakeAha) -> None:
        self.fake = fake
        self.inner = asgi_transport(fake.app)
        self.deleted: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.deleted is None and request.url.path.endswith("/products/PRJ1/features"):
            features = sorted((i for i in self.fake.ids() if self.fake.record_type(i) == "features"), key=int)
            self.deleted = features[0]
            self.fake.delete(self.deleted)
        return response


@pytest.mark.parametrize("listing", ["fetch", "list_ids"])
async def test_a_deletion_while_paging_shifts_no_record_out_of_the_listing(listing: str) -> None:
    fake = FakeAha(300)
    transport = DeleteDuringListing(fake)
    config = {"tool": "aha", "base_url": fake.base_url, "api_key": fake.api_key, "products": ["PRJ1"]}
    connector = AhaConnector(
        "fake-aha",
        AhaConfig.model_validate({**config, "record_types": ["features"], "page_size": 10}),
        transport=transport,
    )
    async with connector:
        if listing == "fetch":
            got = [connector.native_id(r) async for page in connector.fetch(None) for r in page.records]
        else:
            got = [native_id async for native_id in connector.list_ids()]
    live = {i for i in fake.ids() if fake.record_type(i) == "features"}
    assert transport.deleted is not None and transport.deleted not in live
    assert len(got) == len(set(got))
    assert live <= set(got), f"never listed: {sorted(live - set(got))[:3]}"


# ---------------------------------------------------------------- webhooks


def _audit(**audit: Any) -> bytes:
    return json.dumps({"type": "audit", "audit": {"id": "6776757454428206157", **audit}}).encode()


def test_secret_header_checked_in_constant_time_never_from_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    connector = make()
    body = _audit(audit_action="update", auditable_type="feature", auditable_id=1)
    connector.verify({"Authorization": f"Bearer {SECRET}"}, body)
    basic = base64.b64encode(f"aha:{SECRET}".encode()).decode()
    connector.verify({"authorization": f"Basic {basic}"}, body)
    for bad in ({}, {"Authorization": "Bearer nope"}, {"Authorization": SECRET}, {"Authorization": "Basic !!"}):
        with pytest.raises(WebhookRejected):
            connector.verify(bad, body)
    # The query string never reaches verify: a secret there is simply absent.
    with pytest.raises(WebhookRejected, match="missing"):
        connector.verify({"X-Original-URL": f"/webhooks/acme-aha?secret={SECRET}"}, body)
    custom = make(webhook_header="X-OpsHub-Secret")
    custom.verify({"x-opshub-secret": SECRET}, body)
    with pytest.raises(WebhookRejected):
        custom.verify({"Authorization": f"Bearer {SECRET}"}, body)
    with pytest.raises(WebhookRejected, match="no webhook_secret"):
        make(webhook_secret=None).verify({"Authorization": f"Bearer {SECRET}"}, body)

    import connectors.aha.connector as module

    compared: list[tuple[bytes, bytes]] = []
    real = module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(module.hmac, "compare_digest", spy)
    connector.verify({"Authorization": f"Bearer {SECRET}"}, body)
    assert compared == [(SECRET.encode(), SECRET.encode())]


def test_audit_routing_and_delivery_ids() -> None:
    connector = make()
    update = connector.parse({}, _audit(audit_action="update", auditable_type="feature", auditable_id=11))
    assert update.delivery_id == "audit:6776757454428206157"
    assert update.events == [RefetchRecord("11")]
    gone = connector.parse(
        {},
        _audit(audit_action="destroy", auditable_type="ideas/idea", auditable_id=12, created_at="2025-01-01T00:00:00Z"),
    )
    assert isinstance(gone.events[0], DeleteRecord) and gone.events[0].native_id == "12" and gone.events[0].at
    legacy = connector.parse({}, _audit(audit_action="create", auditable_type="master_feature", auditable_id=13))
    assert legacy.events == [RefetchRecord("13")]
    note = connector.parse(
        {},
        _audit(audit_action="update", auditable_type="note", auditable_id=1, associated_type="epic", associated_id=14),
    )
    assert note.events == [RefetchRecord("14")]
    release = connector.parse({}, _audit(audit_action="update", auditable_type="release", auditable_id=15))
    assert isinstance(release.events[0], IgnoreEvent)
    only_features = make(record_types=["features"])
    idea = only_features.parse({}, _audit(audit_action="update", auditable_type="idea", auditable_id=16))
    assert isinstance(idea.events[0], IgnoreEvent)
    with pytest.raises(ValueError, match="JSON object"):
        connector.parse({}, b"[1, 2]")


# ---------------------------------------------------------------- real payloads


def _fixtures() -> Path:
    return shared_fixtures("aha")


def test_real_integration_events_route_as_documented() -> None:
    connector = make(products=["PROD"])
    for name in ("create_feature_event", "create_feature_event_assignee", "update_feature_event"):
        body = (_fixtures() / f"integration-event-{name}.json").read_bytes()
        delivery = connector.parse({}, body)
        assert delivery.events == [RefetchRecord("5886067808745625353")], name
        assert delivery.delivery_id.startswith("sha256:")
        assert connector.parse({}, body).delivery_id == delivery.delivery_id
    for name in ("create_release_event", "update_release_event"):
        delivery = connector.parse({}, (_fixtures() / f"integration-event-{name}.json").read_bytes())
        assert len(delivery.events) == 1 and isinstance(delivery.events[0], IgnoreEvent), name
    out_of_scope = make(products=["PRJ1"]).parse(
        {}, (_fixtures() / "integration-event-update_feature_event.json").read_bytes()
    )
    assert isinstance(out_of_scope.events[0], IgnoreEvent)


def test_real_audits_as_activity_webhooks() -> None:
    audits = json.loads((_fixtures() / "api-doc-example-GET-audits.json").read_text())["audits"]
    connector = make()
    events = [connector.parse({}, json.dumps({"type": "audit", "audit": a}).encode()).events for a in audits]
    # A description note of feature 1007868956, then the feature itself.
    assert events == [[RefetchRecord("1007868956")], [RefetchRecord("1007868956")]]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("api-doc-example-GET-features.json", "features"),
        ("api-doc-example-GET-epics.json", "epics"),
        ("api-doc-example-GET-ideas.json", "ideas"),
        ("captured-GET-ideas-with-fields-param.demisto-content.json", "ideas"),
        ("api-doc-example-GET-releases-release_id-features.json", "features"),
    ],
)
@respx.mock
async def test_real_list_answers_page_and_parse(name: str, kind: str) -> None:
    body = json.loads((_fixtures() / name).read_text())
    respx.get(f"{API}/products/PRJ1/{kind}").mock(return_value=httpx.Response(200, json=body))
    connector = make(record_types=[kind])
    async with connector:
        if body["pagination"]["total_pages"] > 1:  # the captured answer is page 1 of 101
            with pytest.raises(RepeatedPageToken):
                _ = [p async for p in connector.fetch(None)]
            return
        records = [r for p in [p async for p in connector.fetch(None)] for r in p.records]
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in body[kind])

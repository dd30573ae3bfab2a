"""Linear quirks (against the fake and respx) and the real webhook payloads in ../shared/fixtures/linear."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from graphql import build_schema, parse, validate
from pydantic import ValidationError

from connectors.base import AuthFailed, DeleteRecord, IgnoreEvent, RefetchRecord, UpsertRecord, WebhookRejected
from connectors.cursors import DatetimeCursor
from connectors.linear import LinearConfig, LinearConnector, queries
from connectors.registry import connector_class
from fakes.common import asgi_transport
from fakes.linear import FakeLinear
from tests.conftest import shared_fixtures

SECRET = "lin_wh_test_secret"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def schema_path() -> Path:
    return shared_fixtures("linear") / "schema.graphql"


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def config(**overrides: Any) -> LinearConfig:
    raw: dict[str, Any] = {"tool": "linear", "api_key": "lin_api_fake_key", "webhook_secret": SECRET, **overrides}
    return LinearConfig.model_validate({k: v for k, v in raw.items() if v is not None})


def against(fake: FakeLinear, sleeps: Sleeps | None = None, **overrides: Any) -> LinearConnector:
    return LinearConnector(
        "acme-linear", config(base_url=fake.base_url, **overrides), transport=asgi_transport(fake.app), sleep=sleeps
    )


def signed(
    payload: dict[str, Any], *, secret: str = SECRET, delivery: str | None = "d-1"
) -> tuple[dict[str, str], bytes]:
    body = orjson.dumps(payload)
    headers = {"Linear-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if delivery:
        headers["Linear-Delivery"] = delivery
    return headers, body


def hook(clock: float = NOW, **overrides: Any) -> LinearConnector:
    return LinearConnector("acme-linear", config(**overrides), clock=lambda: clock)


# ---------------------------------------------------------------- config and auth


def test_registered_under_the_entry_point() -> None:
    assert connector_class("linear") is LinearConnector


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"api_key": None}, "exactly one way"),
        ({"access_token": "tok"}, "exactly one way"),
        ({"teams": ["eng"]}, "not Linear team keys"),
        ({"page_size": 500}, "page_size"),
    ],
)
def test_config_errors_are_clear(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**overrides)


def test_defaults_and_secrets() -> None:
    cfg = config(base_url="https://api.linear.app/graphql")
    assert cfg.base_url == "https://api.linear.app"
    assert "lin_api_fake_key" not in repr(cfg)
    assert SECRET not in repr(cfg)


@respx.mock
async def test_api_key_is_sent_bare_and_oauth_token_with_bearer() -> None:
    route = respx.post("https://api.linear.app/graphql").mock(
        return_value=httpx.Response(200, json={"data": {"issues": {"nodes": [], "pageInfo": {"hasNextPage": False}}}})
    )
    async with LinearConnector("a", config()) as linear:
        await linear.fetch_one("x")
    async with LinearConnector("b", config(api_key=None, access_token="oauth-xyz")) as linear:
        await linear.fetch_one("x")
    assert [c.request.headers["authorization"] for c in route.calls] == ["lin_api_fake_key", "Bearer oauth-xyz"]


async def test_wrong_key_is_auth_failed() -> None:
    """Linear answers a bad key with HTTP 400 AUTHENTICATION_ERROR, not 401."""
    fake = FakeLinear(5, schema=None)
    async with against(fake, api_key="lin_api_wrong") as linear:
        with pytest.raises(AuthFailed, match="api_key"):
            [page async for page in linear.fetch(None)]
    assert fake.log.total == 1


# ---------------------------------------------------------------- queries vs the published schema


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_every_query_validates_against_linears_schema(name: str, schema_path: Path) -> None:
    schema = build_schema(schema_path.read_text(encoding="utf-8"))
    errors = validate(schema, parse(queries.ALL[name]))
    assert errors == [], [e.message for e in errors]


def test_issue_selection_is_what_the_mapping_documents() -> None:
    spec = (Path(__file__).resolve().parents[1] / "mappings" / "linear.yaml").read_text(encoding="utf-8")
    header = " ".join(line.lstrip("#").strip() for line in spec.splitlines()[3:17])
    assert " ".join(queries.ISSUE_FIELDS.split()) in " ".join(header.split())


@pytest.mark.fixtures
async def test_every_query_the_connector_sends_validates(schema_path: Path) -> None:
    """Run a full, an incremental, a fetch_one and a sweep against the fake, which validates
    every incoming document against the published schema (a 400 would fail the run)."""
    fake = FakeLinear(130, schema=schema_path)
    assert fake.schema is not None
    async with against(fake, teams=["ENG", "DES"]) as linear:
        pages = [page async for page in linear.fetch(None)]
        [page async for page in linear.fetch(pages[-1].cursor)]
        await linear.fetch_one(fake.ids()[0])
        [i async for i in linear.list_ids()]
    assert fake.log.by_status.keys() == {200}
    schema = build_schema(schema_path.read_text(encoding="utf-8"))
    assert {len(validate(schema, parse(q))) for q in fake.queries} == {0}


# ---------------------------------------------------------------- pulling quirks


async def test_newest_first_scan_becomes_ascending_pages_with_scan_time_cursors() -> None:
    fake = FakeLinear(120, schema=None)
    async with against(fake, page_size=40, scan_page_size=50) as linear:
        pages = [page async for page in linear.fetch(None)]
    times = [fake.updated_at(r) for p in pages for r in p.records]
    assert times == sorted(times)
    assert len(times) == 120
    assert fake.log.total == 3 + 3  # three scan pages of 50, three hydrations of 40
    cursors = [DatetimeCursor.parse(p.cursor).updated for p in pages]
    assert cursors == sorted(cursors)


async def test_team_scope_and_archived_issues() -> None:
    fake = FakeLinear(60, schema=None, teams=("ENG", "DES"))
    archived = fake.archive(fake.ids()[4])
    async with against(fake, teams=["ENG"]) as linear:
        ids = [linear.native_id(r) for p in [p async for p in linear.fetch(None)] for r in p.records]
        swept = [i async for i in linear.list_ids()]
    eng = {i for i in fake.ids() if fake.record(i)["team"]["key"] == "ENG"}  # type: ignore[index]
    assert set(ids) == eng == set(swept)
    if archived["team"]["key"] == "ENG":
        assert archived["id"] in ids


async def test_ratelimited_400_waits_for_the_reset_header() -> None:
    fake, sleeps = FakeLinear(10, schema=None), Sleeps()
    fake.rate_limited(2, reset_in=30, kind="complexity")
    async with against(fake, sleeps) as linear:
        records = [r for p in [p async for p in linear.fetch(None)] for r in p.records]
        stats = linear.stats()
    assert len(records) == 10
    assert len(sleeps) == 2
    assert all(25 < s <= 30.5 for s in sleeps)
    assert stats["rate_limit_waits"] == 2


async def test_other_graphql_400_is_not_retried() -> None:
    fake, sleeps = FakeLinear(10, schema=None), Sleeps()
    fake.faults.inject(
        400, body=orjson.dumps({"errors": [{"message": "bad", "extensions": {"code": "INVALID_INPUT"}}]})
    )
    async with against(fake, sleeps) as linear:
        with pytest.raises(Exception, match="400"):
            [p async for p in linear.fetch(None)]
    assert sleeps == []


async def test_remaining_headers_of_a_5xx_do_not_hold_the_retry() -> None:
    from connectors.linear.connector import rate_limit_hint

    far = str(int((NOW + 3600) * 1000))
    ok = httpx.Response(503, headers={"x-ratelimit-requests-remaining": "10", "x-ratelimit-requests-reset": far})
    spent = httpx.Response(429, headers={"x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": far})
    assert rate_limit_hint(ok, NOW) is None
    assert rate_limit_hint(spent, NOW) == pytest.approx(3600)


# ---------------------------------------------------------------- webhooks


def test_signature_and_timestamp_are_checked() -> None:
    payload = {"type": "Issue", "action": "update", "data": {"id": "i-1"}, "webhookTimestamp": int(NOW * 1000)}
    headers, body = signed(payload)
    hook().verify(headers, body)
    with pytest.raises(WebhookRejected, match="does not match"):
        hook().verify(headers, body + b" ")
    with pytest.raises(WebhookRejected, match="missing"):
        hook().verify({}, body)
    with pytest.raises(WebhookRejected, match="61 s"):
        hook(clock=NOW + 61).verify(headers, body)
    hook(clock=NOW - 59).verify(headers, body)  # sender's clock slightly ahead
    stale, stale_body = signed({**payload, "webhookTimestamp": None})
    with pytest.raises(WebhookRejected, match="webhookTimestamp"):
        hook().verify(stale, stale_body)
    with pytest.raises(WebhookRejected, match="webhook_secret"):
        hook(webhook_secret=None).verify(headers, body)


def test_issue_routing_refetch_by_default_upsert_when_configured() -> None:
    data = {"id": "i-1", "team": {"key": "ENG"}, "updatedAt": "2026-01-01T00:00:00.000Z"}
    headers, body = signed({"type": "Issue", "action": "update", "data": data, "webhookTimestamp": 1})
    assert hook().parse(headers, body).events == [RefetchRecord("i-1")]
    assert hook(webhook_upsert=True).parse(headers, body).events == [UpsertRecord(data)]
    (ignored,) = hook(teams=["DES"]).parse(headers, body).events
    assert isinstance(ignored, IgnoreEvent)
    assert "outside" in ignored.reason


def test_delivery_id_is_the_linear_delivery_header_else_a_body_hash() -> None:
    payload = {"type": "Reaction", "action": "create", "data": {}}
    headers, body = signed(payload, delivery="abc")
    assert hook().parse(headers, body).delivery_id == "abc"
    headers, body = signed(payload, delivery=None)
    assert hook().parse(headers, body).delivery_id == "sha256:" + hashlib.sha256(body).hexdigest()


EXPECTED: dict[str, type] = {
    "Issue-create": RefetchRecord,
    "Issue-update": RefetchRecord,
    "Issue-remove": DeleteRecord,
    "Comment": RefetchRecord,
    "IssueLabel": IgnoreEvent,
    "Reaction": IgnoreEvent,
}


@pytest.mark.fixtures
def test_every_real_webhook_verifies_and_routes() -> None:
    """The 2021 deliveries predate webhookTimestamp: a current one is added before signing,
    as Linear sends today."""
    files = sorted(shared_fixtures("linear").glob("webhook-*.json"))
    assert len(files) == len(list(shared_fixtures("linear").iterdir())) - 1  # all but schema.graphql
    for path in files:
        payload = json.loads(path.read_text(encoding="utf-8"))
        now = time.time()
        payload["webhookTimestamp"] = int(now * 1000)
        headers, body = signed(payload, delivery=path.stem)
        linear = hook(clock=now + 1)
        linear.verify(headers, body)
        delivery = linear.parse(headers, body)
        assert delivery.delivery_id == path.stem
        (event,) = delivery.events
        kind = payload["type"] if payload["type"] != "Issue" else f"Issue-{payload['action']}"
        assert isinstance(event, EXPECTED[kind]), path.name
        data = payload["data"]
        if isinstance(event, RefetchRecord):
            assert event.native_id == (data["id"] if payload["type"] == "Issue" else data["issueId"]), path.name
        if isinstance(event, DeleteRecord):
            assert event.native_id == data["id"]
            assert event.at is not None and event.at.isoformat().startswith(data["archivedAt"][:19])
        if isinstance(event, IgnoreEvent):
            assert payload["type"] in event.reason


@pytest.mark.fixtures
def test_real_issue_webhooks_in_upsert_mode_carry_the_data() -> None:
    for path in sorted(shared_fixtures("linear").glob("webhook-*-Issue-update*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        payload["webhookTimestamp"] = int(NOW * 1000)
        headers, body = signed(payload)
        linear = hook(webhook_upsert=True)
        linear.verify(headers, body)
        (event,) = linear.parse(headers, body).events
        assert isinstance(event, UpsertRecord)
        assert linear.native_id(event.record) == payload["data"]["id"]

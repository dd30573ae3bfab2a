"""The webhook edge: what the intake refuses before anything reaches the database, and what it
never stores (secrets), on both backends.

Deliveries come from each tool's fake (`fakes/`), signed the way the tool signs, through the
hub's own HTTP route; the database is then read back whole, table by table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fakes.common import hmac_sha256_hex
from hub.api.app import create_app
from hub.config import parse_config
from hub.db.tables import metadata
from hub.settings import Settings
from hub.store import Store
from hub.webhooks import MAX_DELIVERY_ID_CHARS, MAX_HEADER_VALUE_CHARS, IntakeError
from tests.api_support import assert_problem
from tests.conformance.cases import CASES, ConformanceCase

SECRET = "s3cret-never-stored-7f1e"
AHA_HEADER = "X-Opshub-Hook-Token"

WEBHOOK_CASES = [c for c in CASES if c.connector.supports_webhooks]


def _source_config(case: ConformanceCase, **overrides: Any) -> dict[str, Any]:
    fake = case.fake(12)
    raw = {**case.config(fake), "webhook_secret": SECRET, **overrides}
    if "webhook_signing_token" in raw:  # GitLab: the signing token is a secret too
        raw["webhook_signing_token"] = SECRET
    return raw


@contextmanager
def hub_client(store: Store, sources: dict[str, dict[str, Any]]) -> Iterator[TestClient]:
    config = parse_config({"sources": sources})
    app = create_app(store, Settings(background_tasks=False), config=config)
    with TestClient(app) as client:
        yield client


def database_text(store: Store) -> str:
    """Every value of every table as text (bytes decoded), so a search sees all stored data."""
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        parts.append(bytes(value).decode("utf-8", "replace"))
                    else:
                        parts.append(str(value))
    return "\n".join(parts)


def _delivery(case: ConformanceCase, *, custom_aha_header: bool) -> tuple[dict[str, str], bytes]:
    fake = case.fake(12)
    headers, body = fake.webhook("upsert", fake.ids()[3], secret=SECRET)
    if custom_aha_header:  # the deployment's proxy puts the bare secret in a header of its choosing
        headers.pop("Authorization")
        headers[AHA_HEADER] = SECRET
    return headers, body


@pytest.mark.parametrize(
    ("case", "custom_aha_header"),
    [pytest.param(c, False, id=c.id) for c in WEBHOOK_CASES]
    + [pytest.param(c, True, id="aha-custom-header") for c in WEBHOOK_CASES if c.id == "aha"],
)
def test_a_signed_delivery_leaves_no_secret_value_in_the_database(
    store: Store, case: ConformanceCase, custom_aha_header: bool
) -> None:
    overrides = {"webhook_header": AHA_HEADER} if custom_aha_header else {}
    source = f"src-{case.id}"
    headers, body = _delivery(case, custom_aha_header=custom_aha_header)
    with hub_client(store, {source: _source_config(case, **overrides)}) as client:
        response = client.post(f"/webhooks/{source}", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["duplicate"] is False

    stored = database_text(store)
    assert body.decode() in stored  # the delivery is there ...
    # ... and neither the secret nor anything derived from it (signatures): every header
    # value that contains the secret or an HMAC keyed with it.
    derived = {v for v in headers.values() if SECRET in v or hmac_sha256_hex(SECRET, body) in v}
    derived.add(SECRET)
    if case.id == "gitlab":  # Standard Webhooks signature: base64, not hex
        derived |= {v for k, v in headers.items() if k.lower() == "webhook-signature"}
    leaked = sorted(v for v in derived if v in stored)
    assert not leaked, f"{case.id}: secret values stored: {leaked}"
    assert "application/json" in stored  # ordinary headers are still kept


def _github(store: Store) -> tuple[dict[str, dict[str, Any]], ConformanceCase]:
    case = next(c for c in CASES if c.id == "github")
    return {"gh": _source_config(case)}, case


def _signed_github(body: bytes, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(SECRET, body),
        **extra,
    }


def test_a_signed_body_nested_deeper_than_the_parser_allows_is_a_400(store: Store) -> None:
    sources, _ = _github(store)
    depth = 5000
    body = b'{"action": "edited", "issue": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    with hub_client(store, sources) as client:
        response = client.post("/webhooks/gh", content=body, headers=_signed_github(body))
        problem = assert_problem(response, 400)
        assert problem["title"] == "Malformed JSON"
        assert "depth" in problem["detail"]
        # Invalid JSON is still named as such, and nothing was stored.
        broken = b'{"action": '
        assert_problem(client.post("/webhooks/gh", content=broken, headers=_signed_github(broken)), 400)
    assert "edited" not in database_text(store)


def test_a_delivery_id_longer_than_its_column_is_a_400_on_both_backends(store: Store) -> None:
    sources, _ = _github(store)
    body = orjson.dumps({"zen": "hi", "hook_id": 1})
    with hub_client(store, sources) as client:
        too_long = "d" * (MAX_DELIVERY_ID_CHARS + 1)
        headers = _signed_github(body, **{"X-GitHub-Delivery": too_long, "X-GitHub-Event": "ping"})
        problem = assert_problem(client.post("/webhooks/gh", content=body, headers=headers), 400)
        assert str(MAX_DELIVERY_ID_CHARS) in problem["detail"]
        fits = "d" * MAX_DELIVERY_ID_CHARS
        headers = _signed_github(body, **{"X-GitHub-Delivery": fits, "X-GitHub-Event": "ping"})
        assert client.post("/webhooks/gh", content=body, headers=headers).status_code == 202


def test_a_header_value_too_long_is_a_400_before_anything_is_stored(store: Store) -> None:
    sources, _ = _github(store)
    body = orjson.dumps({"zen": "hi", "hook_id": 1})
    with hub_client(store, sources) as client:
        headers = _signed_github(body, **{"X-GitHub-Event": "ping", "X-Padding": "p" * (MAX_HEADER_VALUE_CHARS + 1)})
        problem = assert_problem(client.post("/webhooks/gh", content=body, headers=headers), 400)
        assert "X-Padding".lower() in problem["detail"].lower()
    assert "zen" not in database_text(store)


@pytest.mark.parametrize("where", ["delivery id", "other header"])
def test_a_nul_in_a_delivery_id_or_header_never_reaches_the_database(store: Store, where: str) -> None:
    """Called on the intake itself: HTTP clients refuse to send a NUL in a header, but a
    proxy or an ASGI server may pass one through."""
    sources, _ = _github(store)
    body = orjson.dumps({"zen": "hi", "hook_id": 1})
    extra = {"X-GitHub-Delivery": "d\x00-1"} if where == "delivery id" else {"X-Trace": "a\x00b"}
    headers = {k.lower(): v for k, v in _signed_github(body, **{"X-GitHub-Event": "ping", **extra}).items()}
    with hub_client(store, sources) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        with pytest.raises(IntakeError) as refused:
            runtime.intake.receive("gh", headers, body)
    assert refused.value.status == 400
    assert "NUL" in refused.value.detail
    assert "zen" not in database_text(store)

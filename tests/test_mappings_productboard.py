"""Real Productboard payloads (../shared/fixtures/productboard/) parse, feed the connector's
enrichment and map; expected values are read from the payloads themselves."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import respx

from connectors.productboard import ProductboardConfig, ProductboardConnector
from connectors.productboard.connector import Auxiliary
from hub.schema import LinkType, StatusCategory
from mappings.engine import Mapper, load_spec
from tests.conftest import shared_fixtures

BASE = "https://api.productboard.com"
CAPTURE = "GET-features-id-200.captured-2025-07-via-mcp-test-report.json"
FIELDS = "openapi-example-GET-hierarchy-entities-custom-fields-200.json"
VALUES = "openapi-example-GET-hierarchy-entities-custom-fields-values-200.json"
ASSIGNMENTS = "openapi-example-GET-feature-release-assignments-200.json"
OPENAPI = "openapi-public-api-v1.json"


def _load(name: str) -> Any:
    return json.loads((shared_fixtures("productboard") / name).read_text())


def _mapper() -> Mapper:
    return Mapper(load_spec("productboard"), {"source": "pb", "tool": "productboard", "base_url": BASE})


def _connector(**overrides: Any) -> ProductboardConnector:
    config = ProductboardConfig.model_validate({"tool": "productboard", "token": "tok", **overrides})
    return ProductboardConnector("pb", config)


def test_every_fixture_is_covered() -> None:
    names = {p.name for p in Path(shared_fixtures("productboard")).iterdir() if p.is_file()}
    assert names == {CAPTURE, FIELDS, VALUES, ASSIGNMENTS, OPENAPI}, "a new fixture needs a test here"
    assert _load(OPENAPI)["openapi"].startswith("3.")


def test_captured_feature_maps_to_values_from_the_payload() -> None:
    feature = _load(CAPTURE)["data"]
    record = _connector().enrich(feature, Auxiliary())
    item = _mapper().map(record)
    assert item.native_id == feature["id"]
    assert item.title == feature["name"]
    assert item.kind.value == "feature" and item.kind_raw == "feature"
    assert item.url == feature["links"]["html"]
    assert item.status.name == "In progress" and item.status.category is StatusCategory.in_progress
    assert item.description == "Create a voice-activated AI assistant..."
    assert [a.email for a in item.assignees] == [feature["owner"]["email"]]
    assert item.start_on == date(2025, 7, 1) and item.due_on == date(2025, 8, 31)
    assert item.updated_at == datetime(2025, 7, 14, 19, 47, 21, 897800, tzinfo=UTC)
    assert item.created_at == datetime(2025, 7, 2, 5, 48, 4, 663158, tzinfo=UTC)
    assert item.parent_id is None  # the parent is a product: not an item
    assert item.container is not None and item.container.id == feature["parent"]["product"]["id"]
    assert item.rice is None and item.links == [] and item.release is None


@respx.mock
@pytest.mark.anyio
async def test_openapi_examples_feed_the_enrichment(anyio_backend: str) -> None:
    capture = _load(CAPTURE)["data"]
    values, fields, assignments = _load(VALUES), _load(FIELDS), _load(ASSIGNMENTS)
    valued = values["data"][0]["hierarchyEntity"]["id"]
    assigned = assignments["data"][0]["feature"]["id"]
    # The capture, plus two copies carrying the ids the examples refer to.
    features = [capture, {**capture, "id": valued}, {**capture, "id": assigned}]
    empty = {"data": [], "links": {"next": None}}
    # The examples' links.next point at further pages (some on api.productboard.info): they are
    # followed on the configured host, where they end.
    for path in (
        "feature-release-assignments",
        "hierarchy-entities/custom-fields",
        "hierarchy-entities/custom-fields-values",
    ):
        respx.get(f"{BASE}/{path}", params={"pageLimit": "100"}).respond(json=empty)
    respx.get(f"{BASE}/feature-release-assignments").respond(json=assignments)
    respx.get(f"{BASE}/hierarchy-entities/custom-fields").respond(json=fields)
    respx.get(f"{BASE}/hierarchy-entities/custom-fields-values").respond(json=values)
    respx.get(f"{BASE}/features").respond(json={"data": features, "links": {"next": None}})
    for path in ("feature-statuses", "components", "products", "releases", "jira-integrations"):
        respx.get(f"{BASE}/{path}").respond(json=empty)
    async with _connector(
        custom_field_types=["text", "custom-description", "number", "dropdown", "member"]
    ) as connector:
        records = {r["id"]: r for page in [p async for p in connector.fetch(None)] for r in page.records}
    assert set(records) == {f["id"] for f in features}
    mapper = _mapper()
    items = {native_id: mapper.map(record) for native_id, record in records.items()}

    # Custom field values: names from the custom-fields listing, plain values; the component's
    # value (same entity id in the example) is not joined onto the feature.
    by_id = {f["id"]: f["name"] for f in fields["data"]}
    got = items[valued].custom["fields"]
    feature_values = [v for v in values["data"] if v["hierarchyEntity"]["type"] == "feature"]
    for value in feature_values:
        name = by_id.get(value["customField"]["id"], value["customField"]["id"])
        assert name in got
    assert "Good" in got.values()  # dropdown -> its label
    assert "member.email@example.com" in got.values()  # member -> email
    assert 0.1 not in got.values()  # the component's number value
    # Release assignment -> release (the release listing is empty here: id only).
    release = items[assigned].release
    assert release is not None and release.id == assignments["data"][0]["release"]["id"]
    assert items[capture["id"]].release is None and items[capture["id"]].custom.get("fields") is None


def test_jira_connection_shape_from_the_openapi_becomes_an_implemented_by_link() -> None:
    spec = _load(OPENAPI)["components"]["schemas"]["JiraIntegrationConnectionResponse"]
    key = spec["properties"]["connection"]["properties"]["issueKey"]["example"]
    issue_id = spec["properties"]["connection"]["properties"]["issueId"]["example"]
    feature = _load(CAPTURE)["data"]
    aux = Auxiliary(jira={feature["id"]: [{"integration_id": "i", "issueKey": key, "issueId": issue_id}]})
    plain = _mapper().map(_connector().enrich(feature, aux))
    assert [(link.type, link.url) for link in plain.links] == [(LinkType.implemented_by, f"jira:{key}")]
    sited = _mapper().map(_connector(jira_base_url="https://acme.atlassian.net").enrich(feature, aux))
    assert [link.url for link in sited.links] == [f"https://acme.atlassian.net/browse/{key}"]
    assert sited.custom["jira_keys"] == [key]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

"""Redmine quirks (respx-mocked) and the real payloads in ../shared/fixtures/redmine.

The paging itself is exercised against a real server in tests/test_redmine_e2e.py and
against the fake in the conformance suite; these tests pin the quirks down one by one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.base import AuthFailed, ConnectorError, WebhookRejected
from connectors.cursors import DatetimeCursor
from connectors.redmine import RedmineConfig, RedmineConnector
from connectors.redmine.connector import redmine_time
from tests.conftest import shared_fixtures

BASE = "https://redmine.example.org"
ISSUES = f"{BASE}/issues.json"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def connector(**overrides: Any) -> RedmineConnector:
    raw: dict[str, Any] = {"tool": "redmine", "base_url": BASE, "api_key": "k3y", **overrides}
    return RedmineConnector("legacy", RedmineConfig.model_validate(raw))


def mock_user() -> respx.Route:
    return respx.get(f"{BASE}/users/current.json").mock(return_value=httpx.Response(200, json={"user": {"id": 1}}))


def issue(native_id: int, updated: str) -> dict[str, Any]:
    return {"id": native_id, "subject": f"Issue {native_id}", "updated_on": updated}


def load(name: str) -> Any:
    return json.loads((shared_fixtures("redmine") / name).read_text(encoding="utf-8"))


def test_registered_and_pull_only() -> None:
    from connectors.registry import connector_class

    assert connector_class("redmine") is RedmineConnector
    rm = connector()
    assert rm.supports_webhooks is False
    with pytest.raises(WebhookRejected):
        rm.verify({}, b"{}")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"projects": ["Web Shop"]}, "not Redmine project identifiers"),
        ({"base_url": "redmine.example.org"}, "base_url"),
        ({"page_size": 500}, "page_size"),
        ({"api_key": None}, "api_key"),
    ],
)
def test_config_errors_are_clear(overrides: dict[str, Any], message: str) -> None:
    raw = {"tool": "redmine", "base_url": BASE, "api_key": "k3y", **overrides}
    with pytest.raises(ValidationError, match=message):
        RedmineConfig.model_validate({k: v for k, v in raw.items() if v is not None})


def test_api_key_never_shows_in_reprs() -> None:
    rm = connector()
    assert "k3y" not in repr(rm.config)
    assert "k3y" not in str(rm.config.model_dump())


@respx.mock
async def test_wrong_key_is_auth_failed_not_an_empty_listing() -> None:
    """Redmine answers /issues.json with a bad key as an anonymous 200; /users/current.json 401s."""
    respx.get(f"{BASE}/users/current.json").mock(return_value=httpx.Response(401))
    listing = respx.get(ISSUES).mock(return_value=httpx.Response(200, json={"issues": [], "total_count": 0}))
    async with connector() as rm:
        with pytest.raises(AuthFailed, match="api_key"):
            [page async for page in rm.fetch(None)]
        with pytest.raises(AuthFailed):
            [i async for i in rm.list_ids()]
    assert not listing.called


@respx.mock
async def test_key_header_filters_and_sort() -> None:
    mock_user()
    respx.get(f"{BASE}/projects/web-shop.json").mock(
        return_value=httpx.Response(200, json={"project": {"id": 7, "identifier": "web-shop"}})
    )
    route = respx.get(ISSUES).mock(return_value=httpx.Response(200, json={"issues": [], "total_count": 0}))
    cursor = DatetimeCursor(datetime(2026, 3, 1, 12, 0, 30, 500000, tzinfo=UTC), "9").serialize()
    async with connector(projects=["web-shop"], overlap="30s") as rm:
        assert [page async for page in rm.fetch(cursor)] == []
    request = route.calls.last.request
    assert request.headers["x-redmine-api-key"] == "k3y"
    params = request.url.params
    assert params.get_list("f[]") == ["status_id", "project_id", "updated_on"]
    assert params["op[status_id]"] == "*"
    assert params.get_list("v[project_id][]") == ["7"]
    assert params["op[updated_on]"] == ">="
    assert params.get_list("v[updated_on][]") == ["2026-03-01T12:00:00Z"]  # cursor - overlap, whole seconds
    assert params["sort"] == "updated_on,id"


@respx.mock
async def test_unknown_project_is_a_clear_error() -> None:
    mock_user()
    respx.get(f"{BASE}/projects/gone.json").mock(return_value=httpx.Response(404))
    async with connector(projects=["gone"]) as rm:
        with pytest.raises(ConnectorError, match="'gone' does not exist"):
            [page async for page in rm.fetch(None)]


@respx.mock
async def test_next_page_is_a_time_window_not_an_offset() -> None:
    """Page 2 asks `updated_on >= <second of the last row>` from offset 0 and drops the rows
    already read; the offset only grows inside one second."""
    mock_user()
    pages = [
        {"issues": [issue(1, "2026-01-01T10:00:00Z"), issue(2, "2026-01-01T10:00:05Z")], "total_count": 5},
        {"issues": [issue(2, "2026-01-01T10:00:05Z"), issue(3, "2026-01-01T10:00:05Z")], "total_count": 4},
        {"issues": [issue(4, "2026-01-01T10:00:05Z"), issue(5, "2026-01-01T10:00:09Z")], "total_count": 4},
    ]
    route = respx.get(ISSUES).mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    async with connector(page_size=2) as rm:
        got = [page async for page in rm.fetch(None)]
    assert [[r["id"] for r in p.records] for p in got] == [[1, 2], [3], [4, 5]]
    sent = [(c.request.url.params.get_list("v[updated_on][]"), c.request.url.params["offset"]) for c in route.calls]
    assert sent == [([], "0"), (["2026-01-01T10:00:05Z"], "0"), (["2026-01-01T10:00:05Z"], "2")]
    assert DatetimeCursor.parse(got[-1].cursor).last_id == "5"


@respx.mock
async def test_list_ids_is_a_keyset_on_the_id() -> None:
    mock_user()
    route = respx.get(ISSUES).mock(
        side_effect=[
            httpx.Response(200, json={"issues": [issue(3, "x"), issue(8, "x")], "total_count": 3}),
            httpx.Response(200, json={"issues": [issue(12, "x")], "total_count": 1}),
        ]
    )
    async with connector(page_size=2) as rm:
        assert [i async for i in rm.list_ids()] == ["3", "8", "12"]
    assert [c.request.url.params.get_list("v[issue_id][]") for c in route.calls] == [["1"], ["9"]]
    assert all(c.request.url.params["sort"] == "id" for c in route.calls)


@respx.mock
async def test_fetch_one_404_is_none_and_other_projects_are_out_of_scope() -> None:
    mock_user()
    respx.get(f"{BASE}/projects/web-shop.json").mock(return_value=httpx.Response(200, json={"project": {"id": 7}}))
    respx.get(f"{BASE}/issues/1.json").mock(return_value=httpx.Response(404))
    respx.get(f"{BASE}/issues/2.json").mock(
        return_value=httpx.Response(200, json={"issue": {"id": 2, "subject": "x", "project": {"id": 8}}})
    )
    async with connector(projects=["web-shop"]) as rm:
        assert await rm.fetch_one("1") is None
        assert await rm.fetch_one("2") is None


def test_redmine_times_both_eras() -> None:
    assert redmine_time("2011/01/24 13:59:25 -0800") == datetime(2011, 1, 24, 21, 59, 25, tzinfo=UTC)
    assert redmine_time("2026-11-21T18:00:00Z") == datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
    assert redmine_time("garbage") is None
    assert redmine_time(None) is None


# ---------------------------------------------------------------- real payloads


@pytest.mark.fixtures
@respx.mock
async def test_real_1x_issue_list_parses_and_pages() -> None:
    """A 1.1-era `/issues.json` page (1.x times; 26 issues although limit=25) then an empty page."""
    data = load("GET-issues.json.redmine-1.1-era.taskadapter.json")
    mock_user()
    route = respx.get(ISSUES).mock(
        side_effect=[httpx.Response(200, json=data), httpx.Response(200, json={"issues": [], "total_count": 0})]
    )
    async with connector(page_size=25) as rm:
        pages = [page async for page in rm.fetch(None)]
    records = [r for p in pages for r in p.records]
    assert [r["id"] for r in records] == [i["id"] for i in data["issues"]]
    newest = max(redmine_time(i["updated_on"]) for i in data["issues"])  # type: ignore[type-var]
    assert DatetimeCursor.parse(pages[-1].cursor).updated == newest
    assert route.call_count == 2  # total_count 36 > 26 read: asked once more, got nothing, stopped


@pytest.mark.fixtures
@respx.mock
@pytest.mark.parametrize(
    "name",
    [
        "GET-issues-id.json.with-assignee.redmine-1.x.taskadapter.json",
        "POST-issues.json.201-response.aha-services-2014.json",
        "POST-issues.json.201-response-with-fixed_version.aha-services-2014.json",
    ],
)
async def test_real_single_issue_bodies_are_read_by_fetch_one(name: str) -> None:
    data = load(name)
    expected = data.get("issue", data)
    mock_user()
    respx.get(f"{BASE}/issues/{expected['id']}.json").mock(return_value=httpx.Response(200, json=data))
    async with connector() as rm:
        got = await rm.fetch_one(str(expected["id"]))
    assert got == expected
    assert rm.native_id(got) == str(expected["id"])


@pytest.mark.fixtures
@respx.mock
async def test_real_project_body_resolves_the_scope() -> None:
    data = load("GET-projects-id.json.with-custom-field.redmine-1.x.taskadapter.json")
    mock_user()
    respx.get(f"{BASE}/projects/test.json").mock(return_value=httpx.Response(200, json=data))
    async with connector(projects=["test"]) as rm:
        assert await rm.project_ids() == [data["project"]["id"]]


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("GET-custom_fields.json.redmine-2.3.taskadapter.json", "custom_fields"),
        ("GET-issue_statuses.json.taskadapter.json", "statuses"),
        ("GET-projects.json.page1-limit2.aha-services-2014.json", "projects"),
        ("GET-projects.json.page2-limit2.aha-services-2014.json", "projects"),
        ("GET-projects.json.redmine-1.1-era.taskadapter.json", "projects"),
    ],
)
def test_catalog_payloads_are_deliberately_not_requested(name: str, key: str) -> None:
    """Catalogs the connector never asks for: issues carry their own `custom_fields` and
    `status` (the mapping reads them by name), and projects are resolved one by one from the
    configured identifiers. The payloads are still checked to be the shapes described."""
    data = load(name)
    assert isinstance(data[key], list)
    assert all(isinstance(entry, dict) and "id" in entry and "name" in entry for entry in data[key])

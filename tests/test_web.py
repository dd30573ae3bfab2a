"""The dashboard through TestClient: sign-in, sessions, CSRF, scopes, and each page's figures
against the API's answers for the same filters, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from hub.api import create_app
from hub.config import HubConfig
from hub.db.engine import write_transaction
from hub.db.tables import web_sessions
from hub.settings import Settings
from hub.store import Store
from hub.store.items import utcnow
from hub.store.keys import Scope
from hub.store.runs import RunStore
from hub.web.sessions import COOKIE_NAME, SIGNIN_COOKIE_NAME, WebSessionStore
from tests.factories import make_item
from tests.web_dataset import GH, JIRA, LINEAR, PB, DashboardDataset, seed_dashboard_dataset, sources_config
from tests.web_support import api_get, csrf_token, parse, post_signin, sign_in, signin_nonce

PAGES = ["/", "/roadmap", "/priorities", "/flow", "/quality", "/items", f"/items/{JIRA}:10001"]


@contextmanager
def web_client(store: Store, base_url: str = "http://testserver", **settings: Any) -> Iterator[TestClient]:
    app = create_app(
        store=store,
        settings=Settings(database_url="sqlite://", background_tasks=False, **settings),
        config=sources_config(),
    )
    with TestClient(app, base_url=base_url) as client:
        yield client


@pytest.fixture
def dataset(store: Store) -> DashboardDataset:
    return seed_dashboard_dataset(store)


# ---------------------------------------------------------------------------- access


def _set_cookie(response: Any, name: str) -> str:
    """The one Set-Cookie header that sets `name` (sign-in sets the session and clears the nonce)."""
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


@pytest.mark.parametrize("path", [*PAGES, "/flow?forecast=x", "/items?kind=bug"])
def test_signed_out_visitor_is_redirected_to_sign_in(sqlite_store: Store, path: str) -> None:
    with web_client(sqlite_store) as client:
        response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?next=%2F")
    assert client.get("/signin").status_code == 200


def test_sign_in_sets_a_strict_http_only_expiring_cookie_and_keeps_the_key_out_of_urls(store: Store) -> None:
    _, token = store.keys.create(Scope.read)
    with web_client(store, web_session_minutes=90) as client:
        response = post_signin(client, token, "/roadmap")
        assert response.status_code == 303
        assert response.headers["location"] == "/roadmap"
        cookie = _set_cookie(response, COOKIE_NAME)
        assert token not in cookie
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in flags
        assert "samesite=strict" in flags
        assert "max-age=5400" in flags
        assert "secure" not in flags  # plain http: a Secure cookie would never come back
        assert client.get("/roadmap").status_code == 200
        assert token not in client.get("/").text


@pytest.mark.parametrize(
    ("base_url", "mode", "secure"),
    [
        ("https://hub.example", "auto", True),
        ("http://testserver", "always", True),
        ("https://hub.example", "never", False),
    ],
)
def test_cookie_secure_flag_follows_the_setting(sqlite_store: Store, base_url: str, mode: str, secure: bool) -> None:
    _, token = sqlite_store.keys.create(Scope.read)
    with web_client(sqlite_store, base_url=base_url, web_cookie_secure=mode) as client:
        response = post_signin(client, token)
    flags = [part.strip().lower() for part in _set_cookie(response, COOKIE_NAME).split(";")]
    assert ("secure" in flags) is secure


def test_a_wrong_key_gets_no_session(store: Store) -> None:
    _, token = store.keys.create(Scope.read)
    with web_client(store) as client:
        response = post_signin(client, token + "x")
        assert response.status_code == 401
        assert not any(h.startswith(COOKIE_NAME) for h in response.headers.get_list("set-cookie"))
        assert "unknown or revoked" in response.text
        assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_follows_only_local_next_paths(sqlite_store: Store) -> None:
    _, token = sqlite_store.keys.create(Scope.read)
    with web_client(sqlite_store) as client:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            client.cookies.clear()  # signed out again: GET /signin would redirect a live session
            response = post_signin(client, token, target)
            assert response.headers["location"] == "/"


def test_a_forged_sign_in_post_is_refused(sqlite_store: Store) -> None:
    """Login CSRF: another site's form posting its own key gets no session; only a form from
    our sign-in page (its nonce equal to the signed cookie's) signs in."""
    _, token = sqlite_store.keys.create(Scope.read)
    with web_client(sqlite_store) as client:
        # A cross-site form: the SameSite=Strict nonce cookie is not sent, the nonce is unknown.
        forged = client.post("/signin", data={"api_key": token}, follow_redirects=False)
        assert forged.status_code == 403
        assert COOKIE_NAME not in forged.headers.get("set-cookie", "")
        assert "expired or was not sent from this site" in forged.text
        # The attacker's own valid nonce, but the victim's browser holds another cookie.
        with web_client(sqlite_store) as attacker:
            theirs = signin_nonce(attacker)
        signin_nonce(client)
        response = client.post("/signin", data={"api_key": token, "signin_nonce": theirs}, follow_redirects=False)
        assert response.status_code == 403
        # A cookie the attacker planted with a nonce of their choosing lacks our signature.
        client.cookies.clear()
        client.cookies.set(SIGNIN_COOKIE_NAME, "chosen.bad-signature", path="/signin")
        response = client.post("/signin", data={"api_key": token, "signin_nonce": "chosen"}, follow_redirects=False)
        assert response.status_code == 403
        assert client.get("/", follow_redirects=False).status_code == 303  # never signed in
        # From our own form it works, and the nonce cookie is used up.
        response = post_signin(client, token)
        assert response.status_code == 303
        assert _set_cookie(response, SIGNIN_COOKIE_NAME).startswith(f'{SIGNIN_COOKIE_NAME}="";')
        assert client.get("/", follow_redirects=False).status_code == 200


def test_the_sign_in_nonce_cookie_is_http_only_strict_and_bound_to_the_form(sqlite_store: Store) -> None:
    with web_client(sqlite_store) as client:
        response = client.get("/signin")
    cookie = _set_cookie(response, SIGNIN_COOKIE_NAME)
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert {"httponly", "samesite=strict", "path=/signin"} <= set(flags)
    nonce = parse(response.text).find("input", name="signin_nonce").attrs["value"]
    assert cookie.split(";")[0].split("=", 1)[1].strip('"').startswith(nonce + ".")


def test_logout_needs_the_csrf_token_and_ends_the_session(store: Store) -> None:
    with web_client(store) as client:
        sign_in(client, store)
        token = csrf_token(client)
        for data in ({}, {"csrf_token": "forged"}):
            response = client.post("/signout", data=data, follow_redirects=False)
            assert response.status_code == 403
            assert client.get("/", follow_redirects=False).status_code == 200  # still signed in
        foreign = client.post(
            "/signout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}, follow_redirects=False
        )
        assert foreign.status_code == 403
        cookie = client.cookies[COOKIE_NAME]
        response = client.post(
            "/signout", data={"csrf_token": token}, headers={"Origin": "http://testserver"}, follow_redirects=False
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/signin"
        assert client.get("/", follow_redirects=False).status_code == 303
        # The old cookie, replayed, is dead too: the session row is gone.
        client.cookies.set(COOKIE_NAME, cookie)
        assert client.get("/", follow_redirects=False).status_code == 303


def test_a_csrf_token_of_another_session_is_refused(sqlite_store: Store) -> None:
    with web_client(sqlite_store) as first, web_client(sqlite_store) as second:
        sign_in(first, sqlite_store, Scope.admin)
        sign_in(second, sqlite_store, Scope.admin)
        response = first.post(f"/sources/{GH}/sync", data={"csrf_token": csrf_token(second)}, follow_redirects=False)
        assert response.status_code == 403
        assert RunStore(sqlite_store.engine).list(GH) == []


def test_a_read_key_cannot_start_a_sync(store: Store) -> None:
    with web_client(store) as client:
        sign_in(client, store, Scope.read)
        page = parse(client.get("/").text)
        assert "admin key needed" in page.find("tr", data_source=JIRA).text()
        response = client.post(f"/sources/{JIRA}/sync", data={"csrf_token": csrf_token(client)}, follow_redirects=False)
        assert response.status_code == 403
        assert "admin key" in parse(response.text).find("main").text()
    assert RunStore(store.engine).list(JIRA) == []


def test_an_admin_key_starts_a_sync_from_the_overview(sqlite_store: Store) -> None:
    with web_client(sqlite_store) as client:
        sign_in(client, sqlite_store, Scope.admin)
        response = client.post(f"/sources/{JIRA}/sync", data={"csrf_token": csrf_token(client)}, follow_redirects=False)
        assert response.status_code == 303
        run_id = response.headers["location"].rsplit("%3A", 1)[-1].rsplit(":", 1)[-1]
        assert [run.id for run in RunStore(sqlite_store.engine).list(JIRA)] == [run_id]
        missing = client.post("/sources/nope/sync", data={"csrf_token": csrf_token(client)}, follow_redirects=False)
        assert missing.status_code == 404


def test_revoking_the_key_ends_its_sessions(store: Store) -> None:
    with web_client(store) as client:
        sign_in(client, store)
        (key,) = [k for k in store.keys.list() if k.name == "web-read"]
        assert client.get("/", follow_redirects=False).status_code == 200
        store.keys.revoke(key.id)
        assert client.get("/", follow_redirects=False).status_code == 303


def test_an_expired_session_is_sent_to_sign_in(store: Store) -> None:
    with web_client(store) as client:
        sign_in(client, store)
        assert client.get("/", follow_redirects=False).status_code == 200
        with write_transaction(store.engine) as conn:
            conn.execute(update(web_sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
        assert client.get("/", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_is_refused_before_any_lookup(sqlite_store: Store) -> None:
    with web_client(sqlite_store) as client:
        sign_in(client, sqlite_store)
        token, _, signature = client.cookies[COOKIE_NAME].partition(".")
        client.cookies.set(COOKIE_NAME, f"{token}.{signature[:-2]}AA")
        assert client.get("/", follow_redirects=False).status_code == 303


def test_processes_on_one_database_share_the_generated_signing_key(sqlite_store: Store) -> None:
    (key, _) = sqlite_store.keys.create(Scope.read)
    one, two = WebSessionStore(sqlite_store.engine), WebSessionStore(sqlite_store.engine)
    cookie = one.create(key, timedelta(minutes=5))
    assert two.resolve(cookie) is not None
    assert WebSessionStore(sqlite_store.engine, secret="configured elsewhere").resolve(cookie) is None


# ---------------------------------------------------------------------------- pages and figures


def _all_items(client: TestClient, token: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api_get(client, token, "/v1/items", limit=500, **params, **({"cursor": cursor} if cursor else {}))
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_every_page_renders_for_a_read_key(store: Store, dataset: DashboardDataset) -> None:
    with web_client(store) as client:
        sign_in(client, store)
        for path in [*PAGES, "/docs", "/redoc"]:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            assert response.headers["content-type"].startswith("text/html")


def test_overview_counts_equal_the_api(store: Store, dataset: DashboardDataset) -> None:
    with web_client(store) as client:
        token = sign_in(client, store)
        page = parse(client.get("/").text)
        for source in api_get(client, token, "/v1/sources")["sources"]:
            row = page.find("tr", data_source=source["name"])
            assert int(row.find(data_figure="item_count").text()) == source["item_count"]
        assert "HTTP 401" in page.find("tr", data_source=LINEAR).text()  # the failed run's error
        tools = {d["tool"] for d in _all_items(client, token)}
        assert {r.attrs["data-tool"] for r in page.find_all("tr") if "data-tool" in r.attrs} == tools
        for tool in tools:
            row = page.find("tr", data_tool=tool)
            for category in ("todo", "in_progress", "done"):
                shown = int(row.find("td", data_category=category).text())
                assert shown == len(_all_items(client, token, tool=tool, status_category=category))


def test_roadmap_figures_equal_the_api_and_link_to_the_tree(store: Store, dataset: DashboardDataset) -> None:
    with web_client(store) as client:
        token = sign_in(client, store)
        page = parse(client.get("/roadmap").text)
        answer = api_get(client, token, "/v1/roadmap")
        assert {e["item"]["id"] for e in answer["roadmap"]} == set(dataset.epics) | set(dataset.features)
        for entry in answer["roadmap"]:
            row = page.find("tr", data_item=entry["item"]["id"])
            assert int(row.find(data_figure="delivery_total").text()) == entry["delivery_total"]
            assert f"{round(entry['progress']['by_count'] * 100)} %" in row.find(data_figure="by_count").text()
            assert int(row.find(data_figure="blocked").text().split(":")[0]) == len(entry["blocked"])
        assert int(page.by_id("uncovered-count").text()) == answer["uncovered"]["count"] == len(dataset.uncovered)
        filtered = parse(client.get("/roadmap", params={"source": JIRA}).text)
        assert {
            r.attrs["data-item"] for r in filtered.by_id("roadmap").find_all("tr") if "data-item" in r.attrs
        } == set(dataset.epics)
        assert f"source={JIRA}" in filtered.by_id("applied-filters").text()


def test_item_page_shows_tree_history_links_and_raw_as_the_api(store: Store, dataset: DashboardDataset) -> None:
    epic = dataset.epics[0]
    with web_client(store) as client:
        token = sign_in(client, store)
        page = parse(client.get(f"/items/{epic}").text)
        tree = api_get(client, token, f"/v1/items/{epic}/tree")

        def ids(node: dict[str, Any]) -> set[str]:
            return {node["id"]} | {i for child in node["children"] for i in ids(child)}

        shown = {li.attrs["data-item"] for li in page.by_id("tree").find_all("li")}
        assert shown == ids(tree)
        history = api_get(client, token, f"/v1/items/{dataset.delivery[0]}/history")
        item_page = parse(client.get(f"/items/{dataset.delivery[0]}").text)
        assert len(item_page.by_id("history").find("tbody").find_all("tr")) == len(history["transitions"])
        github = parse(client.get(f"/items/{GH}:acme/web%231").text)  # '#' in an id is URL-encoded
        assert github.by_id("links").find("a").attrs["href"] == f"/items/{dataset.epics[0]}"
        assert client.get("/items/nope:1").status_code == 404


def test_items_page_applies_every_filter_as_the_api_and_pages(store: Store, dataset: DashboardDataset) -> None:
    params = {
        "source": JIRA,
        "kind": ["story", "bug", "task"],
        "status_category": ["in_progress", "done"],
        "label": "api",
    }
    with web_client(store) as client:
        token = sign_in(client, store)
        expected = [d["id"] for d in _all_items(client, token, **params)]
        assert expected
        seen: list[str] = []
        url: str | None = "/items"
        query: dict[str, Any] | None = {**params, "limit": 2}
        while url:
            page = parse(client.get(url, params=query).text)
            seen += [r.attrs["data-item"] for r in page.by_id("items").find_all("tr") if "data-item" in r.attrs]
            nxt = page.find_all("a", id="next-page")
            url, query = (nxt[0].attrs["href"], None) if nxt else (None, None)
        assert seen == expected
        applied = page.by_id("applied-filters").text()
        assert "label=api" in applied
        assert "status_category=done" in applied
        invalid = client.get("/items", params={"kind": "nonsense"})
        assert invalid.status_code == 422
        assert invalid.headers["content-type"].startswith("text/html")  # an error page, not problem+json
        assert "kind" in parse(invalid.text).find("p", role="alert").text()
        assert client.get("/items", params={"cursor": "garbage"}).status_code == 400
        # A GET form sends its empty fields: on a page they mean "no filter", not a 422.
        blank = parse(client.get("/items?source=&tool=&q=&updated_after=&label=api&kind=story&kind=bug&kind=task").text)
        assert [r.attrs["data-item"] for r in blank.by_id("items").find_all("tr") if "data-item" in r.attrs] == [
            d["id"] for d in _all_items(client, token, label="api", kind=["story", "bug", "task"])
        ][:50]
        api_invalid = client.get("/v1/items?source=", headers={"Authorization": f"Bearer {token}"})
        assert api_invalid.status_code == 422
        assert api_invalid.headers["content-type"] == "application/problem+json"


def _form_submission(form: Any) -> list[tuple[str, str]]:
    """What a browser sends for a GET form as rendered (empty fields left out: pages drop them)."""
    sent = []
    for e in form.iter():
        name = e.attrs.get("name")
        if not name:
            continue
        if e.tag == "input" and e.attrs.get("type") == "checkbox":
            if "checked" in e.attrs:
                sent.append((name, e.attrs.get("value", "on")))
        elif e.tag == "input" and e.attrs.get("type") in ("text", "number", "hidden", None):
            sent.append((name, e.attrs.get("value", "")))
        elif e.tag == "select":
            sent += [(name, o.attrs["value"]) for o in e.find_all("option") if "selected" in o.attrs]
    return [(k, v) for k, v in sent if v != ""]


@pytest.mark.parametrize(
    ("path", "form_label", "params"),
    [
        (
            "/items",
            "Item filters",
            [
                ("source", JIRA),
                ("source", LINEAR),
                ("label", "api"),
                ("label", "ui"),
                ("kind", "story"),
                ("kind", "bug"),
                ("container", "WEB"),
                ("container", "ENG"),
                ("assignee", "a@x"),
                ("assignee", "b@x"),
            ],
        ),
        ("/priorities", "Item filters", [("source", JIRA), ("source", GH), ("tool", "jira"), ("tool", "github")]),
        ("/roadmap", "Roadmap filters", [("source", PB), ("source", JIRA), ("release", "R1"), ("release", "R2")]),
        ("/flow", "Flow filters", [("source", JIRA), ("source", LINEAR), ("label", "api"), ("label", "ui")]),
        ("/quality", "Quality filters", [("container", "WEB"), ("container", "ENG"), ("tool", "jira"), ("tool", "x")]),
    ],
)
def test_filter_forms_keep_every_value_of_a_repeated_filter(
    sqlite_store: Store, path: str, form_label: str, params: list[tuple[str, str]]
) -> None:
    """A repeated filter (OR) re-renders all its values, so applying the form again sends them all."""
    with web_client(sqlite_store) as client:
        sign_in(client, sqlite_store)
        page = parse(client.get(path, params=params).text)
        form = page.find("form", aria_label=form_label)
        sent = _form_submission(form)
        for pair in params:
            assert pair in sent, (pair, sent)
        # each value once, and every box labelled (the first by its <label>, the others by aria-label)
        assert len(sent) == len(set(sent))
        extra = [e for e in form.find_all("input") if e.attrs.get("name") == params[0][0]][1:]
        assert extra and all(e.attrs.get("aria-label") for e in extra)


def test_items_page_with_two_values_of_a_text_filter_equals_the_api(store: Store, dataset: DashboardDataset) -> None:
    with web_client(store) as client:
        token = sign_in(client, store)
        params = {"source": [JIRA, LINEAR], "limit": 500}
        expected = [d["id"] for d in _all_items(client, token, source=[JIRA, LINEAR])]
        assert {i.split(":")[0] for i in expected} == {JIRA, LINEAR}
        page = parse(client.get("/items", params=params).text)
        shown = [r.attrs["data-item"] for r in page.by_id("items").find_all("tr") if "data-item" in r.attrs]
        assert shown == expected[:500]
        again = parse(client.get("/items", params=_form_submission(page.find("form", aria_label="Item filters"))).text)
        assert [r.attrs["data-item"] for r in again.by_id("items").find_all("tr") if "data-item" in r.attrs] == shown


def test_priorities_page_equals_the_api(store: Store, dataset: DashboardDataset) -> None:
    with web_client(store) as client:
        token = sign_in(client, store)
        page = parse(client.get("/priorities").text)
        matrix = api_get(client, token, "/v1/insights/priorities")
        for quadrant, found in matrix["quadrants"].items():
            assert int(page.find(data_quadrant=quadrant).find(data_figure="count").text()) == found["count"]
        ranked = api_get(client, token, "/v1/items", sort="-rice_score")["items"]
        rows = [r for r in page.by_id("rice").find_all("tr") if "data-item" in r.attrs]
        assert [r.attrs["data-item"] for r in rows] == [d["id"] for d in ranked]
        assert ranked
        unscored = page.by_id("rice-missing")
        missing = {
            r.attrs["data-item"]: r.find(data_figure="missing").text()
            for r in unscored.find_all("tr")
            if "data-item" in r.attrs
        }
        assert missing[dataset.features[1]] == "confidence"
        assert missing[dataset.features[2]] == "reach, confidence"
        assert dataset.features[0] not in missing  # scored: it is in the ranking
        assert dataset.features[0] in [r.attrs["data-item"] for r in rows]


def test_flow_page_equals_the_api_and_forecasts_a_roadmap_item(store: Store, dataset: DashboardDataset) -> None:
    with web_client(store) as client:
        token = sign_in(client, store)
        for params in ({}, {"source": LINEAR}):
            page = parse(client.get("/flow", params=params).text)
            report = api_get(client, token, "/v1/insights/flow", **params)
            assert int(page.by_id("throughput-total").text()) == report["throughput"]["total"]
            assert int(page.by_id("wip-count").text()) == report["wip"]["count"]
            assert float(page.by_id("cycle-p50").text()) == round(report["cycle_time"]["percentiles"]["p50"], 1)
            bars = page.by_id("throughput").find("tbody").find_all("tr")
            assert [int(r.find("td").text()) for r in bars] == [w["count"] for w in report["throughput"]["weeks"]]
            for chart in ("throughput", "cycle-time", "aging-wip", "cfd"):
                svg = page.by_id(chart).find("svg")
                assert svg.attrs["role"] == "img"
                assert svg.find("title").text()
                assert page.by_id(chart).find("caption").text()
        epic = dataset.epics[0]
        page = parse(client.get("/flow", params={"forecast": epic}).text)
        forecast = api_get(client, token, "/v1/insights/forecast", item=epic)
        for level, day in forecast["dates"].items():
            assert page.by_id("forecast").find("td", data_level=level).text() == day
        assert "No item" in client.get("/flow", params={"forecast": "nope:1"}).text


def test_quality_page_equals_the_api(store: Store, dataset: DashboardDataset) -> None:
    with web_client(store) as client:
        token = sign_in(client, store)
        page = parse(client.get("/quality").text)
        report = api_get(client, token, "/v1/insights/quality")
        for group in report["sources"]:
            assert float(page.find("tr", data_source=group["source"]).find(data_figure="score").text()) == round(
                group["score"], 1
            )
        for finding in report["findings"]:
            block = page.find("details", data_finding=finding["name"])
            assert int(block.find(data_figure="count").text()) == finding["count"]
            assert len(block.find("ul").find_all("li")) == len(finding["items"])


def test_docs_and_redoc_load_their_assets_from_the_hub(sqlite_store: Store) -> None:
    with web_client(sqlite_store) as client:
        for path, asset in (("/docs", "swagger-ui-dist/swagger-ui-bundle.js"), ("/redoc", "redoc/redoc.standalone.js")):
            html = client.get(path).text
            assert f"/static/vendor/{asset}" in html
            assert "cdn." not in html
            assert "fonts.googleapis" not in html
            assert client.get(f"/static/vendor/{asset}").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert not any(p.startswith(("/signin", "/roadmap")) for p in client.get("/openapi.json").json()["paths"])


def test_routes_outside_the_dashboard_keep_their_problem_documents(tmp_path: Path) -> None:
    unmigrated = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}", migrate_schema=False)
    try:
        app = create_app(
            store=unmigrated, settings=Settings(database_url="sqlite://", background_tasks=False), config=HubConfig()
        )
        with TestClient(app) as client:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
    finally:
        unmigrated.close()


def test_text_from_the_tools_is_escaped_on_pages(sqlite_store: Store) -> None:
    hostile = '<script>alert("x")</script>'
    sqlite_store.items.apply([make_item(1, title=hostile, labels=[hostile])])
    with web_client(sqlite_store) as client:
        sign_in(client, sqlite_store)
        for path in ("/items", f"/items/{JIRA}:1", "/quality"):
            html = client.get(path).text
            assert "<script>" not in html, path
        assert "&lt;script&gt;" in client.get("/items").text

"""Limits at the API's edge: bounded repeated filters, queries whose cost does not grow with the
number of values, and a statement timeout on PostgreSQL that answers a problem, not a 500.

Expected items come from the seeded WorkItems (a Python predicate), never from the API.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text

from hub.api.params import MAX_FILTER_VALUES
from hub.settings import Settings
from hub.store import ItemQuery, Store
from hub.store.queries import KEYED_BRANCHES_MAX
from tests.api_support import api_client, assert_problem
from tests.factories import make_item

REPEATED_FILTERS = ("source", "tool", "assignee", "label", "container", "parent_id")


@pytest.fixture
def seeded(store: Store) -> Store:
    """60 items: label `l{i % 7}`, container c{i % 5}/K{i % 5}, assignee p{i % 4}@example.com."""
    store.items.apply(
        [
            make_item(
                i,
                minutes=i,
                labels=[f"l{i % 7}"],
                container={"id": f"c{i % 5}", "key": f"K{i % 5}", "name": f"C{i % 5}"},
                assignees=[{"email": f"p{i % 4}@example.com", "name": f"P{i % 4}", "native_id": f"u{i % 4}"}],
            )
            for i in range(60)
        ]
    )
    return store


def all_pages(store: Store, query: ItemQuery, *, limit: int = 7) -> list[str]:
    """Every item id of `query`, walking the keyset pages."""
    ids: list[str] = []
    cursor = None
    while True:
        docs, cursor = store.queries.list_items(query, limit=limit, cursor=cursor)
        ids += [d["id"] for d in docs]
        if cursor is None:
            return ids


def ids_where(predicate: Any) -> set[str]:
    return {f"acme-jira:{i}" for i in range(60) if predicate(i)}


def test_a_repeated_filter_past_the_bound_is_a_422_stated_in_the_openapi(seeded: Store) -> None:
    with api_client(seeded) as client:
        schema = client.get("/openapi.json").json()
        params = {p["name"]: p for p in schema["paths"]["/v1/items"]["get"]["parameters"]}
        for name in (*REPEATED_FILTERS, "kind", "status_category", "priority_level"):
            array = next(s for s in params[name]["schema"]["anyOf"] if s.get("type") == "array")
            assert array["maxItems"] == MAX_FILTER_VALUES, name
        for name in REPEATED_FILTERS:
            too_many = [(name, f"v{n}") for n in range(MAX_FILTER_VALUES + 1)]
            problem = assert_problem(client.get("/v1/items", params=too_many), 422)
            assert [e["name"] for e in problem["errors"]] == [name]
            at_bound = [(name, f"v{n}") for n in range(MAX_FILTER_VALUES)]
            assert client.get("/v1/items", params=at_bound).status_code == 200, name
        labels = [("label", f"l{n}") for n in range(MAX_FILTER_VALUES)]
        found = {d["id"] for d in client.get("/v1/items", params=[*labels, ("limit", "500")]).json()["items"]}
        assert found == ids_where(lambda _: True)  # l0..l6 are among the 50


@pytest.mark.parametrize("many", [KEYED_BRANCHES_MAX + 1, 600])
def test_many_filter_values_give_the_right_pages_on_both_backends(seeded: Store, many: int) -> None:
    """Behind the API bound, the store still answers any number of values (other callers,
    a bound raised later): SQLite refused more than 500 UNION members before."""
    labels = [f"l{n}" for n in (1, 3)] + [f"absent-{n}" for n in range(many)]
    got = all_pages(seeded, ItemQuery(label=labels))
    assert sorted(got) == sorted(ids_where(lambda i: i % 7 in (1, 3)))  # every item once

    containers = ["c1", "K2"] + [f"absent-{n}" for n in range(many)]
    got = all_pages(seeded, ItemQuery(container=containers))
    assert sorted(got) == sorted(ids_where(lambda i: i % 5 in (1, 2)))

    people = ["p0@example.com"] + [f"nobody-{n}@example.com" for n in range(many)]
    got = all_pages(seeded, ItemQuery(assignee=people, label=labels))
    assert sorted(got) == sorted(ids_where(lambda i: i % 4 == 0 and i % 7 in (1, 3)))


def _selects_per_query(store: Store, query: ItemQuery) -> int:
    """How many SELECT keywords the page statement has (one per UNION member and subquery)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        store.queries.list_items(query, limit=10)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    page = max(seen, key=lambda s: len(re.findall(r"\bSELECT\b", s, re.I)))
    return len(re.findall(r"\bSELECT\b", page, re.I))


@pytest.mark.parametrize("name", ["label", "container"])
def test_query_shape_stops_growing_past_the_keyed_bound(seeded: Store, name: str) -> None:
    """Past KEYED_BRANCHES_MAX values the statement has as many SELECTs for 65 values as for
    5,000: its cost no longer grows by one index walk per value (structure, not timing)."""
    just_past: dict[str, Any] = {name: [f"v{n}" for n in range(KEYED_BRANCHES_MAX + 1)]}
    far_past: dict[str, Any] = {name: [f"v{n}" for n in range(5000)]}
    assert _selects_per_query(seeded, ItemQuery(**just_past)) == _selects_per_query(seeded, ItemQuery(**far_past))


@pytest.fixture
def items_locked(seeded: Store) -> Iterator[None]:
    """Another session holds an exclusive lock on `items` and `item_report_facts` (the
    sources list counts from the facts), so any read of them waits: a read that cannot
    finish, without depending on how fast the machine is."""
    if seeded.engine.dialect.name != "postgresql":
        pytest.skip("statement timeouts are a PostgreSQL setting")
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with seeded.engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE items, item_report_facts IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(30)
    try:
        yield
    finally:
        release.set()
        holder.join()


def test_a_read_past_the_statement_timeout_is_a_503_problem(seeded: Store, items_locked: None) -> None:
    settings = Settings(database_url="sqlite://", api_statement_timeout_ms=200)
    with api_client(seeded, settings=settings) as client:
        for path in ("/v1/items?label=l1", "/v1/items/acme-jira:1", "/v1/sources", "/v1/roadmap"):
            response = client.get(path)
            problem = assert_problem(response, 503)
            assert "200 ms" in problem["detail"], path
            assert response.headers["retry-after"]

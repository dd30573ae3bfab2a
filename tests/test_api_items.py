"""GET /v1/items and /v1/items/{id}: every filter, OR within a filter, sorting, tombstones,
and keyset pages that stay correct while writes happen between them.

Expected results come from a Python oracle over the seeded WorkItems (a predicate per
case), never from the API itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from hub.api.models import ItemPage, ItemPublic
from hub.schema import ItemDeletion, ItemKind, PriorityLevel, StatusCategory, WorkItem
from hub.store import Store
from tests.api_support import api_client, assert_problem
from tests.factories import BASE_TIME, make_item

ALICE = {"email": "alice@example.com", "name": "Alice", "native_id": "u-alice"}
BOB = {"native_id": "u-bob", "name": "Bob"}  # no email: reachable by person id only
TOPICS = ("Login", "Search", "Billing")


@dataclass
class Seeded:
    """What was written, as the oracle sees it."""

    items: dict[str, WorkItem] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def expected(self, keep: Callable[[WorkItem], bool], *, include_deleted: bool = False) -> set[str]:
        return {
            item_id
            for item_id, item in self.items.items()
            if keep(item) and (include_deleted or item_id not in self.deleted)
        }


def _seed_item(i: int) -> WorkItem:
    github = i % 3 == 0
    assignees = [ALICE] if i % 4 == 0 else [BOB] if i % 4 == 1 else []
    if i % 7 == 0:
        assignees = [ALICE, BOB]
    labels = ["alpha"] if i % 2 else ["beta"]
    if i % 5 == 0:
        labels.append("gamma")
    return make_item(
        i,
        # Pairs of items share an updated_at, so the id tie-break of the keyset is exercised.
        minutes=i // 2,
        source="acme-gh" if github else "acme-jira",
        tool="github" if github else "jira",
        key=f"org/repo#{i}" if github else f"PROJ-{i}",
        title=f"{TOPICS[i % 3]} work {i}" + (" 100% done" if i == 8 else ""),
        kind=list(ItemKind)[i % len(ItemKind)],
        status={"category": list(StatusCategory)[i % len(StatusCategory)], "name": "s"},
        priority={"level": list(PriorityLevel)[i % len(PriorityLevel)]},
        assignees=assignees,
        labels=labels,
        container={"id": f"c{i % 3}", "key": f"K{i % 3}"},
        parent_id=f"acme-jira:{1 + i % 2}" if i > 2 else None,
        raw={"native": i},
    )


def seed(store: Store, count: int = 30) -> Seeded:
    seeded = Seeded()
    batch = [_seed_item(i) for i in range(count)]
    store.items.apply(batch)
    seeded.items = {item.id: item for item in batch}
    gone = [item for i, item in enumerate(batch) if i in (4, 11)]
    store.items.apply([ItemDeletion(source=item.source, native_id=item.native_id) for item in gone])
    seeded.deleted = {item.id for item in gone}
    return seeded


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with api_client(store) as c:
        yield c


def fetch_all(client: TestClient, params: dict[str, Any], limit: int = 4) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; each page must validate as ItemPage."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        response = client.get("/v1/items", params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = ItemPage.model_validate(response.json())
        assert len(page.items) <= limit
        found.extend(response.json()["items"])
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("pagination did not end")


def _ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


def _person_id(client: TestClient, email: str) -> str:
    people = client.get("/v1/people", params={"email": email}).json()["people"]
    assert len(people) == 1
    return str(people[0]["id"])


def _has_assignee(item: WorkItem, who: dict[str, str]) -> bool:
    return any(a.native_id == who["native_id"] for a in item.assignees)


# (query params, oracle predicate): one case or more per filter; lists mean repeated params (OR).
FILTER_CASES: list[tuple[dict[str, Any], Callable[[WorkItem], bool]]] = [
    ({"source": "acme-gh"}, lambda it: it.source == "acme-gh"),
    ({"source": ["acme-gh", "acme-jira"]}, lambda it: True),
    ({"source": "nope"}, lambda it: False),
    ({"tool": "jira"}, lambda it: it.tool == "jira"),
    ({"kind": "bug"}, lambda it: it.kind is ItemKind.bug),
    ({"kind": ["bug", "epic", "idea"]}, lambda it: it.kind.value in {"bug", "epic", "idea"}),
    ({"status_category": "done"}, lambda it: it.status.category is StatusCategory.done),
    ({"status_category": ["todo", "in_progress"]}, lambda it: it.status.category.value in {"todo", "in_progress"}),
    ({"priority_level": "urgent"}, lambda it: it.priority.level is PriorityLevel.urgent),
    ({"priority_level": ["low", "none"]}, lambda it: it.priority.level.value in {"low", "none"}),
    ({"assignee": "alice@example.com"}, lambda it: _has_assignee(it, ALICE)),
    ({"assignee": "ALICE@Example.com"}, lambda it: _has_assignee(it, ALICE)),
    ({"assignee": "nobody@example.com"}, lambda it: False),
    ({"label": "gamma"}, lambda it: "gamma" in it.labels),
    ({"label": ["alpha", "gamma"]}, lambda it: bool({"alpha", "gamma"} & set(it.labels))),
    ({"container": "c1"}, lambda it: it.container is not None and it.container.id == "c1"),
    ({"container": ["K2", "c0"]}, lambda it: it.container is not None and it.container.id in {"c2", "c0"}),
    ({"parent_id": "acme-jira:1"}, lambda it: it.parent_id == "acme-jira:1"),
    ({"parent_id": ["acme-jira:1", "acme-jira:2"]}, lambda it: it.parent_id in {"acme-jira:1", "acme-jira:2"}),
    # Boundaries equal to stored times: both bounds are strict.
    ({"updated_after": "2026-01-01T00:05:00Z"}, lambda it: it.updated_at > BASE_TIME + timedelta(minutes=5)),
    ({"updated_before": "2026-01-01T00:05:00Z"}, lambda it: it.updated_at < BASE_TIME + timedelta(minutes=5)),
    (
        {"updated_after": "2026-01-01T03:00:00+05:00", "updated_before": "2026-01-01T00:09:00"},
        lambda it: BASE_TIME - timedelta(hours=2) < it.updated_at < BASE_TIME + timedelta(minutes=9),
    ),
    ({"q": "login"}, lambda it: "login" in it.title.lower()),
    ({"q": "PROJ-1"}, lambda it: "proj-1" in (it.key or "").lower()),
    ({"q": "repo#2"}, lambda it: "repo#2" in (it.key or "")),
    # LIKE wildcards in q are literal text.
    ({"q": "0%"}, lambda it: "0%" in it.title),
    ({"q": "_"}, lambda it: "_" in it.title or "_" in (it.key or "")),
    # Different filters AND together.
    (
        {"source": "acme-jira", "label": "alpha", "kind": ["bug", "story", "task"]},
        lambda it: it.source == "acme-jira" and "alpha" in it.labels and it.kind.value in {"bug", "story", "task"},
    ),
]


@pytest.mark.parametrize(("params", "keep"), FILTER_CASES, ids=[str(p) for p, _ in FILTER_CASES])
def test_every_filter_matches_the_oracle(
    client: TestClient, store: Store, params: dict[str, Any], keep: Callable[[WorkItem], bool]
) -> None:
    seeded = seed(store)
    for include_deleted in (False, True):
        docs = fetch_all(client, {**params, "include_deleted": include_deleted})
        assert len(_ids(docs)) == len(set(_ids(docs)))
        assert set(_ids(docs)) == seeded.expected(keep, include_deleted=include_deleted)
        assert all(d["deleted"] == (d["id"] in seeded.deleted) for d in docs)


def test_assignee_by_person_id_and_or_of_people(client: TestClient, store: Store) -> None:
    seeded = seed(store)
    alice = _person_id(client, "alice@example.com")
    bob = client.get(f"/v1/items/{quote('acme-jira:1')}").json()["assignees"][0]["id"]
    assert bob
    assert bob != alice

    # Bob has no email, so each tool's Bob is its own person; Alice is one person everywhere.
    def jira_bob(it: WorkItem) -> bool:
        return it.source == "acme-jira" and _has_assignee(it, BOB)

    only_bob = set(_ids(fetch_all(client, {"assignee": bob})))
    assert only_bob == seeded.expected(jira_bob)
    either = set(_ids(fetch_all(client, {"assignee": [bob, "alice@example.com"]})))
    assert either == seeded.expected(lambda it: jira_bob(it) or _has_assignee(it, ALICE))
    alices = set(_ids(fetch_all(client, {"assignee": alice})))
    assert alices == seeded.expected(lambda it: _has_assignee(it, ALICE))
    assert {i.split(":")[0] for i in alices} == {"acme-gh", "acme-jira"}


@pytest.mark.parametrize("kinds", [[], ["bug", "epic", "story"]])
@pytest.mark.parametrize("sort", ["updated_at", "-updated_at"])
def test_sort_orders_by_updated_at_then_id(client: TestClient, store: Store, sort: str, kinds: list[str]) -> None:
    seeded = seed(store)
    docs = fetch_all(client, {"sort": sort, "kind": kinds}, limit=3)
    live = [
        it
        for item_id, it in seeded.items.items()
        if item_id not in seeded.deleted and (not kinds or it.kind.value in kinds)
    ]
    ordered = sorted(live, key=lambda it: (it.updated_at, it.id), reverse=sort.startswith("-"))
    assert _ids(docs) == [it.id for it in ordered]


def test_default_sort_is_newest_first_and_default_limit_applies(client: TestClient, store: Store) -> None:
    seed(store, count=60)
    body = client.get("/v1/items").json()
    assert len(body["items"]) == 50  # Settings.page_limit_default
    times = [d["updated_at"] for d in body["items"]]
    assert times == sorted(times, reverse=True)
    assert body["next_cursor"]


def test_include_deleted_returns_tombstones(client: TestClient, store: Store) -> None:
    seeded = seed(store)
    live = set(_ids(fetch_all(client, {})))
    everything = set(_ids(fetch_all(client, {"include_deleted": "true"})))
    assert seeded.deleted
    assert not (live & seeded.deleted)
    assert everything == live | seeded.deleted


def test_list_documents_are_the_public_item_shape(client: TestClient, store: Store) -> None:
    seeded = seed(store, count=5)
    body = client.get("/v1/items", params={"limit": 10}).json()
    for doc in body["items"]:
        item = ItemPublic.model_validate(doc)
        original = seeded.items[item.id]
        assert item.title == original.title
        assert item.labels == original.labels
        assert item.version is not None
        assert item.synced_at is not None
        assert "raw" not in doc  # raw only on the single-item route, when asked for


# ---------------------------------------------------------------- cursor under concurrent writes


# Filters that drive the page from another index than items' updated_at: an assignee or label
# (their side tables' copies of updated_at), containers (id and key branches joined) and
# several kinds (one branch per kind).
TRAVERSAL_FILTERS: list[dict[str, Any]] = [
    {},
    {"label": ["alpha", "gamma"]},
    {"container": ["c1", "K2"]},
    {"kind": ["bug", "epic", "story"]},
    {"assignee": "alice@example.com"},
    {"assignee": "alice@example.com", "label": "gamma", "container": "c0"},
]


@pytest.mark.parametrize("sort", ["updated_at", "-updated_at"])
@pytest.mark.parametrize("rng_seed", [1, 2, 3])
@pytest.mark.parametrize("filters", TRAVERSAL_FILTERS, ids=[str(f) for f in TRAVERSAL_FILTERS])
def test_cursor_returns_every_unwritten_item_exactly_once_despite_writes(
    client: TestClient, store: Store, sort: str, rng_seed: int, filters: dict[str, Any]
) -> None:
    rng = random.Random(rng_seed)
    seeded = seed(store, count=40)
    start_ids = set(_ids(fetch_all(client, {}, limit=100)))
    matching = set(_ids(fetch_all(client, filters, limit=100)))
    written: set[str] = set()
    seen: list[str] = []
    cursor: str | None = None
    fresh = 1000
    for _ in range(100):
        params: dict[str, Any] = {**filters, "sort": sort, "limit": 3 if filters else 6}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/items", params=params).json()
        seen.extend(_ids(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # Between pages: move items (forwards and backwards in time, across the cursor),
        # tombstone some, and add new ones.
        victims = rng.sample(sorted(start_ids - written), k=min(3, len(start_ids - written)))
        ops: list[WorkItem | ItemDeletion] = []
        for n, victim in enumerate(victims):
            native = victim.split(":", 1)[1]
            source = victim.split(":", 1)[0]
            if n == 0:
                ops.append(ItemDeletion(source=source, native_id=native, deleted_at=datetime(2030, 1, 1).astimezone()))
            else:
                shift = rng.choice([-10_000, 10_000, rng.randint(-30, 30)])
                # Every field but the time and title kept: the item stays in (or out of) the filter.
                moved_at = BASE_TIME + timedelta(minutes=100_000 + shift)
                ops.append(seeded.items[victim].model_copy(update={"updated_at": moved_at, "title": f"moved {n}"}))
            written.add(victim)
        fresh += 1
        new_at = BASE_TIME + timedelta(minutes=rng.randint(0, 25))
        new = _seed_item(fresh).model_copy(update={"updated_at": new_at})
        ops.append(new)
        written.add(new.id)
        result = store.items.apply(ops)
        assert result.changed == len(ops)
    else:
        raise AssertionError("pagination did not end")

    untouched = start_ids - written
    assert untouched, "the test must leave some items unwritten"
    assert matching & untouched, "the filter must match some unwritten items"
    for item_id in untouched:
        assert seen.count(item_id) == (1 if item_id in matching else 0), item_id
    # Unwritten items keep their sort key, so they come in the requested order across pages.
    order = [(seeded.items[i].updated_at, i) for i in seen if i in untouched]
    assert order == sorted(order, reverse=sort.startswith("-"))


def test_cursor_from_another_query_or_sort_is_a_400(client: TestClient, store: Store) -> None:
    seed(store)
    first = client.get("/v1/items", params={"source": "acme-jira", "limit": 2}).json()
    cursor = first["next_cursor"]
    assert cursor
    # The same query accepts it ...
    ok = client.get("/v1/items", params={"source": "acme-jira", "limit": 2, "cursor": cursor})
    assert ok.status_code == 200
    assert not set(_ids(ok.json()["items"])) & set(_ids(first["items"]))
    # ... another filter or sort does not.
    for params in ({"source": "acme-gh"}, {"source": "acme-jira", "sort": "updated_at"}, {}):
        response = client.get("/v1/items", params={**params, "limit": 2, "cursor": cursor})
        body = assert_problem(response, 400)
        assert "cursor" in body["detail"]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        "eyJmIjoxfQ",  # base64 of {"f":1}: JSON, but not a cursor
        "W10",  # base64 of []
        "eyJmIjogIngiLCAidSI6ICI5OTk5LTEyLTMxVDIzOjAwOjAwLTA1OjAwIiwgImkiOiAiYSJ9",  # overflows in UTC
        "é",
    ],
)
def test_malformed_cursor_is_a_400(client: TestClient, store: Store, cursor: str) -> None:
    seed(store, count=3)
    body = assert_problem(client.get("/v1/items", params={"cursor": cursor}), 400)
    assert "cursor" in body["detail"]


# ---------------------------------------------------------------- single item


@pytest.mark.parametrize("encode_slash", [True, False])
def test_get_item_with_slash_and_hash_in_id(client: TestClient, store: Store, encode_slash: bool) -> None:
    item = make_item("org/repo#7", source="acme-gh", tool="github", key="org/repo#7", raw={"number": 7})
    store.items.apply([item])
    path = quote(item.id, safe=":" if encode_slash else ":/")
    assert "#" not in path
    assert ("/" in path) != encode_slash

    plain = client.get(f"/v1/items/{path}")
    assert plain.status_code == 200, plain.text
    assert plain.json()["id"] == "acme-gh:org/repo#7"
    assert "raw" not in plain.json()
    with_raw = client.get(f"/v1/items/{path}", params={"include": "raw"})
    assert with_raw.json()["raw"] == {"number": 7}
    assert ItemPublic.model_validate(with_raw.json()).raw == {"number": 7}


def test_get_item_returns_tombstones_and_unknown_is_404(client: TestClient, store: Store) -> None:
    seeded = seed(store, count=12)
    gone = next(iter(seeded.deleted))
    response = client.get(f"/v1/items/{quote(gone)}")
    assert response.status_code == 200
    assert response.json()["deleted"] is True
    body = assert_problem(client.get("/v1/items/acme-jira:999"), 404)
    assert "acme-jira:999" in body["detail"]

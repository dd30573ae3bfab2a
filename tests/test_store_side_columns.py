"""Side columns whole (migration 0025): every value of a WorkItem that the schema does not bound
is stored whole in the columns the filters read, on both backends.

Before it, PostgreSQL's bulk writes cast each column's array to varchar(n), which cuts a longer
value silently: a 300-character label was stored as its first 255, so `label=<the label>`
missed the item, and two labels sharing their first 255 characters failed their whole batch on
the primary key. SQLite kept the whole values, so the backends disagreed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from psycopg.errors import DataError, ProgramLimitExceeded
from sqlalchemy import select

from hub.db.tables import (
    flow_facts,
    item_labels,
    item_links,
    item_report_facts,
    item_tombstones,
    items,
    people,
    person_identities,
    status_transitions,
)
from hub.schema import WorkItem
from hub.store import Store
from hub.store.apply import _TOMBSTONE_COLUMNS
from hub.store.bulk import _Bulk, database_unavailable
from hub.webhooks import store_unavailable
from tests.api_support import api_client
from tests.factories import BASE_TIME, make_item

# Wider than every bound the columns had (label 255, key and container 200, parent 320, link
# target 1000, email 320, status name 200), each with a tail the old width would have cut.
LABEL = "l" * 280 + "-label-tail"
KEY = "GROUP/" + "k" * 240 + "#42"
CONTAINER_ID = "c" * 290 + "-id"
CONTAINER_KEY = "g" * 290 + "-key"
PARENT_ID = "acme-gitlab:" + "p" * 295 + "-parent"
LINK_URL = "https://gitlab.example.com/" + "u" * 1100 + "/-/issues/7"
EMAIL = "e" * 300 + "@example.com"
NATIVE_PERSON = "person-" + "n" * 330
STATUS = "Waiting for " + "s" * 240


def long_item(native_id: str = "1", **fields: Any) -> WorkItem:
    values: dict[str, Any] = {
        "source": "acme-gitlab",
        "tool": "gitlab",
        "key": KEY,
        "labels": [LABEL, "short"],
        "container": {"id": CONTAINER_ID, "key": CONTAINER_KEY, "name": "Team"},
        "parent_id": PARENT_ID,
        "links": [{"type": "relates", "url": LINK_URL}, {"type": "blocks", "target_id": PARENT_ID}],
        "assignees": [{"native_id": NATIVE_PERSON, "email": EMAIL, "name": "Long"}],
        "status": {"category": "in_progress", "name": STATUS},
    }
    values.update(fields)
    return make_item(native_id, **values)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with api_client(store) as c:
        yield c


def listed(client: TestClient, **params: str) -> list[str]:
    response = client.get("/v1/items", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_long_values_are_stored_whole_and_every_filter_finds_them(store: Store, client: TestClient) -> None:
    item = long_item()
    store.items.apply([item])

    found = [item.id]
    assert listed(client, label=LABEL) == found  # PostgreSQL before migration 0025: [] (cut at 255)
    assert listed(client, label=LABEL[:255]) == []  # the whole value, not a prefix
    assert listed(client, container=CONTAINER_ID) == found
    assert listed(client, container=CONTAINER_KEY) == found
    assert listed(client, parent_id=PARENT_ID) == found
    assert listed(client, assignee=EMAIL) == found
    assert listed(client, q=KEY[-60:]) == found  # past the 200 characters the key column held

    with store.engine.connect() as conn:
        row = conn.execute(select(items.c.key, items.c.container_id, items.c.container_key, items.c.parent_id)).one()
        assert tuple(row) == (KEY, CONTAINER_ID, CONTAINER_KEY, PARENT_ID)
        assert set(conn.execute(select(item_labels.c.label)).scalars()) == {LABEL, "short"}
        assert set(conn.execute(select(item_links.c.target)).scalars()) == {LINK_URL, PARENT_ID}
        assert conn.execute(select(item_links.c.target_key).where(item_links.c.target == LINK_URL)).scalar() == (
            "u" * 1100 + "#7"
        )
        assert conn.execute(select(people.c.email)).scalar() == EMAIL
        assert conn.execute(select(person_identities.c.native_id, person_identities.c.email)).one() == (
            NATIVE_PERSON,
            EMAIL,
        )
        assert conn.execute(select(status_transitions.c.to_name)).scalar() == STATUS
        assert conn.execute(select(flow_facts.c.container_id, flow_facts.c.container_key)).one() == (
            CONTAINER_ID,
            CONTAINER_KEY,
        )
        facts = select(
            item_report_facts.c.container_id, item_report_facts.c.container_key, item_report_facts.c.parent_id
        )
        assert tuple(conn.execute(facts).one()) == (CONTAINER_ID, CONTAINER_KEY, PARENT_ID)

    returned = client.get(f"/v1/items/{quote(item.id, safe='')}").json()
    stored = WorkItem.model_validate({k: v for k, v in returned.items() if k not in ("version", "synced_at")})
    for ref in stored.assignees:
        ref.id = None  # set by the hub (on the applied item too: compare with a fresh one)
    assert stored == long_item()


def test_labels_sharing_their_first_255_characters_are_both_stored(store: Store, client: TestClient) -> None:
    common = "x" * 255
    first, second = common + "-one", common + "-two"
    a = long_item("1", labels=[first, second])
    b = long_item("2", labels=[second])
    store.items.apply([a, b])  # one batch: a cut value made the first item's two labels one primary key

    with store.engine.connect() as conn:
        rows = conn.execute(select(item_labels.c.item_id, item_labels.c.label)).all()
    assert sorted(rows) == sorted([(a.id, first), (a.id, second), (b.id, second)])
    assert listed(client, label=first) == [a.id]
    assert sorted(listed(client, label=second)) == sorted([a.id, b.id])


def test_a_value_too_long_for_a_bounded_column_is_refused_never_cut(store: Store) -> None:
    """The bulk path's PostgreSQL cast is to unbounded VARCHAR, so the column's own width
    refuses a longer value (SQLSTATE 22001) instead of the cast cutting it. The schema keeps
    such values out (WorkItem bounds native_id to 200); this is the guard behind it."""
    native_id = "n" * 250
    row = (f"acme-jira:{native_id}", "acme-jira", native_id, BASE_TIME, BASE_TIME)
    bulk = _Bulk(store.engine.dialect)
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "postgresql":
            with pytest.raises(DataError, match="value too long"):
                bulk.insert(conn, item_tombstones, _TOMBSTONE_COLUMNS, [row])
        else:  # SQLite enforces no declared length: the whole value
            bulk.insert(conn, item_tombstones, _TOMBSTONE_COLUMNS, [row])
            assert conn.execute(select(item_tombstones.c.native_id)).scalar() == native_id
        conn.rollback()


def test_a_label_past_the_postgresql_index_limit_is_a_refused_record_not_an_outage(store: Store) -> None:
    """A B-tree entry holds at most 2,704 bytes on PostgreSQL: a label of ~2,700 bytes that do
    not compress cannot be indexed whole. It is refused as that record's fault (SQLSTATE 54000,
    which psycopg raises as an OperationalError), so a sync stores the rest of its page and
    reports it, instead of retrying the page as if the database were down. SQLite stores it."""
    store.items.apply([make_item(1, labels=["kept"])])
    label = "".join(random.Random(13).choices(string.ascii_letters, k=3000))
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(ProgramLimitExceeded) as refused:
            store.items.apply([make_item(1, minutes=1, labels=[label])])
        assert not database_unavailable(refused.value)
        assert not store_unavailable(refused.value)
        assert store.queries.get_item("acme-jira:1")["labels"] == ["kept"]  # nothing stored was lost
    else:
        store.items.apply([make_item(1, minutes=1, labels=[label])])
        assert store.queries.get_item("acme-jira:1")["labels"] == [label]


def test_filters_take_a_stored_value_longer_than_the_id_bound(store: Store, client: TestClient) -> None:
    # Labels, containers, parents and emails are kept whole (migration 0025): a filter that
    # refused values past 320 characters could not ask for them.
    label = "lbl-" + "z" * 1500
    container = "team-" + "c" * 1200
    item = long_item("1", labels=[label], container={"id": container, "key": "T", "name": "Team"})
    store.items.apply([item])
    assert listed(client, label=label) == [item.id]
    assert listed(client, container=container) == [item.id]

    response = client.get("/v1/items", params={"label": "x" * 2001})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")

"""One rule for text on both backends (issue 8, item 10): NUL (U+0000) and lone surrogates
become U+FFFD in every string of what `apply` stores; `raw` keeps a NUL as its JSON escape.

PostgreSQL refuses NUL in text and neither backend can encode a lone surrogate as UTF-8, so
before this rule the same item landed on SQLite and broke the whole batch on PostgreSQL.
"""

from __future__ import annotations

import orjson
from sqlalchemy import select

from hub.db.tables import item_labels, item_tombstones, items, person_identities
from hub.schema import ItemDeletion
from hub.store import Store
from hub.store.items import storable
from tests.factories import BASE_TIME, make_item

NUL, SURROGATE, FFFD = "\x00", "\ud800", "\ufffd"


def bad_item(native_id: str = "1", bad: str = NUL) -> object:
    return make_item(
        native_id,
        key=f"K{bad}1",
        title=f"a{bad}b",
        description=f"d{bad}",
        labels=[f"l{bad}", "ok"],
        assignees=[{"native_id": f"u{bad}1", "name": f"N{bad}"}],
        container={"id": f"c{bad}", "name": f"C{bad}"},
        custom={f"k{bad}": [f"v{bad}", {"x": bad}]},
        raw={"title": f"a{bad}b"},
    )


def test_nul_becomes_replacement_character_everywhere(store: Store) -> None:
    result = store.items.apply([bad_item("1"), make_item("2", title="fine")])
    assert result.upserted == 2
    doc = store.items.get("acme-jira:1", include_raw=True)
    assert doc is not None
    assert (doc["title"], doc["key"], doc["description"]) == (f"a{FFFD}b", f"K{FFFD}1", f"d{FFFD}")
    assert doc["labels"] == [f"l{FFFD}", "ok"]
    assert doc["assignees"][0]["name"] == f"N{FFFD}"
    assert doc["container"] == {"id": f"c{FFFD}", "key": None, "name": f"C{FFFD}"}
    assert doc["custom"] == {f"k{FFFD}": [f"v{FFFD}", {"x": FFFD}]}
    assert doc["raw"] == {"title": "a\x00b"}  # raw is JSON: the NUL stays, escaped
    with store.engine.connect() as conn:
        assert conn.execute(select(items.c.title).where(items.c.id == "acme-jira:1")).scalar() == f"a{FFFD}b"
        labels = set(conn.execute(select(item_labels.c.label)).scalars())
        assert labels == {f"l{FFFD}", "ok"}
        names = set(conn.execute(select(person_identities.c.native_id, person_identities.c.name)).all())
        assert names == {(f"u{FFFD}1", f"N{FFFD}")}
        raw = conn.execute(select(items.c.raw).where(items.c.id == "acme-jira:1")).scalar()
        assert orjson.loads(raw) == {"title": "a\x00b"}


def test_lone_surrogates_become_replacement_characters(store: Store) -> None:
    assert store.items.apply([bad_item("1", SURROGATE)]).upserted == 1
    doc = store.items.get("acme-jira:1", include_raw=True)
    assert doc is not None
    assert doc["title"] == f"a{FFFD}b"
    assert doc["custom"] == {f"k{FFFD}": [f"v{FFFD}", {"x": FFFD}]}
    assert doc["raw"] == {"title": f"a{FFFD}b"}  # not encodable as UTF-8 even in JSON


def test_deletion_ids_follow_the_same_rule(store: Store) -> None:
    store.items.apply([make_item(f"x{FFFD}", minutes=0)])
    result = store.items.apply([ItemDeletion(source="acme-jira", native_id="x\x00", deleted_at=BASE_TIME)])
    assert result.deleted == 1  # the same item as the one stored with U+FFFD
    store.items.apply([ItemDeletion(source="acme-jira", native_id=f"y{SURROGATE}", deleted_at=BASE_TIME)])
    with store.engine.connect() as conn:
        assert list(conn.execute(select(item_tombstones.c.native_id)).scalars()) == [f"y{FFFD}"]


def test_clean_items_pass_unchanged() -> None:
    clean = make_item("1", title="plain text", labels=["a"])
    assert storable(clean) is clean  # the common case costs no copy
    lookalike = make_item("1", title="plain \\u0000 text")  # a backslash sequence, not a NUL
    assert storable(lookalike) == lookalike

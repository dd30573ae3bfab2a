"""ItemStore.apply: upsert-if-newer, tombstones, force, checkpoints, people, side tables.

Every test runs on SQLite and on PostgreSQL (the `store` fixture).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from hub.db.tables import (
    changes,
    cursors,
    item_assignees,
    item_labels,
    item_tombstones,
    items,
    people,
    person_identities,
)
from hub.schema import ItemDeletion, WorkItem
from hub.store import Checkpoint, Store
from hub.store.items import _NOT_CONTENT, content_digest
from tests.factories import BASE_TIME, make_item


def change_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(changes).order_by(changes.c.seq)).mappings().all()
    return [{**row, "fields": orjson.loads(row["fields"])} for row in rows]


def labels_of(store: Store, item_id: str) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(item_labels.c.label).where(item_labels.c.item_id == item_id)).scalars())


def assignees_of(store: Store, item_id: str) -> list[str]:
    with store.engine.connect() as conn:
        stmt = select(item_assignees.c.person_id).where(item_assignees.c.item_id == item_id)
        return sorted(conn.execute(stmt).scalars())


def reset_items(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in ("item_labels", "item_assignees", "item_links", "items", "item_tombstones", "changes"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE change_counter SET last_seq = 0"))


def person(native_id: str | None = None, email: str | None = None, name: str | None = None) -> dict[str, Any]:
    return {"native_id": native_id, "email": email, "name": name}


def deletion(native_id: str, minutes: int | None = None, source: str = "acme-jira") -> ItemDeletion:
    at = None if minutes is None else BASE_TIME + timedelta(minutes=minutes)
    return ItemDeletion(source=source, native_id=native_id, deleted_at=at)


# ---------------------------------------------------------------- upsert if newer


def test_insert_then_newer_update_writes_changed_fields(store: Store) -> None:
    first = store.items.apply([make_item(1, minutes=0)])
    assert (first.upserted, first.unchanged, first.seqs) == (1, 0, [1])
    second = store.items.apply([make_item(1, minutes=5, title="Renamed")])
    assert (second.upserted, second.seqs) == (1, [2])

    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["title"] == "Renamed"
    assert doc["version"] == 2
    assert doc["deleted"] is False
    log = change_rows(store)
    assert [(c["seq"], c["op"]) for c in log] == [(1, "upsert"), (2, "upsert")]
    assert log[1]["fields"] == ["title", "updated_at"]
    assert "title" in log[0]["fields"]
    assert "status" in log[0]["fields"]


def test_older_or_duplicate_version_is_a_noop(store: Store) -> None:
    store.items.apply([make_item(1, minutes=10, title="Newest")])
    result = store.items.apply([make_item(1, minutes=10, title="Newest"), make_item(1, minutes=3, title="Old")])
    assert (result.upserted, result.unchanged, result.seqs) == (0, 2, [])
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["title"] == "Newest"
    assert doc["version"] == 1
    assert len(change_rows(store)) == 1


def test_equal_times_end_the_same_in_either_order(store: Store) -> None:
    """Two different versions with the same updated_at: the greater content digest wins,
    whichever arrives first (it used to be the first arrival)."""
    a, b = make_item(1, minutes=10, title="A"), make_item(1, minutes=10, title="B")
    winner = max((a, b), key=lambda item: content_digest(item.model_dump_json(exclude=_NOT_CONTENT)))
    outcomes = []
    for first, second in ((a, b), (b, a)):
        reset_items(store)
        store.items.apply([first])
        second_result = store.items.apply([second])
        doc = store.items.get("acme-jira:1")
        assert doc is not None
        outcomes.append(doc["title"])
        # The second arrival is a change exactly when it is the winner.
        assert second_result.upserted == (second is winner)
        assert len(change_rows(store)) == 1 + (second is winner)
    assert outcomes == [winner.title, winner.title]


def test_several_versions_in_one_batch(store: Store) -> None:
    result = store.items.apply([make_item(1, minutes=1), make_item(1, minutes=3, title="v3"), make_item(1, minutes=2)])
    assert (result.upserted, result.unchanged, result.seqs) == (2, 1, [1, 2])
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["title"] == "v3"
    assert doc["version"] == 2


def test_caller_times_in_other_zones_compare_as_utc(store: Store) -> None:
    from datetime import timezone

    plus2 = timezone(timedelta(hours=2))
    store.items.apply([make_item(1, updated_at=(BASE_TIME + timedelta(minutes=10)).astimezone(plus2))])
    older = make_item(1, updated_at=(BASE_TIME + timedelta(minutes=5)).astimezone(plus2), title="older")
    assert store.items.apply([older]).unchanged == 1
    newer = make_item(1, updated_at=(BASE_TIME + timedelta(minutes=11)).astimezone(plus2), title="newer")
    assert store.items.apply([newer]).upserted == 1
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["title"] == "newer"
    assert doc["updated_at"].startswith("2026-01-01T00:11:00")


def test_columns_and_raw_payload_are_stored(store: Store) -> None:
    item = make_item(
        7,
        kind="bug",
        priority={"level": "high", "name": "P1"},
        container={"id": "c1", "key": "PROJ", "name": "Project"},
        parent_id="acme-jira:1",
        rice={"reach": 10, "impact": 2, "confidence": 0.5, "effort": 2},
        created_at=BASE_TIME,
        raw={"id": "7", "fields": {"summary": "Item 7"}},
    )
    store.items.apply([item])
    with store.engine.connect() as conn:
        row = conn.execute(select(items).where(items.c.id == "acme-jira:7")).one()
    assert (row.kind, row.status_category, row.priority_level) == ("bug", "todo", "high")
    assert (row.container_id, row.container_key, row.parent_id, row.rice_score) == ("c1", "PROJ", "acme-jira:1", 5.0)
    assert row.created_at == BASE_TIME
    assert row.updated_at == BASE_TIME
    assert orjson.loads(row.raw) == {"id": "7", "fields": {"summary": "Item 7"}}
    doc = store.items.get("acme-jira:7", include_raw=True)
    assert doc is not None
    assert doc["raw"] == {"id": "7", "fields": {"summary": "Item 7"}}
    assert "raw" not in (store.items.get("acme-jira:7") or {})
    # The stored document validates back into the schema.
    WorkItem.model_validate({k: v for k, v in doc.items() if k not in ("version", "synced_at")})


def test_time_filters_see_bulk_written_times(store: Store) -> None:
    """The bulk path binds times itself; they must compare like SQLAlchemy-bound times."""
    store.items.apply([make_item(n, minutes=n) for n in range(5)])
    cutoff = BASE_TIME + timedelta(minutes=2)
    with store.engine.connect() as conn:
        later = conn.execute(select(items.c.native_id).where(items.c.updated_at > cutoff)).scalars().all()
        at_cutoff = conn.execute(select(items.c.native_id).where(items.c.updated_at == cutoff)).scalars().all()
    assert sorted(later) == ["3", "4"]
    assert at_cutoff == ["2"]
    assert store.items.live_ids("acme-jira", cutoff) == {"0", "1"}
    assert store.items.live_ids("acme-jira") == {"0", "1", "2", "3", "4"}


# ---------------------------------------------------------------- tombstones


def test_delete_tombstones_and_logs_a_delete(store: Store) -> None:
    store.items.apply([make_item(1, minutes=0, labels=["a"])])
    result = store.items.apply([deletion("1", minutes=5)])
    assert (result.deleted, result.seqs) == (1, [2])
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["deleted"] is True
    assert doc["version"] == 2
    assert doc["title"] == "Item 1"
    assert [(c["op"], c["fields"]) for c in change_rows(store)][-1] == ("delete", ["deleted"])
    assert labels_of(store, "acme-jira:1") == ["a"]  # a tombstone keeps its side rows
    assert store.items.live_ids("acme-jira") == set()
    # Deleting again is a no-op.
    assert store.items.apply([deletion("1", minutes=6)]).unchanged == 1
    assert len(change_rows(store)) == 2


def tombstone_rows(store: Store) -> list[tuple[str, str, str, Any]]:
    with store.engine.connect() as conn:
        t = item_tombstones.c
        stmt = select(t.item_id, t.source, t.native_id, t.deleted_at).order_by(t.item_id)
        return [tuple(row) for row in conn.execute(stmt)]


def test_delete_of_unknown_item_keeps_a_tombstone_without_a_change(store: Store) -> None:
    result = store.items.apply([deletion("404", minutes=10)])
    assert (result.deleted, result.unchanged, result.tombstones, result.seqs) == (0, 0, 1, [])
    assert store.items.get("acme-jira:404") is None  # not an item: reads never see it
    assert change_rows(store) == []
    assert tombstone_rows(store) == [("acme-jira:404", "acme-jira", "404", BASE_TIME + timedelta(minutes=10))]
    # The same deletion again stores nothing new; a later one moves the tombstone's time on.
    assert store.items.apply([deletion("404", minutes=10)]).unchanged == 1
    store.items.apply([deletion("404", minutes=12)])
    assert tombstone_rows(store)[0][3] == BASE_TIME + timedelta(minutes=12)
    assert change_rows(store) == []


def test_not_found_on_refetch_never_tombstones_an_unknown_id(store: Store) -> None:
    """A refetch that found nothing is no deletion report: an item the hub has not stored
    yet (briefly invisible to the API) must still land when a sync later reads it."""
    gone = ItemDeletion(source="acme-jira", native_id="7", reported=False)
    assert store.items.apply([gone]).tombstones == 0
    assert tombstone_rows(store) == []
    assert store.items.apply([make_item(7, minutes=1)]).upserted == 1
    assert store.items.live_ids("acme-jira") == {"7"}
    # For a stored item it is a deletion as before (the tool no longer has it).
    assert store.items.apply([gone]).deleted == 1


def test_older_create_after_an_early_deletion_does_not_resurrect(store: Store) -> None:
    """The deletion overtook the create (issue 8, item 3): the item must not come back."""
    store.items.apply([deletion("1", minutes=10)])
    for minutes in (5, 10):  # older than the deletion, and equal to it: the deletion wins
        result = store.items.apply([make_item(1, minutes=minutes, title=f"at {minutes}", labels=["x"])])
        assert (result.upserted, result.seqs) == (0, [])
    assert change_rows(store) == []
    assert store.items.live_ids("acme-jira") == set()
    # It lands as a deleted item (as if the create had come first), not as a live one.
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert (doc["deleted"], doc["title"], doc["version"]) == (True, "at 10", 0)
    assert labels_of(store, "acme-jira:1") == ["x"]
    assert tombstone_rows(store) == []  # the tombstone moved onto the items row


def test_newer_create_after_an_early_deletion_creates_the_item(store: Store) -> None:
    store.items.apply([deletion("1", minutes=10)])
    result = store.items.apply([make_item(1, minutes=11, title="back", labels=["x"])])
    assert (result.upserted, result.seqs) == (1, [1])
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert (doc["deleted"], doc["title"], doc["version"]) == (False, "back", 1)
    assert change_rows(store)[0]["op"] == "upsert"
    assert "deleted" not in change_rows(store)[0]["fields"]  # the feed never saw it deleted
    assert tombstone_rows(store) == []
    assert store.items.live_ids("acme-jira") == {"1"}


def test_deletion_and_create_in_one_batch_either_order(store: Store) -> None:
    for ops in (
        [deletion("1", minutes=10), make_item(1, minutes=5)],
        [make_item(1, minutes=5), deletion("1", minutes=10)],
    ):
        reset_items(store)
        store.items.apply(ops)
        doc = store.items.get("acme-jira:1")
        assert doc is not None
        assert doc["deleted"] is True
        assert tombstone_rows(store) == []


def test_deletion_of_an_overlong_id_is_a_noop(store: Store) -> None:
    result = store.items.apply([deletion("9" * 201)])
    assert (result.unchanged, result.tombstones) == (1, 0)
    assert tombstone_rows(store) == []


def test_stale_update_does_not_resurrect_but_newer_one_does(store: Store) -> None:
    store.items.apply([make_item(1, minutes=0)])
    store.items.apply([deletion("1", minutes=10)])
    for minutes in (5, 10):  # older than the delete, and equal to it: the delete wins
        result = store.items.apply([make_item(1, minutes=minutes, title=f"stale {minutes}")])
        assert (result.upserted, result.unchanged, result.seqs) == (0, 1, [])
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["deleted"] is True
    # The deleted item shows the newest content older than its deletion (as it would had
    # the updates come before the deletion), without a change: the feed saw it deleted.
    assert (doc["title"], doc["version"]) == ("stale 10", 2)
    assert len(change_rows(store)) == 2

    result = store.items.apply([make_item(1, minutes=11, title="back")])
    assert result.upserted == 1
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["deleted"] is False
    assert doc["title"] == "back"
    assert "deleted" in change_rows(store)[-1]["fields"]


def test_delete_older_than_stored_version_is_a_noop(store: Store) -> None:
    store.items.apply([make_item(1, minutes=10)])
    assert store.items.apply([deletion("1", minutes=5)]).unchanged == 1
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["deleted"] is False


def test_insert_and_delete_in_one_batch(store: Store) -> None:
    result = store.items.apply([make_item(1, minutes=0, labels=["x"]), deletion("1", minutes=1)])
    assert (result.upserted, result.deleted, result.seqs) == (1, 1, [1, 2])
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["deleted"] is True
    assert doc["version"] == 2
    assert labels_of(store, "acme-jira:1") == ["x"]


# ---------------------------------------------------------------- force


def test_force_rewrites_equal_time_only_when_content_differs(store: Store) -> None:
    a, b = make_item(1, minutes=5, title="a"), make_item(1, minutes=5, title="b")
    # Stored first: the one the tie-break would keep, so that only force can replace it.
    keeps, loses = sorted((a, b), key=lambda item: content_digest(item.model_dump_json(exclude=_NOT_CONTENT)))[::-1]
    store.items.apply([keeps])
    assert store.items.apply([loses]).unchanged == 1  # not forced: the tie-break keeps the stored one
    assert store.items.apply([keeps], force=True).unchanged == 1  # same content
    forced = store.items.apply([loses], force=True)
    assert forced.upserted == 1
    assert change_rows(store)[-1]["fields"] == ["title"]
    assert store.items.apply([make_item(1, minutes=4, title="c")], force=True).unchanged == 1  # older stays a no-op
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["title"] == loses.title
    assert doc["version"] == 2


def test_force_brings_back_an_item_deleted_at_the_same_time(store: Store) -> None:
    """A refetch found the record: it exists now, whatever a deletion of equal time said."""
    store.items.apply([make_item(1, minutes=0), deletion("1", minutes=5)])
    assert store.items.apply([make_item(1, minutes=5, title="x")]).upserted == 0  # the deletion wins the tie
    result = store.items.apply([make_item(1, minutes=5, title="x")], force=True)
    assert result.upserted == 1
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert (doc["deleted"], doc["title"]) == (False, "x")


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_is_saved_with_the_batch(store: Store) -> None:
    store.items.apply([make_item(1)], checkpoint=Checkpoint("acme-jira", "items", "page-2"))
    assert store.items.load_cursor("acme-jira", "items") == "page-2"
    # A batch with no effective write still moves the cursor.
    store.items.apply([make_item(1)], checkpoint=Checkpoint("acme-jira", "items", "page-3"))
    assert store.items.load_cursor("acme-jira", "items") == "page-3"
    assert store.items.load_cursor("acme-jira", "other") is None


def test_checkpoint_rolls_back_with_a_failed_batch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.items.apply([make_item(1)], checkpoint=Checkpoint("acme-jira", "items", "page-1"))

    class Boom(RuntimeError):
        pass

    real_insert = store.items._bulk.insert

    def failing_insert(conn: Any, table: Any, *args: Any, **kwargs: Any) -> None:
        real_insert(conn, table, *args, **kwargs)
        if table is changes:  # items, labels and changes are written by now
            raise Boom

    with monkeypatch.context() as patch:
        patch.setattr(store.items._bulk, "insert", failing_insert)
        with pytest.raises(Boom):
            store.items.apply([make_item(2, labels=["x"])], checkpoint=Checkpoint("acme-jira", "items", "page-2"))
    # The caller's own transaction failing after apply rolls it back too.
    with pytest.raises(Boom), store.items.write_transaction() as conn:  # noqa: PT012
        store.items.apply([make_item(3)], checkpoint=Checkpoint("acme-jira", "items", "page-3"), conn=conn)
        raise Boom

    assert store.items.load_cursor("acme-jira", "items") == "page-1"
    assert store.items.get("acme-jira:2") is None
    assert store.items.get("acme-jira:3") is None
    assert labels_of(store, "acme-jira:2") == []
    assert [c["seq"] for c in change_rows(store)] == [1]
    # The counter did not move either: the next seq follows with no gap.
    assert store.items.apply([make_item(4)]).seqs == [2]


# ---------------------------------------------------------------- people and side tables


def test_people_merge_by_email_across_sources(store: Store) -> None:
    jira = make_item(1, assignees=[person("u-1", "Ann@Example.com", "Ann")])
    linear = make_item(1, source="acme-linear", tool="linear", assignees=[person("lin-9", "ann@example.com", "Ann B")])
    store.items.apply([jira])
    store.items.apply([linear])
    with store.engine.connect() as conn:
        people_rows = conn.execute(select(people)).all()
        identities = conn.execute(select(person_identities).order_by(person_identities.c.source)).all()
    assert len(people_rows) == 1
    assert people_rows[0].email == "ann@example.com"
    assert [(i.source, i.native_id, i.person_id) for i in identities] == [
        ("acme-jira", "u-1", people_rows[0].id),
        ("acme-linear", "lin-9", people_rows[0].id),
    ]
    for item_id in ("acme-jira:1", "acme-linear:1"):
        doc = store.items.get(item_id)
        assert doc is not None
        assert doc["assignees"][0]["id"] == people_rows[0].id
        assert assignees_of(store, item_id) == [people_rows[0].id]


def test_identity_without_email_joins_the_email_owner_later(store: Store) -> None:
    store.items.apply([make_item(1, assignees=[person("u-1", "bob@example.com")])])
    # GitHub hides the email at first: a separate person until it shows.
    gh = {"source": "acme-github", "tool": "github"}
    store.items.apply([make_item(1, **gh, assignees=[person("gh-7", None, "bob")])])
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(people)).scalar() == 2
    store.items.apply([make_item(1, minutes=1, **gh, assignees=[person("gh-7", "bob@example.com", "bob")])])
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(people)).scalar() == 1
        owner = conn.execute(select(people.c.id)).scalar_one()
        ids = set(conn.execute(select(person_identities.c.person_id)).scalars())
    assert ids == {owner}
    assert assignees_of(store, "acme-github:1") == [owner]


def test_known_identity_gains_email_owned_by_a_person_new_in_the_same_batch(store: Store) -> None:
    """Regression: the merge must not point the identity at a person not inserted yet (FK)."""
    gh = {"source": "acme-github", "tool": "github"}
    store.items.apply([make_item(1, **gh, assignees=[person("gh-7", None, "carl")])])
    batch = [
        make_item(2, assignees=[person("u-3", "carl@example.com")]),  # new identity and email first
        make_item(1, minutes=1, **gh, assignees=[person("gh-7", "carl@example.com")]),
    ]
    store.items.apply(batch)
    with store.engine.connect() as conn:
        person_ids = set(conn.execute(select(person_identities.c.person_id)).scalars())
        emails = conn.execute(select(people.c.email)).scalars().all()
    assert len(person_ids) == 1
    assert emails == ["carl@example.com"]


def test_email_found_through_an_identity_when_the_person_has_another(store: Store) -> None:
    """A person whose identity switched to a second email is still found by that email later."""
    store.items.apply([make_item(1, assignees=[person("u-1", "old@example.com")])])
    store.items.apply([make_item(1, minutes=1, assignees=[person("u-1", "new@example.com")])])
    store.items.apply([make_item(2, source="acme-linear", tool="linear", assignees=[person("l-1", "new@example.com")])])
    with store.engine.connect() as conn:
        assert len(set(conn.execute(select(person_identities.c.person_id)).scalars())) == 1
        assert conn.execute(select(func.count()).select_from(people)).scalar() == 1


def test_people_without_ids_get_email_identities(store: Store) -> None:
    store.items.apply([make_item(1, reporter=person(None, "dee@example.com"))])
    with store.engine.connect() as conn:
        row = conn.execute(select(person_identities)).one()
    assert row.native_id == "email:dee@example.com"
    doc = store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["reporter"]["id"] == row.person_id


def test_labels_and_assignees_are_rewritten_on_update(store: Store) -> None:
    store.items.apply(
        [make_item(1, labels=["a", "b"], assignees=[person("u-1", "a@example.com"), person("u-2", "b@example.com")])]
    )
    first = assignees_of(store, "acme-jira:1")
    assert labels_of(store, "acme-jira:1") == ["a", "b"]
    assert len(first) == 2
    store.items.apply([make_item(1, minutes=1, labels=["c"], assignees=[person("u-2", "b@example.com")])])
    assert labels_of(store, "acme-jira:1") == ["c"]
    assert len(assignees_of(store, "acme-jira:1")) == 1
    assert assignees_of(store, "acme-jira:1")[0] in first
    store.items.apply([make_item(1, minutes=2)])
    assert labels_of(store, "acme-jira:1") == []
    assert assignees_of(store, "acme-jira:1") == []
    # A stale version does not touch them.
    store.items.apply([make_item(1, minutes=1, labels=["stale"])])
    assert labels_of(store, "acme-jira:1") == []


def test_large_batch_is_one_transaction(store: Store) -> None:
    batch = [
        make_item(n, labels=[f"l{n % 3}"], assignees=[person(f"u{n % 7}", f"u{n % 7}@example.com")])
        for n in range(1200)
    ]
    result = store.items.apply(batch)
    assert result.upserted == 1200
    assert result.seqs == list(range(1, 1201))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT last_seq FROM change_counter")).scalar() == 1200
        assert conn.execute(select(func.count()).select_from(item_labels)).scalar() == 1200
        assert conn.execute(select(func.count()).select_from(people)).scalar() == 7
    # Every item's version is the seq of its own change.
    with store.engine.connect() as conn:
        pairs = conn.execute(select(items.c.id, items.c.version)).all()
        log = dict(conn.execute(select(changes.c.item_id, changes.c.seq)).all())
    assert all(log[item_id] == version for item_id, version in pairs)


def test_cursor_table_untouched_without_checkpoint(store: Store) -> None:
    store.items.apply([make_item(1)])
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cursors)).scalar() == 0


@pytest.mark.parametrize("cut", [False, True], ids=["one-batch", "two-batches"])
def test_same_document_with_another_raw_payload_keeps_the_greater_payload_whatever_the_order(
    store: Store, cut: bool
) -> None:
    """Two deliveries of one item at the same tool time whose documents are equal but whose
    payloads differ (a field no mapping reads, e.g. GitHub's `reactions`): the stored payload
    is the greater by `raw_key` in every order, and only the first arrival is a change.
    Hypothesis found it with two real GitHub records (tests/test_store_convergence.py)."""
    from hub.store.apply import raw_json, raw_key

    first = make_item("7", raw={"reactions": {"+1": 0}})
    second = make_item("7", raw={"reactions": {"+1": 3}})
    assert content_digest(first.model_dump_json(exclude=_NOT_CONTENT)) == content_digest(
        second.model_dump_json(exclude=_NOT_CONTENT)
    )
    winner = max(first, second, key=lambda item: raw_key(raw_json(item.raw)))
    stored = []
    for order in ([first, second], [second, first]):
        with store.engine.begin() as conn:
            for table in ("item_labels", "item_assignees", "item_links", "items", "changes"):
                conn.execute(text(f"DELETE FROM {table}"))
        batches = [[op] for op in order] if cut else [order]
        changed = [store.items.apply([op.model_copy(deep=True) for op in batch]).changed for batch in batches]
        assert sum(changed) == 1
        with store.engine.connect() as conn:
            stored.append(conn.execute(select(items.c.raw)).scalar_one())
        assert store.items.apply([op.model_copy(deep=True) for op in order]).changed == 0  # a replay
    assert stored[0] == stored[1] == raw_json(winner.raw)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_apply_sets_its_planner_settings_for_its_transaction_only(store: Store) -> None:
    """`custom_plans` (hub/store/apply.py): no JIT compilation and random_page_cost 1.1 for
    apply's statements; the settings ride on the counter lock (`set_config(..., true)`), so
    they end with the transaction and the pooled connection keeps the server's."""
    query = "SELECT current_setting('jit'), current_setting('random_page_cost')"
    with store.engine.connect() as conn:
        default = tuple(conn.exec_driver_sql(query).one())
    assert default != ("off", "1.1"), "the test needs a server whose defaults differ"
    with store.items.write_transaction() as conn:
        store.items.apply([make_item("1")], conn=conn)
        assert tuple(conn.exec_driver_sql(query).one()) == ("off", "1.1")
    with store.engine.connect() as conn:
        assert tuple(conn.exec_driver_sql(query).one()) == default


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_write_refused_inside_the_pipeline_fails_the_whole_batch(store: Store) -> None:
    """apply's writes go out in one psycopg pipeline (hub/store/apply.py `pipelined`): a
    statement the server refuses after others were sent (here the labels insert, behind the
    items and facts rows; a trigger refuses one label) still fails `apply` and rolls the
    batch back, and the pooled connection comes back out of pipeline mode, ready for the
    next batch."""
    refuse = """
        CREATE FUNCTION refuse_label() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.label = 'refused' THEN RAISE EXCEPTION 'label refused by the test'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_label BEFORE INSERT ON item_labels FOR EACH ROW EXECUTE FUNCTION refuse_label();
    """
    with store.engine.begin() as conn:
        conn.exec_driver_sql(refuse)
    try:
        store.items.apply([make_item("1")])
        with pytest.raises(Exception, match="label refused by the test"):
            store.items.apply([make_item("2"), make_item("3", labels=["refused"])])
        with store.engine.connect() as conn:
            assert conn.execute(select(items.c.id)).scalars().all() == ["acme-jira:1"]
            assert conn.execute(select(func.count()).select_from(changes)).scalar() == 1
        for _ in range(3):  # every pooled connection the store uses next
            store.items.apply([make_item("2"), make_item("3", labels=["kept"])])
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(changes)).scalar() == 3
            assert conn.execute(select(item_labels.c.label)).scalars().all() == ["kept"]
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse_label ON item_labels; DROP FUNCTION refuse_label()")

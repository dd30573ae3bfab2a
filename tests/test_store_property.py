"""Property test of upsert-if-newer, on SQLite and PostgreSQL.

For any delivery order of the same set of versions of a few items, with repeats, split into
arbitrary batches: the store ends with the newest version of each item, and writes exactly
one change per effective version (one strictly newer than everything applied before it
for that item), in delivery order.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from hub.db.tables import changes, item_labels, items
from hub.store import Store
from tests.factories import make_item

# (native id, minute): each pair is one version; its content is a function of the pair, so
# a repeat is the very same version delivered again.
versions = st.tuples(st.sampled_from(["1", "2", "3"]), st.integers(min_value=0, max_value=5))
deliveries = st.lists(versions, min_size=1, max_size=20)
cut_points = st.lists(st.integers(min_value=0, max_value=20), max_size=5)

_TABLES = ("item_labels", "item_assignees", "items", "changes", "person_identities", "people", "sources", "cursors")


def reset(store: Store) -> None:
    with store.engine.begin() as conn:
        for name in _TABLES:
            conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text("UPDATE change_counter SET last_seq = 0"))


def version_fields(native_id: str, minute: int) -> dict[str, Any]:
    return {
        "title": f"{native_id} at {minute}",
        "labels": [f"m{minute}", "all"],
        "status": {"category": ["todo", "in_progress", "done"][minute % 3]},
    }


def test_upsert_if_newer_property(store: Store) -> None:
    examples = 50 if store.engine.dialect.name == "sqlite" else 25

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(order=deliveries, cuts=cut_points)
    def check(order: list[tuple[str, int]], cuts: list[int]) -> None:
        reset(store)
        # The model: the newest minute seen so far per item; a delivery is effective iff newer.
        newest: dict[str, int] = {}
        effective: list[str] = []
        for native_id, minute in order:
            if minute > newest.get(native_id, -1):
                newest[native_id] = minute
                effective.append(f"acme-jira:{native_id}")

        bounds = sorted({0, len(order), *(c for c in cuts if c < len(order))})
        upserted = unchanged = 0
        for start, end in itertools.pairwise(bounds):
            batch = [make_item(n, minutes=m, **version_fields(n, m)) for n, m in order[start:end]]
            result = store.items.apply(batch)
            upserted += result.upserted
            unchanged += result.unchanged
        assert (upserted, unchanged) == (len(effective), len(order) - len(effective))

        with store.engine.connect() as conn:
            log = conn.execute(select(changes.c.seq, changes.c.item_id, changes.c.op).order_by(changes.c.seq)).all()
            stored = {row.native_id: row for row in conn.execute(select(items))}
            labels = {
                (row.item_id, row.label) for row in conn.execute(select(item_labels.c.item_id, item_labels.c.label))
            }
        assert [row.seq for row in log] == list(range(1, len(effective) + 1))
        assert [row.item_id for row in log] == effective
        assert {row.op for row in log} <= {"upsert"}
        assert set(stored) == set(newest)
        last_seq = {item_id: seq for seq, item_id, _ in log}
        for native_id, minute in newest.items():
            row = stored[native_id]
            want = make_item(native_id, minutes=minute, **version_fields(native_id, minute))
            assert row.updated_at == want.updated_at
            assert row.title == want.title
            assert orjson.loads(row.doc)["status"]["category"] == want.status.category.value
            assert row.version == last_seq[f"acme-jira:{native_id}"]
            assert {label for item_id, label in labels if item_id == f"acme-jira:{native_id}"} == set(want.labels)

    check()

"""The maintained flags of `item_report_facts` (migration 0010, hub/store/report_facts.py
`maintain_flags`): after any applies, updates, deletions, re-parentings, status and title
changes, in any batching, every row's twin_key, parent_missing, has_live_child,
has_open_child and has_title_twin equal a from-scratch recomputation from the facts rows,
on SQLite and PostgreSQL; and migration 0010 backfills them for rows stored before it. The
quality report reads its relational findings from these flags, so a flag out of step would
be a wrong report (tests/test_quality*.py check the report itself)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import or_, select, update

from hub.db.engine import alembic_config, migrate
from hub.db.tables import item_report_facts
from hub.schema import ItemDeletion, WorkItem
from hub.store import Store
from hub.store.bulk import keys_in
from hub.store.report_facts import _F, CLOSED_CATEGORIES, MAINTAINED_COLUMNS, _flags_update, twin_key
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

SOURCES = {"acme-jira": "jira", "acme-gh": "github"}


def stored_flags(store: Store) -> dict[str, tuple[Any, ...]]:
    f = item_report_facts.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(f.item_id, *(f[name] for name in MAINTAINED_COLUMNS))).all()
    return {row[0]: (row[1], *(bool(v) for v in row[2:])) for row in rows}


def expected_flags(store: Store) -> dict[str, tuple[Any, ...]]:
    """The flags by their rules (report_facts `_flag_values`), in Python over all rows."""
    f = item_report_facts.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(f.item_id, f.source, f.parent_id, f.status_category, f.deleted, f.container_family, f.title_key)
        ).all()
    live = {r.item_id for r in rows if not r.deleted}
    is_open = {r.item_id for r in rows if r.status_category not in CLOSED_CATEGORIES}
    keys = {r.item_id: twin_key(r.container_family, r.title_key) for r in rows}
    expected = {}
    for r in rows:
        children = [c for c in rows if c.parent_id == r.item_id and c.item_id in live]
        key = keys[r.item_id]
        twin = (
            key is not None
            and r.item_id in live
            and r.item_id in is_open
            and any(
                keys[o.item_id] == key and o.source != r.source and o.item_id in live and o.item_id in is_open
                for o in rows
            )
        )
        expected[r.item_id] = (
            key,
            r.parent_id is not None and r.parent_id not in live,
            bool(children),
            any(c.item_id in is_open for c in children),
            twin,
        )
    return expected


# Few ids, titles and containers, so parents, children and twins meet often. Two container
# names in one family ("acme/Payments" and "Payments"), one in another, and none.
_fields = st.fixed_dictionaries(
    {
        "title": st.sampled_from(["Refund flow", "refund  FLOW!", "Other", ""]),
        "status": st.sampled_from(
            [{"category": "todo"}, {"category": "in_progress"}, {"category": "done"}, {"category": "cancelled"}]
        ),
        "kind": st.sampled_from(["story", "epic", "feature"]),
        "container": st.sampled_from(
            [{"id": "c1", "name": "acme/Payments"}, {"id": "c2", "name": "Payments"}, {"id": "c3"}, None]
        ),
        "parent_id": st.none() | st.sampled_from(["acme-jira:1", "acme-gh:2", "acme-jira:9"]),
    }
)
# (source, native id, fields): an upsert; fields None: a deletion. Each op is one minute
# after the one before, so every op changes the store (write-if-newer has its own tests).
_op = st.tuples(
    st.sampled_from(sorted(SOURCES)), st.sampled_from(["1", "2", "3"]), st.one_of(_fields, _fields, st.none())
)


def _build(minute: int, source: str, native_id: str, fields: dict[str, Any] | None) -> WorkItem | ItemDeletion:
    at = BASE_TIME + timedelta(minutes=minute)
    if fields is None:
        return ItemDeletion(source=source, native_id=native_id, deleted_at=at)
    return make_item(native_id, minutes=minute, source=source, tool=SOURCES[source], **fields)


def _apply_in_batches(store: Store, ops: list[Any], cuts: list[int]) -> None:
    bounds = sorted({0, len(ops), *(c for c in cuts if c < len(ops))})
    for start, end in itertools.pairwise(bounds):
        store.items.apply([_build(minute, *ops[minute]) for minute in range(start, end)])


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def test_flags_equal_a_recomputation_after_any_writes(store: Store) -> None:
    examples = 150 if store.engine.dialect.name == "sqlite" else 60

    @_settings(examples)
    @given(ops=st.lists(_op, min_size=1, max_size=16), cuts=st.lists(st.integers(0, 16), max_size=5))
    def check(ops: list[Any], cuts: list[int]) -> None:
        reset_database(store)
        _apply_in_batches(store, ops, cuts)
        assert stored_flags(store) == expected_flags(store)

    check()


def test_hand_worked_flags(store: Store) -> None:
    """One case of each flag, and each far side: a parent arriving after its child, a child
    closing, a twin appearing in another source and then being deleted."""
    store.items.apply(
        [make_item("2", parent_id="acme-jira:1", title="Refund flow", container={"id": "c", "name": "Pay"})]
    )
    assert stored_flags(store)["acme-jira:2"][1:] == (True, False, False, False)  # parent not held yet
    store.items.apply([make_item("1", kind="epic")])
    flags = stored_flags(store)
    assert flags["acme-jira:2"][1] is False and flags["acme-jira:1"][2:4] == (True, True)
    store.items.apply([make_item("2", minutes=1, parent_id="acme-jira:1", status={"category": "done"})])
    assert stored_flags(store)["acme-jira:1"][2:4] == (True, False)  # a live child, none open

    store.items.apply([make_item("3", title="Refund flow", container={"id": "c", "name": "Pay"})])
    assert stored_flags(store)["acme-jira:3"][4] is False  # same source: not a twin
    twin = make_item("7", source="acme-gh", tool="github", title="refund: FLOW", container={"id": "g", "name": "o/pay"})
    store.items.apply([twin])
    flags = stored_flags(store)
    assert flags["acme-jira:3"][4] is True and flags["acme-gh:7"][4] is True
    assert flags["acme-jira:3"][0] == flags["acme-gh:7"][0] == twin_key("pay", "refund flow")
    store.items.apply([make_item("3", minutes=1, title="Refunds", container={"id": "c", "name": "Pay"})])
    assert stored_flags(store)["acme-gh:7"][4] is False  # its twin was retitled: the old key's group
    store.items.apply([make_item("3", minutes=2, title="Refund flow", container={"id": "c", "name": "Pay"})])
    assert stored_flags(store)["acme-gh:7"][4] is True
    store.items.apply([ItemDeletion(source="acme-gh", native_id="7", deleted_at=BASE_TIME + timedelta(hours=1))])
    assert stored_flags(store)["acme-jira:3"][4] is False
    assert stored_flags(store) == expected_flags(store)


def test_a_twin_group_across_two_sources_follows_one_member(store: Store) -> None:
    """A group of three rows (two Jira, one GitHub) with one twin key: the flags of the rows
    not written follow the group's verdict when one member changes (closes, reopens, moves
    away, is deleted), and stay when the verdict does not (write_report_facts rewrites the
    rest of a group only when its verdict flips)."""
    pay = {"id": "c", "name": "Pay"}

    def twins() -> dict[str, bool]:
        flags = stored_flags(store)
        assert flags == expected_flags(store)
        return {item_id: row[4] for item_id, row in flags.items()}

    def github(minutes: int, **fields: Any) -> WorkItem:
        fields = {"title": "Refund flow", "container": {"id": "g", "name": "o/pay"}, **fields}
        return make_item("9", minutes=minutes, source="acme-gh", tool="github", **fields)

    store.items.apply(
        [make_item("1", title="Refund flow", container=pay), make_item("2", title="Refund flow", container=pay)]
    )
    assert twins() == {"acme-jira:1": False, "acme-jira:2": False}  # one source: no twins
    store.items.apply([github(0)])
    assert twins() == {"acme-jira:1": True, "acme-jira:2": True, "acme-gh:9": True}  # the verdict flipped
    store.items.apply([github(1, status={"category": "done"})])
    assert twins() == {"acme-jira:1": False, "acme-jira:2": False, "acme-gh:9": False}  # closed: flipped back
    store.items.apply([github(2)])
    assert twins() == {"acme-jira:1": True, "acme-jira:2": True, "acme-gh:9": True}  # reopened
    store.items.apply([make_item("1", minutes=1, title="Refund flow", container=pay, status={"category": "done"})])
    assert twins() == {"acme-jira:1": False, "acme-jira:2": True, "acme-gh:9": True}  # still shared: only it
    store.items.apply([make_item("2", minutes=1, title="Refunds", container=pay)])
    assert twins() == {"acme-jira:1": False, "acme-jira:2": False, "acme-gh:9": False}  # moved away: flipped
    store.items.apply([make_item("1", minutes=2, title="Refund flow", container=pay)])
    assert twins() == {"acme-jira:1": True, "acme-jira:2": False, "acme-gh:9": True}  # one reopened: flipped
    store.items.apply([ItemDeletion(source="acme-gh", native_id="9", deleted_at=BASE_TIME + timedelta(hours=1))])
    assert twins() == {"acme-jira:1": False, "acme-jira:2": False, "acme-gh:9": False}  # deleted: flipped


def test_migration_0010_backfills_the_flags(store: Store) -> None:
    @_settings(10)
    @given(ops=st.lists(_op, min_size=1, max_size=16))
    def check(ops: list[Any]) -> None:
        reset_database(store)
        _apply_in_batches(store, ops, [])
        expected = stored_flags(store)
        with store.engine.begin() as conn:  # wrong on purpose: the upgrade must recompute them
            conn.execute(update(item_report_facts).values(parent_missing=True, has_title_twin=True))
        command.downgrade(alembic_config(store.engine), "0009")
        migrate(store.engine)
        assert stored_flags(store) == expected == expected_flags(store)

    check()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_flag_updates_probe_rows_and_never_hash_the_whole_table(store: Store) -> None:
    """PostgreSQL plans a correlated EXISTS either per row or as a "hashed SubPlan" that reads
    the whole table once per statement; with an EXISTS, `maintain_flags`' UPDATEs took the
    second at 100,000 items (bench/README.md, i13syncpg) and here on a small table. The flags
    are looked up per row (`_probe`): no plan of theirs hashes a subquery."""
    store.items.apply([make_item(n, parent_id=f"acme-jira:{n // 10}" if n % 10 else None) for n in range(300)])
    ids = [f"acme-jira:{n}" for n in range(0, 300, 2)]
    by_id = keys_in("postgresql", _F.item_id, "ids")
    updates = [
        _flags_update(["parent_missing"], or_(by_id, keys_in("postgresql", _F.parent_id, "ids"))),
        _flags_update(["has_live_child", "has_open_child"], by_id),
    ]
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE item_report_facts")
        for stmt in updates:
            compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            params = {**compiled.params, "ids": ids}
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", params))
            assert "hashed SubPlan" not in plan, plan

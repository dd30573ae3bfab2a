"""Deliveries converge in any order (issue 8, items 3 and 4), on SQLite and PostgreSQL.

Hypothesis builds a set of deliveries for a few items of one tool: upserts whose WorkItems
are REAL records of that tool (../shared/fixtures) mapped through `hub.normalise.Normaliser`,
re-addressed to a few item ids, at a few tool times (so equal times are common) and with
varied content; and deletions at those times. It applies them in three orders (as drawn;
reversed, so that every pair meets in both orders; and shuffled), the last two with
repeated deliveries mixed in, each cut into arbitrary batches, on an emptied store, and
checks:

1. Same stored state: the items rows (document, raw, deleted, deleted_at, updated_at), the
   tombstones of ids never stored, and the label, assignee and link rows are equal after
   every order. (The hub's own bookkeeping, version, synced_at, seq numbers and a
   tombstone's recorded_at, says when the hub wrote, and is left out.)
2. The number of effective changes is exact. Each item's *live view* is the document of
   its greatest upsert if that upsert beats every deletion of the item, else "not live"
   (the order of `ItemStore.apply`: tool time, then deletion before upsert at equal time,
   then the greater `content_digest`). The changes an order writes are the arrivals that
   change some item's live view: an item appears, its document changes, or it is deleted
   (an arrival that only fills in a deleted item's document, or only records the
   deletion of an id never shown, changes no live view). Repeats therefore add none.
3. Replaying every delivery once more, in any order, writes no change at all.

Person references keep their native id and drop their email: a hub person id is fixed
when an identity is first seen, so an identity that one delivery shows with an email and
another without ends on a different person id depending on order. That is people merging
(`_resolve_people`), not item convergence, and is left out here on purpose.

Example counts: 25 per tool and backend by default, 100 under CI=true (the CI setting).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from connectors.aha.connector import tag
from connectors.productboard import ProductboardConfig, ProductboardConnector
from connectors.productboard.connector import Auxiliary
from hub.db.tables import item_assignees, item_labels, item_links, item_tombstones, items
from hub.normalise import Normaliser
from hub.schema import ItemDeletion, PersonRef, WorkItem
from hub.store import Store
from hub.store.items import _NOT_CONTENT, content_digest, person_id_for
from mappings import MappingError
from tests.conftest import IN_CI, shared_fixtures
from tests.factories import BASE_TIME

EXAMPLES = 50 if IN_CI else 25  # 100 in CI until the suite outgrew its 15-minute budget
TOOLS = ("jira", "github", "gitlab", "linear", "productboard", "aha", "redmine")
CONTEXT = {"base_url": "https://tool.example"}
SLOTS = ("a", "b", "c")  # the native ids the records are re-addressed to
_TABLES = ("item_labels", "item_assignees", "item_links", "items", "item_tombstones", "changes", "cursors")


# ---------------------------------------------------------------- real records, mapped


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _jira(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.json")):
        data = _json(path)
        if isinstance(data, dict) and isinstance(data.get("issue"), dict):
            yield data["issue"]
        elif isinstance(data, dict) and isinstance(data.get("issues"), list):
            yield from data["issues"]
        elif isinstance(data, dict) and "fields" in data and "key" in data:
            yield data


def _github(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith((".response-meta.json", ".recorded-session.json")):
            continue
        data = _json(path)
        if isinstance(data, list):
            yield from data
        elif isinstance(data, dict) and isinstance(data.get("issue"), dict):
            yield data["issue"]


def _gitlab(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.json")):
        data = _json(path)
        if isinstance(data, list):
            yield from data
        elif isinstance(data, dict) and data.get("object_kind") == "issue":
            yield data


def _linear(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("webhook-*.json")):
        data = _json(path)
        if data.get("type") == "Issue":
            yield data["data"]


def _redmine(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.json")):
        data = _json(path)
        if isinstance(data.get("issues"), list):
            yield from data["issues"]
        elif isinstance(data.get("issue"), dict):
            yield data["issue"]


def _aha(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.json")):
        data = _json(path)
        for key, record_type in (("feature", "features"), ("epic", "epics"), ("idea", "ideas")):
            if isinstance(data.get(key), dict):
                yield tag(dict(data[key]), record_type)
        for record in data.get("ideas", []) if isinstance(data.get("ideas"), list) else []:
            yield tag(dict(record), "ideas")


def _productboard(directory: Path) -> Iterator[dict[str, Any]]:
    config = ProductboardConfig.model_validate({"tool": "productboard", "token": "tok"})
    connector = ProductboardConnector("conv-productboard", config)
    for path in sorted(directory.glob("GET-features-id-*.json")):
        yield connector.enrich(_json(path)["data"], Auxiliary())


RECORDS: dict[str, Callable[[Path], Iterator[dict[str, Any]]]] = {
    "jira": _jira,
    "github": _github,
    "gitlab": _gitlab,
    "linear": _linear,
    "productboard": _productboard,
    "aha": _aha,
    "redmine": _redmine,
}


def _without_emails(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    if ref is not None and ref.get("native_id"):
        ref = {**ref, "email": None}
    return ref


@cache
def mapped(tool: str) -> tuple[dict[str, Any], ...]:
    """Every real record of the tool that maps, as a WorkItem's python data."""
    normaliser = Normaliser(tool, {"source": f"conv-{tool}", "tool": tool, **CONTEXT}, {})
    found: list[dict[str, Any]] = []
    for record in RECORDS[tool](shared_fixtures(tool)):
        try:
            item = normaliser.map(record)
        except MappingError:
            continue  # e.g. a GitHub pull request or a thin delivery: refused by design
        data = item.model_dump()
        data["assignees"] = [_without_emails(ref) for ref in data["assignees"]]
        data["reporter"] = _without_emails(data["reporter"])
        found.append(data)
    return tuple(found)


def upsert(tool: str, slot: str, record: int, minute: int, variant: int) -> WorkItem:
    data = dict(mapped(tool)[record])
    data.update(id="", native_id=slot, updated_at=BASE_TIME + timedelta(minutes=minute))
    if variant:
        data["title"] = f"{data['title']} (v{variant})"
    return WorkItem.model_validate(data)


def deletion(tool: str, slot: str, minute: int) -> ItemDeletion:
    return ItemDeletion(source=f"conv-{tool}", native_id=slot, deleted_at=BASE_TIME + timedelta(minutes=minute))


# ---------------------------------------------------------------- the model of the rule


def _resolved_digest(item: WorkItem) -> bytes:
    """content_digest of the document apply stores (person ids filled in as apply does)."""
    copy = item.model_copy(deep=True)
    for ref in [*copy.assignees, copy.reporter]:
        if ref is not None:
            ref.id = person_id_for(copy.source, PersonRef(native_id=ref.native_id, email=ref.email))
    return content_digest(copy.model_dump_json(exclude=_NOT_CONTENT).encode())


def order_key(op: WorkItem | ItemDeletion) -> tuple[Any, ...]:
    """The total order of apply's docstring: tool time, deletion last, then digest."""
    if isinstance(op, ItemDeletion):
        assert op.deleted_at is not None
        return (op.deleted_at, 1, b"")
    return (op.updated_at, 0, _resolved_digest(op))


def expected_changes(ops: list[WorkItem | ItemDeletion]) -> int:
    """Arrivals that change some item's live view (see the module doc, point 2)."""
    best_upsert: dict[str, tuple[Any, ...]] = {}
    best_delete: dict[str, tuple[Any, ...]] = {}
    count = 0
    for op in ops:

        def live(item_id: str) -> tuple[Any, ...] | None:
            up, down = best_upsert.get(item_id), best_delete.get(item_id)
            return up if up is not None and (down is None or up > down) else None

        before = live(op.id)
        best = best_delete if isinstance(op, ItemDeletion) else best_upsert
        key = order_key(op)
        if op.id not in best or key > best[op.id]:
            best[op.id] = key
        count += live(op.id) != before
    return count


# ---------------------------------------------------------------- the store side


def reset(store: Store) -> None:
    with store.engine.begin() as conn:
        for name in _TABLES:
            conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text("UPDATE change_counter SET last_seq = 0"))


def apply_in_batches(store: Store, ops: list[WorkItem | ItemDeletion], cuts: list[int]) -> int:
    bounds = sorted({0, len(ops), *(c for c in cuts if c < len(ops))})
    changed = 0
    for start, end in itertools.pairwise(bounds):
        # Copies: apply fills person ids into the items it is given.
        changed += store.items.apply([op.model_copy(deep=True) for op in ops[start:end]]).changed
    return changed


def stored_state(store: Store) -> dict[str, Any]:
    c = items.c
    t = item_tombstones.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(c.id, c.deleted, c.deleted_at, c.updated_at, c.doc, c.raw).order_by(c.id))
        return {
            "items": [(r.id, r.deleted, r.deleted_at, r.updated_at, json.loads(r.doc), r.raw) for r in rows],
            "tombstones": conn.execute(
                select(t.item_id, t.source, t.native_id, t.deleted_at).order_by(t.item_id)
            ).all(),
            "labels": sorted(conn.execute(select(item_labels)).all()),
            "assignees": sorted(conn.execute(select(item_assignees)).all()),
            "links": sorted(conn.execute(select(item_links)).all(), key=repr),
        }


@st.composite
def deliveries(draw: st.DrawFn, tool: str) -> list[WorkItem | ItemDeletion]:
    records = len(mapped(tool))
    slots = st.sampled_from(SLOTS[: draw(st.integers(1, len(SLOTS)))])
    minutes = st.integers(0, 1)  # two times: equal times are common
    upserts = st.builds(upsert, st.just(tool), slots, st.integers(0, records - 1), minutes, st.integers(0, 2))
    one = st.one_of(upserts, upserts, st.builds(deletion, st.just(tool), slots, minutes))  # 2 upserts : 1 deletion
    return draw(st.lists(one, min_size=1, max_size=8))


@pytest.mark.parametrize("tool", TOOLS)
def test_every_order_of_real_deliveries_ends_in_the_same_state(store: Store, tool: str) -> None:
    assert mapped(tool), f"no real {tool} record maps"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        ops = data.draw(deliveries(tool), label="deliveries")
        repeats = data.draw(st.lists(st.sampled_from(ops), max_size=4), label="repeats")
        # Reversed: every pair of deliveries meets in both orders. Shuffled: any other one.
        reversed_order = [*reversed(ops), *repeats]
        shuffled = data.draw(st.permutations([*ops, *repeats]), label="shuffled")
        cuts = st.lists(st.integers(0, len(shuffled)), max_size=4)

        orders = (ops, reversed_order, shuffled)
        states, changes = [], []
        for order in orders:
            reset(store)
            changes.append(apply_in_batches(store, order, data.draw(cuts, label="batches")))
            states.append(stored_state(store))
            replay = data.draw(st.permutations(order), label="replay")
            assert apply_in_batches(store, replay, data.draw(cuts, label="batches")) == 0
            assert stored_state(store) == states[-1]
        assert states[1] == states[0]
        assert states[2] == states[0]
        assert changes == [expected_changes(order) for order in orders]

    check()

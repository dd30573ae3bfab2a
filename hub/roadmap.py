"""Roadmap rollup and item trees: how far along each roadmap item is, across every tracker.

A roadmap item (initiative, epic, feature) covers the items below it: its children (items
whose `parent_id` is it) and the items that implement it (`implemented_by` links it states,
`implements` links they state; keys and URLs resolved as in hub/links.py), recursively. The
delivery items among those (stories, tasks, bugs, sub-tasks, other) are what its progress
is computed from. Roadmap items found below another (an epic under a feature) are walked
through, not counted.

The walk is breadth-first from the roots, a few indexed queries per level, so its cost
follows the size of the roadmap, not of the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, false, func, or_, select

from hub.db.engine import read_connection
from hub.db.lists import in_list, pairs_in_list
from hub.db.tables import item_links, item_report_facts, items
from hub.links import normalise_key, ref_from_url
from hub.schema import ItemKind, StatusCategory
from hub.store.items import READ_COLUMNS, item_document
from hub.store.queries import resolve_links

ROADMAP_KINDS = (ItemKind.initiative.value, ItemKind.epic.value, ItemKind.feature.value)
DELIVERY_KINDS = tuple(k.value for k in ItemKind if k.value not in ROADMAP_KINDS and k is not ItemKind.idea)
MAX_DEPTH = 8
_CHUNK = 500


@dataclass
class RoadmapQuery:
    source: list[str] = field(default_factory=list)
    container: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    status_category: list[str] = field(default_factory=list)


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The few fields a rollup row shows of an item."""
    return {
        "id": doc["id"],
        "source": doc["source"],
        "tool": doc["tool"],
        "key": doc.get("key"),
        "title": doc.get("title", ""),
        "kind": doc["kind"],
        "status": doc["status"],
        "url": doc.get("url"),
        "updated_at": doc["updated_at"],
    }


def _chunks(conn: Connection, values: Sequence[str]) -> Iterable[Sequence[str]]:
    """SQLite: lists of at most _CHUNK (one bind parameter each); PostgreSQL: one array
    parameter for the lot (hub/db/lists.py)."""
    size = (len(values) or 1) if conn.dialect.name == "postgresql" else _CHUNK
    for start in range(0, len(values), size):
        yield values[start : start + size]


class Graph:
    """Edges from an item to the items it covers, discovered level by level."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.docs: dict[str, dict[str, Any]] = {}
        self.edges: dict[str, dict[str, str]] = defaultdict(dict)  # parent -> {child: via}

    def load(self, ids: Iterable[str]) -> None:
        missing = sorted(set(ids) - self.docs.keys())
        for chunk in _chunks(self.conn, missing):
            rows = self.conn.execute(
                select(*READ_COLUMNS).where(in_list(self.conn, items.c.id, chunk), items.c.deleted == false())
            )
            for row in rows:
                doc = item_document(row)
                self.docs[doc["id"]] = doc

    def expand(self, roots: Iterable[str]) -> None:
        frontier = [r for r in roots if r in self.docs]
        seen = set(frontier)
        for _ in range(MAX_DEPTH):
            if not frontier:
                return
            found = self._covered_by(frontier)
            self.load(child for _, child, _ in found)
            next_frontier = []
            for parent, child, via in found:
                if child not in self.docs or child == parent:
                    continue
                self.edges[parent].setdefault(child, via)
                if child not in seen:
                    seen.add(child)
                    next_frontier.append(child)
            frontier = next_frontier

    def _covered_by(self, frontier: list[str]) -> list[tuple[str, str, str]]:
        """(parent, child, via) for every item directly below one of `frontier`."""
        found: list[tuple[str, str, str]] = []
        refs = {
            (doc["tool"], normalise_key(doc["tool"], doc["key"])): doc["id"]
            for doc in (self.docs[i] for i in frontier)
            if doc.get("key")
        }
        for chunk in _chunks(self.conn, frontier):
            ids = list(chunk)
            # `parent_id IN` implies NOT NULL: the partial index ix_items_parent (migration 0011).
            for row in self.conn.execute(
                select(items.c.id, items.c.parent_id).where(
                    in_list(self.conn, items.c.parent_id, ids), items.c.deleted == false()
                )
            ):
                found.append((row.parent_id, row.id, "parent"))
            # Items that say they implement one of these (by hub id, or by key/URL).
            clauses = [in_list(self.conn, item_links.c.target_id, ids)]
            in_chunk = set(ids)
            chunk_refs = [ref for ref, item_id in refs.items() if item_id in in_chunk]
            if chunk_refs:
                clauses.append(pairs_in_list(self.conn, item_links.c.target_tool, item_links.c.target_key, chunk_refs))
            for link in self.conn.execute(
                select(
                    item_links.c.item_id, item_links.c.target_id, item_links.c.target_tool, item_links.c.target_key
                ).where(item_links.c.type == "implements", or_(*clauses))
            ):
                parent = (
                    link.target_id if link.target_id in self.docs else refs.get((link.target_tool, link.target_key))
                )
                if parent is not None:
                    found.append((parent, link.item_id, "implements"))
        # What these say implements them.
        for parent in frontier:
            for stated in self.docs[parent].get("links") or []:
                if stated.get("type") != "implemented_by":
                    continue
                target = stated.get("target_id") or self._resolve(stated.get("url"))
                if target:
                    found.append((parent, target, "implemented_by"))
        return found

    def _resolve(self, url: str | None) -> str | None:
        ref = ref_from_url(url) if url else None
        if ref is None:
            return None
        row = self.conn.execute(
            select(items.c.id).where(items.c.tool == ref.tool, items.c.key == ref.key, items.c.deleted == false())
        ).first()
        return None if row is None else str(row.id)

    def descendants(self, root: str) -> list[str]:
        out: list[str] = []
        stack = list(self.edges.get(root, {}))
        seen = {root}
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            out.append(node)
            stack.extend(self.edges.get(node, {}))
        return out


def _is_open(doc: dict[str, Any]) -> bool:
    return doc["status"]["category"] not in (StatusCategory.done.value, StatusCategory.cancelled.value)


def rollup(docs: dict[str, dict[str, Any]], root: dict[str, Any], below: list[str]) -> dict[str, Any]:
    """Counts by status, progress by count and by estimate, blocked items, newest activity."""
    delivery = [docs[i] for i in below if docs[i]["kind"] in DELIVERY_KINDS]
    by_status = {c.value: 0 for c in StatusCategory}
    for doc in delivery:
        by_status[doc["status"]["category"]] += 1
    counted = [d for d in delivery if d["status"]["category"] != StatusCategory.cancelled.value]
    done = [d for d in counted if d["status"]["category"] == StatusCategory.done.value]
    estimated = [d for d in counted if d.get("estimate")]
    estimate_total = sum(d["estimate"]["value"] for d in estimated)
    estimate_done = sum(
        d["estimate"]["value"] for d in estimated if d["status"]["category"] == StatusCategory.done.value
    )
    blocked = []
    for doc in delivery:
        if not _is_open(doc):
            continue
        for link in doc.get("links") or []:
            if link.get("type") != "blocked_by":
                continue
            blocker = docs.get(link.get("target_id") or "")
            if blocker is None or _is_open(blocker):
                blocked.append(doc["id"])
                break
    activity = max([root["updated_at"], *(docs[i]["updated_at"] for i in below)])
    return {
        "item": summary(root),
        "delivery_total": len(delivery),
        "by_status": by_status,
        "progress": {
            "by_count": round(len(done) / len(counted), 4) if counted else None,
            "by_estimate": round(estimate_done / estimate_total, 4) if estimate_total else None,
            "estimate_done": estimate_done,
            "estimate_total": estimate_total,
            "estimated_items": len(estimated),
        },
        "blocked": sorted(blocked),
        "newest_activity": activity,
        "delivery_items": [summary(d) for d in sorted(delivery, key=lambda d: d["id"])],
    }


def _matches(doc: dict[str, Any], query: RoadmapQuery) -> bool:
    if query.release:
        release = doc.get("release") or {}
        if release.get("id") not in query.release and release.get("name") not in query.release:
            return False
    return True


class RoadmapService:
    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms  # API reads: see hub.db.engine.read_connection

    def roadmap(self, query: RoadmapQuery, *, uncovered_limit: int = 50) -> dict[str, Any]:
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            graph = Graph(conn)
            cond = [items.c.deleted == false()]
            if query.source:
                cond.append(items.c.source.in_(query.source))
            if query.container:
                cond.append(or_(items.c.container_id.in_(query.container), items.c.container_key.in_(query.container)))
            if query.status_category:
                cond.append(items.c.status_category.in_(query.status_category))
            # One `kind = ?` walk of ix_items_kind_updated per roadmap kind, unordered (the
            # roots are sorted below): with `kind IN (...)` and ORDER BY id, SQLite's
            # statistics (rows per kind averaged over every kind, stories included) made it
            # scan the whole table in id order for the few hundred roadmap items.
            for kind in ROADMAP_KINDS:
                for row in conn.execute(select(*READ_COLUMNS).where(items.c.kind == kind, *cond)):
                    doc = item_document(row)
                    if _matches(doc, query):
                        graph.docs[doc["id"]] = doc
            roots = sorted(graph.docs)
            resolve_links(conn, [graph.docs[r] for r in roots])
            graph.expand(roots)
            below = {root: graph.descendants(root) for root in roots}
            covered_ids = {i for ids in below.values() for i in ids}
            resolve_links(conn, [graph.docs[i] for i in covered_ids])
            # A blocker may sit outside every roadmap item's subtree: read it from the store
            # (a blocker that is not stored at all stays unknown, and counts as open).
            graph.load(
                link["target_id"]
                for i in covered_ids
                for link in graph.docs[i].get("links") or []
                if link.get("type") == "blocked_by" and link.get("target_id")
            )
            rows = [rollup(graph.docs, graph.docs[root], below[root]) for root in roots]
            covered = {i for ids in below.values() for i in ids if graph.docs[i]["kind"] in DELIVERY_KINDS}
            uncovered = self._uncovered(conn, covered, uncovered_limit)
        return {"roadmap": rows, "uncovered": uncovered}

    @staticmethod
    def _uncovered(conn: Connection, covered: set[str], limit: int) -> dict[str, Any]:
        """Delivery items no roadmap item covers: how many, and the newest few."""
        live_delivery = and_(items.c.kind.in_(DELIVERY_KINDS), items.c.deleted == false())
        # Counted on the narrow report facts (one row per item, written with it in the same
        # transaction: hub/store/report_facts.py), not by reading the wide items rows.
        facts = item_report_facts.c
        total = int(
            conn.execute(
                select(func.count())
                .select_from(item_report_facts)
                .where(facts.kind.in_(DELIVERY_KINDS), facts.deleted == false())
            ).scalar_one()
        )
        found: list[dict[str, Any]] = []
        stmt = select(*READ_COLUMNS, items.c.id).where(live_delivery).order_by(items.c.updated_at.desc(), items.c.id)
        for row in conn.execution_options(yield_per=500).execute(stmt):
            if row.id in covered:
                continue
            found.append(summary(item_document(row)))
            if len(found) >= limit:
                break
        return {"count": total - len(covered), "items": found}

    def tree(self, item_id: str, *, depth: int = 5) -> dict[str, Any] | None:
        """One item with everything it covers (children, implementers) as a nested tree."""
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            graph = Graph(conn)
            graph.load([item_id])
            if item_id not in graph.docs:
                return None
            resolve_links(conn, [graph.docs[item_id]])
            graph.expand([item_id])
            docs = list(graph.docs.values())
            resolve_links(conn, docs)

        def node(current: str, via: str | None, level: int, path: frozenset[str]) -> dict[str, Any]:
            doc = graph.docs[current]
            children = []
            if level < depth:
                for child, how in sorted(graph.edges.get(current, {}).items()):
                    if child not in path:
                        children.append(node(child, how, level + 1, path | {child}))
            return {**summary(doc), "via": via, "links": doc.get("links") or [], "children": children}

        return node(item_id, None, 0, frozenset({item_id}))

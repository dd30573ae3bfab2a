"""Priority matrix: every open item in one of four quadrants, urgent x important.

Used by `GET /v1/insights/priorities` and `opshub report priorities`. The rules (defaults;
each is a setting, hub/settings.py `priorities_*`, so `HUB_PRIORITIES_WINDOW_DAYS=7` etc.):

- **Open**: a live (not deleted) item whose status category is not done or cancelled, among
  the items matching the /v1/items filters.
- **Urgent** when any of these fires:
  - `priority`: its priority level is urgent or high (`priorities_urgent_levels`);
  - `due` / `overdue`: its `due_on` is within 14 days of `as_of` (`priorities_window_days`),
    or already past (an open item past its due date is the most urgent of all);
  - `release` / `release_passed`: its release's `release_on` is within 14 days, or already
    past while the item is still open.
- **Important** when any of these fires:
  - `roadmap`: it is on a roadmap item, as /v1/roadmap sees it (hub/roadmap.py): below an
    initiative, epic or feature through parents, `implements` links it states (by hub id,
    key or URL) or `implemented_by` links the roadmap item states, recursively up to
    hub/roadmap.py's `MAX_DEPTH` levels. Any live roadmap item counts, whatever its status
    and whether or not the filters match it;
  - `rice`: its RICE score is in the top quartile (`priorities_rice_top_share`) of the
    scores of the open items matching the filters: the items whose score is at least the
    score at nearest rank ceil(0.25 x n) counted from the highest (ties included;
    hub/flow/stats.py `rank_index`). Items without a score (a RICE input missing) never fire it;
  - `kind`: it is an initiative, epic or feature (`priorities_important_kinds`).

Reads stay in bulk: one query for the open items (due and release dates extracted from the
document in SQL, so no document is parsed in Python), one for the parent edges and one for
the links of the roadmap walk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, and_, cast, false, func, select
from sqlalchemy.dialects.postgresql import JSON as PG_JSON

from hub.db.engine import read_connection
from hub.db.tables import item_links, items
from hub.flow.stats import rank_index
from hub.links import normalise_key
from hub.roadmap import MAX_DEPTH, ROADMAP_KINDS
from hub.schema import StatusCategory
from hub.settings import Settings
from hub.store.queries import ItemQueries, ItemQuery

_CLOSED = (StatusCategory.done.value, StatusCategory.cancelled.value)
_CHUNK = 500


class Quadrant(StrEnum):
    """Eisenhower's four: do first, schedule, delegate (or drop), and drop."""

    urgent_important = "urgent_important"
    important_not_urgent = "important_not_urgent"
    urgent_not_important = "urgent_not_important"
    neither = "neither"


@dataclass(frozen=True)
class PriorityRules:
    """The matrix's rules (module doc); `from_settings` reads them from the one settings object."""

    urgent_levels: tuple[str, ...] = ("urgent", "high")
    window_days: int = 14
    rice_top_share: float = 0.25
    important_kinds: tuple[str, ...] = ROADMAP_KINDS

    @classmethod
    def from_settings(cls, settings: Settings) -> PriorityRules:
        return cls(
            urgent_levels=tuple(settings.priorities_urgent_levels),
            window_days=settings.priorities_window_days,
            rice_top_share=settings.priorities_rice_top_share,
            important_kinds=tuple(settings.priorities_important_kinds),
        )

    def describe(self, as_of: date) -> dict[str, str]:
        horizon = as_of + timedelta(days=self.window_days)
        return {
            "open": "live items matching the filters whose status category is not done or cancelled",
            "urgent": f"priority level in {list(self.urgent_levels)}, or due_on or release.release_on on or "
            f"before {horizon} ({self.window_days} days after {as_of}; a date already past counts as urgent)",
            "important": "on a roadmap item (below an initiative, epic or feature via parent, implements or "
            f"implemented_by, as /v1/roadmap), or a RICE score in the top {self.rice_top_share:g} share of the "
            "open items' scores (at least the score at nearest rank ceil(share x n) from the highest, ties "
            f"included), or of kind {list(self.important_kinds)}",
        }


class PriorityItem(BaseModel):
    id: str
    key: str | None
    title: str
    url: str | None
    kind: str
    why: list[str] = Field(
        description="The rules that fired: priority, due, overdue, release, release_passed "
        "(urgent); roadmap, rice, kind (important)."
    )


class QuadrantPublic(BaseModel):
    count: int
    items: list[PriorityItem] = Field(description="A page of the quadrant's items, by id.")
    next_after: str | None = Field(description="Pass as `after` (with `quadrant`) for the next page; null at the end.")


class PriorityMatrix(BaseModel):
    as_of: date
    open_items: int
    rules: dict[str, str]
    rice_threshold: float | None = Field(description="Lowest RICE score in the top share; null with no scores.")
    quadrants: dict[Quadrant, QuadrantPublic]
    delegate_or_drop: QuadrantPublic = Field(
        description="Urgent but not important: candidates to delegate or drop (the urgent_not_important quadrant)."
    )


@dataclass(slots=True)
class _Open:
    id: str
    key: str | None
    title: str
    url: str | None
    kind: str
    why: list[str] = field(default_factory=list)
    urgent: bool = False
    important: bool = False


def _text_path(conn: Connection, *path: str) -> Any:
    """`doc`'s value at `path` as text, in SQL (the document is stored as JSON text)."""
    if conn.dialect.name == "postgresql":
        node: Any = cast(items.c.doc, PG_JSON)
        for step in path[:-1]:
            node = node[step]
        return node[path[-1]].astext
    return func.json_extract(items.c.doc, "$." + ".".join(path))


def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _rice_threshold(scores: list[float], share: float) -> float | None:
    if not scores:
        return None
    ranked = sorted(scores, reverse=True)
    return ranked[rank_index(len(ranked), share * 100)]


def on_roadmap(conn: Connection) -> set[str]:
    """Every live item below a live roadmap item (hub/roadmap.py's edges; module doc)."""
    live = items.c.deleted == false()
    roadmap: dict[str, tuple[str, str | None]] = {
        row.id: (row.tool, row.key)
        for row in conn.execute(
            select(items.c.id, items.c.tool, items.c.key).where(live, items.c.kind.in_(ROADMAP_KINDS))
        )
    }
    if not roadmap:
        return set()
    refs = {(tool, normalise_key(tool, key)): item_id for item_id, (tool, key) in roadmap.items() if key}
    below: dict[str, set[str]] = defaultdict(set)
    for child, parent in conn.execute(
        select(items.c.id, items.c.parent_id).where(live, items.c.parent_id.is_not(None))
    ):
        below[parent].add(child)
    unresolved: list[tuple[str, str, str]] = []
    for source_id, link_type, target_id, tool, key in conn.execute(
        select(
            item_links.c.item_id,
            item_links.c.type,
            item_links.c.target_id,
            item_links.c.target_tool,
            item_links.c.target_key,
        ).where(item_links.c.type.in_(("implements", "implemented_by")))
    ):
        if link_type == "implements":
            parent = target_id if target_id in roadmap else refs.get((tool, key)) if key else None
            if parent is not None:
                below[parent].add(source_id)
        elif source_id in roadmap:  # what a roadmap item says implements it
            if target_id:
                below[source_id].add(target_id)
            elif tool and key:
                unresolved.append((source_id, tool, key))
    for parent, child in _resolve(conn, unresolved):
        below[parent].add(child)
    live_ids = _live(conn, {c for children in below.values() for c in children})
    covered: set[str] = set()
    frontier = list(roadmap)
    for _ in range(MAX_DEPTH):
        nxt = [c for p in frontier for c in below.get(p, ()) if c in live_ids and c not in covered]
        covered.update(nxt)
        frontier = nxt
        if not frontier:
            break
    return covered


def _resolve(conn: Connection, refs: Sequence[tuple[str, str, str]]) -> Iterable[tuple[str, str]]:
    """(roadmap item, item) for `implemented_by` links that name their target by key or URL."""
    for parent, tool, key in refs:
        row = conn.execute(
            select(items.c.id).where(items.c.tool == tool, items.c.key == key, items.c.deleted == false())
        ).first()
        if row is not None:
            yield parent, str(row.id)


def _live(conn: Connection, ids: set[str]) -> set[str]:
    wanted = sorted(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            conn.execute(select(items.c.id).where(items.c.id.in_(chunk), items.c.deleted == false())).scalars()
        )
    return found


class PriorityService:
    def __init__(self, engine: Engine, rules: PriorityRules, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.rules = rules
        self.statement_timeout_ms = statement_timeout_ms  # API reads: see hub.db.engine.read_connection
        self._queries = ItemQueries(engine)

    def matrix(
        self,
        query: ItemQuery,
        *,
        as_of: date,
        limit: int = 50,
        quadrant: Quadrant | None = None,
        after: str | None = None,
    ) -> PriorityMatrix:
        """The four quadrants of the open items matching `query`; each lists up to `limit` items
        by id. With `quadrant`, `after` pages that quadrant (the others start at their first)."""
        rules = self.rules
        horizon = as_of + timedelta(days=rules.window_days)
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            conditions = self._queries.filter_conditions(conn, query)
            stmt = select(
                items.c.id,
                items.c.key,
                items.c.title,
                items.c.kind,
                items.c.priority_level,
                items.c.rice_score,
                _text_path(conn, "url"),
                _text_path(conn, "due_on"),
                _text_path(conn, "release", "release_on"),
            ).where(and_(*conditions, items.c.deleted == false(), ~items.c.status_category.in_(_CLOSED)))
            # Sorted here, not in SQL: paging compares ids in Python, whatever the database's collation.
            rows = sorted(conn.execute(stmt).all(), key=lambda row: str(row.id))
            roadmap = on_roadmap(conn) if rows else set()
        threshold = _rice_threshold([r.rice_score for r in rows if r.rice_score is not None], rules.rice_top_share)
        buckets: dict[Quadrant, list[_Open]] = {q: [] for q in Quadrant}
        for item_id, key, title, kind, level, score, url, due_on, release_on in rows:
            entry = _Open(item_id, key, title, url, kind)
            if level in rules.urgent_levels:
                entry.why.append("priority")
            for name, day in (("due", _day(due_on)), ("release", _day(release_on))):
                if day is not None and day <= horizon:
                    entry.why.append(("overdue" if name == "due" else "release_passed") if day < as_of else name)
            urgent_rules = len(entry.why)
            if item_id in roadmap:
                entry.why.append("roadmap")
            if threshold is not None and score is not None and score >= threshold:
                entry.why.append("rice")
            if kind in rules.important_kinds:
                entry.why.append("kind")
            entry.urgent, entry.important = urgent_rules > 0, len(entry.why) > urgent_rules
            buckets[_quadrant(entry.urgent, entry.important)].append(entry)
        quadrants = {q: _page(found, limit, after if q is quadrant else None) for q, found in buckets.items()}
        return PriorityMatrix(
            as_of=as_of,
            open_items=len(rows),
            rules=rules.describe(as_of),
            rice_threshold=threshold,
            quadrants=quadrants,
            delegate_or_drop=quadrants[Quadrant.urgent_not_important],
        )


def _quadrant(urgent: bool, important: bool) -> Quadrant:
    if urgent:
        return Quadrant.urgent_important if important else Quadrant.urgent_not_important
    return Quadrant.important_not_urgent if important else Quadrant.neither


def _page(found: list[_Open], limit: int, after: str | None) -> QuadrantPublic:
    """Items after id `after` (the rows come sorted by id), `limit` of them."""
    start = 0
    if after is not None:
        start = next((i for i, e in enumerate(found) if e.id > after), len(found))
    chunk = found[start : start + limit]
    more = start + limit < len(found)
    return QuadrantPublic(
        count=len(found),
        items=[PriorityItem(id=e.id, key=e.key, title=e.title, url=e.url, kind=e.kind, why=e.why) for e in chunk],
        next_after=chunk[-1].id if more and chunk else None,
    )

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
    key or URL) or `implemented_by` links an item above states, recursively up to
    hub/roadmap.py's `MAX_DEPTH` levels. Any live roadmap item counts, whatever its status
    and whether or not the filters match it;
  - `rice`: its RICE score is in the top quartile (`priorities_rice_top_share`) of the
    scores of the open items matching the filters: the items whose score is at least the
    score at nearest rank ceil(0.25 x n) counted from the highest (ties included;
    hub/flow/stats.py `rank_index`). Items without a score (a RICE input missing) never fire it;
  - `kind`: it is an initiative, epic or feature (`priorities_important_kinds`).

Reads stay in bulk and narrow (from `item_report_facts`, the rows written with each item: no
document parsed, no wide items row read): the RICE threshold by two aggregate queries; one
query for the open items that returns each as (id, parent, code), the code saying which
rules other than `roadmap` fired (decided in SQL); then `on_roadmap`: the roadmap items, the
implements/implemented_by links, and the parents of the items' ancestors by primary key,
level by level; the rest of a row, key, title and URL only for the items on the pages.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Connection, Engine, and_, case, false, func, or_, select

from hub.db.engine import read_connection
from hub.db.tables import item_links, item_report_facts, items
from hub.flow.stats import rank_index
from hub.links import normalise_key
from hub.roadmap import MAX_DEPTH, ROADMAP_KINDS
from hub.schema import StatusCategory
from hub.settings import Settings
from hub.store.queries import ItemQueries, ItemQuery
from hub.store.report_facts import conditions_on_facts

_CLOSED = (StatusCategory.done.value, StatusCategory.cancelled.value)
_CHUNK = 500
_OpenRow = Sequence[Any]  # a result Row
"""(id, kind, priority level, RICE score, due_on, release_on) of an item on a page, or
(id, parent_id, quadrant code) of every open item (`PriorityService.matrix`)."""


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
            urgent_levels=tuple(level.value for level in settings.priorities_urgent_levels),
            window_days=settings.priorities_window_days,
            rice_top_share=settings.priorities_rice_top_share,
            important_kinds=tuple(kind.value for kind in settings.priorities_important_kinds),
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


def on_roadmap(conn: Connection, parent_of: dict[str, str | None]) -> set[str]:
    """Which of the live items `parent_of` (id -> parent_id) holds are below a live roadmap item.

    The edges are hub/roadmap.py's (module doc): parent -> child, the target of an
    `implements` link -> the item stating it, and an item -> what it says is `implemented_by`
    it. Links by key or URL count when they name a roadmap item (an `implements` link) or any
    live item (an `implemented_by` link). Rather than walking down from every roadmap item
    of the store, this walks up from the asked items (at most `MAX_DEPTH` levels, as
    /v1/roadmap walks down), so its cost follows the items asked about: the parents of a
    level not yet known are read by primary key, in chunks."""
    live = items.c.deleted == false()
    # One `kind = ?` walk of ix_items_kind_updated per roadmap kind (as hub/roadmap.py reads
    # its roots): with `kind IN (...)` SQLite's statistics (rows per kind averaged over every
    # kind, stories included) made it scan the whole table for the few roadmap items.
    roadmap: dict[str, tuple[str, str | None]] = {
        row.id: (row.tool, row.key)
        for kind in ROADMAP_KINDS
        for row in conn.execute(select(items.c.id, items.c.tool, items.c.key).where(live, items.c.kind == kind))
    }
    if not roadmap:
        return set()
    refs = {(tool, normalise_key(tool, key)): item_id for item_id, (tool, key) in roadmap.items() if key}
    above: dict[str, set[str]] = defaultdict(set)  # item -> items directly above it through a link
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
            target = target_id or (refs.get((tool, key)) if key else None)
            if target:
                above[source_id].add(target)
        elif target_id:  # source_id says target_id implements it: source_id is above
            above[target_id].add(source_id)
        elif tool and key:
            unresolved.append((source_id, tool, key))
    for parent, child in _resolve(conn, unresolved):
        above[child].add(parent)
    known = dict(parent_of)  # live items whose parent is known
    level = set(known)
    relevant = set(known)
    for _ in range(MAX_DEPTH):
        # Sets in bulk, not a loop per item: this runs over every open item asked about.
        preds = {above_id for item in level if (above_id := known[item]) is not None}
        preds.update(p for item in level & above.keys() for p in above[item])
        fresh = preds - relevant - roadmap.keys()
        known.update(_parents(conn, fresh))  # items not found are deleted or unknown: not walked
        level = {p for p in fresh if p in known}
        relevant |= level
        if not level:
            break
    below: dict[str, list[str]] = defaultdict(list)
    for item in relevant:
        parent_id = known[item]
        if parent_id is not None and (parent_id in relevant or parent_id in roadmap):
            below[parent_id].append(item)
    for item in relevant & above.keys():
        for p in above[item]:
            if p in relevant or p in roadmap:
                below[p].append(item)
    covered: set[str] = set()
    frontier = [r for r in roadmap if r in below]
    for _ in range(MAX_DEPTH):
        frontier = [c for p in frontier for c in below.get(p, ()) if c not in covered]
        covered.update(frontier)
        if not frontier:
            break
    return covered & parent_of.keys()


def _parents(conn: Connection, ids: set[str]) -> dict[str, str | None]:
    """id -> parent_id of the live items among `ids`."""
    wanted = sorted(ids)
    found: dict[str, str | None] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        stmt = select(items.c.id, items.c.parent_id).where(items.c.id.in_(chunk), items.c.deleted == false())
        found.update((row.id, row.parent_id) for row in conn.execute(stmt))
    return found


def _resolve(conn: Connection, refs: Sequence[tuple[str, str, str]]) -> Iterable[tuple[str, str]]:
    """(roadmap item, item) for `implemented_by` links that name their target by key or URL."""
    for parent, tool, key in refs:
        row = conn.execute(
            select(items.c.id).where(items.c.tool == tool, items.c.key == key, items.c.deleted == false())
        ).first()
        if row is not None:
            yield parent, str(row.id)


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
        horizon = (as_of + timedelta(days=rules.window_days)).isoformat()
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            # Read from the narrow facts rows written with each item (hub/store/report_facts.py):
            # the dates without parsing a document, and no wide items row read.
            facts = item_report_facts.c
            conditions = conditions_on_facts(self._queries.filter_conditions(conn, query))
            open_items = and_(*conditions, facts.deleted == false(), ~facts.status_category.in_(_CLOSED))
            threshold = _rice_threshold_sql(conn, open_items, rules.rice_top_share)
            # Every rule but `roadmap` decided in SQL, as one small code per item (2: urgent,
            # 1: important without the roadmap), so the 65,000 open items of "everything" come
            # back as (id, parent, code) triples: the roadmap walk needs each item's parent;
            # the rest of a row is read only for the items on the pages (`_page_rows`).
            urgent = or_(
                facts.priority_level.in_(rules.urgent_levels),
                and_(facts.due_on != "", facts.due_on <= horizon),
                and_(facts.release_on != "", facts.release_on <= horizon),
            )
            important: list[ColumnElement[bool]] = [facts.kind.in_(rules.important_kinds)]
            if threshold is not None:
                important.append(facts.rice_score >= threshold)
            code = case((urgent, 2), else_=0) + case((or_(*important), 1), else_=0)
            triples = conn.execute(select(facts.item_id, facts.parent_id, code).where(open_items)).all()
            roadmap = on_roadmap(conn, {row[0]: row[1] for row in triples}) if triples else set()
            buckets = _buckets(triples, roadmap)
            judge = _Judge(rules, as_of, roadmap, threshold)
            pages = {q: _page(found, limit, after if q is quadrant else None) for q, found in buckets.items()}
            page_rows = _page_rows(conn, [item_id for page, _ in pages.values() for item_id in page])
            shown = _shown(conn, list(page_rows))
        quadrants = {
            q: QuadrantPublic(
                count=len(buckets[q]),
                items=[
                    PriorityItem(
                        id=item_id,
                        kind=page_rows[item_id][1],
                        why=judge.why(page_rows[item_id]),
                        **shown[item_id],
                    )
                    for item_id in page
                ],
                next_after=next_after,
            )
            for q, (page, next_after) in pages.items()
        }
        return PriorityMatrix(
            as_of=as_of,
            open_items=len(triples),
            rules=rules.describe(as_of),
            rice_threshold=threshold,
            quadrants=quadrants,
            delegate_or_drop=quadrants[Quadrant.urgent_not_important],
        )


def _rice_threshold_sql(conn: Connection, open_items: ColumnElement[bool], share: float) -> float | None:
    """The lowest RICE score in the top `share` of the open items' scores (the score at
    nearest rank ceil(share x n) from the highest, ties included), None with no scores.
    Computed by the database: the count of scores, then the one score at that rank (no
    20,000 scores read to take one)."""
    scored = and_(open_items, item_report_facts.c.rice_score.is_not(None))
    count = conn.execute(select(func.count()).select_from(item_report_facts).where(scored)).scalar_one()
    if not count:
        return None
    stmt = (
        select(item_report_facts.c.rice_score)
        .where(scored)
        .order_by(item_report_facts.c.rice_score.desc())
        .offset(rank_index(count, share * 100))
        .limit(1)
    )
    return float(conn.execute(stmt).scalar_one())


def _buckets(triples: Sequence[_OpenRow], roadmap: set[str]) -> dict[Quadrant, list[str]]:
    """The ids of each quadrant, sorted (code-point order: paging compares ids in Python,
    whatever the database's collation). `triples` are (id, parent, code), code as in `matrix`."""
    by_code: dict[int, list[str]] = {0: [], 1: [], 2: [], 3: []}
    for item_id, _, code in triples:
        by_code[code].append(item_id)
    # Not important by the SQL rules: important after all when on the roadmap.
    lifted_urgent = [i for i in by_code[2] if i in roadmap] if roadmap else []
    lifted_calm = [i for i in by_code[0] if i in roadmap] if roadmap else []
    if roadmap:
        by_code[2] = [i for i in by_code[2] if i not in roadmap]
        by_code[0] = [i for i in by_code[0] if i not in roadmap]
    return {
        Quadrant.urgent_important: sorted(by_code[3] + lifted_urgent),
        Quadrant.important_not_urgent: sorted(by_code[1] + lifted_calm),
        Quadrant.urgent_not_important: sorted(by_code[2]),
        Quadrant.neither: sorted(by_code[0]),
    }


def _page_rows(conn: Connection, ids: list[str]) -> dict[str, _OpenRow]:
    """The rows `_Judge.why` reads, for the items on the pages."""
    facts = item_report_facts.c
    found: dict[str, _OpenRow] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        stmt = select(
            facts.item_id, facts.kind, facts.priority_level, facts.rice_score, facts.due_on, facts.release_on
        ).where(facts.item_id.in_(chunk))
        found.update((row[0], row) for row in conn.execute(stmt))
    return {item_id: found[item_id] for item_id in ids}


def _shown(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Key, title and URL of the items on the pages (only these are read: the URL is in the document)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        stmt = (
            select(items.c.id, items.c.key, items.c.title, item_report_facts.c.url)
            .outerjoin(item_report_facts, item_report_facts.c.item_id == items.c.id)
            .where(items.c.id.in_(chunk))
        )
        for item_id, key, title, url in conn.execute(stmt):
            found[item_id] = {"key": key, "title": title, "url": url}
    return found


def _page(found: list[str], limit: int, after: str | None) -> tuple[list[str], str | None]:
    """Up to `limit` ids after id `after` (`found` is sorted), and the next page's `after`."""
    start = bisect_right(found, after) if after is not None else 0
    chunk = found[start : start + limit]
    more = start + limit < len(found)
    return chunk, chunk[-1] if more and chunk else None


class _Judge:
    """The rules applied to one row (id, kind, priority level, RICE score, due_on, release_on).

    The quadrants are decided in SQL (`PriorityService.matrix`, the same rules as `_urgent`
    and `_important`); `why` names the rules that fired, for the items on the pages.
    ISO dates compare as text, so no date is parsed per row.
    """

    def __init__(self, rules: PriorityRules, as_of: date, roadmap: set[str], threshold: float | None) -> None:
        self.levels = frozenset(rules.urgent_levels)
        self.kinds = frozenset(rules.important_kinds)
        self.today = as_of.isoformat()
        self.horizon = (as_of + timedelta(days=rules.window_days)).isoformat()
        self.roadmap = roadmap
        self.threshold = threshold

    def _soon(self, day: str | None) -> bool:
        return bool(day) and str(day)[:10] <= self.horizon

    def _urgent(self, row: _OpenRow) -> tuple[bool, bool, bool]:
        return row[2] in self.levels, self._soon(row[4]), self._soon(row[5])

    def _important(self, row: _OpenRow) -> tuple[bool, bool, bool]:
        score = row[3]
        return (
            row[0] in self.roadmap,
            self.threshold is not None and score is not None and score >= self.threshold,
            row[1] in self.kinds,
        )

    def why(self, row: _OpenRow) -> list[str]:
        priority, due, release = self._urgent(row)
        roadmap, rice, kind = self._important(row)
        fired = [
            (priority, "priority"),
            (due, "overdue" if due and str(row[4])[:10] < self.today else "due"),
            (release, "release_passed" if release and str(row[5])[:10] < self.today else "release"),
            (roadmap, "roadmap"),
            (rice, "rice"),
            (kind, "kind"),
        ]
        return [name for on, name in fired if on]

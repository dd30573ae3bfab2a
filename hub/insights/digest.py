"""Weekly status digest: what happened in a period, per team and per roadmap item.

Used by `GET /v1/insights/digest` and `opshub report digest`; one service, so the API, the
Markdown and the terminal can never disagree. It replaces a status meeting, so it stays
short: counts first, then at most `named` items per point, each linking to the item in its
tool.

Rules (each point counts an item once; the README repeats them):

- finished: the item entered `done` in the period (its status history,
  hub/store/transitions.py and hub/flow/history.py, on the tool's clock);
- started: its first entry into `in_progress` (`ItemHistory.started_at`) falls in the period;
- became blocked: it entered a status named with the word "blocked" in the period, or it is
  open now, has a `blocked_by` link to an open or unknown item and was updated in the period
  (links carry no time of their own, so the item's `updated_at` stands in for the link's);
- reopened: it left `done` for `backlog`, `todo` or `in_progress` in the period;
- new urgent/high: created in the period with priority `urgent` or `high`;
- overdue: open now (not done or cancelled) with `due_on` or its release's `release_on`
  on a day that had ended by `until` (before `until`'s date);
- RICE top 10: open items by `rice_score` now. The store keeps no past RICE values (the change
  log names changed fields, not their values), so the ranking at the period's start is
  *approximated*: the current scores of the items that existed and were open when the period
  began (history where known, else the current status). Movement is that rank minus the rank
  now; an item not in that ranking is `new`.

Team = the item's container (key, else id). Roadmap item = every initiative/feature/epic
above the item through `parent_id` or an `implements`/`implemented_by` link, as in
hub/roadmap.py, walked upwards from the items named in the digest only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, and_, case, false, func, or_, select

from hub.db.engine import read_connection
from hub.db.tables import item_links, item_report_facts, items, status_transitions
from hub.flow.history import (
    CATEGORY_RANK,
    OPEN,
    STARTED,
    ItemHistory,
    TransitionSource,
    build_history,
)
from hub.roadmap import ROADMAP_KINDS
from hub.schema import StatusCategory, to_utc
from hub.store.flow_facts import stored_transitions as histories_of  # bulk reader: few columns
from hub.store.items import READ_COLUMNS, item_document

DEFAULT_DAYS = 7
DEFAULT_NAMED = 3
RICE_TOP = 10
POINTS = ("finished", "started", "blocked", "reopened", "new_urgent", "overdue")
POINT_TITLES = {
    "finished": "Finished",
    "started": "Started",
    "blocked": "Became blocked",
    "reopened": "Reopened",
    "new_urgent": "New urgent/high",
    "overdue": "Past due or release date",
}
_CHUNK = 500
_BLOCKED = re.compile(r"\bblocked\b", re.IGNORECASE)
"""A status named "Blocked", "Blocked by vendor", "On hold / blocked"; not "Unblocked"."""
_T = status_transitions.c
_CLOSED = (StatusCategory.done.value, StatusCategory.cancelled.value)


class ItemRef(BaseModel):
    id: str
    key: str | None
    title: str
    url: str | None
    tool: str


class PointPublic(BaseModel):
    count: int
    items: list[ItemRef]
    """At most `named` items, most recent event first."""


class GroupDigest(BaseModel):
    counts: dict[str, int]
    points: dict[str, PointPublic]


class TeamDigest(GroupDigest):
    team: str


class RoadmapDigest(GroupDigest):
    item: ItemRef


class RiceEntry(BaseModel):
    rank: int
    item: ItemRef
    score: float
    start_rank: int | None
    movement: int | None
    """start_rank - rank (positive: moved up); None for an item new to the ranking."""


class DigestReport(BaseModel):
    since: datetime
    until: datetime
    named: int
    totals: GroupDigest
    teams: list[TeamDigest]
    roadmap: list[RoadmapDigest]
    rice_top: list[RiceEntry]
    rice_start_approximated: bool = True
    rules: dict[str, str]


RULES = {
    "finished": "entered done in the period (status history, tool's clock)",
    "started": "first entry into in_progress in the period",
    "blocked": "entered a status named with the word blocked in the period, or open with a blocked_by link to an "
    "open or unknown item and updated in the period",
    "reopened": "left done for backlog, todo or in_progress in the period",
    "new_urgent": "created in the period with priority urgent or high",
    "overdue": "open now with due_on or release.release_on before the date of until",
    "rice_top": "open items by RICE score now; the start ranking uses current scores of the items open "
    "when the period began (past scores are not stored)",
}


def default_window(now: datetime, days: int = DEFAULT_DAYS) -> tuple[datetime, datetime]:
    now = to_utc(now)
    return now - timedelta(days=days), now


@dataclass(frozen=True, slots=True)
class _Event:
    item_id: str
    point: str
    at: datetime


def _in(at: datetime | None, since: datetime, until: datetime) -> bool:
    return at is not None and since <= at < until


def history_events(history: ItemHistory, since: datetime, until: datetime) -> list[_Event]:
    """finished / started / reopened / blocked-by-status events of one history in [since, until)."""
    found: dict[str, datetime] = {}
    if _in(history.started_at, since, until):
        assert history.started_at is not None
        found["started"] = history.started_at
    previous: StatusCategory | None = None
    for fact in history.transitions:
        if _in(fact.at, since, until):
            if fact.to_category is StatusCategory.done:
                found["finished"] = fact.at
            elif previous is StatusCategory.done and fact.to_category in OPEN:
                found["reopened"] = fact.at
            if fact.to_name and _BLOCKED.search(fact.to_name):
                found["blocked"] = fact.at
        previous = fact.to_category
    return [_Event(history.item_id, point, at) for point, at in found.items()]


class DigestService:
    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms

    def digest(self, since: datetime, until: datetime, *, named: int = DEFAULT_NAMED) -> DigestReport:
        since, until = to_utc(since), to_utc(until)
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            events = self._events(conn, since, until)
            info = self._info(conn, sorted({e.item_id for e in events}))
            events = [e for e in events if e.item_id in info]
            above = self._roadmap_above(conn, sorted(info))
            top_now = self._rice_now(conn)
            start_rank = self._start_ranks(conn, since, top_now)
            teams: dict[str, list[_Event]] = defaultdict(list)
            roadmap: dict[str, list[_Event]] = defaultdict(list)
            for event in events:
                teams[info[event.item_id]].append(event)
                for root in above.get(event.item_id, ()):
                    roadmap[root].append(event)
            totals = _select(events, named)
            by_team = {team: _select(found, named) for team, found in sorted(teams.items())}
            by_root = {root: _select(found, named) for root, found in sorted(roadmap.items())}
            # Only the items the digest names are read whole (their key, title and URL).
            shown = {
                i
                for chosen in (totals, *by_team.values(), *by_root.values())
                for _, ids in chosen.values()
                for i in ids
            }
            docs = self._docs(conn, sorted(shown | set(by_root) | {item_id for item_id, _ in top_now}))

        def ref(item_id: str) -> ItemRef:
            doc = docs[item_id]
            return ItemRef(
                id=item_id, key=doc.get("key"), title=doc.get("title", ""), url=doc.get("url"), tool=doc["tool"]
            )

        def points(chosen: dict[str, tuple[int, list[str]]]) -> dict[str, Any]:
            return {
                "counts": {point: count for point, (count, _) in chosen.items()},
                "points": {
                    point: PointPublic(count=count, items=[ref(i) for i in ids])
                    for point, (count, ids) in chosen.items()
                },
            }

        return DigestReport(
            since=since,
            until=until,
            named=named,
            totals=GroupDigest(**points(totals)),
            teams=[TeamDigest(team=team, **points(chosen)) for team, chosen in by_team.items()],
            roadmap=[
                RoadmapDigest(item=ref(root), **points(chosen)) for root, chosen in by_root.items() if root in docs
            ],
            rice_top=[
                RiceEntry(
                    rank=rank,
                    item=ref(item_id),
                    score=score,
                    start_rank=start_rank.get(item_id),
                    movement=None if item_id not in start_rank else start_rank[item_id] - rank,
                )
                for rank, (item_id, score) in enumerate(top_now, start=1)
            ],
            rules=RULES,
        )

    def _events(self, conn: Connection, since: datetime, until: datetime) -> list[_Event]:
        """Every point's events, from the status history and three indexed reads of items."""
        events = _history_events_sql(conn, since, until)
        live = items.c.deleted == false()
        is_open = items.c.status_category.not_in(_CLOSED)
        for item_id, created_at in conn.execute(
            select(items.c.id, items.c.created_at).where(
                live,
                items.c.created_at >= since,
                items.c.created_at < until,
                items.c.priority_level.in_(("urgent", "high")),
            )
        ):
            events.append(_Event(item_id, "new_urgent", created_at))
        # Overdue: a due day is past once it has ended by `until`; ISO dates compare as text.
        # The dates come from `item_report_facts` (written with the item: no document parsed).
        cutoff = until.date().isoformat()
        dated = item_report_facts.c
        for item_id, due_on, released in conn.execute(
            select(items.c.id, dated.due_on, dated.release_on)
            .join(item_report_facts, dated.item_id == items.c.id)
            .where(live, is_open, or_(dated.due_on < cutoff, dated.release_on < cutoff))
        ):
            when = min(d for d in (due_on, released) if d and d < cutoff)
            events.append(_Event(item_id, "overdue", datetime.combine(date.fromisoformat(when), time(), UTC)))
        # blocked_by links: open items updated in the period whose blocker is open or unknown.
        blocker = items.alias("blocker")
        stmt = (
            select(items.c.id, items.c.updated_at)
            .join(item_links, and_(item_links.c.item_id == items.c.id, item_links.c.type == "blocked_by"))
            .outerjoin(blocker, blocker.c.id == item_links.c.target_id)
            .where(
                live,
                is_open,
                items.c.updated_at >= since,
                items.c.updated_at < until,
                or_(blocker.c.id.is_(None), blocker.c.status_category.not_in(_CLOSED)),
            )
            .distinct()
        )
        already = {e.item_id for e in events if e.point == "blocked"}
        for item_id, updated_at in conn.execute(stmt):
            if item_id not in already:
                already.add(item_id)
                events.append(_Event(item_id, "blocked", updated_at))
        return events

    @staticmethod
    def _info(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        """Team (container key, else id, else '(none)') of each live item."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            for item_id, key, cid in conn.execute(
                select(items.c.id, items.c.container_key, items.c.container_id).where(
                    items.c.id.in_(chunk), items.c.deleted == false()
                )
            ):
                found[item_id] = key or cid or "(none)"
        return found

    @staticmethod
    def _docs(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        docs: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            for row in conn.execute(select(*READ_COLUMNS).where(items.c.id.in_(chunk))):
                doc = item_document(row)
                docs[doc["id"]] = doc
        return docs

    @staticmethod
    def _roadmap_above(conn: Connection, ids: Sequence[str]) -> dict[str, set[str]]:
        """For each item, the roadmap items above it (parent chain and implements links)."""
        ups: dict[str, set[str]] = defaultdict(set)  # item -> items directly above it
        kinds: dict[str, str] = {}
        frontier, seen = list(ids), set(ids)
        for _ in range(8):  # hub/roadmap.py's MAX_DEPTH
            if not frontier:
                break
            next_frontier: list[str] = []
            for start in range(0, len(frontier), _CHUNK):
                chunk = frontier[start : start + _CHUNK]
                found: list[tuple[str, str]] = []
                for item_id, parent_id, kind in conn.execute(
                    select(items.c.id, items.c.parent_id, items.c.kind).where(items.c.id.in_(chunk))
                ):
                    kinds[item_id] = kind
                    if parent_id:
                        found.append((item_id, parent_id))
                for item_id, target in conn.execute(
                    select(item_links.c.item_id, item_links.c.target_id).where(
                        item_links.c.item_id.in_(chunk),
                        item_links.c.type == "implements",
                        item_links.c.target_id.is_not(None),
                    )
                ):
                    found.append((item_id, target))
                for target, item_id in conn.execute(
                    select(item_links.c.item_id, item_links.c.target_id).where(
                        item_links.c.target_id.in_(chunk), item_links.c.type == "implemented_by"
                    )
                ):
                    found.append((item_id, target))
                for item_id, above in found:
                    if above != item_id:
                        ups[item_id].add(above)
                        if above not in seen:
                            seen.add(above)
                            next_frontier.append(above)
            frontier = next_frontier
        result: dict[str, set[str]] = {}
        for item_id in ids:
            roots: set[str] = set()
            stack, visited = list(ups.get(item_id, ())), set()
            while stack:
                current = stack.pop()
                if current in visited:
                    continue
                visited.add(current)
                if kinds.get(current) in ROADMAP_KINDS:
                    roots.add(current)
                stack.extend(ups.get(current, ()))
            if roots:
                result[item_id] = roots
        return result

    @staticmethod
    def _rice_now(conn: Connection) -> list[tuple[str, float]]:
        """The RICE top 10 of the open items now (ties by id)."""
        stmt = (
            select(items.c.id, items.c.rice_score)
            .where(items.c.deleted == false(), items.c.rice_score.is_not(None), items.c.status_category.not_in(_CLOSED))
            .order_by(items.c.rice_score.desc(), items.c.id)
            .limit(RICE_TOP)
        )
        return [(item_id, float(score)) for item_id, score in conn.execute(stmt)]

    @staticmethod
    def _start_ranks(conn: Connection, since: datetime, top_now: list[tuple[str, float]]) -> dict[str, int]:
        """Rank at `since` of each of `top_now`, by current scores (see the module docstring).

        Ranked at the start: items created before `since` (or with no creation time) that were
        open then per their history, or per their current status where the history cannot say.
        Only items scoring at least the lowest of `top_now` can rank above one of them, so only
        those are read: the cost follows the top, not the store.
        """
        if not top_now:
            return {}
        floor = min(score for _, score in top_now)
        candidates = conn.execute(
            select(items.c.id, items.c.rice_score, items.c.status_category).where(
                items.c.deleted == false(),
                items.c.rice_score >= floor,
                or_(items.c.created_at.is_(None), items.c.created_at < since),
            )
        ).all()
        histories = histories_of(conn, [c[0] for c in candidates])
        ranked = []
        for item_id, score, category in candidates:
            at_start = build_history(item_id, histories.get(item_id, ())).category_at(since)
            if (at_start.value if at_start is not None else category) not in _CLOSED:
                ranked.append((-float(score), item_id))
        order = {item_id: n for n, (_, item_id) in enumerate(sorted(ranked), start=1)}
        return {item_id: order[item_id] for item_id, _ in top_now if item_id in order}


def _history_events_sql(conn: Connection, since: datetime, until: datetime) -> list[_Event]:
    """`history_events` of every item with a status change in [since, until), computed by the
    database over `status_transitions` (window functions), so only the few facts that are
    events come back, not the ~40,000 facts of the 8,000 items that moved in 30 days.

    Same rules as `history_events` over `build_history`'s canonical facts: the table's key
    (item, at, to_category, to_name) makes facts unique, so canonical order is time, then
    category rank, then name (hub/flow/history.py `Transition.sort_key`), and a fact is kept
    unless it repeats the status of the fact before it (a no-op repeat). The previous kept
    fact's category is the previous fact's (a dropped repeat has the same). Started: the
    first in_progress fact, unless the history begins started (a first sighting into, or a
    first fact from, in_progress or done). The "blocked" name test is the regex `_BLOCKED`,
    applied here to the candidates a case-insensitive LIKE finds."""
    moved = select(_T.item_id).where(_T.at >= since, _T.at < until)
    category_rank = case({c.value: rank for c, rank in CATEGORY_RANK.items()}, value=_T.to_category, else_=-1)
    ranked = (
        select(_T.item_id, _T.at, _T.to_category, _T.to_name, _T.from_category, _T.source, category_rank.label("rank"))
        .where(_T.item_id.in_(moved))
        .subquery("ranked")
    )
    r = ranked.c
    # One window, over plain columns: SQLite sorts once for every function sharing it (an
    # expression in ORDER BY, bound anew in each, made it sort once per function).
    name = r.to_name.collate("C") if conn.dialect.name == "postgresql" else r.to_name
    order = (r.at, r.rank, name)
    facts = select(
        r.item_id,
        r.at,
        r.to_category,
        r.to_name,
        func.lag(r.to_category).over(partition_by=r.item_id, order_by=order).label("prev_category"),
        func.lag(r.to_name).over(partition_by=r.item_id, order_by=order).label("prev_name"),
        func.first_value(r.source).over(partition_by=r.item_id, order_by=order).label("first_source"),
        func.first_value(r.to_category).over(partition_by=r.item_id, order_by=order).label("first_to"),
        func.first_value(r.from_category).over(partition_by=r.item_id, order_by=order).label("first_from"),
        func.min(case((r.to_category == StatusCategory.in_progress.value, r.at)))
        .over(partition_by=r.item_id)
        .label("first_in_progress"),
    ).subquery("facts")
    f = facts.c
    started_values = [c.value for c in STARTED]
    begins_started = case(
        (f.first_source == TransitionSource.first_seen.value, f.first_to.in_(started_values)),
        else_=and_(f.first_from.is_not(None), f.first_from.in_(started_values)),
    )
    open_values = [c.value for c in OPEN]
    first_start = and_(f.to_category == StatusCategory.in_progress.value, f.at == f.first_in_progress, ~begins_started)
    stmt = select(f.item_id, f.at, f.to_category, f.to_name, f.prev_category, first_start).where(
        f.at >= since,
        f.at < until,
        or_(
            f.prev_category.is_(None),
            f.prev_category != f.to_category,
            func.coalesce(f.prev_name, "") != func.coalesce(f.to_name, ""),
        ),
        or_(
            f.to_category == StatusCategory.done.value,
            and_(f.prev_category == StatusCategory.done.value, f.to_category.in_(open_values)),
            func.lower(f.to_name).like("%blocked%"),
            first_start,
        ),
    )
    found: dict[tuple[str, str], datetime] = {}

    def note(item_id: str, point: str, at: datetime) -> None:
        key = (item_id, point)
        if key not in found or found[key] < at:  # the last in the period, as history_events
            found[key] = at

    for item_id, at, to_category, to_name, prev_category, first_start in conn.execute(stmt):
        if first_start:
            note(item_id, "started", at)
        if to_category == StatusCategory.done.value:
            note(item_id, "finished", at)
        elif prev_category == StatusCategory.done.value and to_category in open_values:
            note(item_id, "reopened", at)
        if to_name and _BLOCKED.search(to_name):
            note(item_id, "blocked", at)
    return [_Event(item_id, point, at) for (item_id, point), at in found.items()]


def _select(events: Iterable[_Event], named: int) -> dict[str, tuple[int, list[str]]]:
    """Per point: how many items, and the ids of the `named` most recent (ties by id)."""
    by_point: dict[str, list[_Event]] = defaultdict(list)
    for event in events:
        by_point[event.point].append(event)
    chosen = {}
    for point in POINTS:
        found = by_point.get(point, [])
        recent = sorted(found, key=lambda e: (-e.at.timestamp(), e.item_id))[:named]
        chosen[point] = (len(found), [e.item_id for e in recent])
    return chosen


def _link(item: ItemRef) -> str:
    label = f"{item.key} {item.title}".strip() if item.key else item.title
    label = label.replace("[", "(").replace("]", ")") or "(untitled)"
    return f"[{label}]({item.url})" if item.url else label


def _section(lines: list[str], group: GroupDigest) -> None:
    lines.append(" · ".join(f"{POINT_TITLES[p]}: {group.counts[p]}" for p in POINTS))
    lines.append("")
    for point in POINTS:
        found = group.points[point]
        if found.items:
            names = ", ".join(_link(i) for i in found.items)
            more = f" (+{found.count - len(found.items)} more)" if found.count > len(found.items) else ""
            lines.append(f"- {POINT_TITLES[point]}: {names}{more}")
    lines.append("")


def to_markdown(report: DigestReport) -> str:
    """The digest as Markdown: counts first, then the named items as links to their tools.
    Items without a URL are named by key and title; a hub id is never printed."""
    lines = [f"# Status digest {report.since:%Y-%m-%d %H:%M}Z .. {report.until:%Y-%m-%d %H:%M}Z", ""]
    lines.append("## All teams")
    lines.append("")
    _section(lines, report.totals)
    for team in report.teams:
        lines.append(f"## Team {team.team}")
        lines.append("")
        _section(lines, team)
    for entry in report.roadmap:
        lines.append(f"## Roadmap: {_link(entry.item)}")
        lines.append("")
        _section(lines, entry)
    lines.append(f"## RICE top {RICE_TOP}")
    lines.append("")
    if report.rice_top:
        lines.append("| rank | item | score | move |")
        lines.append("|---:|---|---:|---|")
        for e in report.rice_top:
            move = "new" if e.movement is None else ("=" if e.movement == 0 else f"{e.movement:+d}")
            lines.append(f"| {e.rank} | {_link(e.item).replace('|', '/')} | {e.score:g} | {move} |")
    else:
        lines.append("No open item has a RICE score.")
    lines.append("")
    lines.append("Start ranking approximated from current scores (past scores are not stored).")
    return "\n".join(lines) + "\n"

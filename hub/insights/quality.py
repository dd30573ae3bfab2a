"""Data-quality report: completeness, vocabulary drift, hygiene findings and a score.

Used by `GET /v1/insights/quality` and `opshub report quality` (one service, so the API
and the CLI never disagree). The rules and the score formula are stated in the README
("Data-quality report") and in `RULES` below, which every response repeats.

Reads (issue 10: under 1 s at 100,000 items) go to `item_report_facts` only, the narrow row
`ItemStore.apply` writes with each item (hub/store/report_facts.py), with the /v1/items filters
translated onto it: no document is parsed and the wide items rows are not scanned. See
`_Reader` for which finding is counted in SQL and which is judged in Python.

Vocabulary drift comes from the mapping engine: it notes on each item the kind, status and
priority values that fell through to the spec's default (`mappings.engine.FALLBACKS_KEY`),
so the report only counts what the store already holds.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    and_,
    any_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from hub.db.engine import read_connection
from hub.db.tables import item_links, item_report_facts, items
from hub.links import normalise_key, ref_from_url
from hub.roadmap import ROADMAP_KINDS
from hub.schema import to_utc
from hub.store.queries import ItemQueries, ItemQuery
from hub.store.report_facts import conditions_on_facts, container_family, normalised_title

DEFAULT_STALE_DAYS = 14
DEFAULT_FINDING_LIMIT = 50
_CHUNK = 500
CLOSED = frozenset({"done", "cancelled"})
RICE_INPUTS = ("reach", "impact", "confidence", "effort")
COMPLETENESS_FIELDS = ("assignee", "estimate", "priority", "description", "iteration", "rice")
# Score weights (README "Data-quality report"): completeness, no drift, no hygiene finding.
SCORE_WEIGHTS = (0.5, 0.2, 0.3)

FINDINGS = {
    "stale_in_progress": "in progress with no update for `stale_days` days (items.updated_at, the tool's time)",
    "done_parent_open_children": "done or cancelled, with a child (any container) still open",
    "roadmap_without_work": "open epic or feature with no child and no `implements` link to or from it",
    "missing_parent": "parent_id names an item the hub does not hold (or holds deleted)",
    "missing_link_target": "a link whose target (hub id, or tool key named by URL) the hub does not hold",
    "duplicate_across_tools": (
        "the same work in two sources: a `duplicates` link between them, an `implements` link between items "
        "of the same kind (stated by either side), or open matching items with the same normalised title in the "
        "same container family"
    ),
}
RULES = {
    "open": "status category not done or cancelled",
    "completeness": "share of open items with: an assignee, an estimate, priority level other than none, a "
    "non-blank description, an iteration; and, for open initiatives, epics and features only, all four RICE "
    "inputs (reach, impact, confidence, effort)",
    "drift": "kind, status and priority values the tool gave that no mapping table placed, so the spec's "
    "default was used (a status placed by the tool's own category is not drift)",
    "normalised_title": "lower case, every run of non-alphanumeric characters one space, trimmed",
    "container_family": "the container's name (else key), after its last '/', normalised like a title: "
    "`acme/payments` (GitHub) and `Payments` (Jira) are one family",
    "score": "100 x (0.5 x completeness + 0.2 x (1 - drifting items / items) + 0.3 x (1 - items with a "
    "finding / items)), one decimal; completeness is the mean of the field shares that have open items "
    "to count (1 when there are none)",
    **{f"finding.{name}": text for name, text in FINDINGS.items()},
}


class FieldShare(BaseModel):
    field: str
    present: int
    applicable: int = Field(description="Open items the field applies to (RICE: open roadmap kinds).")
    share: float | None = Field(description="present / applicable, None when nothing applies.")


class GroupQuality(BaseModel):
    """One source, or one container of a source."""

    source: str
    container_id: str | None = None
    container_key: str | None = None
    container_name: str | None = None
    items: int
    open_items: int
    completeness: list[FieldShare]
    completeness_mean: float
    drifting_items: int
    items_with_findings: int
    score: float


class DriftExample(BaseModel):
    id: str
    url: str | None


class DriftValue(BaseModel):
    source: str
    field: str = Field(description="kind, status or priority")
    raw: str = Field(description="The tool's value that fell through to the default.")
    count: int
    example: DriftExample


class FindingItem(BaseModel):
    id: str
    url: str | None
    related: list[str] = Field(
        default_factory=list, description="The missing parent/target, the open children, the twin."
    )


class Finding(BaseModel):
    name: str
    rule: str
    count: int
    items: list[FindingItem]
    next_offset: int | None = Field(description="Pass as `offset` for the next page; None on the last.")


class QualityReport(BaseModel):
    as_of: AwareDatetime
    stale_days: int
    items: int
    rules: dict[str, str]
    sources: list[GroupQuality]
    containers: list[GroupQuality]
    drift: list[DriftValue]
    findings: list[Finding]


__all__ = ["QualityReport", "QualityService", "container_family", "normalised_title", "score"]

_Key = tuple[str, str | None]
"""A group of the report: (source, container id); container id None for items without one."""


@dataclass
class _Tally:
    """One group's counts: a container, or a whole source (the sum of its containers)."""

    items: int = 0
    open_items: int = 0
    present: Counter[str] = field(default_factory=Counter)
    applicable: Counter[str] = field(default_factory=Counter)
    drifting: int = 0
    flagged: int = 0

    def add(self, other: _Tally) -> None:
        self.items += other.items
        self.open_items += other.open_items
        self.present.update(other.present)
        self.applicable.update(other.applicable)
        self.drifting += other.drifting
        self.flagged += other.flagged


_Tallies = tuple[dict[_Key, _Tally], dict[_Key, str], dict[str, int]]
"""Per group: its tally and its first item id; and the count of each SQL finding."""


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """`count(*) FILTER (WHERE condition)`: on SQLite 3.30+ and PostgreSQL, cheaper than
    `sum(CASE WHEN condition THEN 1 ELSE 0 END)` (12 % less CPU for the tallies of 100,000
    rows on SQLite). https://www.sqlite.org/lang_aggfunc.html#aggfilter"""
    return func.count().filter(condition)


class QualityService:
    """The report from SQL aggregates and narrow reads (issue 10: under 1 s at 100,000 items).

    Completeness, drift and the counts of three findings (stale in progress, done parents
    with open children, missing parents: `SQL_FINDINGS`) are one GROUP BY per (source,
    container) over the `item_report_facts` rows; those three findings are paged in SQL, so
    their ids are never all read. The link findings (missing targets, duplicates and
    implements links: a link names its target by hub id, key or URL) and same-title twins
    are judged in Python over the few items they concern; an item with such a finding counts
    towards "items with a finding" unless an SQL finding already counted it (`sql_flagged`).
    What relates an item to others (its parent held or not, open or live children, a title
    twin in another source) is read from flags the store maintains on each facts row
    (migration 0010, hub/store/report_facts.py `maintain_flags`): no statement joins the table
    to itself, and twins are paired in Python among the flagged rows only. Deleted items are
    never twins, parents or children (include_deleted lists them, but they pair with nothing).
    """

    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms

    def report(
        self,
        query: ItemQuery,
        *,
        as_of: datetime,
        stale_days: int = DEFAULT_STALE_DAYS,
        limit: int = DEFAULT_FINDING_LIMIT,
        offset: int = 0,
    ) -> QualityReport:
        as_of = to_utc(as_of)
        stale_before = as_of - timedelta(days=stale_days)
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            conditions = ItemQueries(self.engine).filter_conditions(conn, query)
            reader = _Reader(conn, conditions, stale_before, by_container=bool(query.container))
            tallies, first_of, counts = reader.tallies()
            meta = reader.container_meta(first_of)
            drift = reader.drift()
            listed = reader.listed_findings()  # judged in Python: every id
            # A finding the tallies counted no further than `offset` has an empty page: no
            # statement (one walked every row in id order to find no flagged one).
            pages = {
                name: reader.page(name, limit=limit, offset=offset) if counts[name] > offset else {}
                for name in SQL_FINDINGS
            }
            for name, found in listed.items():
                pages[name] = {i: sorted(set(found[i])) for i in heapq.nsmallest(offset + limit, found)[offset:]}
                counts[name] = len(found)
            urls = reader.urls(sorted({i for page in pages.values() for i in page}))
            listed_ids = sorted({item_id for found in listed.values() for item_id in found})
            flagged_in_sql = reader.sql_flagged(listed_ids)
        # Items with a finding: those the SQL findings counted per group, plus the ones only a
        # finding judged in Python names.
        for item_id in listed_ids:
            if item_id not in flagged_in_sql:
                tallies[reader.noted[item_id]].flagged += 1

        sources: dict[str, _Tally] = defaultdict(_Tally)
        for (source, _), tally in tallies.items():
            sources[source].add(tally)
        containers = sorted((key for key in tallies if key[1]), key=lambda k: (k[0], str(k[1])))
        return QualityReport(
            as_of=as_of,
            stale_days=stale_days,
            items=sum(t.items for t in tallies.values()),
            rules=RULES,
            sources=[_group_quality(source, None, sources[source]) for source in sorted(sources)],
            containers=[_group_quality(key[0], meta[key], tallies[key]) for key in containers],
            drift=drift,
            findings=[
                Finding(
                    name=name,
                    rule=FINDINGS[name],
                    count=counts[name],
                    items=[FindingItem(id=i, url=urls.get(i), related=related) for i, related in pages[name].items()],
                    next_offset=offset + limit if offset + limit < counts[name] else None,
                )
                for name in FINDINGS
            ],
        )


_F = item_report_facts
_ID = _F.c.item_id.label("id")
SQL_FINDINGS = ("stale_in_progress", "done_parent_open_children", "missing_parent")
"""Findings judged in SQL: counted per group and paged in the database, never listed whole."""
_FILLED = ("assignee", "estimate", "description", "iteration", "rice")
_CLASSES = (
    _F.c.source,
    _F.c.container_id,
    _F.c.status_category,
    _F.c.kind,
    _F.c.priority_level,
    *(_F.c[f"has_{name}"] for name in _FILLED),
    _F.c.has_open_child,
    _F.c.parent_missing,
)
"""What the quality tallies classify a facts row by: the GROUP BY of
`_Reader.tallies_by_class`, in the order of its SQLite index (migration 0016)."""


def _by_code_point(conn: Connection, column: Any) -> Any:
    """`column` for ORDER BY in Python's string order (the pages of the other findings):
    SQLite's default collation already is; PostgreSQL's "C" collation is."""
    return column.collate("C") if conn.dialect.name == "postgresql" else column


class _Reader:
    """The report's reads, on one connection, for the items matching `conditions`. Every read
    is on `item_report_facts` (narrow rows, hub/store/report_facts.py), never on `items`
    (whose rows carry the documents) but to resolve links named by key or URL."""

    def __init__(
        self, conn: Connection, conditions: list[ColumnElement[bool]], stale_before: datetime, *, by_container: bool
    ) -> None:
        self.conn = conn
        self.by_container = by_container
        """The filters name containers: the rows are found through the container indexes."""
        self.where = conditions_on_facts(conditions)
        self.noted: dict[str, _Key] = {}
        """Matching items a finding judged in Python names -> their group."""
        f = _F.c
        stale = and_(f.status_category == "in_progress", f.updated_at < stale_before)
        self.stale = case((stale, True), else_=False)
        # The SQL findings are columns of each row: the ones that relate it to other rows are
        # flags the store maintains (migration 0010, report_facts.maintain_flags), so no
        # statement joins the table to itself.
        self.sql_flags: dict[str, ColumnElement[bool]] = {
            "stale_in_progress": stale,
            "done_parent_open_children": and_(f.status_category.in_(CLOSED), f.has_open_child),
            "missing_parent": f.parent_missing == true(),
        }

    def _note(self, rows: Iterable[Any]) -> None:
        """Rows of (id, source, container_id, ...): matching items."""
        self.noted.update((r[0], (r[1], r[2])) for r in rows)

    def _rows_by_id(self, column: Any, ids: Sequence[str], *columns: Any, where: Sequence[Any] = ()) -> list[Any]:
        """`columns` of the facts rows whose `column` is one of `ids`, by index (PostgreSQL: the
        ids as one array parameter; SQLite: an IN list, in chunks under its variable limit)."""
        postgres = self.conn.dialect.name == "postgresql"
        size = (len(ids) or 1) if postgres else 30_000
        rows: list[Any] = []
        for start in range(0, len(ids), size):
            chunk = list(ids[start : start + size])
            wanted = (
                column == any_(bindparam("ids", chunk, type_=postgresql.ARRAY(String)))
                if postgres
                else column.in_(chunk)
            )
            rows.extend(self.conn.execute(select(*columns).where(wanted, *where)).all())
        return rows

    def sql_flagged(self, ids: list[str]) -> set[str]:
        """Which of `ids` an SQL finding flags (the same rules as `sql_flags`, by key lookups)."""
        f = _F.c
        flagged = case((or_(*self.sql_flags.values()), True), else_=False)
        return {item_id for item_id, is_flagged in self._rows_by_id(f.item_id, ids, f.item_id, flagged) if is_flagged}

    def tallies(self) -> _Tallies:
        """Counts per (source, container id), the first item (by id) of each group, and the
        count of each finding judged in SQL.

        Two statements give the same tallies (tests/test_quality_tallies.py compares them on
        both backends), each the faster on one backend (issue 11, 100,000 items): SQLite sorts
        every row for a GROUP BY it cannot read in index order, so there the classes are
        counted from a covering index in their order (140-200 ms of CPU down to about 30);
        PostgreSQL sorts the classes' twelve columns in its parallel group aggregate (50 ms
        wall for the per-group statement, 165-200 ms for the per-class one), so there the
        aggregates stay per group."""
        if self.conn.dialect.name == "sqlite":
            return self.tallies_by_class()
        return self.tallies_by_group()

    def tallies_by_class(self) -> _Tallies:
        """`tallies` from one GROUP BY on every column a count classifies a row by
        (`_CLASSES`), not only on (source, container id): the database counts the rows of each
        class (a few hundred at 100,000 items) and Python adds the classes up. Only the two
        counts that depend on a column outside the classes (stale: updated_at; drift:
        fallbacks) stay aggregates. On SQLite this statement reads `ix_item_report_facts_tallies`
        (migration 0016) alone, in its order: no table row, no temporary B-tree for the GROUP
        BY, and four aggregates a row instead of fifteen."""
        f = _F.c
        group_by: list[ColumnElement[Any]] = list(_CLASSES)
        if self.by_container and self.conn.dialect.name == "sqlite":
            # `+source` (the same value, no longer a column) tells SQLite the GROUP BY cannot
            # come from an index's order: it then finds the container's rows through its two
            # indexes and sorts those few (12 ms) instead of walking ix_item_report_facts_tallies
            # in GROUP BY order and reading every row's container_key from the table (125 ms).
            # https://www.sqlite.org/optoverview.html, "Disqualifying WHERE clause terms using unary-+"
            group_by[0] = UnaryExpression(_F.c.source, operator=custom_op("+"), type_=_F.c.source.type)
        stmt = (
            select(
                *_CLASSES,
                func.min(_by_code_point(self.conn, f.item_id)),
                func.count(),
                _count_if(f.fallbacks.is_not(None)),
                _count_if(self.sql_flags["stale_in_progress"]),
            )
            .where(*self.where)
            .group_by(*group_by)
        )
        tallies: dict[_Key, _Tally] = {}
        first_of: dict[_Key, str] = {}
        counts: Counter[str] = Counter({name: 0 for name in self.sql_flags})
        for row in self.conn.execute(stmt):
            (source, container_id, category, kind, priority, *filled, open_child, parent_missing) = row[: len(_CLASSES)]
            first_id, total, drifting, stale = row[len(_CLASSES) :]
            key = (source, container_id)
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = _Tally()
                first_of[key] = first_id
            elif first_id < first_of[key]:  # Python's str order: the database's min (see _by_code_point)
                first_of[key] = first_id
            is_open = category not in CLOSED
            roadmap = is_open and kind in ROADMAP_KINDS
            present = dict(zip(_FILLED, filled, strict=True))
            present["priority"] = priority != "none"
            tally.items += total
            tally.drifting += drifting
            for name in COMPLETENESS_FIELDS:
                applies = roadmap if name == "rice" else is_open
                tally.applicable[name] += total if applies else 0
                tally.present[name] += total if applies and present[name] else 0
            if is_open:
                tally.open_items += total
            done_parent = category in CLOSED and bool(open_child)
            counts["stale_in_progress"] += stale
            counts["done_parent_open_children"] += total if done_parent else 0
            counts["missing_parent"] += total if parent_missing else 0
            # Flagged by any SQL finding: the whole class when a class column says so, else its stale rows.
            tally.flagged += total if done_parent or parent_missing else stale
        return tallies, first_of, counts

    def tallies_by_group(self) -> _Tallies:
        """`tallies` from one GROUP BY (source, container id) with an aggregate per count."""
        f = _F.c
        is_open = f.status_category.not_in(CLOSED)
        roadmap = and_(is_open, f.kind.in_(ROADMAP_KINDS))
        present = {
            "assignee": f.has_assignee,
            "estimate": f.has_estimate,
            "priority": f.priority_level != "none",
            "description": f.has_description,
            "iteration": f.has_iteration,
            "rice": f.has_rice,
        }
        stmt = (
            select(
                f.source,
                f.container_id,
                func.min(_by_code_point(self.conn, f.item_id)),
                func.count(),
                _count_if(is_open),
                _count_if(roadmap),
                _count_if(f.fallbacks.is_not(None)),
                *(_count_if(and_(roadmap if name == "rice" else is_open, has)) for name, has in present.items()),
                *(_count_if(flag) for flag in self.sql_flags.values()),
                _count_if(or_(*self.sql_flags.values())),
            )
            .where(*self.where)
            .group_by(f.source, f.container_id)
        )
        tallies: dict[_Key, _Tally] = {}
        first_of: dict[_Key, str] = {}
        counts: Counter[str] = Counter({name: 0 for name in self.sql_flags})
        for row in self.conn.execute(stmt):
            source, container_id, first_id, total, open_items, roadmap_open, drifting = row[:7]
            filled, flags, flagged = row[7 : 7 + len(present)], row[7 + len(present) : -1], row[-1]
            key = (source, container_id)
            first_of[key] = first_id
            tally = _Tally(items=total, open_items=open_items, drifting=drifting, flagged=int(flagged))
            for name, count in zip(present, filled, strict=True):
                tally.present[name] = int(count)
                tally.applicable[name] = roadmap_open if name == "rice" else open_items
            tallies[key] = tally
            counts.update({name: int(n) for name, n in zip(self.sql_flags, flags, strict=True)})
        return tallies, first_of, counts

    def page(self, name: str, *, limit: int, offset: int) -> dict[str, list[str]]:
        """One page (by id) of a finding judged in SQL: id -> related ids."""
        f = _F.c
        extra = [f.parent_id] if name == "missing_parent" else []
        stmt = (
            select(f.item_id, *extra)
            .where(*self.where, self.sql_flags[name])
            .order_by(_by_code_point(self.conn, f.item_id))
            .limit(limit)
            .offset(offset)
        )
        rows = self.conn.execute(stmt).all()
        if name == "missing_parent":
            return {item_id: [parent_id] for item_id, parent_id in rows}
        page: dict[str, list[str]] = {row[0]: [] for row in rows}
        if name == "done_parent_open_children" and page:
            children = self.conn.execute(
                select(f.parent_id, f.item_id).where(
                    f.parent_id.in_(list(page)), f.deleted == false(), f.status_category.not_in(CLOSED)
                )
            )
            for parent_id, child_id in children:
                page[parent_id].append(child_id)
            page = {item_id: sorted(related) for item_id, related in page.items()}
        return page

    def container_meta(self, first_of: dict[_Key, str]) -> dict[_Key, tuple[str, str | None, str | None]]:
        """(id, key, name) of each container, as its first item (by id) states them."""
        wanted = {first_id: key for key, first_id in first_of.items() if key[1]}
        f = _F.c
        meta = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = sorted(wanted)[start : start + _CHUNK]
            stmt = select(f.item_id, f.container_key, f.container_name).where(f.item_id.in_(chunk))
            for item_id, container_key, container_name in self.conn.execute(stmt):
                key = wanted[item_id]
                meta[key] = (str(key[1]), container_key, container_name)
        return meta

    def drift(self) -> list[DriftValue]:
        f = _F.c
        counts: Counter[tuple[str, str, str]] = Counter()
        example: dict[tuple[str, str, str], DriftExample] = {}
        rows = self.conn.execute(
            select(f.item_id, f.source, f.url, f.fallbacks).where(*self.where, f.fallbacks.is_not(None))
        ).all()
        for item_id, source, url, fallbacks in sorted(rows, key=lambda row: str(row[0])):
            for fallback in orjson.loads(fallbacks):
                key = (source, str(fallback.get("field")), str(fallback.get("raw")))
                counts[key] += 1
                example.setdefault(key, DriftExample(id=item_id, url=url))  # by id: the first id is the example
        ordered = sorted(counts, key=lambda k: (-counts[k], k))
        return [DriftValue(source=k[0], field=k[1], raw=k[2], count=counts[k], example=example[k]) for k in ordered]

    def urls(self, ids: list[str]) -> dict[str, str | None]:
        f = _F.c
        found: dict[str, str | None] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            found.update((i, url) for i, url in self.conn.execute(select(f.item_id, f.url).where(f.item_id.in_(chunk))))
        return found

    def _matching(self, *extra: Any, columns: Sequence[Any] = (), join: tuple[Any, Any] | None = None) -> list[Any]:
        """(id, source, container_id, any SQL flag, *columns) of the matching items passing `extra`."""
        f = _F.c
        stmt = select(_ID, f.source, f.container_id, *columns).select_from(_F.join(*join) if join is not None else _F)
        rows = self.conn.execute(stmt.where(*self.where, *extra)).all()
        self._note(rows)
        return list(rows)

    def listed_findings(self) -> dict[str, dict[str, list[str]]]:
        """The findings judged in Python (few items): name -> {matching item id: related ids}."""
        f = _F.c
        found: dict[str, dict[str, list[str]]] = {name: {} for name in FINDINGS if name not in SQL_FINDINGS}
        # The few epics and features found through items' (kind, updated_at) index, one
        # `kind = ?` each (an IN list of kinds made SQLite scan; the facts have no kind
        # index): a scan of every facts row cost 30-50 ms at 100,000 items on both backends.
        kinds = ("epic", "feature")
        roadmap_ids = union_all(*(select(items.c.id).where(items.c.kind == kind) for kind in kinds))
        without_work = self._matching(
            f.item_id.in_(roadmap_ids),
            f.status_category.not_in(CLOSED),
            f.kind.in_(kinds),
            f.has_live_child == false(),
        )
        pairs, implementing = self._links(found)
        for row in without_work:
            if row[0] not in implementing:
                found["roadmap_without_work"][row[0]] = []
        pairs |= self._same_titles()
        twins = found["duplicate_across_tools"]
        for a, b in sorted(pairs):
            twins.setdefault(a, []).append(b)
            twins.setdefault(b, []).append(a)
        # A pair's other end is listed only if it matches the filters too.
        found["duplicate_across_tools"] = {k: v for k, v in twins.items() if k in self.noted}
        return found

    def _same_titles(self) -> set[tuple[str, str]]:
        """Open matching items of two sources with one normalised title in one container family."""
        f = _F.c
        # Only rows the store flagged (has_title_twin: open, live, and an open live row of another
        # source shares the title key) can pair; of those, the pairs whose both ends match.
        twins = self._matching(f.has_title_twin, columns=[f.container_family, f.title_key])
        by_title: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in sorted(twins, key=lambda row: str(row[0])):
            by_title[(row[3], row[4])].append(row)
        pairs: set[tuple[str, str]] = set()
        for group in by_title.values():
            for i, one in enumerate(group):
                for twin in group[i + 1 :]:
                    if one[1] != twin[1]:
                        pairs.add((min(one[0], twin[0]), max(one[0], twin[0])))
        return pairs

    def _links(self, found: dict[str, dict[str, list[str]]]) -> tuple[set[tuple[str, str]], set[str]]:
        """missing_link_target findings; the duplicate pairs links state; the items implemented."""
        f, link = _F.c, item_links.c
        links_out = self.conn.execute(
            select(
                _ID,
                f.source,
                f.container_id,
                f.kind,
                f.deleted,
                link.type,
                link.target,
                link.target_id,
                link.target_tool,
                link.target_key,
            )
            .select_from(_F.join(item_links, f.item_id == link.item_id))
            .where(*self.where)
        ).all()
        links_in = self.conn.execute(
            select(_ID, f.source, f.container_id, f.kind, f.deleted, link.item_id, link.type)
            .select_from(_F.join(item_links, f.item_id == link.target_id))
            .where(*self.where)
        ).all()
        self._note(links_out)
        self._note(links_in)
        refs = sorted(
            {
                ref
                for row in links_out
                if row.target_id is None
                for ref in [
                    (row.target_tool, row.target_key)
                    if row.target_tool and row.target_key
                    else ref_from_url(row.target)
                ]
                if ref is not None
            }
        )
        c = items.c  # tool and key are not among the facts: a lookup by (tool, key) on items
        keys = {
            (r.tool, normalise_key(r.tool, r.key)): r.id
            for r in (
                self.conn.execute(
                    select(c.id, c.tool, c.key).where(c.deleted == false(), tuple_(c.tool, c.key).in_(refs))
                ).all()
                if refs
                else []
            )
        }
        ends = {row.target_id for row in links_out if row.target_id} | {row.item_id for row in links_in}
        hub = self._live(sorted(ends | set(keys.values())))  # id -> (source, kind)
        hub.update((row.id, (row.source, row.kind)) for row in (*links_out, *links_in) if not row.deleted)

        pairs: set[tuple[str, str]] = set()
        implementing: set[str] = set()

        def twin_link(a: str, b: str, link_type: str) -> None:
            if a not in hub or b not in hub or hub[a][0] == hub[b][0]:
                return
            if link_type == "duplicates" or (link_type in ("implements", "implemented_by") and hub[a][1] == hub[b][1]):
                pairs.add((min(a, b), max(a, b)))

        for stated in links_in:  # stated by any item about a matching one
            if stated.type == "implements":
                implementing.add(stated.id)
            twin_link(stated.item_id, stated.id, stated.type)
        missing = found["missing_link_target"]
        for row in links_out:
            target = row.target_id
            if target is None and row.target_tool and row.target_key:
                target = keys.get((row.target_tool, row.target_key))
                if target is None:
                    missing.setdefault(row.id, []).append(row.target)
                    continue
            elif target is None:
                ref = ref_from_url(row.target)
                if ref is not None and ref not in keys:
                    missing.setdefault(row.id, []).append(row.target)
                continue
            if target not in hub:
                missing.setdefault(row.id, []).append(target)
                continue
            if row.type == "implemented_by":
                implementing.add(row.id)
            if row.type == "implements":
                implementing.add(target)
            twin_link(row.id, target, row.type)
        return pairs, implementing

    def _live(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        """id -> (source, kind) of the live items among `ids`; notes which of them match."""
        f = _F.c
        matches = case((and_(true(), *self.where), True), else_=False).label("matches")
        hub: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = self.conn.execute(
                select(_ID, f.source, f.container_id, f.kind, matches).where(f.item_id.in_(chunk), f.deleted == false())
            ).all()
            self._note(row for row in rows if row.matches)
            hub.update((row.id, (row.source, row.kind)) for row in rows)
        return hub


def _group_quality(source: str, container: tuple[str, str | None, str | None] | None, tally: _Tally) -> GroupQuality:
    present, applicable = tally.present, tally.applicable
    shares = [
        FieldShare(
            field=name,
            present=present[name],
            applicable=applicable[name],
            share=round(present[name] / applicable[name], 4) if applicable[name] else None,
        )
        for name in COMPLETENESS_FIELDS
    ]
    counted = [present[n] / applicable[n] for n in COMPLETENESS_FIELDS if applicable[n]]
    completeness = sum(counted) / len(counted) if counted else 1.0
    total = tally.items
    return GroupQuality(
        source=source,
        container_id=container[0] if container else None,
        container_key=container[1] if container else None,
        container_name=container[2] if container else None,
        items=total,
        open_items=tally.open_items,
        completeness=shares,
        completeness_mean=round(completeness, 4),
        drifting_items=tally.drifting,
        items_with_findings=tally.flagged,
        score=score(completeness, tally.drifting / total if total else 0.0, tally.flagged / total if total else 0.0),
    )


def score(completeness: float, drift_share: float, finding_share: float) -> float:
    """README "Data-quality report": weighted, 0..100, one decimal."""
    w_complete, w_drift, w_findings = SCORE_WEIGHTS
    value = 100 * (w_complete * completeness + w_drift * (1 - drift_share) + w_findings * (1 - finding_share))
    return round(value + 1e-9, 1)

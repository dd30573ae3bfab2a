"""Data-quality report: completeness, vocabulary drift, hygiene findings and a score.

Used by `GET /v1/insights/quality` and `opshub report quality` (one service, so the API
and the CLI never disagree). The rules and the score formula are stated in the README
("Data-quality report") and in `RULES` below, which every response repeats.

Reads stay in bulk: one query for the matching items (columns plus their report facts,
hub/store/report_facts.py, with the /v1/items filters as WHERE), one for every live item's identity columns (to tell whether a
parent or a link target is in the hub, and to find children in any container), and one for
the links stated by or about the matching items. Everything else is dictionaries in memory.

Vocabulary drift comes from the mapping engine: it notes on each item the kind, status and
priority values that fell through to the spec's default (`mappings.engine.FALLBACKS_KEY`),
so the report only counts what the store already holds.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import ColumnElement, Engine, false, or_, select, tuple_

from hub.db.engine import read_connection
from hub.db.tables import item_links, item_report_facts, items
from hub.links import normalise_key, ref_from_url
from hub.roadmap import ROADMAP_KINDS
from hub.schema import to_utc
from hub.store.queries import ItemQueries, ItemQuery

DEFAULT_STALE_DAYS = 14
DEFAULT_FINDING_LIMIT = 50
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


_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalised_title(title: str) -> str:
    return _NON_ALNUM.sub(" ", title.casefold()).strip()


def container_family(container: dict[str, Any] | None) -> str | None:
    if not container:
        return None
    name = container.get("name") or container.get("key") or container.get("id")
    if not name:
        return None
    return normalised_title(str(name).rsplit("/", 1)[-1]) or None


@dataclass
class _Item:
    """A matching item: its columns plus the few facts of its document the report needs,
    extracted in SQL (`_doc_facts`) rather than parsing 100,000 documents in Python."""

    id: str
    source: str
    tool: str
    kind: str
    category: str
    priority: str
    parent_id: str | None
    quiet: bool
    """Not updated since the staleness cutoff (compared in SQL: no datetime per row in Python)."""
    title: str
    url: str | None
    container: dict[str, Any] | None
    filled: dict[str, bool]
    fallbacks: list[dict[str, str]]

    @property
    def open(self) -> bool:
        return self.category not in CLOSED


@dataclass
class _Group:
    source: str
    container: dict[str, Any] | None = None
    members: list[_Item] = field(default_factory=list)


def _completeness(item: _Item) -> dict[str, bool | None]:
    """Field -> present (None: does not apply) for one open item."""
    return {
        "assignee": item.filled["assignee"],
        "estimate": item.filled["estimate"],
        "priority": item.priority != "none",
        "description": item.filled["description"],
        "iteration": item.filled["iteration"],
        "rice": item.filled["rice"] if item.kind in ROADMAP_KINDS else None,
    }


def _fallbacks(item: _Item) -> list[dict[str, str]]:
    return item.fallbacks


def _doc_facts() -> list[ColumnElement[Any]]:
    """The document facts `_Item` holds, from `item_report_facts` (hub/store/report_facts.py:
    written with the item, so no document is parsed here)."""
    f = item_report_facts.c
    return [
        f.url,
        f.container_name,
        f.has_assignee,
        f.has_estimate,
        f.has_description,
        f.has_iteration,
        f.has_rice.label("has_rice"),
        f.fallbacks,
    ]


def _item_of(r: Any) -> _Item:
    container = (
        {"id": r.container_id, "key": r.container_key, "name": r.container_name} if r.container_id is not None else None
    )
    found = orjson.loads(r.fallbacks) if r.fallbacks else None
    return _Item(
        id=r.id,
        source=r.source,
        tool=r.tool,
        kind=r.kind,
        category=r.status_category,
        priority=r.priority_level,
        parent_id=r.parent_id,
        quiet=bool(r.quiet),
        title=r.title or "",
        url=r.url,
        container=container,
        filled={
            "assignee": bool(r.has_assignee),
            "estimate": bool(r.has_estimate),
            "description": bool(r.has_description),
            "iteration": bool(r.has_iteration),
            "rice": bool(r.has_rice),
        },
        fallbacks=[f for f in found if isinstance(f, dict)] if isinstance(found, list) else [],
    )


class QualityService:
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
        selected, hub, keys, links_out, links_in = self._load(query, stale_before)
        by_id = {item.id: item for item in selected}
        flagged = _findings(selected, hub, keys, links_out, links_in)
        with_finding = {item_id for found in flagged.values() for item_id in found}
        drifting = {item.id for item in selected if _fallbacks(item)}

        sources: dict[str, _Group] = {}
        containers: dict[tuple[str, str], _Group] = {}
        for item in selected:
            sources.setdefault(item.source, _Group(item.source)).members.append(item)
            container = item.container
            if container and container.get("id"):
                key = (item.source, str(container["id"]))
                containers.setdefault(key, _Group(item.source, container)).members.append(item)

        def summary(group: _Group) -> GroupQuality:
            return _group_quality(group, drifting, with_finding)

        return QualityReport(
            as_of=as_of,
            stale_days=stale_days,
            items=len(selected),
            rules=RULES,
            sources=[summary(sources[k]) for k in sorted(sources)],
            containers=[summary(containers[k]) for k in sorted(containers)],
            drift=_drift(selected),
            findings=[_finding(name, flagged.get(name, {}), by_id, limit=limit, offset=offset) for name in FINDINGS],
        )

    def _load(
        self, query: ItemQuery, stale_before: datetime
    ) -> tuple[list[_Item], dict[str, _HubRow], dict[tuple[str, str], str], list[Any], list[Any]]:
        c = items.c
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            conditions = ItemQueries(self.engine).filter_conditions(conn, query)
            chosen = select(c.id).where(*conditions).scalar_subquery()
            rows = conn.execute(
                select(
                    c.id,
                    c.source,
                    c.tool,
                    c.kind,
                    c.status_category,
                    c.priority_level,
                    c.parent_id,
                    (c.updated_at < stale_before).label("quiet"),
                    c.title,
                    c.container_id,
                    c.container_key,
                    *_doc_facts(),
                )
                .select_from(items.outerjoin(item_report_facts, item_report_facts.c.item_id == c.id))
                .where(*conditions)
                .order_by(c.id)
            ).all()
            links_out = conn.execute(
                select(
                    item_links.c.item_id,
                    item_links.c.type,
                    item_links.c.target,
                    item_links.c.target_id,
                    item_links.c.target_tool,
                    item_links.c.target_key,
                ).where(item_links.c.item_id.in_(chosen))
            ).all()
            links_in = conn.execute(
                select(item_links.c.item_id, item_links.c.type, item_links.c.target_id).where(
                    item_links.c.target_id.in_(chosen)
                )
            ).all()
            # Only the live items related to the matches: their parents, their children (in
            # any container), and both ends of their links; not every item of the hub.
            related = [
                c.id.in_(select(c.parent_id).where(*conditions).scalar_subquery()),
                c.parent_id.in_(chosen),
                c.id.in_(select(item_links.c.target_id).where(item_links.c.item_id.in_(chosen)).scalar_subquery()),
                c.id.in_(select(item_links.c.item_id).where(item_links.c.target_id.in_(chosen)).scalar_subquery()),
            ]
            hub_rows = conn.execute(
                select(c.id, c.kind, c.status_category, c.parent_id, c.source).where(
                    c.deleted == false(), or_(*related)
                )
            ).all()
            refs = sorted(
                {
                    ref
                    for link in links_out
                    if link.target_id is None
                    for ref in [
                        (link.target_tool, link.target_key)
                        if link.target_tool and link.target_key
                        else ref_from_url(link.target)
                    ]
                    if ref is not None
                }
            )
            key_rows = (
                conn.execute(
                    select(c.id, c.tool, c.key).where(c.deleted == false(), tuple_(c.tool, c.key).in_(refs))
                ).all()
                if refs
                else []
            )
        selected = [_item_of(r) for r in rows]
        hub = {r.id: (r.source, r.kind, r.status_category, r.parent_id) for r in hub_rows}
        hub.update({i.id: (i.source, i.kind, i.category, i.parent_id) for i in selected})
        keys = {(r.tool, normalise_key(r.tool, r.key)): r.id for r in key_rows}
        return selected, hub, keys, list(links_out), list(links_in)


_HubRow = tuple[str, str, str, str | None]
"""A live item anywhere in the hub: (source, kind, status category, parent id)."""


def _findings(
    selected: list[_Item],
    hub: dict[str, _HubRow],
    keys: dict[tuple[str, str], str],
    links_out: list[Any],
    links_in: list[Any],
) -> dict[str, dict[str, list[str]]]:
    """Finding name -> {item id: related ids}, for the selected items only."""
    found: dict[str, dict[str, list[str]]] = defaultdict(dict)
    open_children: dict[str, list[str]] = defaultdict(list)
    has_child: set[str] = set()
    for item_id, (_, _, category, parent_id) in hub.items():
        if parent_id is not None:
            has_child.add(parent_id)
            if category not in CLOSED:
                open_children[parent_id].append(item_id)
    pairs: set[tuple[str, str]] = set()
    source_of = {item_id: value[0] for item_id, value in hub.items()}
    kind_of = {item_id: value[1] for item_id, value in hub.items()}

    def twin_link(a: str, b: str, link_type: str) -> None:
        if a not in hub or b not in hub or source_of[a] == source_of[b]:
            return
        if link_type == "duplicates" or (link_type in ("implements", "implemented_by") and kind_of[a] == kind_of[b]):
            pairs.add((min(a, b), max(a, b)))

    implementing: set[str] = set()
    for link in links_in:  # stated by any item about a selected one
        if link.type == "implements":
            implementing.add(link.target_id)
        twin_link(link.item_id, link.target_id, link.type)
    for link in links_out:
        target = link.target_id
        if target is None and link.target_tool and link.target_key:
            target = keys.get((link.target_tool, link.target_key))
            if target is None:
                found["missing_link_target"].setdefault(link.item_id, []).append(link.target)
                continue
        elif target is None:
            ref = ref_from_url(link.target)
            if ref is not None and ref not in keys:
                found["missing_link_target"].setdefault(link.item_id, []).append(link.target)
            continue
        if target not in hub:
            found["missing_link_target"].setdefault(link.item_id, []).append(target)
            continue
        if link.type == "implemented_by":
            implementing.add(link.item_id)
        if link.type == "implements":
            implementing.add(target)
        twin_link(link.item_id, target, link.type)
    by_title: dict[tuple[str, str], list[_Item]] = defaultdict(list)
    for item in selected:
        if item.open and item.category == "in_progress" and item.quiet:
            found["stale_in_progress"][item.id] = []
        if not item.open and open_children.get(item.id):
            found["done_parent_open_children"][item.id] = sorted(open_children[item.id])
        if item.open and item.kind in ("epic", "feature") and item.id not in has_child and item.id not in implementing:
            found["roadmap_without_work"][item.id] = []
        if item.parent_id is not None and item.parent_id not in hub:
            found["missing_parent"][item.id] = [item.parent_id]
        family = container_family(item.container)
        title = normalised_title(item.title)
        if item.open and family and title:
            by_title[(family, title)].append(item)
    for twins in by_title.values():
        for i, one in enumerate(twins):
            for other in twins[i + 1 :]:
                if one.source != other.source:
                    pairs.add((min(one.id, other.id), max(one.id, other.id)))
    for a, b in sorted(pairs):
        found["duplicate_across_tools"].setdefault(a, []).append(b)
        found["duplicate_across_tools"].setdefault(b, []).append(a)
    selected_ids = {item.id for item in selected}
    return {
        name: {k: sorted(set(v)) for k, v in flagged.items() if k in selected_ids} for name, flagged in found.items()
    }


def _group_quality(group: _Group, drifting: set[str], with_finding: set[str]) -> GroupQuality:
    present: Counter[str] = Counter()
    applicable: Counter[str] = Counter()
    open_items = 0
    for item in group.members:
        if not item.open:
            continue
        open_items += 1
        for name, value in _completeness(item).items():
            if value is not None:
                applicable[name] += 1
                present[name] += int(value)
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
    total = len(group.members)
    drift = sum(1 for item in group.members if item.id in drifting)
    flagged = sum(1 for item in group.members if item.id in with_finding)
    return GroupQuality(
        source=group.source,
        container_id=str(group.container["id"]) if group.container else None,
        container_key=group.container.get("key") if group.container else None,
        container_name=group.container.get("name") if group.container else None,
        items=total,
        open_items=open_items,
        completeness=shares,
        completeness_mean=round(completeness, 4),
        drifting_items=drift,
        items_with_findings=flagged,
        score=score(completeness, drift / total if total else 0.0, flagged / total if total else 0.0),
    )


def score(completeness: float, drift_share: float, finding_share: float) -> float:
    """README "Data-quality report": weighted, 0..100, one decimal."""
    w_complete, w_drift, w_findings = SCORE_WEIGHTS
    value = 100 * (w_complete * completeness + w_drift * (1 - drift_share) + w_findings * (1 - finding_share))
    return round(value + 1e-9, 1)


def _drift(selected: Iterable[_Item]) -> list[DriftValue]:
    counts: Counter[tuple[str, str, str]] = Counter()
    example: dict[tuple[str, str, str], _Item] = {}
    for item in selected:
        for fallback in _fallbacks(item):
            key = (item.source, str(fallback.get("field")), str(fallback.get("raw")))
            counts[key] += 1
            example.setdefault(key, item)  # items arrive by id: the first id is the example
    ordered = sorted(counts, key=lambda k: (-counts[k], k))
    return [
        DriftValue(
            source=k[0],
            field=k[1],
            raw=k[2],
            count=counts[k],
            example=DriftExample(id=example[k].id, url=example[k].url),
        )
        for k in ordered
    ]


def _finding(name: str, flagged: dict[str, list[str]], by_id: dict[str, _Item], *, limit: int, offset: int) -> Finding:
    ids = sorted(flagged)
    page = ids[offset : offset + limit]
    return Finding(
        name=name,
        rule=FINDINGS[name],
        count=len(ids),
        items=[FindingItem(id=i, url=by_id[i].url, related=flagged[i]) for i in page],
        next_offset=offset + limit if offset + limit < len(ids) else None,
    )

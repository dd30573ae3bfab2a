"""Read queries behind the unified API: item filters, keyset pages, people, changes, sources.

Pagination is keyset on (sort value, id), never offset: a page costs the same at item
1,000,000 as at item 1, and an item that is not written while a client walks the pages
keeps its place, so it comes back exactly once. The cursor is opaque to clients (base64 of
a small JSON) and bound to the query's filters, so it cannot be replayed against another
query by mistake.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
    union_all,
)
from sqlalchemy import (
    column as sql_column,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from hub.db.engine import read_connection
from hub.db.lists import in_list, pairs_in_list
from hub.db.tables import (
    TEXT_WALK_BOUND,
    TEXT_WALK_SIZE,
    changes,
    item_assignees,
    item_labels,
    item_links,
    item_report_facts,
    items,
    people,
    person_identities,
    sources,
)
from hub.links import INVERSE, normalise_key, ref_from_url
from hub.schema import LinkType, to_utc
from hub.store.reading import READ_COLUMNS, item_document


class InvalidCursor(ValueError):
    """The page cursor is malformed or belongs to another query."""


@dataclass
class ItemQuery:
    """Filters of GET /v1/items. Several values of one filter mean OR; filters AND together."""

    source: list[str] = field(default_factory=list)
    tool: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    status_category: list[str] = field(default_factory=list)
    priority_level: list[str] = field(default_factory=list)
    assignee: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    container: list[str] = field(default_factory=list)
    parent_id: list[str] = field(default_factory=list)
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    q: str | None = None
    include_deleted: bool = False

    @classmethod
    def shared_filters(
        cls,
        *,
        source: Iterable[str] | None = None,
        tool: Iterable[str] | None = None,
        container: Iterable[str] | None = None,
        kind: Iterable[Enum | str] | None = None,
        label: Iterable[str] | None = None,
        assignee: Iterable[str] | None = None,
    ) -> ItemQuery:
        """The filters the reports (flow, forecasts, quality) share with /v1/items, as the API
        and the CLI receive them: None is no filter, kinds may be enum members."""
        return cls(
            source=list(source or []),
            tool=list(tool or []),
            container=list(container or []),
            kind=[k.value if isinstance(k, Enum) else k for k in kind or []],
            label=list(label or []),
            assignee=list(assignee or []),
        )

    def fingerprint(self, sort: str) -> str:
        data = asdict(self)
        for key in ("updated_after", "updated_before"):
            if data[key] is not None:
                data[key] = to_utc(data[key]).isoformat()
        data["sort"] = sort
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


SORTS = ("updated_at", "-updated_at", "rice_score", "-rice_score")
SortValue = datetime | float


def encode_cursor(fingerprint: str, value: SortValue, item_id: str) -> str:
    """The opaque cursor after (sort value, id): a time (`u`) or a RICE score (`r`)."""
    position: dict[str, Any] = {"u": to_utc(value).isoformat()} if isinstance(value, datetime) else {"r": float(value)}
    payload = orjson.dumps({"f": fingerprint, **position, "i": item_id})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> tuple[SortValue, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        value: SortValue = to_utc(datetime.fromisoformat(data["u"])) if "u" in data else float(data["r"])
        position = (value, str(data["i"]))
        owner = data["f"]
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidCursor("the cursor is not one this API issued") from exc
    if "\x00" in position[1]:  # only a forged cursor has one, and PostgreSQL text cannot
        raise InvalidCursor("the cursor is not one this API issued")
    if owner != fingerprint:
        raise InvalidCursor("the cursor belongs to a query with other filters or sort; start again without it")
    return position


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# SQLite's text index (migrations 0019, 0022): the FTS5 table `items_text` (trigram tokenizer)
# over key and title, keyed by `items_text_ids.docid`, each item's own stable number (items'
# rowid may change: migration 0022).
_FTS = table("items_text", sql_column("rowid"))
_FTS_TABLE: ColumnElement[Any] = literal_column("items_text")
_FTS_IDS = table("items_text_ids", sql_column("docid"), sql_column("item_id"))
_ITEMS_BY_ID = "INDEXED BY sqlite_autoindex_items_1"
"""items' primary key index (SQLite names it: https://www.sqlite.org/fileformat2.html#intschema),
so that the matches are read by id rather than by walking a page-order index:
https://www.sqlite.org/lang_indexedby.html. The hub's SQLite engines render it
(hub/db/engine.py `HubSQLiteCompiler`)."""


class TextPlan(Enum):
    """How a `q=` page on SQLite finds its rows (`ItemQueries._text_plan`)."""

    WALK = "walk"
    """Walk the page-order index and test key and title on each row it passes (as without
    the text index): the plan for a term that matches many items, or has no trigram."""
    INDEX = "index"
    """Read the text index's matches by id, then sort them: for a term few items match."""


def fts_phrase(text: str) -> str:
    """`text` as one FTS5 phrase: with the trigram tokenizer, the rows that contain it (case
    folded). https://www.sqlite.org/fts5.html#fts5_strings"""
    return '"' + text.replace('"', '""') + '"'


def _text_rowids(q: str) -> Select[Any]:
    return select(_FTS.c.rowid).select_from(_FTS).where(_FTS_TABLE.match(fts_phrase(q)))


def _text_item_ids(q: str) -> Select[Any]:
    """The ids of the items whose key or title the text index says contain `q` (a superset)."""
    return select(_FTS_IDS.c.item_id).where(_FTS_IDS.c.docid.in_(_text_rowids(q)))


# Past this many index walks (one per value of the driving filter, two per container value),
# one walk of the updated_at index that checks each row's filters costs less, and its cost
# does not grow with the number of values: SQLite refuses a compound SELECT of more than 500
# members, and PostgreSQL took 13 s to plan and run 2,000 branches.
KEYED_BRANCHES_MAX = 64


# SQLite `q=` plans (TextPlan), by the number of items the text index says match, M, counted up
# to TEXT_INDEX_MAX. At 1M items (bench/api_text.py, bench/README.md "q= and a text index"),
# CPU per page: reading and sorting every match costs ~7.6 us a match; the walk ~10 us per
# row it passes (~100 x 1M / M rows); the filter ~0.4 us a match to gather them plus
# ~1.3 us per index entry it passes. So: INDEX below ~5,000 matches, FILTER up to ~40,000,
# and the plain walk beyond (`timeout`, 71,160 matches: walk 15 ms, filter 37, index 277).
# Since migration 0022 the matches are gathered as item ids through the docid map: ~2.5-3 us
# a match instead of ~0.4 (250k items: the filter plan for `timeout`, 17,790 matches, cost
# 62-64 ms CPU against the walk's 19-28; bench/README.md "i13fts"), so the filter band ends
# at 15,000 (at 1M, the walk already cost less CPU than the filter at 14,492 matches).
# Since migration 0024 the walk tests key and title on ix_items_updated's entry and reads no
# row it does not return: ~0.35 us per entry (1M items: `timeout` 7-9 ms CPU a page, 167 read
# calls instead of 1,692; `invoice PDF timeout`, 3,512 matches, 10 ms against the index
# plan's 67; bench/README.md "i13api1m"). Walk and index cross near sqrt(1.8 x items)
# matches (~1,400 at 1M, ~430 at 100k), and the filter plan, which reads no rows either but
# gathers the matches first, no longer wins anywhere: INDEX below 1,500 matches, else WALK
# (that third plan, FILTER, was removed after migration 0024).
TEXT_INDEX_MAX = 1_500
TEXT_COUNT_TTL_S = 60.0
"""How long a term's match count is reused: the pages of one walk count once. The count only
chooses the plan, never the answer, so a stale one costs time, not correctness."""

# PostgreSQL `q=` pages (migration 0024): the index-only walk of ix_items_text_walk tests
# ~100 x items / matches index entries a page, ~3 us each (ILIKE in UTF-8 lower-cases both
# sides), where the plain walk of ix_items_updated reads each entry's wide row (~8 us warm, a
# page read cold), and the trigram bitmap reads every match (~17 us a match, then a sort). At
# 1M items, warm, `invoice PDF timeout` (3,512 matches): bitmap 61 ms, index-only walk 99 ms,
# plain walk 261 ms (bench/README.md, "i13api1m"). The planner prices ILIKE like any operator,
# so, offered the index-only walk, it takes it even for a term a few thousand items hold. So
# the hub asks the planner only how many items match (its estimate) and walks the text index
# from TEXT_WALK_SHARE of the items on: below it the plain statement goes as before 0024 (at
# 1M the planner chose the bitmap at 184 estimated matches and the plain walk from ~8,600 on).
TEXT_WALK_SHARE = 0.005


T = TypeVar("T")


class RecentChoices(Generic[T]):
    """A `q=` plan input per key (SQLite's match count, PostgreSQL's walk decision), reused
    for TEXT_COUNT_TTL_S so that the pages of one walk decide once; the 256 most recent kept."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < TEXT_COUNT_TTL_S:
            return cached[1]
        value = compute()
        self._entries[key] = (now, value)
        while len(self._entries) > 256:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()


class ExplainJson(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <select>` (PostgreSQL), executed as a SQLAlchemy statement so that
    the select's parameters go through the same compilation as when it runs: expanding IN
    lists, bind processors. (A string of the compiled select sent to the driver left
    `IN (__[POSTCOMPILE_...])` unrendered: a `q=` page with a repeated filter failed.)
    https://docs.sqlalchemy.org/en/20/core/compiler.html#compiling-sub-elements-of-a-custom-expression-construct"""

    inherit_cache = False

    def __init__(self, select_: Select[Any]) -> None:
        self.select = select_


@compiles(ExplainJson, "postgresql")
def _explain_json(element: ExplainJson, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.select, **kw)


class ItemQueries:
    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms
        """Bound on each read on PostgreSQL (see `read_connection`); the API sets it."""
        self.text_plan: TextPlan | None = None
        """Force one `q=` plan on SQLite (benchmarks, tests); None decides per query."""
        self._text_counts: RecentChoices[int] = RecentChoices()
        self._text_walks: RecentChoices[bool] = RecentChoices()

    def _read(self) -> AbstractContextManager[Connection]:
        return read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms)

    def _person_ids(self, conn: Connection, refs: list[str]) -> list[str]:
        """Assignee filter values are hub person ids or emails (any identity's email)."""
        ids = [r for r in refs if "@" not in r]
        emails = [r.strip().lower() for r in refs if "@" in r]
        if emails:
            ids += conn.execute(select(people.c.id).where(people.c.email.in_(emails))).scalars().all()
            ids += (
                conn.execute(select(person_identities.c.person_id).where(person_identities.c.email.in_(emails)))
                .scalars()
                .all()
            )
        return sorted(set(ids))

    def _conditions(
        self,
        query: ItemQuery,
        person_ids: list[str],
        *,
        time_column: ColumnElement[Any] = items.c.updated_at,
        skip: frozenset[str] = frozenset(),
        text_plan: TextPlan = TextPlan.WALK,
    ) -> list[ColumnElement[bool]]:
        """The WHERE terms of `query` on `items`, leaving out the filters in `skip` (the one a
        keyed query drives from); updated_after/before bound `time_column`, a copy of
        items.updated_at in a side table when the query walks that table's index."""
        cond: list[ColumnElement[bool]] = []
        for column, values in (
            (items.c.source, query.source),
            (items.c.tool, query.tool),
            (items.c.kind, [] if "kind" in skip else query.kind),
            (items.c.status_category, query.status_category),
            (items.c.priority_level, query.priority_level),
            (items.c.parent_id, query.parent_id),
        ):
            if values:
                cond.append(column.in_(values) if len(values) > 1 else column == values[0])
        if query.container and "container" not in skip:
            cond.append(or_(items.c.container_id.in_(query.container), items.c.container_key.in_(query.container)))
        if query.label and "label" not in skip:
            cond.append(exists().where(item_labels.c.item_id == items.c.id, item_labels.c.label.in_(query.label)))
        if query.assignee and "assignee" not in skip:
            cond.append(
                exists().where(item_assignees.c.item_id == items.c.id, item_assignees.c.person_id.in_(person_ids))
                if person_ids
                else false()
            )
        if query.updated_after is not None:
            cond.append(time_column > to_utc(query.updated_after))
        if query.updated_before is not None:
            cond.append(time_column < to_utc(query.updated_before))
        if query.q:
            if text_plan is TextPlan.INDEX:
                cond.append(items.c.id.in_(_text_item_ids(query.q)))
            # The text index's matches are a superset (it folds all case, ILIKE on SQLite
            # ASCII only): the substring test decides.
            pattern = _like_pattern(query.q)
            cond.append(or_(items.c.key.ilike(pattern, escape="\\"), items.c.title.ilike(pattern, escape="\\")))
        if not query.include_deleted:
            cond.append(items.c.deleted == false())
        return cond

    def _text_plan(self, conn: Connection, query: ItemQuery) -> TextPlan:
        """The `q=` plan of a page on SQLite: by how many items the text index says match
        (counted up to TEXT_INDEX_MAX). PostgreSQL: `_pg_text_walk`."""
        q = query.q
        if self.engine.dialect.name != "sqlite" or not q or len(q) < 3 or "\x00" in q:
            return TextPlan.WALK  # no trigram in fewer than three characters: no index
        if self.text_plan is not None:
            return self.text_plan

        def count() -> int:
            # Counting costs ~0.4 us a match: up to TEXT_INDEX_MAX, ~2 ms for a common term.
            probe = _text_rowids(q).limit(TEXT_INDEX_MAX).subquery()
            return int(conn.execute(select(func.count()).select_from(probe)).scalar_one())

        return TextPlan.INDEX if self._text_counts.get(q, count) < TEXT_INDEX_MAX else TextPlan.WALK

    def _pg_text_walk(self, conn: Connection, query: ItemQuery, person_ids: list[str]) -> bool:
        """Whether a `q=` page on PostgreSQL walks ix_items_text_walk (TEXT_WALK_SHARE): by the
        planner's estimate of the items the filters match, against its estimate of all items.
        Decided once a minute per query, as SQLite's count (`_text_plan`): a walk's pages
        plan once. The choice changes the time of a page, never its rows."""

        def decide() -> bool:
            probe: Select[Any] = (
                select(literal_column("1")).select_from(items).where(and_(*self._conditions(query, person_ids)))
            )
            plan = conn.execute(ExplainJson(probe)).scalar_one()
            matches = float(plan[0]["Plan"]["Plan Rows"])
            total = float(
                conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'items'::regclass")).scalar_one()
            )
            return matches >= TEXT_WALK_SHARE * max(total, 1.0)  # -1: never analysed

        return self._text_walks.get(query.fingerprint(""), decide)

    def filter_conditions(self, conn: Connection, query: ItemQuery) -> list[ColumnElement[bool]]:
        """The WHERE terms of `query` on `items`, for services that read items in bulk with the
        same filters as GET /v1/items (flow metrics, forecasts)."""
        person_ids = self._person_ids(conn, query.assignee) if query.assignee else []
        return self._conditions(query, person_ids)

    def list_items(
        self, query: ItemQuery, *, sort: str = "-updated_at", limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of items and the cursor of the next page (None on the last page).

        Sorting by `rice_score` ranks the items that have a score (every RICE input mapped);
        an item missing an input has none and says which in `rice.missing`.
        """
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        fingerprint = query.fingerprint(sort)
        descending = sort.startswith("-")
        column = items.c.rice_score if sort.endswith("rice_score") else items.c.updated_at
        after: tuple[SortValue, str] | None = None
        if cursor:
            after = decode_cursor(cursor, fingerprint)
            if isinstance(after[0], datetime) != (column is items.c.updated_at):
                raise InvalidCursor("the cursor belongs to a query with another sort")
        with self._read() as conn:
            person_ids = self._person_ids(conn, query.assignee) if query.assignee else []
            keyed = column is items.c.updated_at and (
                bool(person_ids)
                or bool(query.label)
                or (bool(query.container) and not query.assignee)
                or (len(set(query.kind)) > 1 and not query.assignee)
            )
            keyed = keyed and _keyed_branches(query, person_ids) <= KEYED_BRANCHES_MAX
            if keyed:
                stmt = self._keyed_page(query, person_ids, descending, limit, after)
            elif (
                query.q
                and column is items.c.updated_at
                and self.engine.dialect.name == "postgresql"
                and self._pg_text_walk(conn, query, person_ids)
            ):
                stmt = self._keyed_page(query, person_ids, descending, limit, after, text_walk=True)
            else:
                text_plan = self._text_plan(conn, query)
                stmt = self._plain_page(query, person_ids, column, descending, limit, after, text_plan)
            rows = conn.execute(stmt).all()
            next_cursor = None
            if len(rows) > limit:
                rows = rows[:limit]
                last = rows[-1]
                next_cursor = encode_cursor(fingerprint, last.sort_value, last.id)
            docs = [item_document(row) for row in rows]
            resolve_links(conn, docs)
        return docs, next_cursor

    def _plain_page(
        self,
        query: ItemQuery,
        person_ids: list[str],
        column: ColumnElement[Any],
        descending: bool,
        limit: int,
        after: tuple[SortValue, str] | None,
        text_plan: TextPlan = TextPlan.WALK,
    ) -> Select[Any]:
        """One statement on `items` in (sort value, id) order: the sort's own index, or the
        index of a plain equality filter. The updated_at indexes carry the other
        low-cardinality filters (hub/db/tables.py `ITEM_FILTERS`), so those are checked on
        the index entry and only a matching item's row is read; the other filters (labels,
        assignees) and the rice_score walk check each row. `q` on SQLite: see `TextPlan`;
        on PostgreSQL the planner chooses between the walk and the trigram index."""
        stmt: Select[Any] = select(*READ_COLUMNS, items.c.id, column.label("sort_value"))
        conditions = self._conditions(query, person_ids, text_plan=text_plan)
        if text_plan is TextPlan.INDEX:
            # The matches are few: read them by id and sort, rather than walk an index.
            stmt = stmt.with_hint(items, _ITEMS_BY_ID, "sqlite")
        if column is items.c.rice_score:
            conditions.append(items.c.rice_score.is_not(None))
        if after is not None:
            position = tuple_(column, items.c.id)
            bound = tuple_(after[0], after[1])
            conditions.append(position < bound if descending else position > bound)
        if conditions:
            stmt = stmt.where(and_(*conditions))
        order = (column.desc(), items.c.id.desc()) if descending else (column, items.c.id)
        return stmt.order_by(*order).limit(limit + 1)

    def _keyed_page(
        self,
        query: ItemQuery,
        person_ids: list[str],
        descending: bool,
        limit: int,
        after: tuple[SortValue, str] | None,
        *,
        text_walk: bool = False,
    ) -> Select[Any]:
        """A page sorted by updated_at, driven from the index of one filter's values.

        The query walks (value, updated_at, id) for each value of the driving filter: an
        assignee (`item_assignees`), else a label (`item_labels`), else a container
        (`items.container_id` and `items.container_key`), else a kind (`items.kind`, when
        several are asked for). Each value is one branch, ordered
        and limited to the page on its own index; the branches are joined with UNION ALL and
        the page is the first limit+1 distinct (updated_at, id) of them. An item in several
        branches (two matching labels) has the same (updated_at, id) in each, so it appears
        once. The other filters (the non-driving label or assignee as EXISTS) are checked on
        the joined items row. The keyset bound applies per branch, so pages keep the plain
        query's semantics: every item not written during a traversal comes back exactly once.

        `text_walk` (PostgreSQL, `q=` with no keyed filter): two branches that split the items
        in two by the size of their indexed text (hub/db/tables.py `TEXT_WALK_BOUND`), one
        per partial index: the first tests key and title by an index-only scan of
        `ix_items_text_walk`, so only the page's rows are read from the heap.
        """
        branches: list[tuple[Any, ColumnElement[Any], ColumnElement[Any], ColumnElement[bool], str]] = []
        if text_walk:
            # The predicates as the indexes state them, inlined (not bound parameters): the
            # planner proves a partial index usable only from the query's own conditions
            # (https://www.postgresql.org/docs/current/indexes-partial.html), also in the
            # generic plan of a prepared statement.
            size: ColumnElement[int] = literal_column(TEXT_WALK_SIZE)
            most: ColumnElement[int] = literal_column(str(TEXT_WALK_BOUND))
            branches = [
                (None, items.c.id, items.c.updated_at, size <= most, "text"),
                (None, items.c.id, items.c.updated_at, size > most, "text"),
            ]
        elif person_ids:
            a = item_assignees.alias("s")
            branches = [(a, a.c.item_id, a.c.updated_at, a.c.person_id == p, "assignee") for p in person_ids]
        elif query.label:
            lb = item_labels.alias("s")
            labels = list(dict.fromkeys(query.label))
            branches = [(lb, lb.c.item_id, lb.c.updated_at, lb.c.label == v, "label") for v in labels]
        elif not query.container:
            # Several kinds (the roadmap kinds, say): SQLite cannot walk (kind, updated_at, id)
            # for an IN list in updated_at order, so it walked the whole updated_at index,
            # reading every wide row, to find the few epics (700 ms at 100,000 items).
            kinds = list(dict.fromkeys(query.kind))
            branches = [(None, items.c.id, items.c.updated_at, items.c.kind == v, "kind") for v in kinds]
        else:
            values = list(dict.fromkeys(query.container))
            # A container value matches container_id or container_key; the key branches leave
            # out items whose container_id matched already, so no item is in two branches.
            other_id = or_(items.c.container_id.is_(None), items.c.container_id.not_in(values))
            branches = [(None, items.c.id, items.c.updated_at, items.c.container_id == v, "container") for v in values]
            branches += [
                (None, items.c.id, items.c.updated_at, and_(items.c.container_key == v, other_id), "container")
                for v in values
            ]

        selects: list[Select[Any]] = []
        for side, id_col, time_col, match, driving in branches:
            conditions = [match, *self._conditions(query, person_ids, time_column=time_col, skip=frozenset({driving}))]
            if after is not None:
                position = tuple_(time_col, id_col)
                bound = tuple_(after[0], after[1])
                conditions.append(position < bound if descending else position > bound)
            source = items if side is None else side.join(items, items.c.id == id_col)
            order = (time_col.desc(), id_col.desc()) if descending else (time_col, id_col)
            selects.append(
                select(id_col.label("id"), time_col.label("sort_value"))
                .select_from(source)
                .where(and_(*conditions))
                .order_by(*order)
                .limit(limit + 1)
            )
        if len(selects) == 1:
            page = selects[0].subquery("page")
        else:
            # SQLite takes no ORDER BY/LIMIT on a compound's members: each is a subquery.
            members = [select(sub.c.id, sub.c.sort_value) for sub in (s.subquery() for s in selects)]
            merged = union_all(*members).subquery("merged")
            order = (
                (merged.c.sort_value.desc(), merged.c.id.desc()) if descending else (merged.c.sort_value, merged.c.id)
            )
            page = (
                select(merged.c.id, merged.c.sort_value).distinct().order_by(*order).limit(limit + 1).subquery("page")
            )
        order = (page.c.sort_value.desc(), page.c.id.desc()) if descending else (page.c.sort_value, page.c.id)
        return (
            select(*READ_COLUMNS, items.c.id, page.c.sort_value)
            .select_from(page.join(items, items.c.id == page.c.id))
            .order_by(*order)
        )

    def get_item(self, item_id: str, *, include_raw: bool = False) -> dict[str, Any] | None:
        """One item (tombstoned or not) with its links resolved in both directions."""
        cols = [*READ_COLUMNS, items.c.raw] if include_raw else list(READ_COLUMNS)
        with self._read() as conn:
            row = conn.execute(select(*cols).where(items.c.id == item_id)).first()
            if row is None:
                return None
            doc = item_document(row, include_raw=include_raw)
            resolve_links(conn, [doc])
        return doc

    # ------------------------------------------------------------------ people

    def list_people(
        self, *, limit: int = 50, after: str | None = None, email: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self._read() as conn:
            stmt = select(people.c.id, people.c.name, people.c.email).order_by(people.c.id).limit(limit + 1)
            if after:
                stmt = stmt.where(people.c.id > after)
            if email:
                stmt = stmt.where(people.c.email == email.strip().lower())
            rows = conn.execute(stmt).all()
            more = len(rows) > limit
            rows = rows[:limit]
            found = self._with_identities(conn, rows)
        return found, (rows[-1].id if more and rows else None)

    def get_person(self, person_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            rows = conn.execute(
                select(people.c.id, people.c.name, people.c.email).where(people.c.id == person_id)
            ).all()
            found = self._with_identities(conn, rows)
        return found[0] if found else None

    @staticmethod
    def _with_identities(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        ident = person_identities.c
        by_person: dict[str, list[dict[str, Any]]] = {r.id: [] for r in rows}
        stmt = (
            select(ident.person_id, ident.source, ident.native_id, ident.name, ident.email)
            .where(ident.person_id.in_(list(by_person)))
            .order_by(ident.source, ident.native_id)
        )
        for r in conn.execute(stmt):
            native_id = None if r.native_id.startswith("email:") else r.native_id
            by_person[r.person_id].append(
                {"source": r.source, "native_id": native_id, "name": r.name, "email": r.email}
            )
        return [{"id": r.id, "name": r.name, "email": r.email, "identities": by_person[r.id]} for r in rows]

    # ------------------------------------------------------------------ changes, sources

    def list_changes(self, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(select(changes).where(changes.c.seq > after).order_by(changes.c.seq).limit(limit)).all()
        return [
            {"seq": int(r.seq), "item_id": r.item_id, "op": r.op, "fields": orjson.loads(r.fields), "at": r.at}
            for r in rows
        ]

    def count_by_source_and_status(self) -> dict[str, dict[str, int]]:
        """Live (not tombstoned) items per source and status category: {source: {category: n}}.

        Counted on `item_report_facts` (hub/store/report_facts.py: one narrow row per item,
        written in the item's transaction, copying its source, status and deleted flag), not
        on `items`: a count over every item otherwise reads every wide row (on SQLite about
        five times the pages; 318 against 62 ms of CPU at 100,000 items)."""
        facts = item_report_facts.c
        with self._read() as conn:
            rows = conn.execute(
                select(facts.source, facts.status_category, func.count())
                .where(facts.deleted == false())
                .group_by(facts.source, facts.status_category)
            ).all()
        found: dict[str, dict[str, int]] = {}
        for source, category, count in rows:
            found.setdefault(source, {})[category] = int(count)
        return found

    def list_sources(self, by_source: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
        """The configured sources with their live item counts (`by_source`: the counts of
        `count_by_source_and_status`, when the caller already has them)."""
        if by_source is None:
            by_source = self.count_by_source_and_status()
        with self._read() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.name)).all()
        return [
            {
                "name": r.name,
                "tool": r.tool,
                "status": r.status,
                "status_message": r.status_message,
                "item_count": sum(by_source.get(r.name, {}).values()),
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
            for r in rows
        ]

    def count_by_tool_and_status(self, by_source: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, int]]:
        """Live (not tombstoned) items per tool and status category: {tool: {category: n}}.

        Per source (`count_by_source_and_status`), then each source's tool: from `sources`,
        or, for items stored without a source row (tests, benchmarks), from one of its items."""
        if by_source is None:
            by_source = self.count_by_source_and_status()
        with self._read() as conn:
            tools = dict(conn.execute(select(sources.c.name, sources.c.tool)).all())
            for source in by_source.keys() - tools.keys():
                tools[source] = conn.execute(select(items.c.tool).where(items.c.source == source).limit(1)).scalar_one()
        found: dict[str, dict[str, int]] = {}
        for source, counts in by_source.items():
            into = found.setdefault(tools[source], {})
            for category, count in counts.items():
                into[category] = into.get(category, 0) + count
        return found

    def get_source(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.list_sources() if s["name"] == name), None)


def _keyed_branches(query: ItemQuery, person_ids: list[str]) -> int:
    """How many UNION ALL members `_keyed_page` would build for this query."""
    if person_ids:
        return len(person_ids)
    if query.label:
        return len(set(query.label))
    if not query.container:
        return len(set(query.kind))
    return 2 * len(set(query.container))


def resolve_links(conn: Connection, docs: list[dict[str, Any]]) -> None:
    """Complete the links of these item documents, in place, from what the store knows now.

    - A link stated by URL or key gets the target's hub id once that item is stored.
    - A link another item states about one of these appears here as its inverse
      (a Jira issue shows `implements` for the Productboard feature it implements).
    Both are read-time joins, so neither side has to arrive first.
    """
    if not docs:
        return
    by_id = {doc["id"]: doc for doc in docs}
    wanted: set[tuple[str, str]] = set()
    for doc in docs:
        for link in doc.get("links") or []:
            if not link.get("target_id") and link.get("url"):
                ref = ref_from_url(link["url"])
                if ref is not None:
                    wanted.add(ref)
    found: dict[tuple[str, str], str] = {}
    if wanted:
        rows = conn.execute(
            select(items.c.id, items.c.tool, items.c.key).where(
                tuple_(items.c.tool, items.c.key).in_(sorted(wanted)), items.c.deleted == false()
            )
        )
        for r in rows:
            found.setdefault((r.tool, r.key), r.id)
    for doc in docs:
        for link in doc.get("links") or []:
            if not link.get("target_id") and link.get("url"):
                ref = ref_from_url(link["url"])
                if ref is not None and ref in found:
                    link["target_id"] = found[ref]

    own_refs = {(doc["tool"], normalise_key(doc["tool"], doc["key"])): doc["id"] for doc in docs if doc.get("key")}
    incoming = select(
        item_links.c.item_id,
        item_links.c.type,
        item_links.c.target_id,
        item_links.c.target_tool,
        item_links.c.target_key,
    )
    clauses = [in_list(conn, item_links.c.target_id, by_id)]  # one array parameter on PostgreSQL
    if own_refs:
        clauses.append(pairs_in_list(conn, item_links.c.target_tool, item_links.c.target_key, sorted(own_refs)))
    for stated in conn.execute(incoming.where(or_(*clauses))):
        target = (
            stated.target_id if stated.target_id in by_id else own_refs.get((stated.target_tool, stated.target_key))
        )
        if target is None or target not in by_id or stated.item_id == target:
            continue
        inverse = INVERSE[LinkType(stated.type)].value
        links = by_id[target].setdefault("links", [])
        if not any(link.get("type") == inverse and link.get("target_id") == stated.item_id for link in links):
            links.append({"type": inverse, "target_id": stated.item_id, "url": None})

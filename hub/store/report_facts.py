"""Report facts: the few document fields the insight reports need, kept in narrow columns.

Why: the quality, digest and priorities reports (issue 10) must answer in under a second at
100,000 items, and the facts they need (due and release dates, which fields are filled, the
vocabulary fallbacks, the URL and container name, the normalised title and container family) otherwise live only inside the stored JSON
document. Extracting them per request means parsing every document (json_extract on SQLite,
a cast to jsonb on PostgreSQL: most of the 17 s the quality report took there). So
`ItemStore.apply` writes one `item_report_facts` row per item it writes, in the same
transaction as the items row (`write_report_facts`), and the reports join it by primary key.

The row copies the items row's filter columns (source, container, kind, status, priority,
parent, RICE score, updated_at, deleted), so a report over every item reads only this narrow table: on
SQLite a scan of `items` reads every document's pages (about 1 KB an item in the benchmarks), this table
about 180 bytes. The document facts have two derivations, one result: `facts_of_item` (from
the WorkItem, on the write path: no document parse) and `facts_of_document` (from the stored
JSON, for migration 0006's backfill of existing rows). tests/test_report_facts.py checks the
stored row against the items row and its document after upserts and deletions in any order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence, Set
from functools import lru_cache, partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    String,
    and_,
    any_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.visitors import replacement_traverse

from hub.db.tables import item_report_facts, items
from hub.schema import RICE_INPUTS, WorkItem
from hub.store.bulk import Statements, keys_in
from mappings.engine import FALLBACKS_KEY

if TYPE_CHECKING:
    from hub.store.bulk import _Bulk

MAINTAINED_COLUMNS = ("twin_key", "parent_missing", "has_live_child", "has_open_child", "has_title_twin")
"""Columns that relate a row to other rows (migration 0010): `write_report_facts` keeps them
in step for every row a write can change (`maintain_flags`), not only the rows written."""
FACT_COLUMNS = tuple(c.name for c in item_report_facts.columns if c.name not in MAINTAINED_COLUMNS)
"""What the items row and its document say (the columns `apply` writes from the item)."""
_WRITTEN_COLUMNS = (*FACT_COLUMNS, "twin_key")
CLOSED_CATEGORIES = ("done", "cancelled")
COPIED_COLUMNS = (
    "source",
    "container_id",
    "container_key",
    "kind",
    "status_category",
    "priority_level",
    "parent_id",
    "rice_score",
    "updated_at",
    "deleted",
)
"""Copied from the items row (the columns the reports filter, group and rank on)."""
assert FACT_COLUMNS[1 : 1 + len(COPIED_COLUMNS)] == COPIED_COLUMNS
_COPIED_AT = tuple(c.name for c in items.columns).index  # position in an items row (apply's column order)
_copied = itemgetter(*(_COPIED_AT(name) for name in COPIED_COLUMNS))
"""The copied columns of an items row, as a tuple (one C call, not a generator per row)."""

DocumentFacts = tuple[
    str | None, str | None, str | None, str | None, bool, bool, bool, bool, bool, str | None, str, str | None
]
"""The facts taken from the document: url, container_name, due_on, release_on, has_assignee,
has_estimate, has_description, has_iteration, has_rice, fallbacks, title_key, container_family."""

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalised_title(title: str) -> str:
    """Lower case, every run of non-alphanumeric characters one space, trimmed (the quality
    report's duplicate rule). Stored as `title_key`: changing this rule needs a data migration."""
    return _NON_ALNUM.sub(" ", title.casefold()).strip()


def container_family(container: Mapping[str, Any] | None) -> str | None:
    """The container's name (else key, else id) after its last '/', normalised like a title:
    `acme/payments` (GitHub) and `Payments` (Jira) are one family. Stored as `container_family`."""
    if not container:
        return None
    name = container.get("name") or container.get("key") or container.get("id")
    if not name:
        return None
    return normalised_title(str(name).rsplit("/", 1)[-1]) or None


def twin_key(family: str | None, title_key: str) -> str | None:
    """The same-title rule's key (`twin_key` column): md5 of the container family, a newline
    and the normalised title; None when either is empty (such an item has no title twin).
    Migration 0010 computes the same in SQL on PostgreSQL (`md5(family || chr(10) || title)`)."""
    if not family or not title_key:
        return None
    return hashlib.md5(f"{family}\n{title_key}".encode(), usedforsecurity=False).hexdigest()


def _fallbacks_json(found: Any) -> str | None:
    """The recorded fallbacks (`[{field, raw}]`, mappings.engine) as JSON text, None when none."""
    if not isinstance(found, list):
        return None
    kept = [entry for entry in found if isinstance(entry, dict)]
    return orjson.dumps(kept).decode() if kept else None


def facts_of_item(item: WorkItem) -> DocumentFacts:
    """The document facts of an item (see the module doc)."""
    container, release, rice = item.container, item.release, item.rice
    return (
        item.url,
        container.name if container else None,
        item.due_on.isoformat() if item.due_on else None,
        release.release_on.isoformat() if release and release.release_on else None,
        bool(item.assignees),
        item.estimate is not None,
        bool(item.description and item.description.strip()),
        item.iteration is not None,
        rice is not None and all(getattr(rice, name) is not None for name in RICE_INPUTS),
        _fallbacks_json(item.custom.get(FALLBACKS_KEY)),
        normalised_title(item.title),
        _family_of(container.id, container.key, container.name) if container else None,
    )


@lru_cache(maxsize=4096)
def _family_of(container_id: str | None, key: str | None, name: str | None) -> str | None:
    """`container_family` of an item's container, once per container (a batch's items share a
    few containers)."""
    return container_family({"id": container_id, "key": key, "name": name})


def facts_of_document(doc: Mapping[str, Any]) -> DocumentFacts:
    """The same facts from a stored document (the JSON `apply` writes to `items.doc`)."""
    container = doc.get("container") or {}
    release = doc.get("release") or {}
    rice = doc.get("rice") or {}
    description = doc.get("description")
    custom = doc.get("custom") or {}
    return (
        doc.get("url"),
        container.get("name"),
        doc.get("due_on"),
        release.get("release_on"),
        bool(doc.get("assignees")),
        doc.get("estimate") is not None,
        bool(description and description.strip()),
        doc.get("iteration") is not None,
        bool(rice) and all(rice.get(name) is not None for name in RICE_INPUTS),
        _fallbacks_json(custom.get(FALLBACKS_KEY)) if isinstance(custom, dict) else None,
        normalised_title(doc.get("title") or ""),
        container_family(doc.get("container")),
    )


def write_report_facts(
    conn: Connection,
    bulk: _Bulk,
    item_rows: Sequence[Sequence[Any]],
    written: Mapping[str, WorkItem | None],
    tombstoned: Sequence[str],
    new: Set[str] = frozenset(),
) -> None:
    """Keep the facts in step with what `apply` just wrote (same transaction, same bulk path):
    `item_rows` are the items rows written (in `items` column order, values as bound) and
    `written` their items by id; `tombstoned` the ids whose row only had `deleted` set; `new`
    the written ids that had no items row before this transaction, so no facts row (one is
    written only with its items row): their stored flag inputs are not looked up. Then
    the maintained flags of every row the write can change (`maintain_flags`)."""
    rows = []
    for row in item_rows:
        item = written[row[0]]
        if item is None:  # never: apply writes an items row only with its item
            continue
        facts = facts_of_item(item)
        rows.append((row[0], *_copied(row), *facts, twin_key(facts[-1], facts[-2])))
    written_ids = [row[0] for row in rows] + list(tombstoned)
    looked_up = [item_id for item_id in written_ids if item_id not in new] if new else written_ids
    stored = _flag_inputs(conn, looked_up) if looked_up else {}
    # Only a row whose flag inputs changed can change any row's flags (its own or its
    # neighbours'): the flags are a function of these inputs over all rows, and were right
    # before the write. An update that leaves parent, twin key, status, source and deleted
    # as they were (most re-syncs) recomputes nothing.
    now = {row[0]: _inputs_of(row) for row in rows}
    after = {item_id: now[item_id] if item_id in now else _tombstoned(stored.get(item_id)) for item_id in written_ids}
    changed = [item_id for item_id in written_ids if stored.get(item_id) != after[item_id]]
    before = _neighbours_of([stored[item_id] for item_id in changed if item_id in stored])
    # How the changed rows moved between twin-key groups: `_set_title_twins` derives each
    # group's verdict before the write from the one it reads after it (no read before).
    moves = [(stored.get(item_id), after[item_id]) for item_id in changed]
    # One multi-row statement per chunk on SQLite, as flow facts (hub/store/flow_facts.py).
    bulk.insert(conn, item_report_facts, _WRITTEN_COLUMNS, rows, conflict=("item_id",), one_statement=True)
    if tombstoned:
        sql, dialect = _statements(conn), conn.dialect.name
        sql.run(
            conn,
            "tombstoned",
            lambda: update(item_report_facts).where(keys_in(dialect, _F.item_id, "ids")).values(deleted=True),
            ids=sql.keys(tombstoned),
        )
    if changed:
        # What the changed rows name now: `after` is what was just written (a tombstoned row
        # keeps its parent and twin key), so `maintain_flags` need not read it back.
        now_named = [inputs for item_id in changed if (inputs := after[item_id]) is not None]
        maintain_flags(conn, changed, before, moves, _neighbours_of(now_named))


_F = item_report_facts.c
_STATEMENTS: dict[str, Statements] = {}


def _statements(conn: Connection) -> Statements:
    """The flag upkeep's statements, compiled once per dialect (hub/store/bulk.py `Statements`)."""
    sql = _STATEMENTS.get(conn.dialect.name)
    if sql is None:
        sql = _STATEMENTS[conn.dialect.name] = Statements(conn.dialect)
    return sql


def _any_of(conn: Connection, column: Column[Any], values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` with the values in ONE bound parameter (PostgreSQL: an array; SQLite:
    a JSON array through json_each), so the statement text is the same for every batch size
    (compiled and planned once) and SQLite's parameter limit does not apply. The same as
    ItemStore._any_of (hub/store/items.py)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
    values_json = bindparam(None, orjson.dumps(list(values)).decode(), type_=String)
    return column.in_(select(func.json_each(values_json).table_valued("value").c.value))


# The flag inputs of a facts row (what `_flag_values` reads of it), in this order.
_FLAG_INPUTS = ("parent_id", "twin_key", "status_category", "source", "deleted")
_INPUT_AT = tuple(_WRITTEN_COLUMNS.index(name) for name in _FLAG_INPUTS)
_inputs_at = itemgetter(*_INPUT_AT)
FlagInputs = tuple[str | None, str | None, str, str, bool]


def _inputs_of(row: Sequence[Any]) -> FlagInputs:
    """The flag inputs of a row as written (`_WRITTEN_COLUMNS` order)."""
    parent_id, key, category, source, deleted = _inputs_at(row)
    return (parent_id, key, category, source, bool(deleted))


def _flag_inputs(conn: Connection, ids: Sequence[str]) -> dict[str, FlagInputs]:
    """The stored flag inputs of the rows of `ids` (read before they are overwritten)."""
    sql, dialect = _statements(conn), conn.dialect.name
    rows = sql.rows(
        conn,
        "flag inputs",
        lambda: select(_F.item_id, *(_F[name] for name in _FLAG_INPUTS)).where(keys_in(dialect, _F.item_id, "ids")),
        ids=sql.keys(ids),
    )
    return {
        item_id: (parent_id, key, category, source, bool(deleted))
        for item_id, parent_id, key, category, source, deleted in rows
    }


def _tombstoned(inputs: FlagInputs | None) -> FlagInputs | None:
    """A stored row's flag inputs once `deleted` is set."""
    return None if inputs is None else (*inputs[:4], True)


def _neighbours_of(inputs: Sequence[FlagInputs]) -> tuple[Sequence[str], Sequence[str]]:
    """The parents and twin keys these rows name (see `_neighbours`)."""
    return [r[0] for r in inputs if r[0] is not None], [r[1] for r in inputs if r[1] is not None]


def _neighbours(conn: Connection, ids: Sequence[str]) -> tuple[Sequence[str], Sequence[str]]:
    """The parents and twin keys the stored rows of `ids` name (read before they are
    overwritten: a re-parented child changes its old parent's flags too)."""
    sql, dialect = _statements(conn), conn.dialect.name
    rows = sql.rows(
        conn,
        "neighbours",
        lambda: select(_F.parent_id, _F.twin_key).where(keys_in(dialect, _F.item_id, "ids")),
        ids=sql.keys(ids),
    )
    return [r[0] for r in rows if r[0] is not None], [r[1] for r in rows if r[1] is not None]


def _flag_values() -> dict[str, ColumnElement[bool]]:
    """Each maintained flag of a facts row, from the other rows (the rules of the quality
    report's findings, hub/insights/quality.py):

    - parent_missing: parent_id names no live row (none, or a deleted one);
    - has_live_child / has_open_child: a live row (open: status not done or cancelled) names
      it as parent;
    - has_title_twin: live and open, with a twin key, and a live, open row of another source
      has the same twin key (same container family and normalised title). Not a per-row
      expression here: `_set_title_twins` decides each twin-key group once (`_shared_keys`).
    """
    other = item_report_facts.alias("other")
    o = other.c
    live_child = and_(o.parent_id == _F.item_id, o.deleted == false())
    return {
        "parent_missing": and_(_F.parent_id.is_not(None), ~_probe(o.item_id == _F.parent_id, o.deleted == false())),
        "has_live_child": _probe(live_child),
        "has_open_child": _probe(live_child, o.status_category.not_in(CLOSED_CATEGORIES)),
    }


def _probe(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """`EXISTS (SELECT ... WHERE conditions)` as a scalar subquery: `(SELECT 1 ... LIMIT 1) IS
    NOT NULL`, the same truth value, looked up per row through the index (the rows an UPDATE
    of `maintain_flags` passes are a batch's few hundred).

    Why not EXISTS: PostgreSQL plans a correlated EXISTS both ways and picks by the outer
    rows it expects: per row, or a "hashed SubPlan" that reads the WHOLE table once per
    statement to hash it. It expects ~10 rows per `parent_id = ANY(ids)` value (2,000-3,500
    for a page's 300 ids, where ~400 match), so it read all of item_report_facts for every
    page group: 40-100 ms a statement at 100,000 items during a full sync, growing with the
    table (auto_explain, bench/README.md "PostgreSQL sync wall (branch i13syncpg)"). A scalar
    subquery is never hashed (https://www.postgresql.org/docs/current/using-explain.html
    shows the two SubPlan forms; src/backend/optimizer/plan/subselect.c hashes EXISTS only).
    SQLite runs either form per row through the same index."""
    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_not(None)


def _set_flags(conn: Connection, names: Sequence[str], where: ColumnElement[bool] | None) -> None:
    """Recompute flags `names` on the rows passing `where` (all rows when None); a row is
    rewritten only when a flag changes (PostgreSQL writes a new row version for every row an
    UPDATE touches, and an epic re-synced would otherwise rewrite all its children)."""
    conn.execute(_flags_update(names, where))


def _flags_update(names: Sequence[str], where: ColumnElement[bool] | None) -> Any:
    """The UPDATE of `_set_flags`."""
    values = _flag_values()
    changed = or_(*(_F[name] != values[name] for name in names))
    stmt = update(item_report_facts).values({name: values[name] for name in names})
    return stmt.where(changed) if where is None else stmt.where(where, changed)


def maintain_flags(
    conn: Connection,
    changed: Sequence[str],
    before: tuple[Sequence[str], Sequence[str]],
    moves: Sequence[tuple[FlagInputs | None, FlagInputs | None]] | None = None,
    after: tuple[Sequence[str], Sequence[str]] | None = None,
) -> None:
    """Recompute the flags of every row a write of `changed` (ids whose facts row was just
    upserted or tombstoned) can change, set-based: three UPDATEs per batch, whatever its size.
    `before` is `_neighbours` of `changed` read before the write; `moves`, if given, the
    flag inputs of each changed row before the write (None: it had no row) and after it
    (None: it has none); `after`, if given, `_neighbours` of `changed` as written (else read).

    - parent_missing: the changed rows (their parent may be new) and their children (their
      parent appeared, was deleted or came back);
    - has_live_child / has_open_child: the changed rows (children may have arrived first) and
      the parents they name, before and after (a child arrived, left, closed or was deleted);
    - has_title_twin: the changed rows themselves, and every row with a twin key a changed
      row had or has whose group's verdict the write changed (a twin appeared, closed, moved
      or was deleted): all such groups when `moves` is not given.

    Writers are serialised (ItemStore.apply locks the change counter row for its
    transaction), so no other write changes these rows between the reads and the updates."""
    ids = list(changed)
    old_parents, old_keys = before
    new_parents, new_keys = after if after is not None else _neighbours(conn, ids)
    sql, dialect = _statements(conn), conn.dialect.name
    sql.run(
        conn,
        "parent_missing",
        lambda: _flags_update(
            ["parent_missing"], or_(keys_in(dialect, _F.item_id, "ids"), keys_in(dialect, _F.parent_id, "ids"))
        ),
        ids=sql.keys(ids),
    )
    parents = sorted({*ids, *old_parents, *new_parents})
    sql.run(
        conn,
        "child flags",
        lambda: _flags_update(["has_live_child", "has_open_child"], keys_in(dialect, _F.item_id, "ids")),
        ids=sql.keys(parents),
    )
    keys = sorted({*old_keys, *new_keys})
    _set_title_twins(conn, keys, ids, moves)


def _shared_keys(conn: Connection, keys: Sequence[str] | None = None) -> Any:
    """The twin keys (of `keys`; all when None) whose live, open rows come from two or more
    sources: each group decided once, by one GROUP BY. ix_item_report_facts_twin_group
    (migration 0018) holds every column it reads, so it reads no table rows (PostgreSQL: an
    index-only scan where the visibility map allows; SQLite: a covering index).

    Why this equals `_flag_values`' has_title_twin: a live, open row with a twin key has a
    live, open row of another source with its key exactly when the live, open rows of that key
    have at least two distinct sources (`source` is NOT NULL, so min <> max says that)."""
    o = item_report_facts.alias("other").c
    live_open_keyed = (o.twin_key.is_not(None), o.deleted == false(), o.status_category.not_in(CLOSED_CATEGORIES))
    return (
        select(o.twin_key)
        .where(*live_open_keyed, *(() if keys is None else (_any_of(conn, o.twin_key, keys),)))
        .group_by(o.twin_key)
        .having(func.min(o.source) != func.max(o.source))
    )


def twin_sources(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, int]]:
    """For each key of `keys` with live, open rows: how many such rows each source has. Read
    from ix_item_report_facts_twin_group alone (see `_shared_keys`); a group with two or more
    sources has title twins."""
    if not keys:
        return {}
    sql, dialect = _statements(conn), conn.dialect.name
    counts: dict[str, dict[str, int]] = {}
    for key, source, n in sql.rows(conn, "twin sources", partial(_twin_sources_of, dialect), keys=sql.keys(keys)):
        counts.setdefault(key, {})[source] = int(n)
    return counts


def _twin_sources_of(dialect: str) -> Any:
    """`twin_sources` of the keys in the parameter `keys`."""
    o = item_report_facts.alias("other").c
    return (
        select(o.twin_key, o.source, func.count())
        .where(
            o.twin_key.is_not(None),
            o.deleted == false(),
            o.status_category.not_in(CLOSED_CATEGORIES),
            keys_in(dialect, o.twin_key, "keys"),
        )
        .group_by(o.twin_key, o.source)
    )


def _live_open_key(inputs: FlagInputs | None) -> tuple[str, str] | None:
    """(twin key, source) of a row with these flag inputs if it counts in its group's verdict
    (live, open, with a key), else None."""
    if inputs is None:
        return None
    _parent, key, category, source, deleted = inputs
    if key is None or deleted or category in CLOSED_CATEGORIES:
        return None
    return key, source


def _shared_before(
    counts: Mapping[str, Mapping[str, int]], moves: Sequence[tuple[FlagInputs | None, FlagInputs | None]]
) -> set[str]:
    """The keys whose group had title twins before the write, from the groups' source counts
    after it (`twin_sources`) and how the written rows moved: each row's count is taken off
    where it is now and put back where it was. Exact, as writers are serialised (see
    `maintain_flags`): the write's rows are the only ones that changed."""
    was: dict[str, dict[str, int]] = {key: dict(by_source) for key, by_source in counts.items()}
    for old, new in moves:
        if (now := _live_open_key(new)) is not None:
            group = was.setdefault(now[0], {})
            group[now[1]] = group.get(now[1], 0) - 1
        if (then := _live_open_key(old)) is not None:
            group = was.setdefault(then[0], {})
            group[then[1]] = group.get(then[1], 0) + 1
    return {key for key, by_source in was.items() if sum(1 for n in by_source.values() if n > 0) >= 2}


def _set_title_twins(
    conn: Connection,
    keys: Sequence[str],
    ids: Sequence[str],
    moves: Sequence[tuple[FlagInputs | None, FlagInputs | None]] | None,
) -> None:
    """Recompute has_title_twin on the rows `ids` and on the rows of those twin keys `keys`
    whose verdict changed, linear in those rows: the touched keys' groups are decided once
    (`twin_sources`, one read after the write), then each row compares its key with that list.

    Why only the groups whose verdict changed: a row outside `ids` kept its inputs (live,
    open, key), and its flag was right before the write: live and open and its group shared.
    So it changes only if its group's verdict did (`_shared_before` derives the verdicts
    before the write from the counts and `moves`). Re-syncs that leave every group as it was
    read no group's rows: before, each batch checked every row of the touched groups, a
    table row each (18,801 rows for 500 stored items at 1M, 0.2-0.9 s; bench/README.md round 3).

    History: a per-row correlated EXISTS (the first form) re-read the whole group for every
    row of it (quadratic in the group size: 12.8 s for 500 stored items at 1.2M). The
    verdicts are read before the UPDATE, not as its subquery: the UPDATE names the flag's
    value twice (SET and the guard below), and PostgreSQL ran such a subquery once for each.
    The verdicts before the write were read by a second lookup before it, until the counts
    per source replaced it: a full sync's twin-key lookups were 668 statements and 3.6-5.0 s
    of a PostgreSQL 100k sync's wall, mostly random index probes (bench/README.md "i13pgsync").
    Rows are rewritten only when the flag changes, as in `_set_flags`."""
    counts = twin_sources(conn, keys)
    shared = {key for key, by_source in counts.items() if len(by_source) >= 2}
    regroup = keys
    if moves is not None:
        was_shared = _shared_before(counts, moves)
        regroup = [key for key in keys if (key in shared) != (key in was_shared)]
    sql, dialect = _statements(conn), conn.dialect.name

    def build() -> Any:
        touched = keys_in(dialect, _F.item_id, "ids")
        if regroup:
            touched = or_(keys_in(dialect, _F.twin_key, "regroup"), touched)
        twin = and_(
            _F.twin_key.is_not(None),
            _F.deleted == false(),
            _F.status_category.not_in(CLOSED_CATEGORIES),
            keys_in(dialect, _F.twin_key, "shared") if shared else false(),
        )
        return update(item_report_facts).where(touched, _F.has_title_twin != twin).values(has_title_twin=twin)

    params = {"ids": sql.keys(ids)}
    if regroup:
        params["regroup"] = sql.keys(regroup)
    if shared:
        params["shared"] = sql.keys(sorted(shared))
    sql.run(conn, f"title twins {bool(regroup)} {bool(shared)}", build, **params)


def recompute_all_flags(conn: Connection) -> None:
    """Every row's flags from scratch (migration 0010's backfill), by the rules of
    `_flag_values` in set form: each flag false, then true for the rows an uncorrelated
    subquery names (hashed once on PostgreSQL; the per-row correlated form of the write path
    took minutes over 100,000 rows there)."""
    live = _F.deleted == false()
    live_open = and_(live, _F.status_category.not_in(CLOSED_CATEGORIES))
    other = item_report_facts.alias("other")
    o = other.c
    conn.execute(
        update(item_report_facts).values(
            parent_missing=False, has_live_child=False, has_open_child=False, has_title_twin=False
        )
    )
    held = select(o.item_id).where(o.deleted == false())
    conn.execute(
        update(item_report_facts)
        .where(_F.parent_id.is_not(None), _F.parent_id.not_in(held))
        .values(parent_missing=True)
    )
    parents = select(o.parent_id).where(o.parent_id.is_not(None), o.deleted == false())
    conn.execute(update(item_report_facts).where(_F.item_id.in_(parents)).values(has_live_child=True))
    open_parents = parents.where(o.status_category.not_in(CLOSED_CATEGORIES))
    conn.execute(update(item_report_facts).where(_F.item_id.in_(open_parents)).values(has_open_child=True))
    conn.execute(
        update(item_report_facts).where(live_open, _F.twin_key.in_(_shared_keys(conn))).values(has_title_twin=True)
    )


def conditions_on_facts(conditions: Sequence[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """The /v1/items filter terms (hub/store/queries.py, on `items`) as terms on
    `item_report_facts`: each column is replaced by its copy there, so a report reads only the
    narrow rows. A filter on a column the facts do not copy (tool, key, title: `tool` and `q`)
    stays on `items`, joined by id (the report then reads those items rows too)."""
    copied = {"id": item_report_facts.c.item_id, **{name: item_report_facts.c[name] for name in COPIED_COLUMNS}}
    missing: list[str] = []

    def replace(element: Any, **_: Any) -> Any:
        if isinstance(element, Column) and element.table is items:
            if element.name in copied:
                return copied[element.name]
            missing.append(element.name)
        return None

    translated = [replacement_traverse(term, {}, replace) for term in conditions]
    if missing:
        return [item_report_facts.c.item_id.in_(select(items.c.id).where(*conditions))]
    return translated

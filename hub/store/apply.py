"""The item store's one write path, `apply` (called through `ItemStore.apply`): decide each
upsert and deletion of a batch against what is stored, then write items, side rows, facts
and change log in bulk (hub/store/bulk.py).

Why `apply` serialises writers on one counter row: the change feed promises that a reader
who has seen seq N never later finds a new change with a seq below N, and that seqs have
no gaps. A database sequence gives neither (rolled-back transactions leave holes and
commit order can differ from allocation order). Allocating seqs from a row that every
writer locks for the length of its transaction gives both, and it also makes the
read-compare-write of upsert-if-newer race-free across processes. Writes are batched (one
transaction per page of hundreds of items), so serialising them costs little.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import compress
from operator import itemgetter, ne
from typing import Any

import orjson
from pydantic_core import PydanticSerializationError
from sqlalchemy import ColumnElement, Connection, Engine, bindparam, delete, literal_column, select, update

from hub.db.tables import (
    change_counter,
    changes,
    item_assignees,
    item_labels,
    item_links,
    item_tombstones,
    items,
    sources,
    status_transitions,
)
from hub.flow.history import SOURCE_RANK, Transition, TransitionSource
from hub.links import ref_from_url
from hub.schema import ChangeOp, ItemDeletion, Link, StatusCategory, WorkItem, to_utc
from hub.store.bulk import Statements, _Bulk, any_of, dialect_insert, keys_in, time_binder, time_reader
from hub.store.clock import utcnow
from hub.store.cursors import Checkpoint, save_cursor
from hub.store.flow_facts import FLOW_FIELDS, RowInputs, refresh_flow_facts
from hub.store.people import PeopleResolver, assign_person_ids
from hub.store.report_facts import write_report_facts
from hub.store.transitions import preferred_facts, preferred_sql

# Fields that never count as a change of the item itself.
_NOT_CONTENT: set[str] = {"version", "synced_at", "raw", "deleted"}


def _filled_fields(item: WorkItem) -> list[str]:
    """The document fields a new item lists as changed: all but None, "", [] and {}.

    By truth value, in C: `itemgetter` reads the fields from the instance's dict (not
    `getattr` through pydantic) and `compress` keeps the names whose value `bool` says is
    filled. For the document's field types that is exactly "not None, "", [] or {}": a model,
    an enum with a non-empty value, a date or a datetime is always true
    (https://docs.python.org/3/library/stdtypes.html#truth-value-testing); a number or bool
    field, where 0 and False would differ, would break that, so tests/test_store_apply_fields.py
    checks the types. Not `in (None, [], {}, "")`, which calls pydantic's __eq__ on every nested
    model value."""
    return list(compress(_DOC_FIELDS, map(bool, _doc_values(item.__dict__))))


# Column order of the rows `_write_items` builds (tuples, not dicts: see hub/store/bulk.py).
_ITEM_COLUMNS = tuple(c.name for c in items.columns)
# Top-level fields of the stored document, sorted (a new item's change lists the non-empty ones).
_DOC_FIELDS = tuple(sorted(name for name in WorkItem.model_fields if name not in _NOT_CONTENT))
_doc_values = itemgetter(*_DOC_FIELDS)
_serialize = WorkItem.__pydantic_serializer__.to_json
_CHANGE_COLUMNS = ("seq", "item_id", "op", "fields", "at")


_TOMBSTONE_COLUMNS = ("item_id", "source", "native_id", "deleted_at", "recorded_at")
# An ItemDeletion's ids are not length-checked (WorkItem's are): one longer than any item's
# can match no item, so it needs no tombstone (and would not fit its columns).
_SOURCE_MAX, _NATIVE_ID_MAX = 100, 200  # the lengths of items.source and items.native_id
_TRANSITION_COLUMNS = tuple(c.name for c in status_transitions.columns)
_LINK_COLUMNS = ("item_id", "type", "target", "target_id", "target_tool", "target_key")


def changed_fields(doc: dict[str, Any], old_doc: dict[str, Any]) -> list[str]:
    """The top-level fields an update changes, sorted: those of either document whose values
    differ (a missing one reads as None).

    Compared in C (`map` of `ne` over the two dicts' `get`, `compress`): the same `!=` per key
    as a generator would make, without a Python step for each of the document's ~35 keys
    (tests/test_store_apply_python.py checks it against that rule)."""
    keys = list(doc.keys() | old_doc.keys())
    return sorted(compress(keys, map(ne, map(doc.get, keys), map(old_doc.get, keys))))


def _unique_links(links: Sequence[Link]) -> list[Link]:
    seen: dict[tuple[str, str], Link] = {}
    for link in links:
        seen.setdefault((link.type.value, link.target_id or link.url or ""), link)
    return list(seen.values())


def link_row(item_id: str, link: Link) -> tuple[str, str, str, str | None, str | None, str | None]:
    """The item_links row of one link: its hub target, or what its URL names (hub/links.py)."""
    ref = ref_from_url(link.url) if link.url and not link.target_id else None
    target = link.target_id or link.url or ""
    return (item_id, link.type.value, target, link.target_id, ref.tool if ref else None, ref.key if ref else None)


@dataclass
class ApplyResult:
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    tombstones: int = 0  # deletions of ids never stored, kept so an older upsert cannot revive them
    transitions: int = 0  # status facts handed to the history (stored unless already known)
    transitions_dropped: int = 0  # given facts of items neither in the batch nor in the store
    seqs: list[int] = field(default_factory=list)
    upserted_ids: list[str] = field(default_factory=list)  # items whose upsert logged a change

    @property
    def changed(self) -> int:
        return self.upserted + self.deleted


@dataclass
class _Current:
    """What the store holds for one item while a batch is being applied.

    An id with only a tombstone (a deletion of an id never stored, `item_tombstones`) has
    `has_row` False, `deleted` True and no document (`updated_at` None).
    """

    updated_at: datetime | None  # of the stored content; None: no content stored yet
    deleted_at: datetime | None
    deleted: bool
    doc_json: str | bytes | None  # the stored document; parsed only if an update needs a diff
    version: int = 0  # seq of the item's last change (0: the feed never showed it)
    has_row: bool = True  # an items row exists (before or by this batch)
    is_new: bool = False  # no items row before this batch (no side rows to replace)
    in_tombstones: bool = False  # an item_tombstones row exists in the database
    dirty: bool = False  # this op changed what must be stored (with or without a change)
    item: WorkItem | None = None  # the newest version upserted by this batch, if any
    tombstone_of: tuple[str, str] | None = None  # (source, native_id) of a tombstone-only id
    _doc: dict[str, Any] | None = None
    _digest: bytes | None = None

    @classmethod
    def tombstone_only(
        cls, source: str, native_id: str, deleted_at: datetime, *, in_tombstones: bool = True
    ) -> _Current:
        return cls(
            None,
            deleted_at,
            True,
            None,
            has_row=False,
            is_new=True,
            in_tombstones=in_tombstones,
            tombstone_of=(source, native_id),
        )

    @property
    def doc(self) -> dict[str, Any]:
        if self._doc is None:
            assert self.doc_json is not None
            self._doc = orjson.loads(self.doc_json)
        return self._doc

    @property
    def digest(self) -> bytes:
        """Digest of the stored document (computed only to break a tie of equal times)."""
        if self._digest is None:
            assert self.doc_json is not None
            self._digest = content_digest(self.doc_json)
        return self._digest

    def set_content(self, item: WorkItem, updated_at: datetime, doc_json: bytes, digest: bytes | None) -> None:
        self.updated_at, self.doc_json, self.item = updated_at, doc_json, item
        self._doc, self._digest = None, digest


def content_digest(doc_json: str | bytes) -> bytes:
    """The tie-break key of an item's content: SHA-256 of its stored JSON document.

    The document is pydantic's serialisation of the WorkItem (hub ids included, `raw`,
    `version`, `synced_at` and `deleted` left out), so equal content has equal bytes.
    """
    return hashlib.sha256(doc_json.encode() if isinstance(doc_json, str) else doc_json).digest()


# ------------------------------------------------------------------ status history
def _stored_status(cur: _Current) -> tuple[StatusCategory, str | None]:
    """The status of what the store holds (the batch's newest version, else the stored document)."""
    if cur.item is not None:
        return cur.item.status.category, cur.item.status.name
    status = cur.doc.get("status") or {}
    return _CATEGORY_OF[status["category"]], status.get("name")


# A stored category's member by a dict lookup, not `StatusCategory(value)`: the enum's call
# runs EnumType.__call__ and __new__ in Python (~1 us), once per updated item.
_CATEGORY_OF = {category._value_: category for category in StatusCategory}


def observed_transitions(item: WorkItem, cur: _Current | None) -> list[Transition]:
    """The status facts an upsert of `item` states, given what the store holds (`cur`, before
    the upsert is decided), all at `item.updated_at` (the tool's clock, never the hub's):

    - no content stored yet: a `first_seen` fact (from unknown: the hub cannot say when the
      item got there, so an item first seen in progress has an unknown start);
    - a newer version in another status (category or the tool's name): an `observed` change
      from the stored status;
    - an older version, or one of equal time in another status (a late or reordered
      delivery): a `first_seen` sighting of it, plus one of the stored version, so the
      history says what the hub saw on both sides of the late fact whichever arrived first.
      A newer version in the same status states nothing new (the earlier fact already has
      the item in that status), so ordinary updates write no fact.

    Why sightings of older versions: "the item was in status S at time t" is true whenever
    the hub learns it, so the history should not depend on delivery order. It depends only
    on which versions the hub saw, except that a newer same-status version skipped before a
    late, older one arrives is not recalled: that change's time is then the next sighting's,
    later than the real one, as `TransitionSource.observed` allows.
    """
    at = to_utc(item.updated_at)
    category, name = item.status.category, item.status.name
    if cur is None or cur.updated_at is None:
        return [Transition(item.id, at, category, name, source=TransitionSource.first_seen)]
    if at > cur.updated_at:
        stored_category, stored_name = _stored_status(cur)
        if (stored_category, stored_name) == (category, name):
            return []
        return [Transition(item.id, at, category, name, stored_category, stored_name, TransitionSource.observed)]
    stored_category, stored_name = _stored_status(cur)
    if at == cur.updated_at and (stored_category, stored_name) == (category, name):
        return []  # the stored version itself (or a same-status twin): already recorded
    return [
        Transition(item.id, at, category, name, source=TransitionSource.first_seen),
        Transition(item.id, cur.updated_at, stored_category, stored_name, source=TransitionSource.first_seen),
    ]


# ------------------------------------------------------------------ storable text
# PostgreSQL cannot store U+0000 in text, and no database stores a lone surrogate (U+D800 to
# U+DFFF, not encodable as UTF-8; Python's json.loads makes them from "\ud800"). SQLite would
# keep a NUL that PostgreSQL refuses, so the same input would land on one backend and break a
# whole page on the other. One rule on both: each such character becomes U+FFFD.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATES = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _replace_in(value: Any, pattern: re.Pattern[str]) -> Any:
    """`value` with `pattern` replaced by U+FFFD in every string (dict keys too)."""
    if isinstance(value, str):
        return pattern.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_replace_in(k, pattern): _replace_in(v, pattern) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_in(v, pattern) for v in value]
    return value


def storable(op: WorkItem | ItemDeletion) -> WorkItem | ItemDeletion:
    """`op` with NUL and lone surrogates replaced by U+FFFD in every string but `raw`.

    Detected on the serialised JSON, which costs one Rust serialisation per item: pydantic
    escapes NUL as \\u0000 and refuses a lone surrogate. Only an item that has one is copied.
    `raw` is stored as JSON text, where a NUL stays as its \\u0000 escape (see `raw_json`).
    """
    if isinstance(op, ItemDeletion):
        if _UNSTORABLE.search(op.source) or _UNSTORABLE.search(op.native_id):
            return op.model_copy(
                update={
                    "source": _replace_in(op.source, _UNSTORABLE),
                    "native_id": _replace_in(op.native_id, _UNSTORABLE),
                }
            )
        return op
    try:
        if b"\\u0000" not in _serialize(op, exclude={"raw"}):
            return op
    except PydanticSerializationError:
        pass  # a lone surrogate
    data = _replace_in(op.model_dump(exclude={"raw"}), _UNSTORABLE)
    data["raw"] = op.raw
    return WorkItem.model_validate(data)


def storable_keys(op: WorkItem | ItemDeletion) -> WorkItem | ItemDeletion:
    """`storable` for what `apply` reads before deciding an op: a deletion whole; of an item,
    the strings of its id (tool, native id: the source's pattern admits neither character)
    and of its people (people resolution writes them), by one regex search over them joined.

    An item that passes is checked whole by `storable_document` when `apply` serialises its
    document (the document holds every string of the item but `raw`), so a clean item is
    serialised once, not twice."""
    if isinstance(op, ItemDeletion):
        return storable(op)
    texts = [op.native_id, op.tool]
    refs = op.assignees if op.reporter is None else [*op.assignees, op.reporter]
    for ref in refs:
        texts += (ref.native_id or "", ref.name or "", ref.email or "", ref.id or "")
    # One search over the strings joined: a lone surrogate stays one in any concatenation.
    return storable(op) if _UNSTORABLE.search("".join(texts)) else op


def storable_document(item: WorkItem) -> tuple[WorkItem, bytes]:
    """`item` made storable (`storable`) and its stored document (pydantic's JSON, without
    `_NOT_CONTENT`), from one serialisation when the item is clean: the NUL check of
    `storable` runs on the document itself (the fields it leaves out hold no text but `raw`)."""
    try:
        doc_json = _serialize(item, exclude=_NOT_CONTENT)
        if b"\\u0000" not in doc_json:
            return item, doc_json
    except PydanticSerializationError:
        pass  # a lone surrogate
    clean = storable(item)
    assert isinstance(clean, WorkItem)
    return clean, _serialize(clean, exclude=_NOT_CONTENT)


def raw_json(raw: dict[str, Any]) -> str:
    """The tool's payload as stored: JSON, NUL kept as its escape; lone surrogates (which no
    JSON encoder can write as UTF-8) replaced by U+FFFD."""
    return raw_bytes(raw).decode()


def raw_bytes(raw: dict[str, Any]) -> bytes:
    """`raw_json` as UTF-8 bytes (how SQLite's items rows take it: `_UTF8_COLUMNS`)."""
    try:
        return orjson.dumps(raw)
    except orjson.JSONEncodeError:
        return orjson.dumps(_replace_in(raw, _SURROGATES))


_UTF8_COLUMNS = ("doc", "raw")
"""items columns bound as the UTF-8 bytes of their JSON on SQLite (hub/store/bulk.py `_Bulk._row_sql`)."""


def _as_is(value: str | bytes | None) -> str | bytes | None:
    return value


def _as_str(value: str | bytes | None) -> str | None:
    """PostgreSQL's text parameters are str (psycopg encodes them)."""
    return value.decode() if isinstance(value, bytes) else value


def raw_key(raw: str | None) -> bytes:
    """Orders the raw payloads of two upserts with the same time and the same document: the
    greater SHA-256 of the stored JSON text wins (no payload: the least). Without it, which of
    two such payloads stayed (they differ in fields no mapping reads, e.g. GitHub's
    `reactions`) depended on arrival order."""
    return b"" if raw is None else hashlib.sha256(raw.encode()).digest()


@dataclass
class _ItemRows:
    """The rows a batch writes for the ids it touched (`Applier._item_rows`)."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)  # items rows, in _ITEM_COLUMNS order
    tombstoned: list[dict[str, Any]] = field(default_factory=list)  # stored items this batch only deleted
    label_rows: list[tuple[str, str, Any]] = field(default_factory=list)  # (item_id, label, updated_at)
    assignee_rows: list[tuple[str, str, Any]] = field(default_factory=list)  # (item_id, person_id, updated_at)
    link_rows: list[tuple[str, str, str, str | None, str | None, str | None]] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # existing items whose label/assignee/link rows are rewritten
    tombstone_rows: list[tuple[Any, ...]] = field(default_factory=list)  # deletions of ids with no items row
    moved: list[str] = field(default_factory=list)  # ids whose item_tombstones row is replaced by an items row
    new: set[str] = field(default_factory=set)  # ids with no items row before this batch (no side or fact rows)
    copied: bool = False  # the items rows of `new` are written already (PostgreSQL: `_Bulk.copy`)


@dataclass
class _Batch:
    """What deciding a batch collects for the writes (one per `Applier.run`)."""

    last_seq: int  # the counter row's value: this batch's changes take the next seqs
    now: datetime
    at: Any  # `now` in its stored form
    result: ApplyResult = field(default_factory=ApplyResult)
    changes: list[tuple[Any, ...]] = field(default_factory=list)
    touched: dict[str, int] = field(default_factory=dict)  # id -> the version to store (seq of its last change)
    facts: list[Transition] = field(default_factory=list)
    flow_ids: set[str] = field(default_factory=set)  # items whose flow facts to refresh (hub/store/flow_facts.py)
    raw_ties: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    """id -> (raw_key, raw JSON) of the greatest payload that tied the STORED document (same
    time, same digest); `_settle_raw_ties` compares it with the stored payload."""

    def log(self, item_id: str, op: ChangeOp, fields: list[str], cur: _Current) -> None:
        """Append one change with the next gap-free seq."""
        if not FLOW_FIELDS.isdisjoint(fields):
            self.flow_ids.add(item_id)
        self.last_seq += 1
        self.result.seqs.append(self.last_seq)
        cur.version = self.last_seq
        self.changes.append((self.last_seq, item_id, op._value_, orjson.dumps(fields).decode(), self.at))
        if op is ChangeOp.upsert:
            self.result.upserted_ids.append(item_id)


def _counter_update() -> Any:
    return update(change_counter).where(change_counter.c.id == 1).values(last_seq=bindparam("seq", None))


def _delete_of(dialect: str, table: Any) -> Any:
    """DELETE the rows of `table` whose item_id is in the parameter `ids`."""
    return delete(table).where(keys_in(dialect, table.c.item_id, "ids"))


APPLY_SETTINGS = (("jit", "off"), ("random_page_cost", "1.1"))
"""What `custom_plans` sets for apply's transaction on PostgreSQL (`Applier._lock_statement`)."""


@contextmanager
def custom_plans(conn: Connection) -> Iterator[None]:
    """PostgreSQL: plan apply's statements for their actual values, never generically.

    psycopg prepares a statement after 5 runs and the server may then switch to a
    generic plan. For `id = ANY($1)` a generic plan cannot hash the array (a filter
    costs rows x values), and a plan made while a table was small sticks as it grows:
    measured 10-50 ms per lookup instead of ~1 ms. Planning these statements costs
    far less than that.

    And no JIT compilation for the rest of the transaction (`SET LOCAL jit = off`): the
    flag UPDATEs of report_facts.py are estimated at over 100,000 (jit_above_cost) at 1M
    items, as their `= ANY(array)` terms are guessed at ~30 rows a value, so the server
    compiled each into machine code (LLVM) before running it for a few milliseconds: 60-160 ms
    of a 70-150 ms has_title_twin UPDATE at 1M, and 1.4 s once the cost crosses
    jit_optimize_above_cost, as the earlier form of that UPDATE did at 1.2M (bench/README.md,
    "Store apply at 1M items", round 3). EXPLAIN ANALYZE shows it in a "JIT:" footer,
    charged to the top node.

    And random_page_cost 1.1 instead of the server's setting (default 4) for the rest of the
    transaction: apply's reads look up a batch's few hundred keys, in indexes a write path
    keeps hot. At 4 the planner took a sequential scan of the whole table for them while it
    was under ~35,000 rows (twin keys) or ~55,000 (status_transitions): 9.7 and 3.0 ms at
    30,000 rows against 1.4 and 0.6 ms through the index, for each page group of a sync
    (`bench/sync_jira.py --plans`, bench/README.md "i13pgsync"). 1.1 is the value PostgreSQL
    suggests for data mostly in cache
    (https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-RANDOM-PAGE-COST).

    Both settings ride on apply's first statement (`Applier._lock_statement`,
    `set_config(..., true)` is `SET LOCAL`:
    https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SET): a
    statement of its own was one more round trip per batch, 0.3-2.7 s of a 100k sync's wall
    on a loaded machine.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    saved = driver.prepare_threshold  # type: ignore[union-attr]
    driver.prepare_threshold = None  # type: ignore[union-attr]
    try:
        yield
    finally:
        driver.prepare_threshold = saved  # type: ignore[union-attr]


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """PostgreSQL: send the block's statements without waiting for each one's answer (psycopg's
    pipeline mode: https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html), in order,
    in the same transaction; a read (`fetchall`) waits for the answers before it, and the
    block's end for the rest. An error surfaces at the next of these, as the same exception,
    and the transaction fails as before.

    Why: a full sync's page group runs ~25 statements, most of them writes whose answer
    nothing reads, and each was a round trip: the client and the server backend each woke
    for every one, on 2 cores shared with the sync's other threads (0.5-8 ms a statement in
    the PostgreSQL 100k sync's timeline, bench/README.md "i13pgsync").

    Only for statements run on the DBAPI cursor (`Statements`, `_Bulk`), and SQLAlchemy
    statements whose rows nothing reads: SQLAlchemy reads a result's columns right after
    `execute`, before the pipeline has them. SQLite: nothing changes."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
        yield


class Applier:
    """`ItemStore.apply`'s work for one database: `run` decides and writes one batch."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self._bulk = _Bulk(engine.dialect)
        self._time = time_binder(engine.dialect)
        self._read_time = time_reader(engine.dialect)
        self._sql = Statements(engine.dialect)
        self.people = PeopleResolver(self.dialect, self._bulk, self._time)

    def run(
        self,
        conn: Connection,
        batch: list[WorkItem | ItemDeletion],
        checkpoint: Checkpoint | None,
        force: bool,
        given: list[Transition],
    ) -> ApplyResult:
        """Apply `batch` (already `storable_keys`) in `conn`'s transaction: see `ItemStore.apply`."""
        ids = list(dict.fromkeys(op.id for op in batch))
        with pipelined(conn):
            # PostgreSQL: the three reads go out together and are answered in order, the
            # counter lock first (writers queue there): one round trip, not three.
            lock = self._sql.start(conn, "lock counter", self._lock_statement)
            found = self._start_current(conn, ids)
            names = self._start_sources(conn, batch)
            last_seq = self._lock_counter(lock)
            current = self._load_current(conn, ids, found)
            known_sources = {name for (name,) in self._sql.fetch(names)} if names is not None else set()
        now = utcnow()
        self._register_sources(conn, batch, now, known_sources)
        people_ids = self.people.resolve(conn, batch, now)
        state = _Batch(last_seq, now, self._time(now))
        for op in batch:
            self._decide(op, current, people_ids, state, force)
        self._settle_raw_ties(conn, state, current)
        self._write(conn, state, current, given)
        if checkpoint is not None:
            save_cursor(conn, checkpoint, now)
        return state.result

    def _decide(
        self,
        op: WorkItem | ItemDeletion,
        current: dict[str, _Current],
        people_ids: dict[tuple[str, str], str],
        state: _Batch,
        force: bool,
    ) -> None:
        """Decide one op; log its change and mark what must be stored."""
        cur = current.get(op.id)
        fields: list[str] | None  # the change to log; None: stored silently, or nothing
        if isinstance(op, ItemDeletion):
            deleted_at = to_utc(op.deleted_at) if op.deleted_at else state.now
            fields = self._delete(op, deleted_at, cur, current, state.result)
            if fields is None and op.id not in current:
                return
            change_op = ChangeOp.delete
        else:
            assign_person_ids(op, people_ids)
            # One serialisation: the document, checked for NUL and lone surrogates as it is
            # made (`storable_document`); `apply` checked the ids and people before (`storable_keys`).
            op, doc_json = storable_document(op)
            state.facts.extend(observed_transitions(op, cur))
            fields = self._upsert(op, doc_json, to_utc(op.updated_at), cur, current, state, force)
            change_op = ChangeOp.upsert
        cur = current[op.id]
        if fields is not None:
            state.log(op.id, change_op, fields, cur)
        elif not cur.dirty:
            return
        cur.dirty = False
        state.touched[op.id] = cur.version

    def _write(self, conn: Connection, state: _Batch, current: dict[str, _Current], given: list[Transition]) -> None:
        """Write what the batch decided: items and side rows, status facts, flow facts, changes.

        On PostgreSQL in one pipeline (`pipelined`) where no SQLAlchemy read falls inside:
        a full sync's page group then waits for the server at the twin-key read, the
        transitions probe and the end, not at each of its ~15 statements. The lookup of
        `_known_items` (items outside the batch, not written here) and the COPY of the items
        rows of new ids (`_copy_new_items`: COPY cannot run in a pipeline) run first, outside it."""
        if given:
            kept = self._known_items(conn, given, current)
            state.result.transitions_dropped = len(given) - len(kept)
            state.facts.extend(kept)
        written = self._item_rows(state.touched, current, state.now) if state.touched else None
        if written is not None and self._sql.postgres and written.new:
            self._copy_new_items(conn, written)  # outside the pipeline: COPY cannot run in one
        with ExitStack() as pipeline:
            pipeline.enter_context(pipelined(conn))
            probe = self._start_fresh_histories(conn, state, current) if state.facts else None
            if written is not None:
                self._write_items(conn, written, current)
            fresh: dict[str, list[Transition]] = {}
            if state.facts:
                fresh = self._fresh_histories(probe)
                self._write_transitions(conn, state.facts)
                state.result.transitions = len(state.facts)
                state.flow_ids.update(fact.item_id for fact in state.facts)
            if state.flow_ids:
                if not state.flow_ids.issubset(fresh):
                    # Items stored before: refresh_flow_facts reads them through SQLAlchemy.
                    pipeline.close()
                refresh_flow_facts(conn, state.flow_ids, self._flow_inputs(state, current), fresh)
            if state.changes:
                self._bulk.insert(conn, changes, _CHANGE_COLUMNS, state.changes)
                self._sql.run(conn, "counter", _counter_update, seq=state.last_seq)

    def _start_fresh_histories(
        self, conn: Connection, state: _Batch, current: dict[str, _Current]
    ) -> tuple[dict[str, list[Transition]], Any]:
        """Send the probe of `_fresh_histories`: the facts of each item this batch stores for
        the first time (no items row before it: so no flow rows either), and the read of
        which of those already have stored transitions (one lookup of the new ids that finds
        nothing unless a history import, `TransitionStore.add`, stored facts of an item
        before the item itself). Sent before the batch writes any transitions of its own."""
        fresh: dict[str, list[Transition]] = {}
        for fact in state.facts:
            item_id = fact.item_id
            facts = fresh.get(item_id)
            if facts is not None:
                facts.append(fact)
                continue
            cur = current.get(item_id)
            if cur is not None and cur.is_new and cur.item is not None and item_id in state.touched:
                fresh[item_id] = [fact]
        if not fresh:
            return fresh, None
        dialect = self.dialect
        known = self._sql.start(
            conn,
            "have transitions",
            lambda: (
                select(status_transitions.c.item_id)
                .where(keys_in(dialect, status_transitions.c.item_id, "ids"))
                .distinct()
            ),
            ids=self._sql.keys(list(fresh)),
        )
        return fresh, known

    def _fresh_histories(self, probe: tuple[dict[str, list[Transition]], Any] | None) -> dict[str, list[Transition]]:
        """The whole history of each item this batch stores for the first time that has no
        stored transitions: the batch's facts of it (`refresh_flow_facts`' `fresh`), from
        `_start_fresh_histories`."""
        if probe is None:
            return {}
        fresh, known = probe
        if known is not None:
            for (item_id,) in self._sql.fetch(known):
                del fresh[item_id]
        return fresh

    @staticmethod
    def _flow_inputs(state: _Batch, current: dict[str, _Current]) -> dict[str, RowInputs]:
        """The items rows this batch wrote with their content, as the flow facts read them
        (hub/store/flow_facts.py `derive_stored`: the same columns, from the same item)."""
        inputs: dict[str, RowInputs] = {}
        for item_id in state.flow_ids:
            cur = current.get(item_id)
            if cur is None or cur.item is None or item_id not in state.touched:
                continue  # not written by this batch, or only its tombstone: read from the store
            item = cur.item
            container = item.container
            filters = {
                "source": item.source,
                "tool": item.tool,
                "kind": item.kind._value_,
                "container_id": container.id if container else None,
                "container_key": container.key if container else None,
                "deleted": cur.deleted,
            }
            inputs[item_id] = RowInputs(item.created_at, item.status.category, item.completed_at, filters)
        return inputs

    @staticmethod
    def _delete(
        op: ItemDeletion,
        deleted_at: datetime,
        cur: _Current | None,
        current: dict[str, _Current],
        result: ApplyResult,
    ) -> list[str] | None:
        """Decide one deletion (see `apply`). Returns the change's fields, or None for no
        change; sets `cur.dirty` when something must be stored anyway."""
        if cur is None:
            if not op.reported or len(op.native_id) > _NATIVE_ID_MAX or len(op.source) > _SOURCE_MAX:
                # Not found is no deletion report (see ItemDeletion.reported); an overlong
                # id can never be an item's.
                result.unchanged += 1
                return None
            current[op.id] = _Current.tombstone_only(op.source, op.native_id, deleted_at, in_tombstones=False)
            current[op.id].dirty = True
            result.tombstones += 1
            return None
        if cur.deleted:
            assert cur.deleted_at is not None
            if deleted_at > cur.deleted_at:  # a later deletion: the tombstone's time moves on
                cur.deleted_at, cur.dirty = deleted_at, True
            result.unchanged += 1
            return None
        assert cur.updated_at is not None
        if deleted_at < cur.updated_at:  # at equal time the deletion wins
            result.unchanged += 1
            return None
        cur.deleted, cur.deleted_at, cur.dirty = True, deleted_at, True
        result.deleted += 1
        return ["deleted"]

    @staticmethod
    def _upsert(
        item: WorkItem,
        doc_json: bytes,
        updated_at: datetime,
        cur: _Current | None,
        current: dict[str, _Current],
        state: _Batch,
        force: bool,
    ) -> list[str] | None:
        """Decide one upsert (see `apply`). Returns the change's fields, or None for no
        change; sets `cur.dirty` when something must be stored anyway."""
        result = state.result
        if cur is None:
            current[item.id] = _Current(updated_at, None, False, None, is_new=True, dirty=True)
            current[item.id].set_content(item, updated_at, doc_json, None)
            result.upserted += 1
            return _filled_fields(item)
        if cur.deleted:
            assert cur.deleted_at is not None
            live = updated_at > cur.deleted_at or (force and updated_at == cur.deleted_at)
            if not live and cur.updated_at is not None and updated_at < cur.updated_at:
                result.unchanged += 1  # older than the deletion and than the stored content
                return None
        else:
            assert cur.updated_at is not None
            live = True
            if updated_at < cur.updated_at:
                result.unchanged += 1
                return None
        # `doc_json` is pydantic's Rust serialisation (about half the cost of model_dump +
        # dumps), made once for the text check too; only an update parses it back, to diff.
        digest = None
        if cur.updated_at is not None and updated_at == cur.updated_at:
            digest = content_digest(doc_json)
            revive = live and cur.deleted  # forced: a refetch found the item, whatever its content
            if not revive and digest == cur.digest:
                result.unchanged += 1  # the same document: at most its raw payload is kept instead
                Applier._tie_raw(item, cur, state)
                return None
            if not revive and digest < cur.digest and not (force and live):
                result.unchanged += 1  # the tie-break keeps the stored one
                return None
        if not live:
            # Under a newer tombstone: keep the greatest content as the deleted item's
            # document (every order ends with the same one), with no change.
            cur.set_content(item, updated_at, doc_json, digest)
            cur.has_row, cur.dirty = True, True
            result.unchanged += 1
            return None
        if cur.updated_at is None:  # only a tombstone was stored: new to the feed
            fields = _filled_fields(item)
        else:
            fields = changed_fields(orjson.loads(doc_json), cur.doc)
            if cur.deleted:
                fields = sorted({*fields, "deleted"})
            if not fields:
                result.unchanged += 1  # forced re-apply with identical content
                return None
        cur.set_content(item, updated_at, doc_json, digest)
        cur.deleted, cur.deleted_at, cur.has_row, cur.dirty = False, None, True, True
        result.upserted += 1
        return fields

    @staticmethod
    def _tie_raw(item: WorkItem, cur: _Current, state: _Batch) -> None:
        """An upsert with the stored time and document: keep the greater raw payload
        (`raw_key`), silently, so that the stored payload does not depend on arrival order."""
        if item.raw is None:
            return  # no payload is the least: it never replaces one
        raw = raw_json(item.raw)
        key = raw_key(raw)
        if cur.item is not None:  # this batch wrote the document: compare with its payload
            if cur.item.raw is None or key > raw_key(raw_json(cur.item.raw)):
                cur.item = item  # the same document; the row is written by this batch already
            return
        best = state.raw_ties.get(item.id)
        if best is None or key > best[0]:
            state.raw_ties[item.id] = (key, raw)

    def _settle_raw_ties(self, conn: Connection, state: _Batch, current: dict[str, _Current]) -> None:
        """Write the tying payloads greater than the stored ones (one read, only on ties: a
        replayed delivery usually carries the very payload stored)."""
        ties = {i: tie for i, tie in state.raw_ties.items() if current[i].item is None}
        if not ties:
            return
        stored = conn.execute(select(items.c.id, items.c.raw).where(any_of(self.dialect, items.c.id, list(ties))))
        wins = [{"i": i, "r": ties[i][1]} for i, raw in stored if ties[i][0] > raw_key(raw)]
        if wins:
            conn.execute(update(items).where(items.c.id == bindparam("i")).values(raw=bindparam("r")), wins)

    def _write_transitions(self, conn: Connection, facts: list[Transition]) -> None:
        """`TransitionStore.add` on the bulk path (module doc): a page writes a fact per new
        item. Same semantics: one row per identity, the preferred fact replaces the stored one."""
        best = preferred_facts(facts)
        t = self._time
        rows = [
            (
                item_id,
                t(at),
                to_category._value_,
                to_name,
                fact.from_category._value_ if fact.from_category is not None else None,
                fact.from_name,
                fact.source._value_,
                SOURCE_RANK[fact.source],
                fact.native_id,
            )
            for (item_id, at, to_category, to_name), fact in best.items()
        ]
        self._bulk.insert(
            conn,
            status_transitions,
            _TRANSITION_COLUMNS,
            rows,
            conflict=("item_id", "at", "to_category", "to_name"),
            update_where=preferred_sql(self.dialect),
        )

    def _known_items(self, conn: Connection, given: list[Transition], current: dict[str, _Current]) -> list[Transition]:
        """The facts of `given` whose item the batch wrote or the store holds (looked up once
        for ids outside the batch: a backfill hands facts of items stored by earlier batches)."""
        outside = sorted({fact.item_id for fact in given if fact.item_id not in current})
        stored: set[str] = set()
        if outside:
            stored = set(conn.execute(select(items.c.id).where(any_of(self.dialect, items.c.id, outside))).scalars())

        def known(item_id: str) -> bool:
            cur = current.get(item_id)
            return cur.has_row if cur is not None else item_id in stored

        return [fact for fact in given if known(fact.item_id)]

    def _lock_statement(self) -> Any:
        """Lock the change counter for the transaction (writers queue here) and read it.
        PostgreSQL: the same statement sets the planner settings of `custom_plans` for the
        rest of the transaction (it says why), saving a round trip."""
        stmt = select(change_counter.c.last_seq).where(change_counter.c.id == 1)
        if self.dialect != "postgresql":
            return stmt
        settings: list[ColumnElement[str]] = [
            literal_column(f"set_config('{name}', '{value}', true)") for name, value in APPLY_SETTINGS
        ]
        return stmt.add_columns(*settings).with_for_update(of=change_counter)

    def _lock_counter(self, lock: Any) -> int:
        """The counter's value, from the cursor of `_lock_statement`."""
        [row] = self._sql.fetch(lock)
        return int(row[0])

    def _start_current(self, conn: Connection, ids: list[str]) -> tuple[Any, Any] | None:
        """Send the reads of the stored rows of `ids`: their items rows and, on PostgreSQL,
        their tombstones in the same pipeline (an id has one or the other; `_load_current`
        keeps a tombstone only for an id with no items row). SQLite, where a statement is no
        round trip, reads tombstones only for the ids with no items row (`_load_current`)."""
        if not ids:
            return None
        cols = (items.c.id, items.c.updated_at, items.c.deleted_at, items.c.deleted, items.c.version, items.c.doc)
        dialect = self.dialect
        found = self._sql.start(
            conn, "current", lambda: select(*cols).where(keys_in(dialect, items.c.id, "ids")), ids=self._sql.keys(ids)
        )
        return found, self._start_tombstones(conn, ids) if self._sql.postgres else None

    def _start_tombstones(self, conn: Connection, ids: list[str]) -> Any:
        dialect, t = self.dialect, item_tombstones.c
        return self._sql.start(
            conn,
            "tombstones",
            lambda: select(t.item_id, t.source, t.native_id, t.deleted_at).where(keys_in(dialect, t.item_id, "ids")),
            ids=self._sql.keys(ids),
        )

    def _load_current(self, conn: Connection, ids: list[str], found: tuple[Any, Any] | None) -> dict[str, _Current]:
        """The stored state of the batch's ids, from the cursors of `_start_current`."""
        if found is None:
            return {}
        read = self._read_time
        current = {
            item_id: _Current(read(updated_at), read(deleted_at), bool(deleted), doc, version=int(version))
            for item_id, updated_at, deleted_at, deleted, version, doc in self._sql.fetch(found[0])
        }
        tombstones = found[1]
        if tombstones is None:
            unseen = [item_id for item_id in ids if item_id not in current]
            if not unseen:
                return current
            tombstones = self._start_tombstones(conn, unseen)  # e.g. a first sync: finds nothing
        for item_id, source, native_id, deleted_at in self._sql.fetch(tombstones):
            if item_id in current:
                continue  # the items row is the stored state
            at = read(deleted_at)
            assert at is not None  # NOT NULL
            current[item_id] = _Current.tombstone_only(source, native_id, at)
        return current

    def _start_sources(self, conn: Connection, batch: list[WorkItem | ItemDeletion]) -> Any:
        """Send the read of which of the batch's sources are registered (None: no upserts)."""
        names = sorted({op.source for op in batch if isinstance(op, WorkItem)})
        if not names:
            return None
        dialect = self.dialect
        return self._sql.start(
            conn,
            "sources",
            lambda: select(sources.c.name).where(keys_in(dialect, sources.c.name, "names")),
            names=self._sql.keys(names),
        )

    def _register_sources(
        self, conn: Connection, batch: list[WorkItem | ItemDeletion], now: datetime, known: set[str]
    ) -> None:
        """Register the batch's sources not `known` (`_start_sources`)."""
        seen = {(op.source, op.tool) for op in batch if isinstance(op, WorkItem)}
        rows = [{"name": n, "tool": t, "created_at": now, "updated_at": now} for n, t in seen if n not in known]
        if rows:
            conn.execute(dialect_insert(self.dialect, sources).on_conflict_do_nothing(index_elements=["name"]), rows)

    def _item_rows(self, touched: dict[str, int], current: dict[str, _Current], now: datetime) -> _ItemRows:
        """The rows `_write_items` writes for the ids the batch `touched` (built, not written)."""
        t = self._time
        # SQLite takes the JSON columns as the UTF-8 bytes they are made as (`_UTF8_COLUMNS`).
        text = _as_str if self._sql.postgres else _as_is
        synced_at = t(now)
        out = _ItemRows()
        rows, tombstoned, label_rows = out.rows, out.tombstoned, out.label_rows
        assignee_rows, link_rows, replaced = out.assignee_rows, out.link_rows, out.replaced
        tombstone_rows, moved, new = out.tombstone_rows, out.moved, out.new
        for item_id, version in touched.items():
            cur = current[item_id]
            item = cur.item
            if not cur.has_row:
                assert cur.tombstone_of is not None
                tombstone_rows.append((item_id, *cur.tombstone_of, t(cur.deleted_at), synced_at))
                continue
            if cur.in_tombstones:
                moved.append(item_id)
            if item is None:
                # Only the tombstone changed: the document, labels and assignees stay, and so
                # does updated_at, which their rows copy (they stay in step).
                tombstoned.append({"i": item_id, "d": cur.deleted_at, "v": version, "s": now})
                continue
            container, rice = item.container, item.rice
            updated_at = t(cur.updated_at)
            rows.append(
                (  # in _ITEM_COLUMNS order
                    item_id,
                    item.source,
                    item.tool,
                    item.native_id,
                    item.key,
                    item.title,
                    item.kind._value_,  # `_value_`: `.value` is a Python-level descriptor
                    item.status.category._value_,
                    item.priority.level._value_,
                    container.id if container else None,
                    container.key if container else None,
                    item.parent_id,
                    rice.score if rice else None,
                    t(item.created_at),
                    updated_at,
                    cur.deleted,
                    t(cur.deleted_at),
                    version,
                    synced_at,
                    text(cur.doc_json),
                    text(raw_bytes(item.raw)) if item.raw is not None else None,
                )
            )
            if cur.is_new:
                new.add(item_id)
            else:
                replaced.append(item_id)
            # The side rows carry the item's updated_at (the list queries walk them in page order).
            label_rows.extend((item_id, label, updated_at) for label in dict.fromkeys(item.labels))
            person_ids = dict.fromkeys(a.id for a in item.assignees if a.id)
            assignee_rows.extend((item_id, pid, updated_at) for pid in person_ids)
            link_rows.extend(link_row(item_id, link) for link in _unique_links(item.links))
        return out

    def _copy_new_items(self, conn: Connection, written: _ItemRows) -> None:
        """PostgreSQL: COPY the items rows of ids that had no items row (`_Bulk.copy`).

        Their absence is settled: `run` took the counter lock before `_load_current` read the
        stored rows (in READ COMMITTED each statement sees what committed before it began,
        and the lock is granted only once the previous writer committed), and every writer
        of `items` is `apply`, serialised on that lock. tests/test_store_copy.py checks a
        writer that waits for it."""
        self._bulk.copy(conn, items, _ITEM_COLUMNS, [row for row in written.rows if row[0] in written.new])
        written.copied = True

    def _write_items(self, conn: Connection, written: _ItemRows, current: dict[str, _Current]) -> None:
        """Write the rows of `_item_rows`: items, report facts, side rows, tombstones."""
        self._write_rows(conn, written, current)
        self._bulk.insert(conn, item_labels, ("item_id", "label", "updated_at"), written.label_rows)
        self._bulk.insert(conn, item_assignees, ("item_id", "person_id", "updated_at"), written.assignee_rows)
        self._bulk.insert(conn, item_links, _LINK_COLUMNS, written.link_rows)
        self._bulk.insert(conn, item_tombstones, _TOMBSTONE_COLUMNS, written.tombstone_rows, conflict=("item_id",))
        if written.moved:
            ids = self._sql.keys(written.moved)
            self._sql.run(conn, "moved", partial(_delete_of, self.dialect, item_tombstones), ids=ids)

    def _write_rows(self, conn: Connection, written: _ItemRows, current: dict[str, _Current]) -> None:
        """The items rows (but those `copied` already), their report facts, the tombstoned
        rows, and the side rows of `replaced` items cleared (`_write_items` writes the new
        side rows)."""
        rows, tombstoned, new, replaced = written.rows, written.tombstoned, written.new, written.replaced
        upserted = [row for row in rows if row[0] not in new] if written.copied else rows
        # One statement per chunk on SQLite: items has the text index's triggers (`_Bulk._sqlite_rows`).
        self._bulk.insert(
            conn, items, _ITEM_COLUMNS, upserted, conflict=("id",), one_statement=True, utf8=_UTF8_COLUMNS
        )
        write_report_facts(
            conn,
            self._bulk,
            rows,
            {row[0]: current[row[0]].item for row in rows},
            [t["i"] for t in tombstoned],
            new,
        )
        if tombstoned:
            conn.execute(
                update(items)
                .where(items.c.id == bindparam("i"))
                .values(deleted=True, deleted_at=bindparam("d"), version=bindparam("v"), synced_at=bindparam("s")),
                tombstoned,
            )
        if replaced:  # new items have no rows to delete: skip three statements for them
            ids = self._sql.keys(replaced)
            for table in (item_labels, item_assignees, item_links):
                self._sql.run(conn, f"replace {table.name}", partial(_delete_of, self.dialect, table), ids=ids)

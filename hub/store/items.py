"""The item store's one write path, `apply`, and the item read queries.

Why `apply` serialises writers on one counter row: the change feed promises that a reader
who has seen seq N never later finds a new change with a seq below N, and that seqs have
no gaps. A database sequence gives neither (rolled-back transactions leave holes and
commit order can differ from allocation order). Allocating seqs from a row that every
writer locks for the length of its transaction gives both, and it also makes the
read-compare-write of upsert-if-newer race-free across processes. Writes are batched (one
transaction per page of hundreds of items), so serialising them costs little.

Why the bulk writes bypass SQLAlchemy's per-row parameter handling: `apply` must sustain
>= 10,000 items/s, i.e. ~100 us per item for everything (items row, labels, assignees,
change row). SQLAlchemy's executemany spends ~5 us per row building and type-processing
parameter dicts, and its expanding IN lists compile a new statement for every batch size.
So rows are built once as tuples in column order and handed to the driver in one call per
table (see `_Bulk`); every lookup binds its keys as ONE parameter (`_any_of`), so each
statement's text is the same for every batch and is compiled and prepared once.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic_core import PydanticSerializationError
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    false,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from hub.db.engine import write_transaction
from hub.db.tables import (
    change_counter,
    changes,
    cursors,
    item_assignees,
    item_labels,
    item_links,
    item_tombstones,
    items,
    people,
    person_identities,
    sources,
    status_transitions,
)
from hub.flow.history import SOURCE_RANK, ItemHistory, Transition, TransitionSource, build_history
from hub.links import ref_from_url
from hub.schema import ChangeOp, ItemDeletion, Link, PersonRef, StatusCategory, WorkItem, to_utc
from hub.store.flow_facts import FLOW_FIELDS, refresh_flow_facts
from hub.store.report_facts import write_report_facts
from hub.store.transitions import TransitionStore

# Fields that never count as a change of the item itself.
_NOT_CONTENT: set[str] = {"version", "synced_at", "raw", "deleted"}
_EMPTY_TYPES = (str, list, dict)


def _is_empty(value: Any) -> bool:
    """None, "", [] or {}: a field a new item does not list as changed. By type, not `in
    (None, [], {}, "")`, which calls pydantic's __eq__ on every nested model value."""
    return value is None or (type(value) in _EMPTY_TYPES and not value)


# Column order of the rows `_write_items` builds (tuples, not dicts: see module doc).
_ITEM_COLUMNS = tuple(c.name for c in items.columns)
# Top-level fields of the stored document, sorted (a new item's change lists the non-empty ones).
_DOC_FIELDS = tuple(sorted(name for name in WorkItem.model_fields if name not in _NOT_CONTENT))
_serialize = WorkItem.__pydantic_serializer__.to_json
_CHANGE_COLUMNS = ("seq", "item_id", "op", "fields", "at")
_PEOPLE_COLUMNS = ("id", "name", "email", "created_at", "updated_at")
_IDENTITY_COLUMNS = ("source", "native_id", "person_id", "name", "email")


_TOMBSTONE_COLUMNS = ("item_id", "source", "native_id", "deleted_at", "recorded_at")
# An ItemDeletion's ids are not length-checked (WorkItem's are): one longer than any item's
# can match no item, so it needs no tombstone (and would not fit its columns).
_SOURCE_MAX, _NATIVE_ID_MAX = 100, 200  # the lengths of items.source and items.native_id
_TRANSITION_COLUMNS = tuple(c.name for c in status_transitions.columns)
_LINK_COLUMNS = ("item_id", "type", "target", "target_id", "target_tool", "target_key")


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


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Checkpoint:
    """A sync cursor to save in the same transaction as the page it belongs to."""

    source: str
    stream: str
    value: str


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
    return StatusCategory(status["category"]), status.get("name")


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


def raw_json(raw: dict[str, Any]) -> str:
    """The tool's payload as stored: JSON, NUL kept as its escape; lone surrogates (which no
    JSON encoder can write as UTF-8) replaced by U+FFFD."""
    try:
        return orjson.dumps(raw).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_replace_in(raw, _SURROGATES)).decode()


def person_id_for(source: str, ref: PersonRef) -> str:
    """Deterministic hub person id, so that two hubs (or a re-import) agree on it."""
    basis = f"email:{ref.email}" if ref.email else f"{source}\x00{ref.native_id}"
    return "per_" + hashlib.sha256(basis.encode()).hexdigest()[:20]


def _identity_key(ref: PersonRef) -> str | None:
    if ref.native_id:
        return ref.native_id
    if ref.email:
        return f"email:{ref.email}"
    return None


def database_unavailable(exc: BaseException) -> bool:
    """The database is down, unreachable or busy (retrying later helps), as opposed to a
    record it refuses. Raw driver errors come through the store's bulk path unwrapped, so
    they are told apart by their PEP 249 class (psycopg's QueryCanceled is an
    OperationalError, sqlite3's "database is locked" too)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    dbapi = getattr(exc, "orig", None) or exc
    return any(cls.__name__ in ("OperationalError", "InterfaceError") for cls in type(dbapi).__mro__)


class _Bulk:
    """Multi-row INSERT / upsert of tuples through the transaction's own DBAPI cursor.

    PostgreSQL: one `INSERT ... SELECT * FROM unnest(%s::type[], ...)` with one array per
    column: one statement and one round trip per table whatever the row count, and the
    statement text never changes. (psycopg's
    executemany runs one server-side statement per row; multi-row VALUES needs a new
    statement per row count and hits the 65,535 parameter cap.)
    SQLite: the sqlite3 module's executemany, a C loop over one prepared statement.
    """

    def __init__(self, dialect: Any) -> None:
        self.postgres = dialect.name == "postgresql"
        self.dialect = dialect
        self._sql: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool, str], str] = {}

    def insert(
        self,
        conn: Connection,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: tuple[str, ...] = (),
        update: bool = True,
        update_where: str = "",
    ) -> None:
        """Insert `rows` (tuples in `columns` order). On a clash on the `conflict` columns,
        overwrite the other columns (`update`; only where the SQL condition `update_where`
        holds, if given) or keep the stored row (not `update`)."""
        if not rows:
            return
        sql = self._statement(table, tuple(columns), conflict, update, update_where)
        cursor = conn.connection.cursor()  # same DBAPI connection, so same transaction
        try:
            if self.postgres:
                cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
            else:
                cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def _statement(
        self, table: Table, columns: tuple[str, ...], conflict: tuple[str, ...], update: bool, update_where: str = ""
    ) -> str:
        key = (table.name, columns, conflict, update, update_where)
        sql = self._sql.get(key)
        if sql is None:
            quote = self.dialect.identifier_preparer.quote
            names = ", ".join(quote(c) for c in columns)
            if self.postgres:
                # %b: binary parameters. psycopg's text format escapes every array element
                # with a regex, which costs more than the whole insert for KB-sized documents.
                arrays = ", ".join(f"%b::{table.c[c].type.compile(dialect=self.dialect)}[]" for c in columns)
                sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608 - names from metadata
            else:
                sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
            if conflict and update:
                sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in conflict)
                sql += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {sets}"
                if update_where:
                    sql += f" WHERE {update_where}"
            elif conflict:
                sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
            self._sql[key] = sql
        return sql


class ItemStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._bulk = _Bulk(engine.dialect)
        # The bulk path binds datetimes itself: use the column type's own conversion, so the
        # stored form (SQLite compares times as text) is exactly what SQLAlchemy writes.
        time_type = items.c.updated_at.type.dialect_impl(engine.dialect)
        processor = time_type.bind_processor(engine.dialect)
        self._time: Callable[[datetime | None], Any] = processor or (lambda value: value)
        self.transitions = TransitionStore(engine)

    # ------------------------------------------------------------------ writing

    @contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """A write transaction (`hub.db.engine.write_transaction`) for `apply(conn=...)`."""
        with write_transaction(self.engine) as conn:
            yield conn

    def apply(
        self,
        ops: Iterable[WorkItem | ItemDeletion],
        *,
        checkpoint: Checkpoint | None = None,
        force: bool = False,
        conn: Connection | None = None,
        transitions: Iterable[Transition] = (),
    ) -> ApplyResult:
        """Write a batch of upserts and deletions in one transaction.

        Deliveries converge: whatever order the same upserts and deletions of an item
        arrive in (and however often), the stored state ends the same. Each is placed in
        one total order that does not depend on arrival, and the greatest one wins:

        1. the tool's time: an upsert's `updated_at`, a deletion's `deleted_at` (if the
           deletion carries none, the hub's time of arrival is used);
        2. at equal time, a deletion beats an upsert;
        3. between two upserts at equal time, the one whose document has the greater
           `content_digest` (SHA-256 of its stored JSON) wins; equal digests are the same
           content, i.e. a duplicate.

        - An upsert is written only if it beats what is stored. With `force` (a record the
          hub just refetched is the tool's current state), an equal `updated_at` whose
          content differs is written too, whatever its digest, and it also beats a
          deletion of equal time: forced writes step outside the order by design.
        - A deletion tombstones the item (it stays readable with include_deleted, with the
          greatest upsert older than the deletion as its document: such an upsert arriving
          after the deletion updates the document silently, without a change). A later
          deletion than the stored one moves the tombstone's time on.
        - A deletion of an id the hub has never stored is kept in `item_tombstones`
          (`ApplyResult.tombstones`) and emits no change: the feed never showed the item.
          An older upsert arriving later lands as a deleted item (no change); a newer one
          creates the item and removes the tombstone.
        - Every write that changes the live view (an item appears, its document changes,
          it is deleted or comes back) appends one change with the next gap-free seq.
        - Every string of every op is made storable first (`storable`: NUL and lone
          surrogates become U+FFFD, the same on SQLite and PostgreSQL).
        - `checkpoint`, if given, is saved in the same transaction.

        Status history (`status_transitions`, hub/flow/history.py) is written in the same
        transaction, on the tool's clock (`observed_transitions`): a first sighting of an
        item, a change of its status, a sighting of an older version. Deletions write none.
        `transitions` are the tool's own facts for the batch (a Jira webhook's changelog, an
        expanded changelog on a pulled issue): stored for items the batch writes or the store
        holds; facts of any other item are dropped (`ApplyResult.transitions_dropped`), since
        a history must not exist without its item. Every fact is idempotent (the table's
        identity; the best source is kept), so replays and re-syncs add nothing.
        """
        batch = [storable(op) for op in ops]
        given = list(transitions)
        if conn is not None:
            with self._custom_plans(conn):
                return self._apply(conn, batch, checkpoint, force, given)
        with self.write_transaction() as tx, self._custom_plans(tx):
            return self._apply(tx, batch, checkpoint, force, given)

    @contextmanager
    def _custom_plans(self, conn: Connection) -> Iterator[None]:
        """PostgreSQL: plan apply's statements for their actual values, never generically.

        psycopg prepares a statement after 5 runs and the server may then switch to a
        generic plan. For `id = ANY($1)` a generic plan cannot hash the array (a filter
        costs rows x values), and a plan made while a table was small sticks as it grows:
        measured 10-50 ms per lookup instead of ~1 ms. Planning these statements costs
        far less than that.
        """
        if self.dialect != "postgresql":
            yield
            return
        driver = conn.connection.driver_connection
        saved = driver.prepare_threshold  # type: ignore[union-attr]
        driver.prepare_threshold = None  # type: ignore[union-attr]
        try:
            yield
        finally:
            driver.prepare_threshold = saved  # type: ignore[union-attr]

    def _apply(
        self,
        conn: Connection,
        batch: list[WorkItem | ItemDeletion],
        checkpoint: Checkpoint | None,
        force: bool,
        given: list[Transition],
    ) -> ApplyResult:
        last_seq = self._lock_counter(conn)
        now = utcnow()
        result = ApplyResult()
        current = self._load_current(conn, list(dict.fromkeys(op.id for op in batch)))
        self._register_sources(conn, batch, now)
        people_ids = self._resolve_people(conn, batch, now)

        pending_changes: list[tuple[Any, ...]] = []
        touched: dict[str, int] = {}  # id -> the version to store (seq of its last change)
        facts: list[Transition] = []
        flow_ids: set[str] = set()  # items whose flow facts to refresh (hub/store/flow_facts.py)
        at = self._time(now)

        for op in batch:
            cur = current.get(op.id)
            fields: list[str] | None  # the change to log; None: stored silently, or nothing
            if isinstance(op, ItemDeletion):
                deleted_at = to_utc(op.deleted_at) if op.deleted_at else now
                fields = self._delete(op, deleted_at, cur, current, result)
                if fields is None and op.id not in current:
                    continue
                change_op = ChangeOp.delete
            else:
                item = op
                for ref in [*item.assignees, item.reporter]:
                    if ref is not None:
                        key = _identity_key(ref)
                        if key is not None:
                            ref.id = people_ids.get((item.source, key), ref.id)
                facts.extend(observed_transitions(item, cur))
                fields = self._upsert(item, to_utc(item.updated_at), cur, current, result, force)
                change_op = ChangeOp.upsert
            cur = current[op.id]
            if fields is not None:
                if not FLOW_FIELDS.isdisjoint(fields):
                    flow_ids.add(op.id)
                last_seq += 1
                result.seqs.append(last_seq)
                cur.version = last_seq
                pending_changes.append((last_seq, op.id, change_op.value, orjson.dumps(fields).decode(), at))
                if change_op is ChangeOp.upsert:
                    result.upserted_ids.append(op.id)
            elif not cur.dirty:
                continue
            cur.dirty = False
            touched[op.id] = cur.version

        if touched:
            self._write_items(conn, touched, current, now)
        if given:
            kept = self._known_items(conn, given, current)
            result.transitions_dropped = len(given) - len(kept)
            facts.extend(kept)
        if facts:
            self._write_transitions(conn, facts)
            result.transitions = len(facts)
            flow_ids.update(fact.item_id for fact in facts)
        if flow_ids:
            refresh_flow_facts(conn, flow_ids)
        if pending_changes:
            self._bulk.insert(conn, changes, _CHANGE_COLUMNS, pending_changes)
            conn.execute(update(change_counter).where(change_counter.c.id == 1).values(last_seq=last_seq))
        if checkpoint is not None:
            self.save_cursor(conn, checkpoint, now)
        return result

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
        updated_at: datetime,
        cur: _Current | None,
        current: dict[str, _Current],
        result: ApplyResult,
        force: bool,
    ) -> list[str] | None:
        """Decide one upsert (see `apply`). Returns the change's fields, or None for no
        change; sets `cur.dirty` when something must be stored anyway."""
        if cur is None:
            doc_json = _serialize(item, exclude=_NOT_CONTENT)
            current[item.id] = _Current(updated_at, None, False, None, is_new=True, dirty=True)
            current[item.id].set_content(item, updated_at, doc_json, None)
            result.upserted += 1
            return [name for name in _DOC_FIELDS if not _is_empty(getattr(item, name))]
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
                result.unchanged += 1  # decided before serialising: stale input costs little
                return None
        # Serialise straight to JSON (pydantic's Rust serializer, about half the cost of
        # model_dump + dumps); only an update parses it back, to diff.
        doc_json = _serialize(item, exclude=_NOT_CONTENT)
        digest = None
        if cur.updated_at is not None and updated_at == cur.updated_at:
            digest = content_digest(doc_json)
            revive = live and cur.deleted  # forced: a refetch found the item, whatever its content
            if not revive and (digest == cur.digest or (digest < cur.digest and not (force and live))):
                result.unchanged += 1  # the same content, or the tie-break keeps the stored one
                return None
        if not live:
            # Under a newer tombstone: keep the greatest content as the deleted item's
            # document (every order ends with the same one), with no change.
            cur.set_content(item, updated_at, doc_json, digest)
            cur.has_row, cur.dirty = True, True
            result.unchanged += 1
            return None
        if cur.updated_at is None:  # only a tombstone was stored: new to the feed
            fields = [name for name in _DOC_FIELDS if not _is_empty(getattr(item, name))]
        else:
            old_doc, doc = cur.doc, orjson.loads(doc_json)
            fields = sorted(k for k in doc.keys() | old_doc.keys() if doc.get(k) != old_doc.get(k))
            if cur.deleted:
                fields = sorted({*fields, "deleted"})
            if not fields:
                result.unchanged += 1  # forced re-apply with identical content
                return None
        cur.set_content(item, updated_at, doc_json, digest)
        cur.deleted, cur.deleted_at, cur.has_row, cur.dirty = False, None, True, True
        result.upserted += 1
        return fields

    def _write_transitions(self, conn: Connection, facts: list[Transition]) -> None:
        """`TransitionStore.add` on the bulk path (module doc): a page writes a fact per new
        item. Same semantics: one row per identity, a better source replaces a worse one."""
        best: dict[tuple[str, datetime, str, str], Transition] = {}
        for fact in facts:
            key = (fact.item_id, fact.at, fact.to_category.value, fact.to_name or "")
            kept = best.get(key)
            if kept is None or SOURCE_RANK[fact.source] < SOURCE_RANK[kept.source]:
                best[key] = fact
        t = self._time
        rows = [
            (
                item_id,
                t(at),
                to_category,
                to_name,
                fact.from_category.value if fact.from_category is not None else None,
                fact.from_name,
                fact.source.value,
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
            update_where=f"excluded.source_rank < {status_transitions.name}.source_rank",
        )

    def _known_items(self, conn: Connection, given: list[Transition], current: dict[str, _Current]) -> list[Transition]:
        """The facts of `given` whose item the batch wrote or the store holds (looked up once
        for ids outside the batch: a backfill hands facts of items stored by earlier batches)."""
        outside = sorted({fact.item_id for fact in given if fact.item_id not in current})
        stored: set[str] = set()
        if outside:
            stored = set(conn.execute(select(items.c.id).where(self._any_of(items.c.id, outside))).scalars())

        def known(item_id: str) -> bool:
            cur = current.get(item_id)
            return cur.has_row if cur is not None else item_id in stored

        return [fact for fact in given if known(fact.item_id)]

    def _any_of(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        """`column IN values` with all values in ONE bound parameter.

        An IN list renders one parameter per value, so every batch size is a new statement
        to compile (SQLAlchemy) and to plan (the server), and SQLite caps the parameter
        count. PostgreSQL takes an array, SQLite a JSON array (`json_each`).
        """
        clause: ColumnElement[bool]
        if self.dialect == "postgresql":
            clause = column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
        else:
            values_json = bindparam(None, orjson.dumps(list(values)).decode(), type_=String)
            clause = column.in_(select(func.json_each(values_json).table_valued("value").c.value))
        return clause

    def _lock_counter(self, conn: Connection) -> int:
        stmt = select(change_counter.c.last_seq).where(change_counter.c.id == 1)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        value = conn.execute(stmt).scalar_one()
        return int(value)

    def _load_current(self, conn: Connection, ids: list[str]) -> dict[str, _Current]:
        if not ids:
            return {}
        cols = (items.c.id, items.c.updated_at, items.c.deleted_at, items.c.deleted, items.c.version, items.c.doc)
        rows = conn.execute(select(*cols).where(self._any_of(items.c.id, ids)))
        current = {
            row.id: _Current(row.updated_at, row.deleted_at, bool(row.deleted), row.doc, version=int(row.version))
            for row in rows
        }
        unseen = [item_id for item_id in ids if item_id not in current]
        if unseen:  # e.g. a first sync: one lookup that finds nothing
            t = item_tombstones.c
            stmt = select(t.item_id, t.source, t.native_id, t.deleted_at).where(self._any_of(t.item_id, unseen))
            for row in conn.execute(stmt):
                current[row.item_id] = _Current.tombstone_only(row.source, row.native_id, row.deleted_at)
        return current

    def _register_sources(self, conn: Connection, batch: list[WorkItem | ItemDeletion], now: datetime) -> None:
        seen = {(op.source, op.tool) for op in batch if isinstance(op, WorkItem)}
        if not seen:
            return
        names = [name for name, _ in seen]
        known = set(conn.execute(select(sources.c.name).where(self._any_of(sources.c.name, names))).scalars())
        rows = [{"name": n, "tool": t, "created_at": now, "updated_at": now} for n, t in seen if n not in known]
        if rows:
            conn.execute(self._insert(sources).on_conflict_do_nothing(index_elements=["name"]), rows)

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def _resolve_people(
        self, conn: Connection, batch: list[WorkItem | ItemDeletion], now: datetime
    ) -> dict[tuple[str, str], str]:
        """Map (source, identity key) -> hub person id, creating people and identities.

        The same email in any tool is the same person; an identity first seen without an
        email joins the person with that email once the tool reveals it. An email is found
        on `people.email` or, for a person who has several, on any identity's email.
        """
        refs: dict[tuple[str, str], PersonRef] = {}
        for op in batch:
            if isinstance(op, WorkItem):
                for ref in [*op.assignees, op.reporter]:
                    if ref is None:
                        continue
                    key = _identity_key(ref)
                    if key is not None:
                        previous = refs.get((op.source, key))
                        if previous is None or (ref.email and not previous.email):
                            refs[(op.source, key)] = ref
        if not refs:
            return {}
        ident = person_identities.c
        known: dict[tuple[str, str], Any] = {}
        keys_by_source: dict[str, list[str]] = defaultdict(list)
        for source, key in refs:
            keys_by_source[source].append(key)
        for source, keys in keys_by_source.items():  # a batch rarely holds more than one source
            stmt = select(ident.source, ident.native_id, ident.person_id, ident.name, ident.email).where(
                ident.source == source, self._any_of(ident.native_id, keys)
            )
            for identity in conn.execute(stmt):
                known[(identity.source, identity.native_id)] = identity
        # Owners of emails are looked up only for what needs one: a new identity or one whose
        # email changed. Once a team's people are known, a batch skips both queries.
        emails = sorted(
            {
                ref.email
                for pair, ref in refs.items()
                if ref.email and (pair not in known or known[pair].email != ref.email)
            }
        )
        by_email: dict[str, str] = {}
        if emails:
            owners = select(ident.email, ident.person_id).where(self._any_of(ident.email, emails))
            for email, person_id in conn.execute(owners.order_by(ident.source, ident.native_id)):
                by_email.setdefault(email, person_id)
            own = select(people.c.email, people.c.id).where(self._any_of(people.c.email, emails))
            for email, person_id in conn.execute(own):
                by_email[email] = person_id  # the person whose own email it is wins

        resolved: dict[tuple[str, str], str] = {}
        renamed: list[dict[str, Any]] = []
        # Known identities first: merging one into an email's owner must only ever point it
        # at a person already in the database (the new people below are inserted last).
        for (source, key), ref in refs.items():
            stored = known.get((source, key))
            if stored is None:
                continue
            person_id = stored.person_id
            if ref.email and ref.email != stored.email:
                person_id = self._attach_email(conn, stored, ref, by_email, now)
            elif ref.name and ref.name != stored.name:
                renamed.append({"s": source, "k": key, "n": ref.name})
            resolved[(source, key)] = person_id
        if renamed:
            conn.execute(
                update(person_identities)
                .where(ident.source == bindparam("s"), ident.native_id == bindparam("k"))
                .values(name=bindparam("n")),
                renamed,
            )

        new_people: dict[str, tuple[Any, ...]] = {}
        new_identities: list[tuple[Any, ...]] = []
        t = self._time(now)
        for (source, key), ref in refs.items():
            if (source, key) in resolved:
                continue
            person_id = by_email.get(ref.email) if ref.email else None
            if person_id is None:
                person_id = person_id_for(source, ref)
                if ref.email:
                    by_email[ref.email] = person_id
                new_people.setdefault(person_id, (person_id, ref.name, ref.email, t, t))
            new_identities.append((source, key, person_id, ref.name, ref.email))
            resolved[(source, key)] = person_id
        self._bulk.insert(conn, people, _PEOPLE_COLUMNS, list(new_people.values()), conflict=("id",), update=False)
        self._bulk.insert(
            conn, person_identities, _IDENTITY_COLUMNS, new_identities, conflict=("source", "native_id"), update=False
        )
        return resolved

    def _attach_email(
        self,
        conn: Connection,
        identity: Any,
        ref: PersonRef,
        by_email: dict[str, str],
        now: datetime,
    ) -> str:
        """An identity now shows an email: record it, and merge into that email's person."""
        assert ref.email is not None
        ident = person_identities.c
        where_ident = and_(ident.source == identity.source, ident.native_id == identity.native_id)
        owner = by_email.get(ref.email)
        person_id: str = identity.person_id
        if owner is None or owner == person_id:
            conn.execute(
                update(person_identities).where(where_ident).values(email=ref.email, name=ref.name or identity.name)
            )
            conn.execute(
                update(people)
                .where(people.c.id == person_id, people.c.email.is_(None))
                .values(email=ref.email, updated_at=now)
            )
            by_email[ref.email] = person_id
            return person_id
        # Merge: this identity's person becomes the email owner's. The moved assignee rows keep
        # their updated_at (their item's), so the (person_id, updated_at, item_id) index stays right.
        conn.execute(update(person_identities).where(where_ident).values(email=ref.email, person_id=owner))
        old = person_id
        still_used = conn.execute(select(exists().where(ident.person_id == old))).scalar()
        moved = select(item_assignees.c.item_id).where(item_assignees.c.person_id == old)
        conn.execute(
            delete(item_assignees).where(item_assignees.c.person_id == owner, item_assignees.c.item_id.in_(moved))
        )
        conn.execute(update(item_assignees).where(item_assignees.c.person_id == old).values(person_id=owner))
        if not still_used:
            conn.execute(delete(people).where(people.c.id == old))
        return owner

    def _write_items(
        self,
        conn: Connection,
        touched: dict[str, int],
        current: dict[str, _Current],
        now: datetime,
    ) -> None:
        t = self._time
        synced_at = t(now)
        rows: list[tuple[Any, ...]] = []
        tombstoned: list[dict[str, Any]] = []  # stored items this batch only deleted
        label_rows: list[tuple[str, str, Any]] = []  # (item_id, label, updated_at)
        assignee_rows: list[tuple[str, str, Any]] = []  # (item_id, person_id, updated_at)
        link_rows: list[tuple[str, str, str, str | None, str | None, str | None]] = []
        replaced: list[str] = []  # existing items whose label/assignee/link rows are rewritten
        tombstone_rows: list[tuple[Any, ...]] = []  # deletions of ids with no items row
        moved: list[str] = []  # ids whose item_tombstones row is replaced by an items row
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
                    item.kind.value,
                    item.status.category.value,
                    item.priority.level.value,
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
                    cur.doc_json.decode() if isinstance(cur.doc_json, bytes) else cur.doc_json,
                    raw_json(item.raw) if item.raw is not None else None,
                )
            )
            if not cur.is_new:
                replaced.append(item_id)
            # The side rows carry the item's updated_at (the list queries walk them in page order).
            label_rows.extend((item_id, label, updated_at) for label in dict.fromkeys(item.labels))
            person_ids = dict.fromkeys(a.id for a in item.assignees if a.id)
            assignee_rows.extend((item_id, pid, updated_at) for pid in person_ids)
            link_rows.extend(link_row(item_id, link) for link in _unique_links(item.links))

        self._bulk.insert(conn, items, _ITEM_COLUMNS, rows, conflict=("id",))
        write_report_facts(
            conn, self._bulk, rows, {row[0]: current[row[0]].item for row in rows}, [t["i"] for t in tombstoned]
        )
        if tombstoned:
            conn.execute(
                update(items)
                .where(items.c.id == bindparam("i"))
                .values(deleted=True, deleted_at=bindparam("d"), version=bindparam("v"), synced_at=bindparam("s")),
                tombstoned,
            )
        if replaced:  # new items have no rows to delete: skip two statements for them
            conn.execute(delete(item_labels).where(self._any_of(item_labels.c.item_id, replaced)))
            conn.execute(delete(item_assignees).where(self._any_of(item_assignees.c.item_id, replaced)))
            conn.execute(delete(item_links).where(self._any_of(item_links.c.item_id, replaced)))
        self._bulk.insert(conn, item_labels, ("item_id", "label", "updated_at"), label_rows)
        self._bulk.insert(conn, item_assignees, ("item_id", "person_id", "updated_at"), assignee_rows)
        self._bulk.insert(conn, item_links, _LINK_COLUMNS, link_rows)
        self._bulk.insert(conn, item_tombstones, _TOMBSTONE_COLUMNS, tombstone_rows, conflict=("item_id",))
        if moved:
            conn.execute(delete(item_tombstones).where(self._any_of(item_tombstones.c.item_id, moved)))

    def save_cursor(self, conn: Connection, checkpoint: Checkpoint, now: datetime | None = None) -> None:
        stmt = self._insert(cursors).values(
            source=checkpoint.source, stream=checkpoint.stream, value=checkpoint.value, updated_at=now or utcnow()
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["source", "stream"],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
        )

    def load_cursor(self, source: str, stream: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(cursors.c.value).where(cursors.c.source == source, cursors.c.stream == stream)
            ).scalar_one_or_none()
        return value

    # ------------------------------------------------------------------ reading

    def get(self, item_id: str, *, include_raw: bool = False) -> dict[str, Any] | None:
        cols = [*READ_COLUMNS, items.c.raw] if include_raw else READ_COLUMNS
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(items.c.id == item_id)).first()
        return None if row is None else item_document(row, include_raw=include_raw)

    def history(self, item_id: str) -> ItemHistory | None:
        """The item's canonical status history (hub/flow/history.py `build_history`), or None
        when no item has this id (tombstoned items keep theirs)."""
        with self.engine.connect() as conn:
            if conn.execute(select(items.c.id).where(items.c.id == item_id)).first() is None:
                return None
            facts = self.transitions.for_items([item_id], conn).get(item_id, [])
        return build_history(item_id, facts)

    def live_ids(self, source: str, updated_before: datetime | None = None) -> set[str]:
        """Native ids of the source's items that are not tombstoned (for the deletion sweep).

        With `updated_before`, only items whose `updated_at` is older than it: one the tool
        changed after the sweep's listing began may be missing from that listing without
        being gone.
        """
        stmt = select(items.c.native_id).where(items.c.source == source, items.c.deleted == false())
        if updated_before is not None:
            stmt = stmt.where(items.c.updated_at < to_utc(updated_before))
        with self.engine.connect() as conn:
            return set(conn.execute(stmt).scalars())


READ_COLUMNS = (items.c.doc, items.c.version, items.c.synced_at, items.c.deleted)


def item_document(row: Any, *, include_raw: bool = False) -> dict[str, Any]:
    """The public JSON document of a stored item (doc plus the hub's own fields)."""
    doc: dict[str, Any] = orjson.loads(row.doc)
    doc["deleted"] = bool(row.deleted)
    doc["version"] = int(row.version)
    doc["synced_at"] = row.synced_at.isoformat().replace("+00:00", "Z")
    if include_raw:
        doc["raw"] = orjson.loads(row.raw) if row.raw else None
    return doc

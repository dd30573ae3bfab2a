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
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
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

from hub.db.engine import write_transaction
from hub.db.tables import (
    change_counter,
    changes,
    cursors,
    item_assignees,
    item_labels,
    item_links,
    items,
    people,
    person_identities,
    sources,
)
from hub.links import ref_from_url
from hub.schema import ChangeOp, ItemDeletion, Link, PersonRef, WorkItem, to_utc

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
    seqs: list[int] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.upserted + self.deleted


@dataclass
class _Current:
    """What the store holds for one item while a batch is being applied."""

    updated_at: datetime
    deleted_at: datetime | None
    deleted: bool
    doc_json: str | bytes  # the stored document; parsed only if an update needs a diff
    is_new: bool = False
    item: WorkItem | None = None  # the newest version upserted by this batch, if any
    _doc: dict[str, Any] | None = None

    @property
    def doc(self) -> dict[str, Any]:
        if self._doc is None:
            self._doc = orjson.loads(self.doc_json)
        return self._doc

    @property
    def newest(self) -> datetime:
        if self.deleted_at is not None and self.deleted_at > self.updated_at:
            return self.deleted_at
        return self.updated_at


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
        self._sql: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool], str] = {}

    def insert(
        self,
        conn: Connection,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: tuple[str, ...] = (),
        update: bool = True,
    ) -> None:
        """Insert `rows` (tuples in `columns` order). On a clash on the `conflict` columns,
        overwrite the other columns (`update`) or keep the stored row (not `update`)."""
        if not rows:
            return
        sql = self._statement(table, tuple(columns), conflict, update)
        cursor = conn.connection.cursor()  # same DBAPI connection, so same transaction
        try:
            if self.postgres:
                cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
            else:
                cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def _statement(self, table: Table, columns: tuple[str, ...], conflict: tuple[str, ...], update: bool) -> str:
        key = (table.name, columns, conflict, update)
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
    ) -> ApplyResult:
        """Write a batch of upserts and deletions in one transaction.

        - An upsert is written only if its `updated_at` is newer than what is stored (an
          older or equal one is a no-op that writes no change). With `force`, an equal
          `updated_at` whose content differs is written too (re-mapping after an override).
        - A deletion tombstones the item (it stays readable with include_deleted).
        - Every effective write appends one change with the next gap-free seq.
        - `checkpoint`, if given, is saved in the same transaction.
        """
        batch = list(ops)
        if conn is not None:
            with self._custom_plans(conn):
                return self._apply(conn, batch, checkpoint, force)
        with self.write_transaction() as tx, self._custom_plans(tx):
            return self._apply(tx, batch, checkpoint, force)

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
    ) -> ApplyResult:
        last_seq = self._lock_counter(conn)
        now = utcnow()
        result = ApplyResult()
        current = self._load_current(conn, list(dict.fromkeys(op.id for op in batch)))
        self._register_sources(conn, batch, now)
        people_ids = self._resolve_people(conn, batch, now)

        pending_changes: list[tuple[Any, ...]] = []
        touched: dict[str, int] = {}  # id -> seq of its last change in this batch (its version)
        at = self._time(now)

        for op in batch:
            cur = current.get(op.id)
            if isinstance(op, ItemDeletion):
                deleted_at = to_utc(op.deleted_at) if op.deleted_at else now
                if cur is None or cur.deleted or deleted_at < cur.newest:
                    result.unchanged += 1
                    continue
                cur.deleted, cur.deleted_at = True, deleted_at
                fields = ["deleted"]
                result.deleted += 1
                change_op = ChangeOp.delete
            else:
                item = op
                for ref in [*item.assignees, item.reporter]:
                    if ref is not None:
                        key = _identity_key(ref)
                        if key is not None:
                            ref.id = people_ids.get((item.source, key), ref.id)
                updated_at = to_utc(item.updated_at)
                if cur is not None and (updated_at < cur.newest or (updated_at == cur.newest and not force)):
                    result.unchanged += 1  # decided before serialising: stale input costs little
                    continue
                # Serialise straight to JSON (pydantic's Rust serializer, about half the cost
                # of model_dump + dumps); only an update parses it back, to diff.
                doc_json = _serialize(item, exclude=_NOT_CONTENT)
                if cur is not None:
                    old_doc, doc = cur.doc, orjson.loads(doc_json)
                    fields = sorted(k for k in doc.keys() | old_doc.keys() if doc.get(k) != old_doc.get(k))
                    if cur.deleted:
                        fields = sorted({*fields, "deleted"})
                    if not fields:
                        result.unchanged += 1  # forced re-apply with identical content
                        continue
                else:
                    fields = [name for name in _DOC_FIELDS if not _is_empty(getattr(item, name))]
                    cur = current[op.id] = _Current(updated_at, None, False, doc_json, is_new=True)
                cur.updated_at, cur.deleted, cur.deleted_at = updated_at, False, None
                cur.doc_json, cur._doc, cur.item = doc_json, None, item
                result.upserted += 1
                change_op = ChangeOp.upsert
            last_seq += 1
            result.seqs.append(last_seq)
            touched[op.id] = last_seq
            pending_changes.append((last_seq, op.id, change_op.value, orjson.dumps(fields).decode(), at))

        if pending_changes:
            self._write_items(conn, touched, current, now)
            self._bulk.insert(conn, changes, _CHANGE_COLUMNS, pending_changes)
            conn.execute(update(change_counter).where(change_counter.c.id == 1).values(last_seq=last_seq))
        if checkpoint is not None:
            self.save_cursor(conn, checkpoint, now)
        return result

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
        cols = (items.c.id, items.c.updated_at, items.c.deleted_at, items.c.deleted, items.c.doc)
        rows = conn.execute(select(*cols).where(self._any_of(items.c.id, ids)))
        return {row.id: _Current(row.updated_at, row.deleted_at, bool(row.deleted), row.doc) for row in rows}

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
        for item_id, version in touched.items():
            cur = current[item_id]
            item = cur.item
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
                    orjson.dumps(item.raw).decode() if item.raw is not None else None,
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

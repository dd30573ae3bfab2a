"""The item store's one write path, `apply`, and the item read queries.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    exists,
    false,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from hub.db.engine import SQLITE_BEGIN
from hub.db.tables import (
    change_counter,
    changes,
    cursors,
    item_assignees,
    item_labels,
    items,
    people,
    person_identities,
    sources,
)
from hub.schema import ChangeOp, ItemDeletion, PersonRef, WorkItem, to_utc

# Fields that never count as a change of the item itself.
_NOT_CONTENT = frozenset({"version", "synced_at", "raw", "deleted"})
_CHUNK = 500  # bound IN-lists and executemany batches (SQLite's variable limit, PG packet size)


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
    doc: dict[str, Any]
    raw: str | None
    is_new: bool = False

    @property
    def newest(self) -> datetime:
        if self.deleted_at is not None and self.deleted_at > self.updated_at:
            return self.deleted_at
        return self.updated_at


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


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


class ItemStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    # ------------------------------------------------------------------ writing

    @contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """A transaction that holds the writers' lock (the change counter row) throughout."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            with conn.begin():
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
            return self._apply(conn, batch, checkpoint, force)
        with self.write_transaction() as tx:
            return self._apply(tx, batch, checkpoint, force)

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
        current = self._load_current(conn, sorted({op.id for op in batch}))
        self._register_sources(conn, batch, now)
        people_ids = self._resolve_people(conn, batch, now)

        pending_changes: list[dict[str, Any]] = []
        touched: dict[str, WorkItem | None] = {}  # id -> newest upserted item (None: tombstoned)

        for op in batch:
            cur = current.get(op.id)
            if isinstance(op, ItemDeletion):
                at = to_utc(op.deleted_at) if op.deleted_at else now
                if cur is None or cur.deleted or at < cur.newest:
                    result.unchanged += 1
                    continue
                cur.deleted, cur.deleted_at = True, at
                cur.doc["deleted"] = True
                fields = ["deleted"]
                result.deleted += 1
                touched.setdefault(op.id, None)
                change_op = ChangeOp.delete
            else:
                item = op
                for ref in [*item.assignees, item.reporter]:
                    if ref is not None:
                        key = _identity_key(ref)
                        if key is not None:
                            ref.id = people_ids.get((item.source, key), ref.id)
                doc = item.model_dump(mode="json", exclude=_NOT_CONTENT)
                updated_at = to_utc(item.updated_at)
                if cur is not None:
                    if updated_at < cur.newest or (updated_at == cur.newest and not force):
                        result.unchanged += 1
                        continue
                    old_doc = {k: v for k, v in cur.doc.items() if k not in _NOT_CONTENT}
                    fields = sorted(k for k in doc.keys() | old_doc.keys() if doc.get(k) != old_doc.get(k))
                    if cur.deleted:
                        fields = sorted({*fields, "deleted"})
                    if not fields or (fields == ["updated_at"] and updated_at == cur.updated_at):
                        result.unchanged += 1  # forced re-apply with identical content
                        continue
                else:
                    fields = sorted(k for k, v in doc.items() if v not in (None, [], {}, ""))
                    cur = _Current(updated_at, None, False, doc, None, is_new=True)
                    current[op.id] = cur
                cur.updated_at, cur.deleted, cur.deleted_at = updated_at, False, None
                cur.doc = doc
                cur.raw = orjson.dumps(item.raw).decode() if item.raw is not None else None
                touched[op.id] = item
                result.upserted += 1
                change_op = ChangeOp.upsert
            last_seq += 1
            result.seqs.append(last_seq)
            pending_changes.append(
                {"seq": last_seq, "item_id": op.id, "op": change_op.value,
                 "fields": orjson.dumps(fields).decode(), "at": now}
            )

        if pending_changes:
            version_of = {c["item_id"]: c["seq"] for c in pending_changes}
            self._write_items(conn, touched, current, version_of, now)
            for chunk in _chunks(pending_changes):
                conn.execute(changes.insert(), list(chunk))
            conn.execute(update(change_counter).where(change_counter.c.id == 1).values(last_seq=last_seq))
        if checkpoint is not None:
            self.save_cursor(conn, checkpoint, now)
        return result

    def _lock_counter(self, conn: Connection) -> int:
        stmt = select(change_counter.c.last_seq).where(change_counter.c.id == 1)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        value = conn.execute(stmt).scalar_one()
        return int(value)

    def _load_current(self, conn: Connection, ids: list[str]) -> dict[str, _Current]:
        found: dict[str, _Current] = {}
        cols = (items.c.id, items.c.updated_at, items.c.deleted_at, items.c.deleted, items.c.doc, items.c.raw)
        for chunk in _chunks(ids):
            for row in conn.execute(select(*cols).where(items.c.id.in_(chunk))):
                found[row.id] = _Current(row.updated_at, row.deleted_at, bool(row.deleted), orjson.loads(row.doc), row.raw)
        return found

    def _register_sources(self, conn: Connection, batch: list[WorkItem | ItemDeletion], now: datetime) -> None:
        seen = {(op.source, op.tool) for op in batch if isinstance(op, WorkItem)}
        if not seen:
            return
        names = [name for name, _ in seen]
        known = set(conn.execute(select(sources.c.name).where(sources.c.name.in_(names))).scalars())
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
        email joins the person with that email once the tool reveals it.
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
        known: dict[tuple[str, str], Any] = {}
        keys = list(refs)
        for chunk in _chunks(keys):
            stmt = select(person_identities).where(
                tuple_(person_identities.c.source, person_identities.c.native_id).in_(list(chunk))
            )
            for row in conn.execute(stmt):
                known[(row.source, row.native_id)] = row
        emails = sorted({r.email for r in refs.values() if r.email})
        by_email: dict[str, str] = {}
        for chunk in _chunks(emails):
            for row in conn.execute(select(people.c.id, people.c.email).where(people.c.email.in_(list(chunk)))):
                by_email[row.email] = row.id

        resolved: dict[tuple[str, str], str] = {}
        new_people: dict[str, dict[str, Any]] = {}
        new_identities: list[dict[str, Any]] = []
        for (source, key), ref in refs.items():
            row = known.get((source, key))
            if row is not None:
                person_id = row.person_id
                if ref.email and ref.email != row.email:
                    person_id = self._attach_email(conn, row, ref, by_email, new_people, now)
                elif ref.name and ref.name != row.name:
                    conn.execute(
                        update(person_identities)
                        .where(person_identities.c.source == source, person_identities.c.native_id == key)
                        .values(name=ref.name)
                    )
                resolved[(source, key)] = person_id
                continue
            person_id = by_email.get(ref.email) if ref.email else None
            if person_id is None:
                person_id = person_id_for(source, ref)
                if ref.email:
                    by_email[ref.email] = person_id
                new_people.setdefault(
                    person_id, {"id": person_id, "name": ref.name, "email": ref.email, "created_at": now, "updated_at": now}
                )
            new_identities.append(
                {"source": source, "native_id": key, "person_id": person_id, "name": ref.name, "email": ref.email}
            )
            resolved[(source, key)] = person_id
        if new_people:
            conn.execute(self._insert(people).on_conflict_do_nothing(index_elements=["id"]), list(new_people.values()))
        if new_identities:
            conn.execute(
                self._insert(person_identities).on_conflict_do_nothing(index_elements=["source", "native_id"]),
                new_identities,
            )
        return resolved

    def _attach_email(
        self,
        conn: Connection,
        identity: Any,
        ref: PersonRef,
        by_email: dict[str, str],
        new_people: dict[str, dict[str, Any]],
        now: datetime,
    ) -> str:
        """An identity now shows an email: record it, and merge into that email's person."""
        assert ref.email is not None
        ident = person_identities.c
        where_ident = and_(ident.source == identity.source, ident.native_id == identity.native_id)
        owner = by_email.get(ref.email)
        person_id: str = identity.person_id
        if owner is None and ref.email in {p["email"] for p in new_people.values()}:
            owner = next(pid for pid, p in new_people.items() if p["email"] == ref.email)
        if owner is None or owner == person_id:
            conn.execute(update(person_identities).where(where_ident).values(email=ref.email, name=ref.name or identity.name))
            conn.execute(
                update(people).where(people.c.id == person_id, people.c.email.is_(None)).values(email=ref.email, updated_at=now)
            )
            by_email[ref.email] = person_id
            return person_id
        # Merge: this identity's person becomes the email owner's.
        conn.execute(update(person_identities).where(where_ident).values(email=ref.email, person_id=owner))
        old = person_id
        still_used = conn.execute(select(exists().where(ident.person_id == old))).scalar()
        moved = select(item_assignees.c.item_id).where(item_assignees.c.person_id == old)
        conn.execute(
            delete(item_assignees).where(
                item_assignees.c.person_id == owner, item_assignees.c.item_id.in_(moved)
            )
        )
        conn.execute(update(item_assignees).where(item_assignees.c.person_id == old).values(person_id=owner))
        if not still_used:
            conn.execute(delete(people).where(people.c.id == old))
        return owner

    def _write_items(
        self,
        conn: Connection,
        touched: dict[str, WorkItem | None],
        current: dict[str, _Current],
        version_of: dict[str, int],
        now: datetime,
    ) -> None:
        rows: list[dict[str, Any]] = []
        label_rows: list[dict[str, Any]] = []
        assignee_rows: list[dict[str, Any]] = []
        replaced: list[str] = []  # existing items whose label/assignee rows are rewritten
        for item_id in touched:
            cur = current[item_id]
            doc = cur.doc
            status = doc["status"]
            priority = doc.get("priority") or {}
            container = doc.get("container") or {}
            rice = doc.get("rice") or {}
            rows.append(
                {
                    "id": item_id,
                    "source": doc["source"],
                    "tool": doc["tool"],
                    "native_id": doc["native_id"],
                    "key": doc.get("key"),
                    "title": doc.get("title") or "",
                    "kind": doc["kind"],
                    "status_category": status["category"],
                    "priority_level": priority.get("level") or "none",
                    "container_id": container.get("id"),
                    "container_key": container.get("key"),
                    "parent_id": doc.get("parent_id"),
                    "rice_score": rice.get("score"),
                    "created_at": _parse_time(doc.get("created_at")),
                    "updated_at": cur.updated_at,
                    "deleted": cur.deleted,
                    "deleted_at": cur.deleted_at,
                    "version": version_of[item_id],
                    "synced_at": now,
                    "doc": orjson.dumps(doc).decode(),
                    "raw": cur.raw,
                }
            )
            if touched[item_id] is None:
                continue  # a tombstone keeps its labels and assignees
            if not cur.is_new:
                replaced.append(item_id)
            label_rows.extend({"item_id": item_id, "label": label} for label in dict.fromkeys(doc.get("labels") or []))
            person_ids = dict.fromkeys(a["id"] for a in doc.get("assignees") or [] if a.get("id"))
            assignee_rows.extend({"item_id": item_id, "person_id": pid} for pid in person_ids)

        stmt = self._insert(items)
        upsert = stmt.on_conflict_do_update(
            index_elements=["id"], set_={c.name: stmt.excluded[c.name] for c in items.columns if c.name != "id"}
        )
        for chunk in _chunks(rows):
            conn.execute(upsert, list(chunk))
        for chunk in _chunks(replaced):
            conn.execute(delete(item_labels).where(item_labels.c.item_id.in_(list(chunk))))
            conn.execute(delete(item_assignees).where(item_assignees.c.item_id.in_(list(chunk))))
        for chunk in _chunks(label_rows):
            conn.execute(item_labels.insert(), list(chunk))
        for chunk in _chunks(assignee_rows):
            conn.execute(item_assignees.insert(), list(chunk))

    def save_cursor(self, conn: Connection, checkpoint: Checkpoint, now: datetime | None = None) -> None:
        stmt = self._insert(cursors).values(
            source=checkpoint.source, stream=checkpoint.stream, value=checkpoint.value, updated_at=now or utcnow()
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["source", "stream"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
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

    def live_ids(self, source: str) -> set[str]:
        """Native ids of the source's items that are not tombstoned (for the deletion sweep)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(items.c.native_id).where(items.c.source == source, items.c.deleted == false())
            )
            return set(rows.scalars())


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


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))

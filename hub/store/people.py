"""People merging: the hub's person ids for the assignees and reporters of a batch.

The same email in any tool is the same person; an identity first seen without an email
joins the person with that email once the tool reveals it. An email is found on
`people.email` or, for a person who has several, on any identity's email. Person ids are
deterministic (`person_id_for`), so two hubs (or a re-import) agree on them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, delete, exists, select, update

from hub.db.tables import item_assignees, people, person_identities
from hub.schema import ItemDeletion, PersonRef, WorkItem
from hub.store.bulk import Statements, _Bulk, keys_in

_PEOPLE_COLUMNS = ("id", "name", "email", "created_at", "updated_at")
_IDENTITY_COLUMNS = ("source", "native_id", "person_id", "name", "email")

Refs = dict[tuple[str, str], PersonRef]  # (source, identity key) -> the batch's best ref


class _Identity(NamedTuple):
    """A stored `person_identities` row."""

    source: str
    native_id: str
    person_id: str
    name: str | None
    email: str | None


def person_id_for(source: str, ref: PersonRef) -> str:
    """Deterministic hub person id, so that two hubs (or a re-import) agree on it."""
    basis = f"email:{ref.email}" if ref.email else f"{source}\x00{ref.native_id}"
    return "per_" + hashlib.sha256(basis.encode()).hexdigest()[:20]


def identity_key(ref: PersonRef) -> str | None:
    if ref.native_id:
        return ref.native_id
    if ref.email:
        return f"email:{ref.email}"
    return None


def _keyed_refs(item: WorkItem) -> Iterator[tuple[str, PersonRef]]:
    """The item's assignees and reporter that have an identity key, with it."""
    for ref in [*item.assignees, item.reporter]:
        key = identity_key(ref) if ref is not None else None
        if key is not None:
            assert ref is not None
            yield key, ref


def assign_person_ids(item: WorkItem, resolved: dict[tuple[str, str], str]) -> None:
    """Set the hub person id on the item's assignees and reporter (from `resolve`)."""
    for key, ref in _keyed_refs(item):
        ref.id = resolved.get((item.source, key), ref.id)


def _refs_of(batch: list[WorkItem | ItemDeletion]) -> Refs:
    """Each identity of the batch once, preferring a ref that shows an email."""
    refs: Refs = {}
    for op in batch:
        if not isinstance(op, WorkItem):
            continue
        for key, ref in _keyed_refs(op):
            previous = refs.get((op.source, key))
            if previous is None or (ref.email and not previous.email):
                refs[(op.source, key)] = ref
    return refs


class PeopleResolver:
    """Maps a batch's identities to hub person ids, creating and merging people (`resolve`)."""

    def __init__(self, dialect: str, bulk: _Bulk, time: Callable[[datetime | None], Any]) -> None:
        self.dialect = dialect
        self._bulk = bulk
        self._time = time
        self._sql = Statements(bulk.dialect)

    def resolve(
        self, conn: Connection, batch: list[WorkItem | ItemDeletion], now: datetime
    ) -> dict[tuple[str, str], str]:
        """Map (source, identity key) -> hub person id, creating people and identities."""
        refs = _refs_of(batch)
        if not refs:
            return {}
        known = self._known_identities(conn, refs)
        by_email = self._email_owners(conn, refs, known)
        # Known identities first: merging one into an email's owner must only ever point it
        # at a person already in the database (the new people are inserted last).
        resolved = self._update_known(conn, refs, known, by_email, now)
        self._insert_new(conn, refs, resolved, by_email, now)
        return resolved

    def _known_identities(self, conn: Connection, refs: Refs) -> dict[tuple[str, str], _Identity]:
        ident = person_identities.c
        dialect = self.dialect
        known: dict[tuple[str, str], _Identity] = {}
        keys_by_source: dict[str, list[str]] = defaultdict(list)
        for source, key in refs:
            keys_by_source[source].append(key)

        def build() -> Any:
            return select(ident.source, ident.native_id, ident.person_id, ident.name, ident.email).where(
                ident.source == bindparam("source", None), keys_in(dialect, ident.native_id, "keys")
            )

        for source, keys in keys_by_source.items():  # a batch rarely holds more than one source
            for row in self._sql.rows(conn, "identities", build, source=source, keys=self._sql.keys(keys)):
                identity = _Identity._make(row)
                known[(identity.source, identity.native_id)] = identity
        return known

    def _email_owners(self, conn: Connection, refs: Refs, known: dict[tuple[str, str], Any]) -> dict[str, str]:
        """email -> person id, for the emails that need one: a new identity's or one whose
        email changed. Once a team's people are known, a batch skips both queries."""
        emails = sorted(
            {
                ref.email
                for pair, ref in refs.items()
                if ref.email and (pair not in known or known[pair].email != ref.email)
            }
        )
        by_email: dict[str, str] = {}
        if not emails:
            return by_email
        ident, dialect, sql = person_identities.c, self.dialect, self._sql
        keys = sql.keys(emails)
        owners = sql.rows(
            conn,
            "email owners",
            lambda: (
                select(ident.email, ident.person_id)
                .where(keys_in(dialect, ident.email, "emails"))
                .order_by(ident.source, ident.native_id)
            ),
            emails=keys,
        )
        for email, person_id in owners:
            by_email.setdefault(email, person_id)
        own = sql.rows(
            conn,
            "own emails",
            lambda: select(people.c.email, people.c.id).where(keys_in(dialect, people.c.email, "emails")),
            emails=keys,
        )
        for email, person_id in own:
            by_email[email] = person_id  # the person whose own email it is wins
        return by_email

    def _update_known(
        self,
        conn: Connection,
        refs: Refs,
        known: dict[tuple[str, str], Any],
        by_email: dict[str, str],
        now: datetime,
    ) -> dict[tuple[str, str], str]:
        """Person ids of the stored identities; records new emails (merging) and names."""
        resolved: dict[tuple[str, str], str] = {}
        renamed: list[dict[str, Any]] = []
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
            ident = person_identities.c
            conn.execute(
                update(person_identities)
                .where(ident.source == bindparam("s"), ident.native_id == bindparam("k"))
                .values(name=bindparam("n")),
                renamed,
            )
        return resolved

    def _insert_new(
        self,
        conn: Connection,
        refs: Refs,
        resolved: dict[tuple[str, str], str],
        by_email: dict[str, str],
        now: datetime,
    ) -> None:
        """Create the identities not stored yet (and their people unless an email's owner
        exists); adds them to `resolved`."""
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

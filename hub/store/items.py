"""The item store: `ItemStore`, the one write path (`apply`) and the single-item reads.

The work lives by noun in this package: deciding and writing a batch in apply.py, bulk SQL
in bulk.py, people merging in people.py, sync cursors in cursors.py, reading in
reading.py, the clock in clock.py. This module keeps `ItemStore` and re-exports the names
other modules import from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine

from hub.db.engine import write_transaction
from hub.flow.history import Transition
from hub.schema import ItemDeletion, WorkItem
from hub.store.apply import (
    _NOT_CONTENT,
    Applier,
    ApplyResult,
    content_digest,
    custom_plans,
    link_row,
    observed_transitions,
    raw_json,
    storable,
    storable_keys,
)
from hub.store.bulk import _Bulk, database_unavailable
from hub.store.clock import utcnow
from hub.store.cursors import Checkpoint, load_cursor, save_cursor
from hub.store.people import person_id_for
from hub.store.reading import READ_COLUMNS, ItemReader, item_document
from hub.store.statistics import StatisticsKeeper

__all__ = [
    "READ_COLUMNS",
    "_NOT_CONTENT",
    "ApplyResult",
    "Checkpoint",
    "ItemStore",
    "_Bulk",
    "content_digest",
    "database_unavailable",
    "item_document",
    "link_row",
    "observed_transitions",
    "person_id_for",
    "raw_json",
    "storable",
    "utcnow",
]


class ItemStore(ItemReader):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.dialect = engine.dialect.name
        self._applier = Applier(engine)
        self._bulk = self._applier._bulk  # one inserter: tests wrap it to fail a write
        self.statistics = StatisticsKeeper(engine)  # the sync notes its pages (statistics.py)

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
           content, i.e. a duplicate: no change, but of two raw payloads the greater by
           `raw_key` is kept (silently), so the stored payload is order-free too.

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
        - Every string of every op is made storable (`storable`: NUL and lone surrogates
          become U+FFFD, the same on SQLite and PostgreSQL): ids and people first
          (`storable_keys`), the rest of an item as its document is serialised.
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
        batch = [storable_keys(op) for op in ops]
        given = list(transitions)
        if conn is not None:
            with custom_plans(conn):
                return self._apply(conn, batch, checkpoint, force, given)
        with self.write_transaction() as tx, custom_plans(tx):
            return self._apply(tx, batch, checkpoint, force, given)

    def _apply(
        self,
        conn: Connection,
        batch: list[WorkItem | ItemDeletion],
        checkpoint: Checkpoint | None,
        force: bool,
        given: list[Transition],
    ) -> ApplyResult:
        return self._applier.run(conn, batch, checkpoint, force, given)

    # ------------------------------------------------------------------ cursors

    def save_cursor(self, conn: Connection, checkpoint: Checkpoint, now: datetime | None = None) -> None:
        save_cursor(conn, checkpoint, now)

    def load_cursor(self, source: str, stream: str) -> str | None:
        return load_cursor(self.engine, source, stream)

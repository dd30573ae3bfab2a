"""The webhook inbox: raw deliveries, committed before the hub answers 202.

Intake appends; workers claim pending rows, apply their events and mark them done. On
PostgreSQL several workers (in several processes) claim disjoint rows with
`FOR UPDATE SKIP LOCKED`.

Claims are short and renewed: a claim carries a token and lapses `claim_ttl` after its last
heartbeat (the worker renews the claims it holds every few seconds), so the deliveries of a
worker killed with -9 are retried within seconds, not minutes. A worker applies a delivery
and marks it done in one transaction that first marks it (and so locks the row) only where
the row still carries its token: a worker whose claim lapsed and was taken over applies nothing.

A delivery that fails is retried with backoff, then parked as `dead` (listed and replayed
with `opshub inbox` or the admin API). A delivery that waits for its tool (unreachable) is
released without counting an attempt: an outage never kills deliveries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import BigInteger, ColumnElement, Engine, any_, bindparam, func, or_, select, text, union_all, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from hub.db.engine import write_transaction
from hub.db.tables import webhook_inbox, webhook_inbox_bodies
from hub.group_commit import NewDelivery
from hub.inbox_wakeup import CHANNEL as WAKEUP_CHANNEL
from hub.store.clock import utcnow

PENDING, PROCESSING, DONE, IGNORED, FAILED, DEAD = "pending", "processing", "done", "ignored", "failed", "dead"
STATUSES = (PENDING, PROCESSING, DONE, IGNORED, FAILED, DEAD)
CLAIM_TTL = timedelta(seconds=15)
MAX_ATTEMPTS = 8
MAX_BACKOFF_SECONDS = 600
# Rows per INSERT statement of the intake on SQLite (a group of more takes several statements).
SQLITE_MAX_ROWS_PER_INSERT = 500


@dataclass
class InboxDelivery:
    id: int
    source: str
    delivery_id: str
    headers: dict[str, str]
    body: bytes
    attempts: int
    claim_token: str = ""


@dataclass(frozen=True)
class InboxEntry:
    """One delivery as operators see it (no body, no headers)."""

    id: int
    source: str
    delivery_id: str
    status: str
    attempts: int
    error: str | None
    received_at: datetime
    next_attempt_at: datetime | None
    processed_at: datetime | None


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after a failed attempt: 2, 4, 8 ... seconds, at most 10 minutes."""
    return timedelta(seconds=min(2**attempts, MAX_BACKOFF_SECONDS))


class ReplayRefused(Exception):
    """The delivery is being processed right now (or does not exist): nothing was changed."""


class InboxStore:
    def __init__(self, engine: Engine, *, claim_ttl: timedelta = CLAIM_TTL) -> None:
        self.engine = engine
        self.claim_ttl = claim_ttl
        self._postgres = engine.dialect.name == "postgresql"
        # `received_at` as the column's type binds it (UTCDateTime: on SQLite the fixed text form
        # it compares as), computed once per group for the raw statements below.
        received_at = webhook_inbox.c.received_at.type
        self._bind_received_at = received_at.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        # The group's rows go in with raw statements, as apply's bulk inserts do
        # (hub/store/bulk.py `_Bulk`): SQLAlchemy's executemany ("insertmanyvalues") processed
        # every row's parameters in Python, ~10-20 us a delivery on the intake's hot path.
        # INSERT ... ON CONFLICT DO NOTHING RETURNING: the rows it returns are the new ones
        # (RETURNING, not rowcount: psycopg counts a skipped conflicting row too). Rows go in
        # arrival order, so inbox ids (the worker's order) follow the group's order: on
        # PostgreSQL the unnest's ordinality orders the SELECT that feeds the INSERT (as
        # SQLAlchemy's insertmanyvalues orders its rows), on SQLite the VALUES list's order.
        # https://docs.sqlalchemy.org/en/20/core/connections.html#engine-insertmanyvalues
        #
        # PostgreSQL: the whole group is ONE statement, so it runs as its own transaction
        # (autocommit; see add_many): the inbox rows, their headers and bodies by the ids the
        # INSERT returns (a data-modifying CTE: RETURNING is how WITH sub-statements pass rows
        # on, https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING)
        # and the workers' wake-up: pg_notify per new row, which PostgreSQL delivers once per
        # transaction for one channel and payload, at commit, and not at all when nothing was
        # new (https://www.postgresql.org/docs/current/sql-notify.html). Before, a group took
        # six round trips (pre-ping, BEGIN, rows, bodies, NOTIFY, COMMIT), each ~100 us of the
        # intake's CPU under load; now two (pre-ping, the statement).
        self._insert_group = (
            "WITH arrived AS (SELECT * FROM unnest(%b::TEXT[], %b::TEXT[], %b::TEXT[], %b::BYTEA[])"  # noqa: S608 - no input in it
            " WITH ORDINALITY AS r(source, delivery_id, headers, body, n)),"
            " new AS (INSERT INTO webhook_inbox (source, delivery_id, received_at, status)"
            f" SELECT source, delivery_id, %b, '{PENDING}' FROM arrived ORDER BY n"
            " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id),"
            " stored AS (INSERT INTO webhook_inbox_bodies (id, headers, body)"
            " SELECT new.id, arrived.headers, arrived.body FROM new JOIN arrived USING (source, delivery_id))"
            f" SELECT new.id, new.source, new.delivery_id, pg_notify('{WAKEUP_CHANNEL}', '') FROM new"
        )
        # SQLite: the new rows' headers and bodies, by inbox id, in the same transaction, with
        # the sqlite3 module's executemany (a C loop; SQLAlchemy's processed each row's
        # parameters: ~5-10 us a delivery).
        self._insert_bodies = "INSERT INTO webhook_inbox_bodies (id, headers, body) VALUES (?, ?, ?)"

    @staticmethod
    @lru_cache(maxsize=64)
    def _sqlite_insert_rows(rows: int) -> str:
        """SQLite's INSERT of `rows` inbox rows in one statement (3 parameters a row: at most
        SQLITE_MAX_ROWS_PER_INSERT rows, well under SQLite's 32,766 host parameters)."""
        values = ", ".join([f"(?, ?, ?, '{PENDING}')"] * rows)
        return (
            f"INSERT INTO webhook_inbox (source, delivery_id, received_at, status) VALUES {values}"  # noqa: S608 - placeholders
            " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id"
        )

    def add(self, source: str, delivery_id: str, headers: dict[str, str], body: bytes) -> bool:
        """Store a delivery; False when this (source, delivery id) was stored before."""
        return self.add_many([NewDelivery(source, delivery_id, headers, body)])[0]

    def add_many(self, deliveries: Sequence[NewDelivery]) -> list[bool]:
        """Store deliveries in ONE transaction (hub/group_commit.py); per delivery, in order,
        True when it was new, False when its (source, delivery id) was stored before, by an
        earlier transaction or earlier in this list. All are stored or (on error) none."""
        if not deliveries:
            return []
        now = utcnow()
        first: dict[tuple[str, str], NewDelivery] = {}
        for d in deliveries:  # the first of a repeated id in one group is the one stored
            first.setdefault((d.source, d.delivery_id), d)
        received_at = self._bind_received_at(now) if self._bind_received_at is not None else now
        new_ids: dict[tuple[str, str], int] = {}
        group = list(first.values())
        if self._postgres:
            columns = (
                [d.source for d in group],
                [d.delivery_id for d in group],
                [orjson.dumps(d.headers).decode() for d in group],
                [d.body for d in group],
                received_at,
            )
            # One statement in autocommit: it is its own transaction, all of it or nothing, and
            # PostgreSQL commits it (the WAL flushed, with the session's synchronous_commit, on)
            # before it answers, so nothing is acknowledged before its commit, as with BEGIN ...
            # COMMIT around it. SQLAlchemy's transaction around it sends nothing (its COMMIT finds
            # the connection idle) but runs the engine's begin and commit events as before.
            # https://docs.sqlalchemy.org/en/20/core/connections.html#setting-transaction-isolation-levels-including-dbapi-autocommit
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                with conn.begin():
                    returned = conn.exec_driver_sql(self._insert_group, columns)
                    new_ids.update(((source, delivery_id), i) for i, source, delivery_id, _ in returned)
        else:
            with write_transaction(self.engine) as conn:
                for start in range(0, len(group), SQLITE_MAX_ROWS_PER_INSERT):
                    part = group[start : start + SQLITE_MAX_ROWS_PER_INSERT]
                    params: list[Any] = []
                    for d in part:
                        params += (d.source, d.delivery_id, received_at)
                    returned = conn.exec_driver_sql(self._sqlite_insert_rows(len(part)), tuple(params))
                    new_ids.update(((source, delivery_id), i) for i, source, delivery_id in returned)
                if new_ids:
                    bodies = [
                        (inbox_id, orjson.dumps(first[key].headers).decode(), first[key].body)
                        for key, inbox_id in new_ids.items()
                    ]
                    conn.exec_driver_sql(self._insert_bodies, bodies)
        inserted = set(new_ids)
        results = []
        for d in deliveries:
            key = (d.source, d.delivery_id)
            results.append(key in inserted)
            inserted.discard(key)  # a repeat later in the group is a duplicate of the first
        return results

    # ------------------------------------------------------------------ claims

    def claim(
        self, limit: int = 50, *, skip_sources: Iterable[str] = (), now: datetime | None = None
    ) -> list[InboxDelivery]:
        """Claim up to `limit` due deliveries (oldest first) under one new token.

        `skip_sources`: sources the caller will not work on now (busy, or waiting for their
        tool); their deliveries stay claimable by others and keep their attempts.
        """
        now = now or utcnow()
        t = webhook_inbox.c
        skip = sorted(set(skip_sources))
        # Three index walks, each in id order on ix_webhook_inbox_status (status, id), merged
        # here: one query with OR over the statuses made SQLite collect and sort EVERY pending
        # row per claim (80 ms per claim at 10,000 pending: the worker fell behind a backlog).
        kinds = [
            (t.status == PENDING, or_(t.next_attempt_at.is_(None), t.next_attempt_at <= now)),
            (t.status == FAILED, t.next_attempt_at <= now),
            (t.status == PROCESSING, t.claimed_at < now - self.claim_ttl),
        ]
        postgres = self.engine.dialect.name == "postgresql"
        picks = []
        for where in kinds:
            pick = select(t.id).where(*where, *([t.source.not_in(skip)] if skip else [])).order_by(t.id).limit(limit)
            picks.append(pick.with_for_update(skip_locked=True) if postgres else pick)
        token = uuid.uuid4().hex
        # What a delivery needs (not the status, times and error the claim just wrote over).
        # Its headers and body come from webhook_inbox_bodies, read, never rewritten: the claim
        # and the settle rewrite only the narrow inbox row (migration 0023).
        claimed_columns = (t.id, t.source, t.delivery_id, t.attempts)
        b = webhook_inbox_bodies.c
        claim = update(webhook_inbox).values(
            status=PROCESSING, claimed_at=now, claim_token=token, attempts=t.attempts + 1
        )
        claimed: Sequence[Sequence[Any]]
        with write_transaction(self.engine) as conn:
            self._no_flush_wait(conn, index_walks=True)
            if postgres:
                # One statement, one round trip: the three walks lock what they find (SKIP
                # LOCKED) in CTEs, the UPDATE claims the first `limit` of them by id and returns
                # the rows. (Four statements before: three SELECTs and the UPDATE, each a round
                # trip the worker waited for before it could map anything.) Rows a walk locked
                # beyond the first `limit` stay locked only until this transaction ends.
                # The bodies join the claimed rows in the same statement (a data-modifying CTE),
                # by primary key: still one round trip.
                found = [pick.cte(f"pick_{n}") for n, pick in enumerate(picks)]
                union = union_all(*(select(cte.c.id) for cte in found)).subquery("found")
                first = select(union.c.id).order_by(union.c.id).limit(limit)
                done = claim.where(t.id.in_(first)).returning(*claimed_columns).cte("claimed")
                claimed = conn.execute(
                    select(done, b.headers, b.body).select_from(done.outerjoin(webhook_inbox_bodies, b.id == done.c.id))
                ).all()
            else:
                ids = sorted({i for pick in picks for i in conn.execute(pick).scalars()})[:limit]
                if not ids:
                    return []
                # UPDATE ... RETURNING (SQLite >= 3.35): the claimed rows come back from the
                # statement that claims them, no second walk; RETURNING has no order, so sort.
                # Their bodies by primary key, read in the same transaction.
                rows = conn.execute(claim.where(t.id.in_(ids)).returning(*claimed_columns)).all()
                stored = {r.id: r for r in conn.execute(select(b.id, b.headers, b.body).where(b.id.in_(ids)))}
                claimed = [(*row, *(stored[row.id][1:] if row.id in stored else (None, None))) for row in rows]
        return [
            # A row without its body (written around the hub's intake) fails to parse and goes
            # the way of any bad delivery (retries, then dead), instead of staying claimed.
            InboxDelivery(i, source, delivery_id, orjson.loads(headers or "{}"), bytes(body or b""), attempts, token)
            for i, source, delivery_id, attempts, headers, body in sorted(claimed, key=lambda row: row[0])
        ]

    def renew(self, tokens: Sequence[str], now: datetime | None = None) -> int:
        """Heartbeat: keep these claims alive; returns how many rows are still held."""
        if not tokens:
            return 0
        t = webhook_inbox.c
        held: list[ColumnElement[bool]] = [t.claim_token.in_(list(tokens)), t.status == PROCESSING]
        if self.engine.dialect.name == "postgresql":
            # Rows locked by a transaction applying them (it marks them done) are skipped, not
            # waited for: the heartbeat then never waits on an apply, nor an apply on it (its
            # UPDATE locks rows in its own order, `settle_held`, so the two could deadlock).
            # Were that apply rolled back, the next heartbeat renews them, a third of the ttl on.
            where: list[ColumnElement[bool]] = [t.id.in_(select(t.id).where(*held).with_for_update(skip_locked=True))]
        else:
            where = held
        with write_transaction(self.engine) as conn:
            self._no_flush_wait(conn)
            result = conn.execute(update(webhook_inbox).where(*where).values(claimed_at=now or utcnow()))
        return int(result.rowcount or 0)

    def _no_flush_wait(self, conn: Connection, *, index_walks: bool = False) -> None:
        """PostgreSQL: this transaction's COMMIT returns without waiting for its WAL flush
        (`synchronous_commit = off`, for this transaction only:
        https://www.postgresql.org/docs/current/wal-async-commit.html).

        Only for claims and their renewals. A database crash can lose such a commit but never
        corrupt it, and losing one is harmless: the rows are claimable again, and the worker
        that thought it held them finds its token gone (`held`) and applies nothing. The apply
        that marks a delivery done commits durably, and its flush carries every earlier
        commit's WAL with it. A claim's flush is one the worker waits for before it can map
        anything, and COMMIT waiting on IO:WALSync was the most sampled wait in
        pg_stat_activity during a 500 deliveries/s run (bench/README.md, issue 13, i13work)."""
        if self.engine.dialect.name != "postgresql":
            return
        if not index_walks:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            return
        # A claim's walks must be index scans in id order that stop at `limit` rows. From
        # stale statistics (a backlog that arrived since the last ANALYZE: the planner counted
        # ~30 pending rows where there were 10,000) PostgreSQL chose a bitmap scan of EVERY
        # pending row and sorted them, per claim: 20-45 ms before the UPDATE even began in a
        # drain of 10,000, and O(backlog) per claim (bench/README.md, i13worker). Bitmap scans
        # are off for this transaction only (set_config(..., is_local => true) is SET LOCAL),
        # sent with the commit setting in one statement, one round trip:
        # https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SET
        # https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-ENABLE-BITMAPSCAN
        conn.execute(
            text("SELECT set_config('synchronous_commit', 'off', true), set_config('enable_bitmapscan', 'off', true)")
        )

    def settle_held(self, conn: Connection, outcomes: Sequence[tuple[InboxDelivery, str, str | None]]) -> set[int]:
        """Inside the batch's transaction, before it applies anything: record each delivery's
        outcome (done or ignored: a failure goes through `finish`, which counts attempts) on the
        rows still claimed with its token, and return their inbox ids: the deliveries this
        transaction may apply. The others' claims lapsed and were taken over: nothing of them
        is written here. Outcome and apply commit together or not at all.

        One `UPDATE ... RETURNING` per distinct (status, error, claim), usually one a batch. It
        replaces a `SELECT ... FOR UPDATE` that locked the rows first and an UPDATE at the end:
        a round trip and a pass that wrote a lock on every row (PostgreSQL). The UPDATE locks
        the rows it settles until the transaction ends, so no other worker can claim them
        meanwhile (claims skip locked rows, and so does the heartbeat, `renew`). It locks them
        in whatever order its plan walks them, and needs no order: a row matches only the token
        it carries, so two transactions never settle the same rows, and one whose token was just
        replaced by an uncommitted claim waits for that claim (which waits for nothing: it skips
        locked rows), then finds the new token and leaves the row."""
        t = webhook_inbox.c
        now = utcnow()
        groups: dict[tuple[str, str | None, str], list[int]] = {}
        for delivery, status, error in outcomes:
            groups.setdefault((status, error, delivery.claim_token), []).append(delivery.id)
        settled: set[int] = set()
        postgres = self.engine.dialect.name == "postgresql"
        for (status, error, token), ids in groups.items():
            # PostgreSQL: the ids as one array parameter, so the statement's text is the same
            # for every batch size (psycopg prepares it once).
            of_ids = (
                t.id == any_(bindparam(None, ids, type_=postgresql.ARRAY(BigInteger))) if postgres else t.id.in_(ids)
            )
            # PostgreSQL: the rows are found by primary key, never through ix_webhook_inbox_status.
            # The planner took `status = 'processing'` for the selective term (its statistics
            # know nothing of a backlog just claimed) and walked EVERY processing entry of that
            # index, the dead ones left by earlier batches too (a bitmap scan never marks them
            # dead): 4,400 entries and 1,400 heap pages to settle 800 rows, growing with each
            # batch until VACUUM. `status || ''` is the same test that no index can serve.
            processing = (t.status + "" if postgres else t.status) == PROCESSING
            settled.update(
                conn.execute(
                    update(webhook_inbox)
                    .where(of_ids, t.claim_token == token, processing)
                    .values(status=status, error=error, processed_at=now, claim_token=None)
                    .returning(t.id)
                ).scalars()
            )
        return settled

    def finish(
        self, delivery: InboxDelivery, status: str, error: str | None = None, *, conn: Connection | None = None
    ) -> str | None:
        """Record the outcome; returns the status written (`dead` once attempts run out),
        or None when the claim was lost (another worker holds the row now: nothing written)."""
        now = utcnow()
        values: dict[str, Any] = {"status": status, "error": error, "processed_at": now, "claim_token": None}
        if status == FAILED:
            if delivery.attempts >= MAX_ATTEMPTS:
                values["status"] = DEAD
            else:
                values["next_attempt_at"] = now + retry_delay(delivery.attempts)
        return self._settle(delivery, values, conn)

    def release(
        self, delivery: InboxDelivery, retry_at: datetime, error: str, *, conn: Connection | None = None
    ) -> str | None:
        """Give a delivery back without counting its attempt (it waits for its tool)."""
        values: dict[str, Any] = {
            "status": PENDING,
            "error": error,
            "next_attempt_at": retry_at,
            "claim_token": None,
            "attempts": webhook_inbox.c.attempts - 1,
        }
        return self._settle(delivery, values, conn)

    def _settle(self, delivery: InboxDelivery, values: dict[str, Any], conn: Connection | None) -> str | None:
        t = webhook_inbox.c
        stmt = (
            update(webhook_inbox)
            .where(t.id == delivery.id, t.claim_token == delivery.claim_token, t.status == PROCESSING)
            .values(**values)
        )
        if conn is None:
            with write_transaction(self.engine) as tx:
                written = tx.execute(stmt).rowcount
        else:
            written = conn.execute(stmt).rowcount
        return str(values["status"]) if written else None

    # ------------------------------------------------------------------ operators

    def counts(self, source: str | None = None) -> dict[str, int]:
        stmt = select(webhook_inbox.c.status, func.count()).group_by(webhook_inbox.c.status)
        if source:
            stmt = stmt.where(webhook_inbox.c.source == source)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(stmt).all()}

    def get(self, source: str, delivery_id: str) -> dict[str, Any] | None:
        t = webhook_inbox.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.status, t.error, t.attempts).where(t.source == source, t.delivery_id == delivery_id)
            ).first()
        return None if row is None else {"status": row.status, "error": row.error, "attempts": row.attempts}

    def entries(
        self, *, status: str | None = None, source: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[InboxEntry]:
        """Deliveries in arrival order (by inbox id), optionally of one status and source."""
        t = webhook_inbox.c
        stmt = select(
            t.id,
            t.source,
            t.delivery_id,
            t.status,
            t.attempts,
            t.error,
            t.received_at,
            t.next_attempt_at,
            t.processed_at,
        ).where(t.id > after_id)
        if status:
            stmt = stmt.where(t.status == status)
        if source:
            stmt = stmt.where(t.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(t.id).limit(limit)).all()
        return [InboxEntry(*row) for row in rows]

    def entry(self, inbox_id: int) -> InboxEntry | None:
        found = [e for e in self.entries(after_id=inbox_id - 1, limit=1) if e.id == inbox_id]
        return found[0] if found else None

    def replay(self, inbox_id: int) -> InboxEntry:
        """Queue one delivery again with fresh attempts (any status but `processing`)."""
        t = webhook_inbox.c
        with write_transaction(self.engine) as conn:
            written = conn.execute(
                update(webhook_inbox).where(t.id == inbox_id, t.status != PROCESSING).values(**_REPLAYED)
            ).rowcount
        entry = self.entry(inbox_id)
        if entry is None:
            raise ReplayRefused(f"no inbox delivery with id {inbox_id}")
        if not written:
            raise ReplayRefused(f"inbox delivery {inbox_id} is being processed right now; it was left as is")
        return entry

    def replay_dead(self, source: str | None = None) -> int:
        """Queue every dead delivery (of one source) again; returns how many."""
        t = webhook_inbox.c
        where = [t.status == DEAD] + ([t.source == source] if source else [])
        with write_transaction(self.engine) as conn:
            return int(conn.execute(update(webhook_inbox).where(*where).values(**_REPLAYED)).rowcount or 0)


# A replayed delivery keeps its last error (for the record) until its next attempt.
_REPLAYED: dict[str, Any] = {"status": PENDING, "attempts": 0, "next_attempt_at": None, "claim_token": None}

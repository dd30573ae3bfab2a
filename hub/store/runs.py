"""Sync runs: one row per run, doubling as a lease so that several hub processes sharing a
database never run the same source twice at once.

A run heartbeats after every page. A run whose heartbeat is older than `stale_after` is
taken to be dead (its process was killed): the next run marks it `abandoned` and resumes
from the source's last checkpoint, which was committed with the last stored page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select, update

from hub.db.engine import write_transaction
from hub.db.tables import sources, sync_runs
from hub.store.clock import utcnow

RUNNING = "running"
STALE_AFTER = timedelta(minutes=2)
MAX_RECORDED_ERRORS = 100


class RunInProgress(Exception):
    """Another live run holds this source."""


@dataclass
class RunInfo:
    id: str
    source: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None
    cursor: str | None
    record_errors: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _row_to_info(row: Any) -> RunInfo:
    return RunInfo(
        row.id,
        row.source,
        row.mode,
        row.status,
        row.started_at,
        row.finished_at,
        orjson.loads(row.counts or "{}"),
        row.error,
        row.cursor,
        orjson.loads(row.record_errors or "[]"),
    )


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_source(self, name: str, tool: str) -> None:
        now = utcnow()
        with write_transaction(self.engine) as conn:
            exists = conn.execute(select(sources.c.tool).where(sources.c.name == name)).first()
            if exists is None:
                conn.execute(sources.insert().values(name=name, tool=tool, created_at=now, updated_at=now))
            elif exists.tool != tool:
                conn.execute(update(sources).where(sources.c.name == name).values(tool=tool, updated_at=now))

    def set_source_status(self, name: str, status: str, message: str | None) -> str | None:
        """Set the source's status; returns the one it had (None: no such source)."""
        with write_transaction(self.engine) as conn:
            previous = conn.execute(select(sources.c.status).where(sources.c.name == name)).scalar_one_or_none()
            conn.execute(
                update(sources)
                .where(sources.c.name == name)
                .values(status=status, status_message=message, updated_at=utcnow())
            )
        return previous

    def start(self, source: str, mode: str, *, stale_after: timedelta = STALE_AFTER) -> str:
        """Open a run, or raise RunInProgress while another live run holds the source."""
        now = utcnow()
        with write_transaction(self.engine) as conn:
            # Lock the source row so two processes cannot both see "no live run".
            lock = select(sources.c.name).where(sources.c.name == source)
            if self.engine.dialect.name == "postgresql":
                lock = lock.with_for_update()
            conn.execute(lock)
            live = conn.execute(
                select(sync_runs.c.id, sync_runs.c.heartbeat_at).where(
                    sync_runs.c.source == source, sync_runs.c.status == RUNNING
                )
            ).all()
            for row in live:
                if row.heartbeat_at is not None and now - row.heartbeat_at < stale_after:
                    raise RunInProgress(f"source {source!r} is being synced by run {row.id}")
                conn.execute(
                    update(sync_runs)
                    .where(sync_runs.c.id == row.id)
                    .values(status="abandoned", finished_at=now, error="process stopped; resumed by a later run")
                )
            run_id = str(uuid.uuid4())
            conn.execute(
                sync_runs.insert().values(
                    id=run_id, source=source, mode=mode, status=RUNNING, started_at=now, heartbeat_at=now, counts="{}"
                )
            )
        return run_id

    def heartbeat(
        self, run_id: str, counts: dict[str, Any], cursor: str | None, *, conn: Connection | None = None
    ) -> None:
        """Record progress; with `conn`, inside the caller's transaction (the page's own)."""
        stmt = (
            update(sync_runs)
            .where(sync_runs.c.id == run_id)
            .values(heartbeat_at=utcnow(), counts=orjson.dumps(counts).decode(), cursor=cursor)
        )
        if conn is not None:
            conn.execute(stmt)
            return
        with write_transaction(self.engine) as own:
            own.execute(stmt)

    def finish(
        self,
        run_id: str,
        status: str,
        counts: dict[str, Any],
        cursor: str | None,
        error: str | None = None,
        record_errors: list[dict[str, str]] | None = None,
    ) -> None:
        now = utcnow()
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(sync_runs)
                .where(sync_runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=now,
                    heartbeat_at=now,
                    counts=orjson.dumps(counts).decode(),
                    cursor=cursor,
                    error=error,
                    record_errors=orjson.dumps((record_errors or [])[:MAX_RECORDED_ERRORS]).decode(),
                )
            )

    def list(self, source: str, limit: int = 20) -> list[RunInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sync_runs)
                .where(sync_runs.c.source == source)
                .order_by(sync_runs.c.started_at.desc())
                .limit(limit)
            ).all()
        return [_row_to_info(r) for r in rows]

    def get(self, run_id: str) -> RunInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(sync_runs).where(sync_runs.c.id == run_id)).first()
        return None if row is None else _row_to_info(row)

    def last_finished(self, source: str) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(sync_runs.c.started_at)
                .where(sync_runs.c.source == source, sync_runs.c.status != RUNNING)
                .order_by(sync_runs.c.started_at.desc())
                .limit(1)
            ).scalar_one_or_none()
        return value

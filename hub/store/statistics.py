"""Planner statistics that keep up with the store as it grows (PostgreSQL).

Why: apply's statements find rows by `column = ANY(:ids)`. For a table with no statistics
PostgreSQL guesses 0.5 % of the rows per value, so a batch of 500 ids "matches the whole
table" and the plan is a sequential scan, which gets slower with every page a backfill
stores. Autovacuum refreshes statistics once a table changed by 10 % (its
`autovacuum_analyze_scale_factor`), but only once per `autovacuum_naptime` (a minute by
default) and only where it is switched on: a backfill grows the tables from nothing to
100,000 rows in about a minute. Measured on a server with autovacuum off
(`bench/sync_jira.py --sizes 100000 --database-url postgresql+psycopg://...`): wall 104 s
without, 68 s with statistics refreshed as the store grew (bench/README.md, "Full Jira
sync", statistics).

So the sync (hub/sync.py `_store_batch`, after each page's transaction) has the store run
`ANALYZE` itself on the tables apply writes, each time the items written since the last one
reach `ANALYZE_MIN_ROWS` + growth x the items the statistics last saw: growth
`ANALYZE_GROWTH` (x1.5) while the statistics saw fewer than `ANALYZE_COARSE_FROM` items,
`ANALYZE_COARSE_GROWTH` (x4) after: 6 times while a store grows from 0 to 100,000 items
(a sync's 300-item page groups: at 1,200, 3,000, 5,700, 9,600, 15,600 and 63,600), then
rarely (next at 255,600, then about 1M). `ANALYZE` samples at most 300 x
default_statistics_target rows a table (30,000), so each beyond that size costs about the
same (1.5-2 s of server time for all 12 tables at 100,000 items, item_report_facts and
items a third each). It runs after the page's transaction, on its own connection (ANALYZE
reads committed rows only), with `SKIP_LOCKED`: a table another process is analysing is
left to it.

Why coarser beyond 10,000: x1.5 all the way analysed 9 times for 100,000 items, 5-12 s of
a PostgreSQL sync's wall (bench/README.md "i13pgsync"), three of them at full sample size.
The planner scales the row count the statistics saw by the table's current size in pages
(https://www.postgresql.org/docs/current/row-estimation-examples.html), and ANALYZE keeps
n_distinct as a fraction of the rows where it finds it growing with the table (the ids, the
twin keys), so the statistics of 15,600 items plan the sync's statements as fresh ones
would up to 63,600 and beyond: `bench/sync_jira.py --plans` follows every statement's plan
through a 100k sync, and each statement had the same plans, switching at the same page
groups, as with x1.5. What matters is statistics at all (PostgreSQL guesses 0.5 % of the
rows a value without) and that the first, small store's are replaced early.

Only the sync: a backfill is where a store grows by half in seconds. The webhook worker
writes at a steady rate, which autovacuum follows; there an `ANALYZE` in the worker's path
showed in the 202 -> queryable tail (`bench/webhooks.py` on PostgreSQL, quiet: p99 657 ms
with it in apply, 378 ms without).
https://www.postgresql.org/docs/current/sql-analyze.html
https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS

SQLite plans `IN (...)` by index without statistics; nothing is done there.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

ANALYZE_MIN_ROWS = 1000
ANALYZE_GROWTH = 0.5
ANALYZE_COARSE_FROM = 10_000
ANALYZE_COARSE_GROWTH = 3.0
# Every table `Applier.run` writes (hub/store/apply.py and its helpers).
APPLY_TABLES = (
    "items",
    "item_labels",
    "item_assignees",
    "item_links",
    "people",
    "person_identities",
    "changes",
    "status_transitions",
    "flow_facts",
    "flow_days",
    "item_tombstones",
    "item_report_facts",
)


def analyze_after(known_rows: float) -> float:
    """Items to write before the next `ANALYZE`, when the statistics last saw `known_rows`."""
    growth = ANALYZE_GROWTH if known_rows < ANALYZE_COARSE_FROM else ANALYZE_COARSE_GROWTH
    return ANALYZE_MIN_ROWS + growth * known_rows


class StatisticsKeeper:
    """Counts the items a sync wrote and refreshes PostgreSQL's statistics as they grow."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._known_rows: float | None = None  # items the statistics last saw; read lazily
        self._written = 0

    def written(self, count: int) -> None:
        """Note `count` items written by a committed transaction; analyse when they are enough."""
        if not self.enabled or count <= 0:
            return
        with self._lock:
            if self._known_rows is None:
                self._known_rows = self._items_in_statistics()
            self._written += count
            if self._written < analyze_after(self._known_rows):
                return
            grown = self._known_rows + self._written
            self._written = 0
            self._known_rows = grown
        self.analyze()

    def analyze(self) -> None:
        """`ANALYZE (SKIP_LOCKED)` the apply tables; a failure is logged, never raised: the
        items are stored already, and stale statistics only slow the next batches."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("ANALYZE (SKIP_LOCKED) " + ", ".join(APPLY_TABLES)))
                conn.commit()
        except SQLAlchemyError as exc:
            log.warning("store statistics not refreshed: %s", exc)

    def _items_in_statistics(self) -> float:
        """`pg_class.reltuples` of items: -1 (PostgreSQL 14+) or 0 when never analysed."""
        try:
            with self.engine.connect() as conn:
                value = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'items'::regclass")).scalar()
        except SQLAlchemyError as exc:
            log.warning("store statistics not read: %s", exc)
            return 0.0
        return max(float(value or 0.0), 0.0)

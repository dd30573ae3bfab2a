"""Sync orchestration: pull a source through its connector, map, store, checkpoint.

One run per source at a time (the run row is a lease, see hub/store/runs.py). Each page of
records is mapped and applied in one transaction together with the connector's cursor for
that page, so a run killed at any point resumes from the last stored page: no gap (the
cursor is only saved with the page) and no duplicate change (re-read records are not newer
than what is stored, so `apply` writes nothing for them).

While pages are mapped and stored, the next ones are already being fetched (a prefetch queue
of PAGES_PER_TRANSACTION pages): the run then costs little more than the tool's own page
latency. When the store falls behind, the pages waiting are stored together, in one
transaction with the last one's cursor (see PAGES_PER_TRANSACTION).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base import AuthFailed, Connector, ConnectorError, Page
from connectors.http import BudgetExceeded
from connectors.listing import IdListing
from hub import metrics
from hub.config import HubConfig, SourceDefinition
from hub.flow.extract import history_transitions
from hub.flow.history import Transition
from hub.logs import log_extra
from hub.normalise import Normaliser
from hub.outbound.events import SOURCE_FAILING, SYNC_FAILED, record_event
from hub.schema import ItemDeletion, WorkItem
from hub.store import Checkpoint, Store
from hub.store.contexts import ContextStore
from hub.store.items import database_unavailable, utcnow

log = logging.getLogger("opshub.sync")

ITEMS_STREAM = "items"
ProgressHook = Callable[["RunSummary"], None]


@functools.cache
def freeze_startup_objects() -> None:
    """`gc.freeze()`, once per process.

    Each page allocates tens of thousands of short-lived objects; without a freeze the
    collector keeps re-scanning every long-lived object of the process (measured: 20-30% of
    normalisation CPU). Frozen objects are never collected, though: freezing again at every
    run inside a long-running `opshub serve` would also freeze whatever garbage earlier runs
    left in cycles, and memory would only grow. Once, at the first run, freezes the imported
    modules and the app, which is what makes collections cheap.
    """
    gc.freeze()


SYNC_GC_THRESHOLD = 50_000
"""The collector's generation-0 threshold while a sync runs (Python's default is 700).

The threshold counts tracked objects allocated less those freed. A page is some 30,000 new
containers (decoded JSON, mapped items, rows), alive until the page is stored and then freed
by reference counting, not by the collector (they hold no cycles). At 700 the collector ran
about 15 times per page, each time moving the page's live objects up a generation to be
scanned again: 1.25 CPU-s of a 20,000-issue Jira sync's 16.6 (`gc.callbacks`, all threads).
At 10,000 it still ran once a page (200 runs, 0.9-1.0 s); above a page's live objects it
hardly runs: 7 runs and 0.35 s at 50,000. Cyclic garbage waits for at most that many net
allocations (a few MB). Generations 1 and 2 keep their thresholds.
https://docs.python.org/3/library/gc.html#gc.set_threshold
"""

_gc_runs = 0
_gc_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def sync_gc_threshold() -> Iterator[None]:
    """Raise the generation-0 threshold to SYNC_GC_THRESHOLD while any run of this process is
    going (runs of several sources overlap in `opshub serve`, and the inbox worker's batches
    count as runs: hub/webhooks.py `InboxWorker._lane`), and restore it after the last."""
    global _gc_runs, _gc_saved
    if _gc_runs == 0:
        _gc_saved = gc.get_threshold()
        gc.set_threshold(max(SYNC_GC_THRESHOLD, _gc_saved[0]), _gc_saved[1], _gc_saved[2])
    _gc_runs += 1
    try:
        yield
    finally:
        _gc_runs -= 1
        if _gc_runs == 0 and _gc_saved is not None:
            gc.set_threshold(*_gc_saved)


@dataclass
class RunSummary:
    run_id: str = ""
    source: str = ""
    mode: str = "incremental"
    status: str = "running"
    fetched: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed_records: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    cursor: str | None = None
    error: str | None = None
    record_errors: list[dict[str, str]] = field(default_factory=list)
    history: HistoryCounts | None = None  # set when the source backfills status history

    def counts(self) -> dict[str, Any]:
        history = {} if self.history is None else {"history": self.history.as_dict()}
        return {
            "fetched": self.fetched,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed_records": self.failed_records,
            "pages": self.pages,
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
        } | history


@dataclass
class HistoryCounts:
    """What a run's status history backfill did (`history = true` sources; hub/sync.py)."""

    items: int = 0  # items whose history was read and stored
    transitions: int = 0  # facts read from those histories
    skipped: int = 0  # changed items left without backfill: the run's request budget was spent
    failed: int = 0  # items whose history the tool did not give (the item is stored regardless)
    budget_spent: bool = False

    def as_dict(self) -> dict[str, int]:
        return {"items": self.items, "transitions": self.transitions, "skipped": self.skipped, "failed": self.failed}


PAGES_PER_TRANSACTION = 3
"""Most fetched pages stored in one transaction: those waiting when the store is ready.

A transaction costs much besides its rows: its commit (a WAL write on SQLite, a flush waited
for on PostgreSQL), the run's heartbeat, and `apply`'s statements, each run once per batch.
`bench/store_apply.py --backend sqlite --items 20000`: 2,504 items per CPU-s in batches of 100
(a Jira page), 3,774 in batches of 400. Pages are joined only when they are already waiting
(no timer): a store that keeps up stores each page as it comes, and one that falls behind (a
tool answering faster than the store writes, as a full Jira run's concurrent bulk fetches do)
catches up in larger transactions. The cursor saved is the last page's, with all the pages'
records: a crash resumes after the last transaction, never past a page not stored.
"""


def _joined(pages: list[Page]) -> Page:
    """One page of the pages' records, whose cursor is the last page's that has one."""
    if len(pages) == 1:
        return pages[0]
    cursors = [page.cursor for page in pages if page.cursor is not None]
    return Page(records=[record for page in pages for record in page.records], cursor=cursors[-1] if cursors else None)


async def _prefetch(pages: AsyncIterator[Page], depth: int = 1) -> AsyncIterator[list[Page]]:
    """Yield the pages fetched so far (one at least, `depth` at most), while up to `depth`
    more are fetched in the background."""
    queue: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
            await queue.put(None)
        except asyncio.CancelledError:
            # The consumer is gone (e.g. storing a page failed): nobody reads the queue, so
            # putting into a full one would block this task, and the loop's shutdown, for ever.
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            await queue.put(exc)

    task = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get()
            ready: list[Page] = []
            while isinstance(item, Page):
                ready.append(item)
                if queue.empty():
                    break
                item = queue.get_nowait()
            if ready:
                yield ready  # before the end or a failure behind them: those pages were fetched
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
    finally:
        task.cancel()
        # Its outcome was already handed over through the queue.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class SyncEngine:
    """Runs syncs for the sources of one hub config against one store."""

    def __init__(
        self,
        store: Store,
        config: HubConfig,
        *,
        connector_factory: Callable[[SourceDefinition], Connector] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.runs = store.runs
        self.contexts = ContextStore(store.engine)
        self._connector_factory = connector_factory or (lambda source: source.connector())

    def open_run(self, source_name: str, *, full: bool = False) -> RunSummary:
        """Take the source's lease and open a run row (RunInProgress if one is live)."""
        source = self.config.source(source_name)
        self.runs.ensure_source(source.name, source.tool)
        cursor = None if full else self.store.items.load_cursor(source.name, ITEMS_STREAM)
        summary = RunSummary(source=source.name, mode="full" if cursor is None else "incremental", cursor=cursor)
        summary.run_id = self.runs.start(source.name, summary.mode)
        log.info(
            "sync run %s of %s (%s) started",
            summary.run_id,
            source.name,
            summary.mode,
            extra=log_extra(source=source.name, run_id=summary.run_id),
        )
        return summary

    async def run(
        self,
        source_name: str,
        *,
        full: bool = False,
        sweep: bool | None = None,
        progress: ProgressHook | None = None,
    ) -> RunSummary:
        """One sync run. `sweep` (default: on full runs) also tombstones what the tool deleted."""
        summary = await asyncio.to_thread(self.open_run, source_name, full=full)
        return await self.execute(summary, sweep=sweep, progress=progress)

    async def execute(
        self, summary: RunSummary, *, sweep: bool | None = None, progress: ProgressHook | None = None
    ) -> RunSummary:
        """Carry out a run opened by `open_run`; always closes the run row."""
        with sync_gc_threshold():
            return await self._execute(summary, sweep=sweep, progress=progress)

    async def _execute(self, summary: RunSummary, *, sweep: bool | None, progress: ProgressHook | None) -> RunSummary:
        source = self.config.source(summary.source)
        cursor = summary.cursor
        started = time.perf_counter()
        connector = self._connector_factory(source)
        freeze_startup_objects()
        listing: asyncio.Task[tuple[datetime, IdListing]] | None = None
        try:
            async with connector:
                context = await connector.mapping_context()
                normaliser = Normaliser(source.tool, context, source.config.mapping)
                await asyncio.to_thread(self._keep_context, source, context, normaliser)
                backfill = source.config.history and connector.supports_history
                summary.history = HistoryCounts() if backfill else None
                do_sweep = sweep if sweep is not None else summary.mode == "full"
                # A connector whose full fetch lists every id first hands that listing over.
                listed_by_fetch = summary.mode == "full" and connector.lists_on_full_fetch
                early = do_sweep and source.config.request_budget is None and not listed_by_fetch
                if early:
                    # The sweep's first id listing runs beside the pages (see _sweep), so a
                    # full run's wall time is its pages' latency, not pages + listing. Not
                    # under a request budget: there the pages and histories come first and
                    # the sweep gets what they leave, as before.
                    listing = asyncio.create_task(self._list_ids(connector))
                async for ready in _prefetch(connector.fetch(cursor), PAGES_PER_TRANSACTION):
                    self._account(connector, summary)
                    summary.seconds = time.perf_counter() - started
                    # Mapping and storing run off the event loop, so that the loop keeps
                    # reading the next page (already requested) meanwhile.
                    page = _joined(ready)
                    changed = await asyncio.to_thread(
                        self._store_page, source, normaliser, connector, page, summary, len(ready)
                    )
                    if summary.history is not None:
                        await self._backfill(source, connector, normaliser, changed, summary.history)
                    if progress:
                        progress(summary)
                if do_sweep:
                    if listed_by_fetch and connector.full_listing is not None:
                        first = connector.full_listing
                    elif listing is not None:
                        first = await listing
                    else:
                        first = await self._list_ids(connector)
                    await self._sweep(source, connector, summary, first)
            summary.status = "succeeded"
            await asyncio.to_thread(self.runs.set_source_status, source.name, "ok", None)
        except AuthFailed as exc:
            summary.status, summary.error = "failed", str(exc)
            previous = await asyncio.to_thread(self.runs.set_source_status, source.name, "failing", str(exc))
            if previous != "failing":  # the moment it starts failing, not every run after
                await asyncio.to_thread(
                    record_event, self.store.engine, SOURCE_FAILING, {"error": str(exc)}, source=source.name
                )
        except ConnectorError as exc:
            summary.status, summary.error = "failed", str(exc)
        except BaseException as exc:
            # Includes cancellation (hub shutting down): the run row must not stay "running".
            summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
            if isinstance(exc, Exception):
                log.exception("sync of %s failed", source.name)
            raise
        finally:
            if listing is not None and not listing.done():
                listing.cancel()  # the run failed before the sweep: its listing is moot
            if listing is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listing  # retrieved, so a failed listing is not logged as unhandled
            self._account(connector, summary)
            summary.seconds = time.perf_counter() - started
            self.runs.finish(
                summary.run_id, summary.status, summary.counts(), summary.cursor, summary.error, summary.record_errors
            )
            metrics.sync_finished(
                source.name, summary.status, fetched=summary.fetched, changed=summary.changed, seconds=summary.seconds
            )
            log.log(
                logging.INFO if summary.status == "succeeded" else logging.WARNING,
                "sync run %s of %s (%s) %s: %d fetched, %d changed, %d deleted, %d failed records, %d requests in %.1fs%s",
                summary.run_id,
                source.name,
                summary.mode,
                summary.status,
                summary.fetched,
                summary.changed,
                summary.deleted,
                summary.failed_records,
                summary.requests,
                summary.seconds,
                f": {summary.error}" if summary.error else "",
                extra=log_extra(source=source.name, run_id=summary.run_id, outcome=summary.status),
            )
            if summary.status == "failed":
                self._record_failed(summary)
            if progress:
                progress(summary)
        return summary

    def _record_failed(self, summary: RunSummary) -> None:
        """The `sync.failed` event for outbound subscriptions (hub/outbound/events.py)."""
        try:
            data = {"run_id": summary.run_id, "mode": summary.mode, "error": summary.error}
            record_event(self.store.engine, SYNC_FAILED, data, source=summary.source, subject=summary.run_id)
        except Exception:
            log.exception("could not record sync.failed for run %s", summary.run_id)

    @staticmethod
    def _account(connector: Connector, summary: RunSummary) -> None:
        stats = connector.stats()
        summary.requests = int(stats.get("requests", summary.requests))
        summary.retries = int(stats.get("retries", summary.retries))

    def _store_page(
        self,
        source: SourceDefinition,
        normaliser: Normaliser,
        connector: Connector,
        page: Page,
        summary: RunSummary,
        pages: int = 1,
    ) -> list[WorkItem]:
        """Map a page (`pages` fetched pages joined) and store it with its checkpoint, the run's
        heartbeat and the status history its records carry: one transaction. Returns the items
        whose change was stored.

        If the store refuses the page (a record it cannot hold, e.g. a value longer than its
        column), the page is stored again in halves, each in a transaction of its own, down
        to the single records the store refuses: those become record errors of the run and
        the rest lands, so a sync never sticks on one record. The checkpoint is saved only
        after that, so the cursor never passes a good record that was not stored. A database
        that is unreachable or busy is no record's fault: that fails the run as before.
        """
        items, errors = normaliser.map_many(page.records, connector.native_id)
        summary.fetched += len(page.records)
        checkpoint = Checkpoint(source.name, ITEMS_STREAM, page.cursor) if page.cursor is not None else None
        facts = normaliser.carried_transitions(items)
        try:
            changed = self._store_batch(items, checkpoint, summary, facts)
        except Exception as exc:
            if database_unavailable(exc):
                raise
            log.warning("%s: the store refused a page (%s); storing its records apart", source.name, _one_line(exc))
            refused, changed = self._store_apart(items, summary, facts)
            errors += refused
            self._store_batch([], checkpoint, summary, [])
        summary.failed_records += len(errors)
        summary.record_errors.extend(errors[: max(0, 100 - len(summary.record_errors))])
        summary.pages += pages
        if page.cursor is not None:
            summary.cursor = page.cursor
        return [item for item in items if item.id in changed]

    def _store_batch(
        self, items: list[WorkItem], checkpoint: Checkpoint | None, summary: RunSummary, facts: list[Transition]
    ) -> set[str]:
        """Apply `items` (and their status facts) with the checkpoint and a heartbeat in one
        transaction; count once committed. Returns the ids whose change was stored."""
        with self.store.items.write_transaction() as conn:
            result = self.store.items.apply(items, checkpoint=checkpoint, conn=conn, transitions=facts)
            counts = {**summary.counts(), "changed": summary.changed + result.upserted}
            self.runs.heartbeat(summary.run_id, counts, checkpoint.value if checkpoint else summary.cursor, conn=conn)
        summary.changed += result.upserted
        summary.unchanged += result.unchanged
        self.store.items.statistics.written(len(items))  # committed: a backfill grows the store
        return set(result.upserted_ids)

    def _store_apart(
        self, items: list[WorkItem], summary: RunSummary, facts: list[Transition]
    ) -> tuple[list[dict[str, str]], set[str]]:
        """Store `items` in halves, recursively, each in its own transaction with its items'
        status facts; return the records the store refuses on their own, as record errors,
        and the ids whose change was stored."""
        refused: list[dict[str, str]] = []
        changed: set[str] = set()
        parts = [items]
        while parts:
            part = parts.pop()
            ids = {item.id for item in part}
            try:
                changed |= self._store_batch(part, None, summary, [f for f in facts if f.item_id in ids])
            except Exception as exc:
                if database_unavailable(exc):
                    raise
                if len(part) == 1:
                    refused.append({"native_id": part[0].native_id, "error": f"refused by the store: {_one_line(exc)}"})
                else:
                    middle = len(part) // 2
                    parts += [part[middle:], part[:middle]]  # the first half is stored first
        return refused, changed

    async def _backfill(
        self,
        source: SourceDefinition,
        connector: Connector,
        normaliser: Normaliser,
        changed: list[WorkItem],
        counts: HistoryCounts,
    ) -> None:
        """Read the tool's status history of a stored page's changed items and store it.

        Opt-in per source (`history = true`): most tools charge a request (or a page of them)
        per item. Concurrent up to the source's `max_concurrency`. When the run's
        `request_budget` is spent, the backfill stops for the rest of the run and counts the
        items it leaves (`skipped`); the next run backfills the items that change again, and
        the hub keeps observing status changes meanwhile. A history the tool does not give (an
        error after retries) is counted as `failed` and never fails the run: the page is stored.
        """
        if counts.budget_spent:
            counts.skipped += len(changed)
            return
        limit = asyncio.Semaphore(source.config.max_concurrency)

        async def one(item: WorkItem) -> list[Transition] | None:
            async with limit:
                if counts.budget_spent:
                    counts.skipped += 1
                    return None
                try:
                    raw = await connector.fetch_history(item.native_id)
                except BudgetExceeded:
                    counts.budget_spent = True
                    counts.skipped += 1
                    return None
                except ConnectorError as exc:
                    log.warning("%s: status history of %s not read: %s", source.name, item.native_id, exc)
                    counts.failed += 1
                    return None
                return history_transitions(source.tool, item, raw, normaliser.mapper)

        facts: list[Transition] = []
        for found in await asyncio.gather(*(one(item) for item in changed)):
            if found is not None:
                counts.items += 1
                counts.transitions += len(found)
                facts.extend(found)
        if facts:
            await asyncio.to_thread(self.store.items.apply, (), transitions=facts)

    @staticmethod
    async def _list_ids(connector: Connector) -> tuple[datetime, IdListing]:
        """(when the listing began, every id the tool lists): the sweep's first listing."""
        listing_started = utcnow()
        listed = IdListing()
        async for native_id in connector.list_ids():
            listed.add(native_id)
        return listing_started, listed

    async def _sweep(
        self,
        source: SourceDefinition,
        connector: Connector,
        summary: RunSummary,
        first: tuple[datetime, Collection[str]],
    ) -> None:
        """Tombstone stored items the tool no longer lists (deletions no webhook reported).

        Only items last updated before the listing began are candidates (minus the overlap
        window for clock skew): one created or changed during the listing may be missing
        from it without being gone, and the tombstone's time must not hide a later update.
        That holds whenever the listing runs, so the first listing (`first`, made by
        `_list_ids`, or by the connector's full fetch: `Connector.full_listing`) runs while
        the run's pages are fetched and stored, or before them: an item the pages
        stored is a candidate only if the tool last updated it before the listing began, so
        it existed then and a listing missing it saw it gone (and the second listing checks).

        A candidate must be missing from a second listing too. Most tools list ids by offset
        or page number, and a record deleted while such a listing runs moves every later one
        up a place: the record at the next page boundary is missing from that listing though
        it lives. It comes back in the second listing, which is made only when the first
        leaves candidates (so a sweep that finds nothing costs one listing).
        """
        listing_started, present = first
        cutoff = listing_started - source.overlap
        candidates = await asyncio.to_thread(self.store.items.live_ids_missing_from, source.name, present, cutoff)
        if candidates and not present:
            # An empty listing for a non-empty source is far likelier a scope or permission
            # problem than a tool whose every item was deleted: refuse to tombstone it all.
            summary.error = "deletion sweep skipped: the tool listed no items at all"
            log.warning("%s: %s", source.name, summary.error)
            return
        if candidates:
            candidates -= {native_id async for native_id in connector.list_ids() if native_id in candidates}
        gone = sorted(candidates)
        for start in range(0, len(gone), 500):
            chunk = gone[start : start + 500]
            deletions = [ItemDeletion(source=source.name, native_id=n, deleted_at=cutoff) for n in chunk]
            result = await asyncio.to_thread(self.store.items.apply, deletions)
            summary.deleted += result.deleted

    def _keep_context(self, source: SourceDefinition, context: dict[str, Any], normaliser: Normaliser) -> None:
        """Store the mapping context the tool just gave (the inbox worker maps webhooks with it
        while the tool is unreachable) and map again the items webhooks wrote without it."""
        self.contexts.save(source.name, context)
        remapped = self.contexts.remap_provisional(self.store.items, source.name, normaliser.map)
        if remapped:
            log.info("%s: %d items mapped again with the mapping context", source.name, remapped)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def due_sources(config: HubConfig, last_started: Callable[[str], datetime | None], now: datetime) -> list[str]:
    """Sources whose schedule says a run is due now."""
    due = []
    for name, source in config.sources.items():
        interval = source.schedule
        if interval is None:
            continue
        last = last_started(name)
        if last is None or now - last >= interval:
            due.append(name)
    return due


__all__ = ["ITEMS_STREAM", "RunSummary", "SyncEngine", "WorkItem", "due_sources"]

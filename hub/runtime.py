"""What runs inside `opshub serve` besides the API: scheduled syncs, the inbox worker and
the outbound webhook deliverer (hub/outbound/deliverer.py).

Both are plain asyncio tasks in the server's event loop. With several hub processes on one
PostgreSQL, each runs them: run leases (one live run per source) and inbox row claims
(`SKIP LOCKED`) split the work so nothing is done twice.

The inbox loop starts a worker pass every poll interval (or at once when a delivery
arrives or a source's lane finishes; on PostgreSQL also when another process's intake
commits one: hub/inbox_wakeup.py) without waiting for slow sources (see InboxWorker).
When a pass fails (the database is down), it logs one line, backs off up to
`inbox_backoff_max_seconds`, and logs one line again when a pass succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from hub.config import HubConfig
from hub.inbox_wakeup import InboxListener
from hub.outbound.deliverer import Deliverer
from hub.outbound.store import SubscriptionStore
from hub.store import Store
from hub.store.clock import utcnow
from hub.store.inbox import CLAIM_TTL
from hub.store.runs import RunInProgress
from hub.sync import RunSummary, SyncEngine, due_sources
from hub.webhooks import Backoff, ClaimSize, ConnectorFactory, InboxWorker, WebhookIntake, default_connector, first_line

log = logging.getLogger("opshub.runtime")


class HubRuntime:
    def __init__(
        self,
        store: Store,
        config: HubConfig,
        *,
        inbox_poll_seconds: float = 1.0,
        schedule_poll_seconds: float = 15.0,
        background: bool = True,
        connector_factory: ConnectorFactory = default_connector,
        inbox_backoff_max_seconds: float = 60.0,
        inbox_claim_seconds: float = CLAIM_TTL.total_seconds(),
        context_max_age_seconds: float = 24 * 3600.0,
        deliverer: Deliverer | None = None,
        outbound_poll_seconds: float = 1.0,
        inbox_batch_size: int = 200,
        inbox_pipeline: bool = False,
    ) -> None:
        self.store = store
        self.config = config
        self.sync = SyncEngine(store, config, connector_factory=connector_factory)
        self.intake = WebhookIntake(store, config, connector_factory=connector_factory)
        self.worker = InboxWorker(
            store,
            config,
            connector_factory=connector_factory,
            claim_ttl=timedelta(seconds=inbox_claim_seconds),
            context_max_age=timedelta(seconds=context_max_age_seconds),
            tool_backoff=Backoff(initial=min(1.0, inbox_backoff_max_seconds), maximum=inbox_backoff_max_seconds),
            pipeline=inbox_pipeline,
        )
        self.worker.on_lane_done = self.wake_worker
        # A committed group wakes the worker once (not once per request).
        self.intake.committer.on_commit = lambda _new: self.wake_worker()
        self.inbox_batch_size = inbox_batch_size
        self._claim_size = ClaimSize(inbox_batch_size)
        self._listener: InboxListener | None = None
        self.inbox_poll_seconds = inbox_poll_seconds
        self.inbox_backoff_max_seconds = inbox_backoff_max_seconds
        self.inbox_failed_passes = 0  # consecutive passes that failed (database down ...)
        self.schedule_poll_seconds = schedule_poll_seconds
        self.background = background
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake_worker = asyncio.Event()
        self.deliverer = deliverer if deliverer is not None else Deliverer(SubscriptionStore(store.engine))
        self.outbound_poll_seconds = outbound_poll_seconds
        self.outbound_failed_passes = 0

    async def start(self) -> None:
        for name, source in self.config.sources.items():
            await asyncio.to_thread(self.sync.runs.ensure_source, name, source.tool)
        if self.background:
            if self.store.engine.dialect.name == "postgresql":
                # Deliveries committed by another process's intake wake this worker at once.
                self._listener = InboxListener(self.store.engine, self.wake_worker, asyncio.get_running_loop())
                self._listener.start()
            self._spawn(self._inbox_loop())
            self._spawn(self._outbound_loop())
            if any(s.schedule for s in self.config.sources.values()):
                self._spawn(self._schedule_loop())

    async def stop(self) -> None:
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.intake.aclose()
        await self.worker.aclose()
        await self.deliverer.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start_sync(self, source_name: str, *, full: bool = False) -> RunSummary:
        """Open a run now (RunInProgress / KeyError are raised here) and carry it out in the background."""
        summary = await asyncio.to_thread(self.sync.open_run, source_name, full=full)
        self._spawn(self.sync.execute(summary))
        return summary

    def wake_worker(self) -> None:
        """A delivery was just stored: apply it without waiting for the next poll."""
        self._wake_worker.set()

    async def _inbox_loop(self) -> None:
        while True:
            # Clear BEFORE the pass: a delivery committed while the pass runs sets the event
            # again and the next wait returns at once. Clearing after the pass lost that
            # wake-up, and the delivery waited for the poll interval.
            self._wake_worker.clear()
            delay = await self.inbox_pass()
            # asyncio.timeout, not wait_for: wait_for wraps the wait in a task of its own, and
            # cancelling the loop while it waits (shutdown) could leave that task pending.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake_worker.wait()

    async def inbox_pass(self) -> float:
        """One worker pass; returns how long to wait before the next (backing off on failure)."""
        try:
            size = self._claim_size
            size.after(await self.worker.process_once(size.current, wait=False, most=size.most))
        except Exception as exc:  # noqa: BLE001 - logged once per outage, retried with backoff
            self.inbox_failed_passes += 1
            if self.inbox_failed_passes == 1:
                log.warning("inbox worker: pass failed, backing off until it works again: %s", first_line(exc))
            return min(self.inbox_poll_seconds * float(2**self.inbox_failed_passes), self.inbox_backoff_max_seconds)
        if self.inbox_failed_passes:
            log.warning("inbox worker: working again after %d failed passes", self.inbox_failed_passes)
            self.inbox_failed_passes = 0
        return self.inbox_poll_seconds

    async def _outbound_loop(self) -> None:
        """Deliver while there is work; otherwise look again every poll interval."""
        while True:
            try:
                attempted = await self.deliverer.run_once()
            except Exception as exc:  # noqa: BLE001 - logged once per outage, retried with backoff
                self.outbound_failed_passes += 1
                if self.outbound_failed_passes == 1:
                    log.warning("outbound deliverer: pass failed, backing off: %s", first_line(exc))
                backoff = self.outbound_poll_seconds * float(2 ** min(self.outbound_failed_passes, 16))
                await asyncio.sleep(min(backoff, self.inbox_backoff_max_seconds))
                continue
            if self.outbound_failed_passes:
                log.warning("outbound deliverer: working again after %d failed passes", self.outbound_failed_passes)
                self.outbound_failed_passes = 0
            if not attempted:
                await asyncio.sleep(self.outbound_poll_seconds)

    async def _schedule_loop(self) -> None:
        while True:
            now: datetime = utcnow()
            for name in await asyncio.to_thread(due_sources, self.config, self.sync.runs.last_finished, now):
                try:
                    await self.sync.run(name)
                except RunInProgress:
                    pass  # another process (or an API-triggered run) has it
                except Exception:
                    log.exception("scheduled sync of %s failed", name)
            await asyncio.sleep(self.schedule_poll_seconds)

"""What runs inside `opshub serve` besides the API: scheduled syncs and the inbox worker.

Both are plain asyncio tasks in the server's event loop. With several hub processes on one
PostgreSQL, each runs them: run leases (one live run per source) and inbox row claims
(`SKIP LOCKED`) split the work so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from hub.config import HubConfig
from hub.store import Store
from hub.store.items import utcnow
from hub.store.runs import RunInProgress
from hub.sync import RunSummary, SyncEngine, due_sources
from hub.webhooks import ConnectorFactory, InboxWorker, WebhookIntake, default_connector

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
    ) -> None:
        self.store = store
        self.config = config
        self.sync = SyncEngine(store, config, connector_factory=connector_factory)
        self.intake = WebhookIntake(store, config, connector_factory=connector_factory)
        self.worker = InboxWorker(store, config, connector_factory=connector_factory)
        self.inbox_poll_seconds = inbox_poll_seconds
        self.schedule_poll_seconds = schedule_poll_seconds
        self.background = background
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake_worker = asyncio.Event()

    async def start(self) -> None:
        for name, source in self.config.sources.items():
            await asyncio.to_thread(self.sync.runs.ensure_source, name, source.tool)
        if self.background:
            self._spawn(self._inbox_loop())
            if any(s.schedule for s in self.config.sources.values()):
                self._spawn(self._schedule_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.intake.aclose()
        await self.worker.aclose()

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
            try:
                await self.worker.drain()
            except Exception:
                log.exception("inbox worker pass failed")
            self._wake_worker.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_worker.wait(), timeout=self.inbox_poll_seconds)

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

"""Wake the inbox worker of another process when deliveries are committed (PostgreSQL).

In one process the intake wakes the worker directly (HubRuntime.wake_worker). With
`role=api` and `role=worker` in separate processes the worker would only find a delivery at
its next poll (HUB_INBOX_POLL_SECONDS). On PostgreSQL the intake's transaction also runs
`NOTIFY opshub_inbox` (InboxStore.add_many): the notification is delivered when, and only
when, that transaction commits, so a worker is never woken for a delivery it cannot see yet.
https://www.postgresql.org/docs/current/sql-notify.html

`InboxListener` holds one dedicated connection with `LISTEN opshub_inbox` in a daemon
thread and calls `wake` (thread-safely, on the worker's event loop) for each notification.
Polling stays as the fallback: a lost connection is reconnected with backoff, and
notifications sent meanwhile are simply found by the next poll.
https://www.psycopg.org/psycopg3/docs/advanced/async.html#asynchronous-notifications
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

log = logging.getLogger("opshub.runtime")

CHANNEL = "opshub_inbox"


class InboxListener:
    def __init__(self, engine: Engine, wake: Callable[[], None], loop: asyncio.AbstractEventLoop) -> None:
        self.url = engine.url
        self._wake = wake
        self._loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inbox LISTEN", daemon=True)
        self.listening = threading.Event()  # set once LISTEN is in place (tests wait on it)
        self.notifications = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg  # only PostgreSQL deployments get here

        failures = 0
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    failures = 0
                    while not self._stop.is_set():
                        # A short timeout so that stop() is noticed within half a second.
                        for _ in conn.notifies(timeout=0.5):
                            self.notifications += 1
                            self._loop.call_soon_threadsafe(self._wake)
            except Exception as exc:  # noqa: BLE001 - polling covers the gap; reconnect with backoff
                self.listening.clear()
                failures += 1
                if failures == 1:
                    log.warning("inbox wake-up: LISTEN connection lost, polling meanwhile: %s", exc)
                if self._stop.wait(min(2.0**failures, 30.0)):
                    return

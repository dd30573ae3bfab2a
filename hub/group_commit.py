"""Group commit for webhook intake: many deliveries, one transaction, no 202 before its commit.

A transaction's cost is mostly its commit (an fsync of the WAL on SQLite, a round trip and
a WAL flush on PostgreSQL), not its rows. One transaction per request caps intake near the
disk's flush rate; sharing a commit among the requests that arrive while the previous one is
being written lifts that cap without delaying anyone: there is no linger timer. The first
delivery after a quiet spell is committed alone at once; while that commit runs the next
requests queue, and the next group is whatever queued (at most `max_group`). So groups grow
with load, and a delivery waits for at most one commit in flight plus its own.

Every waiter learns its own outcome from the commit that holds its delivery: stored (new),
already stored (duplicate), or the group failed (`CommitFailed`: nothing of the group was
stored, and the route answers 503 with Retry-After so the tool delivers it again). Nothing
is acknowledged that is not committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("opshub.webhooks")


@dataclass(frozen=True)
class NewDelivery:
    """A verified delivery on its way to the inbox (its secret headers already dropped)."""

    source: str
    delivery_id: str
    headers: dict[str, str]
    body: bytes


class CommitFailed(Exception):
    """The group holding this delivery was not committed (nothing of it was stored)."""


# Stores a group in one transaction; returns, per delivery and in order, True when it was
# new and False when the same (source, delivery id) was stored before (or earlier in the group).
CommitGroup = Callable[[Sequence[NewDelivery]], list[bool]]


class GroupCommitter:
    """Commits queued deliveries in groups, one transaction per group, from one task."""

    def __init__(
        self, commit: CommitGroup, *, max_group: int = 500, on_commit: Callable[[int], None] | None = None
    ) -> None:
        self._commit = commit
        self.max_group = max_group
        self.on_commit = on_commit  # called with the number of new deliveries a group stored
        self._queue: list[tuple[NewDelivery, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        self.groups = 0  # groups committed (or failed): deliveries / groups is the mean group size

    async def submit(self, delivery: NewDelivery) -> bool:
        """Wait until the delivery's group is committed: True if it was new, False if a duplicate.

        Raises CommitFailed when its group could not be committed.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inbox group commit")
        # Awaited bare (no shield, no done callback: each cost a scheduled callback per request,
        # ~4 us of the intake's event loop). A waiter cancelled while its group commits (a
        # client gone) cancels only this future: its delivery stays in the group and is
        # committed all the same, and `_run` skips resolving a future that is already done.
        return await future

    async def _run(self) -> None:
        while self._queue:
            group, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
            self.groups += 1
            try:
                # One thread hop per group, not per request: the DB driver blocks.
                results = await asyncio.to_thread(self._commit, [delivery for delivery, _ in group])
            except Exception as exc:  # noqa: BLE001 - every waiter of the group is told, none acknowledged
                log.warning("webhook intake: a group of %d deliveries was not committed: %s", len(group), exc)
                for _, future in group:
                    if not future.done():
                        future.set_exception(CommitFailed(f"{type(exc).__name__}: {exc}".splitlines()[0]))
                        # Marked as seen, so a waiter that is gone leaves no "exception was never
                        # retrieved" in the log; one still awaiting gets it raised all the same.
                        future.exception()
                continue
            for (_, future), is_new in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(is_new)
            new = sum(results)
            if new and self.on_commit is not None:
                self.on_commit(new)

    async def aclose(self) -> None:
        """Let the group in flight (and any queued) finish, so no waiter is left hanging."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

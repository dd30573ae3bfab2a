"""Syncing a source that spans several containers the tool lists separately.

GitHub lists issues per repository and GitLab per project (or group): a source with several of
them reads one stream per container. `merged_pages` merges the streams (a heap on each stream's
next record) into pages in ascending update order across all of them, and `ScopeCursors` keeps
one `DatetimeCursor` per container in one opaque cursor, so a crash resumes every container
where it was and a container added to the scope later starts with a full sync.

Why moving every container's cursor to the page's last record is safe: the merge only emits a
record once every stream's next record is at least as new, so nothing unread in any container
is older than the last record of a stored page.
"""

from __future__ import annotations

import asyncio
import heapq
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.base import Page
from connectors.cursors import DatetimeCursor, InvalidCursor, parse_time

OrderKey = tuple[datetime, int]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScopeCursors:
    """`{"v": 1, "scopes": {"<container>": {"updated": ..., "id": ...}}}`; names compare casefolded."""

    def __init__(self, cursors: dict[str, DatetimeCursor] | None = None) -> None:
        self.cursors = cursors or {}

    def get(self, scope: str) -> DatetimeCursor:
        return self.cursors.setdefault(scope.lower(), DatetimeCursor())

    def serialize(self) -> str | None:
        scopes = {
            name: {"updated": c.updated.isoformat(timespec="microseconds"), "id": c.last_id}
            for name, c in sorted(self.cursors.items())
            if c.updated is not None
        }
        return orjson.dumps({"v": 1, "scopes": scopes}).decode() if scopes else None

    @classmethod
    def parse(cls, cursor: str | None) -> ScopeCursors:
        if cursor is None:
            return cls()
        try:
            body = orjson.loads(cursor)
            if not isinstance(body, dict) or body.get("v") != 1 or not isinstance(body.get("scopes"), dict):
                raise ValueError("not a per-container cursor")
            return cls(
                {
                    str(name).lower(): DatetimeCursor(parse_time(value["updated"]), value.get("id"))
                    for name, value in body["scopes"].items()
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCursor(f"unreadable cursor {cursor[:100]!r}: {exc}; run a full sync") from exc


class RecordStream(ABC):
    """One container's records in ascending update order, fetched a page at a time."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.pending: deque[dict[str, Any]] = deque()

    @property
    @abstractmethod
    def has_more(self) -> bool:
        """More pages to fetch."""

    @abstractmethod
    async def fetch_page(self) -> None:
        """Fetch the next page into `pending`."""

    async def head(self) -> dict[str, Any] | None:
        while not self.pending and self.has_more:
            await self.fetch_page()
        return self.pending[0] if self.pending else None


async def merged_pages(
    streams: Sequence[RecordStream],
    state: ScopeCursors,
    *,
    page_size: int,
    order_key: Callable[[dict[str, Any]], OrderKey],
    native_id: Callable[[dict[str, Any]], str],
) -> AsyncIterator[Page]:
    """Pages of `page_size` records merged from `streams`, each with the cursor to resume from.

    The first stream's head is read alone, so a bad key or scope costs one request; the
    other streams' heads are then read concurrently (within the source's concurrency limit):
    no record can be emitted before every head is known, and a stream that reads all of its
    pages first (Aha!, which documents no sort order) would otherwise keep the rest waiting
    in turn. The first failure cancels the others. A run with nothing new yields one empty
    page carrying the unchanged cursor.
    """
    heads = [await streams[0].head()] if streams else []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(stream.head()) for stream in streams[1:]]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # as itself: callers catch AuthFailed and the like
    heads += [task.result() for task in tasks]
    heap = [(order_key(head), k) for k, head in enumerate(heads) if head is not None]
    heapq.heapify(heap)
    page: list[dict[str, Any]] = []
    last: OrderKey | None = None
    last_id = ""
    yielded = False

    def cut() -> Page:
        if last is not None:
            for stream in streams:
                state.get(stream.scope).observe(last[0], last_id)
        return Page(records=page, cursor=state.serialize())

    while heap:
        key, k = heapq.heappop(heap)
        record = streams[k].pending.popleft()
        page.append(record)
        if key[0] != _EPOCH:  # records without a readable update time do not move cursors
            last, last_id = key, native_id(record)
        if len(page) >= page_size:
            yield cut()
            yielded, page = True, []
        head = await streams[k].head()
        if head is not None:
            heapq.heappush(heap, (order_key(head), k))
    if page or not yielded:
        yield cut()


def epoch() -> datetime:
    """The order key's time for records without a readable update time (they sort first)."""
    return _EPOCH


__all__ = ["OrderKey", "RecordStream", "ScopeCursors", "epoch", "merged_pages"]

"""Paginators: small strategy objects that read "where is the next page" from a response.

Modelled on the Singer SDK's `singer_sdk/pagination.py`: a connector asks `advance(response,
data)` after each page and stops when `has_more` is false; `current_value` is the token to
send with the next request. Every paginator refuses a token it has already seen
(`RepeatedPageToken`): a server that hands out the same token twice would otherwise loop a
sync forever while looking busy.

`data` is the decoded JSON body (the HTTP layer already parsed it); `response` gives headers.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import httpx

from connectors.base import ConnectorError

T = TypeVar("T")


class RepeatedPageToken(ConnectorError):
    """The tool returned a page token it had already returned: stop instead of looping."""


def dig(data: Any, path: Sequence[str]) -> Any:
    """`data[path[0]][path[1]]...`, or None where a step is missing."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


class Paginator(ABC, Generic[T]):
    """Base paginator: tracks the current token, whether more pages exist, and seen tokens."""

    def __init__(self, start_value: T | None = None) -> None:
        self.current_value: T | None = start_value
        self.count = 0  # pages advanced past
        self._finished = False
        self._seen: set[Any] = set() if start_value is None else {start_value}

    @property
    def has_more(self) -> bool:
        return not self._finished

    @abstractmethod
    def get_next(self, response: httpx.Response, data: Any) -> T | None:
        """The token for the page after this one, or None on the last page."""

    def advance(self, response: httpx.Response, data: Any) -> T | None:
        """Move to the next page; returns its token (None when this was the last page)."""
        if self._finished:
            raise RuntimeError("paginator already finished")
        self.count += 1
        token = self.get_next(response, data)
        if token is None:
            self._finished = True
        else:
            if token in self._seen:
                raise RepeatedPageToken(
                    f"page token {str(token)[:80]!r} repeated after {self.count} pages "
                    f"({response.request.method} {response.request.url.path}); stopping"
                )
            self._seen.add(token)
        self.current_value = token
        return token


class PageTokenPaginator(Paginator[str]):
    """An opaque token in the body, absent (or null/empty) on the last page.

    Jira's enhanced search `GET /rest/api/3/search/jql` returns `nextPageToken` until the last
    page, which has none (and `isLast: true`):
    https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get
    """

    def __init__(self, token_path: Sequence[str] = ("nextPageToken",), last_path: Sequence[str] | None = ("isLast",)):
        super().__init__(None)
        self.token_path = tuple(token_path)
        self.last_path = tuple(last_path) if last_path else None

    def get_next(self, response: httpx.Response, data: Any) -> str | None:
        if self.last_path is not None and dig(data, self.last_path) is True:
            return None
        token = dig(data, self.token_path)
        return str(token) if token else None


class OffsetPaginator(Paginator[int]):
    """`offset`/`limit` paging (Redmine: `offset`, `limit`, `total_count`).

    Without a total, a short page ends the listing. Offsets are weaker than tokens or keysets
    (rows shift when records change during paging), so connectors order by update time and
    rely on the overlap re-read; use it only where the tool offers nothing better.
    https://www.redmine.org/projects/redmine/wiki/Rest_api#Collection-resources-and-pagination
    """

    def __init__(
        self,
        page_size: int,
        records: Callable[[Any], Sequence[Any]],
        *,
        start: int = 0,
        total_path: Sequence[str] | None = ("total_count",),
    ) -> None:
        super().__init__(start)
        self.page_size = page_size
        self.records = records
        self.total_path = tuple(total_path) if total_path else None

    def get_next(self, response: httpx.Response, data: Any) -> int | None:
        current = self.current_value or 0
        got = len(self.records(data))
        if got == 0:
            return None
        following = current + got
        total = dig(data, self.total_path) if self.total_path else None
        if isinstance(total, int):
            return following if following < total else None
        return following if got >= self.page_size else None


class PageNumberPaginator(Paginator[int]):
    """`page=N` paging (GitLab's offset pagination): the `X-Next-Page` header when present,
    else "a full page means there may be another".
    https://docs.gitlab.com/api/rest/#offset-based-pagination

    With `block_path`, a pagination block in the body wins: `{current_page, total_pages}`
    (Aha!'s `pagination`), the next page being the *answered* page + 1, so a server that keeps
    answering page 1 trips the repeated-token guard.
    https://www.aha.io/api#pagination
    """

    def __init__(
        self,
        page_size: int,
        records: Callable[[Any], Sequence[Any]],
        *,
        start: int = 1,
        header: str = "x-next-page",
        block_path: Sequence[str] | None = None,
    ) -> None:
        super().__init__(start)
        self.page_size = page_size
        self.records = records
        self.header = header
        self.block_path = tuple(block_path) if block_path else None

    def get_next(self, response: httpx.Response, data: Any) -> int | None:
        block = dig(data, self.block_path) if self.block_path else None
        if isinstance(block, dict):
            current, total = block.get("current_page"), block.get("total_pages")
            if isinstance(current, int) and isinstance(total, int):
                return current + 1 if current < total else None
        if self.header in response.headers:
            value = response.headers[self.header].strip()
            return int(value) if value else None
        if len(self.records(data)) < self.page_size:
            return None
        return (self.current_value or 1) + 1


class LinkHeaderPaginator(Paginator[str]):
    """RFC 8288 `Link: <https://...&page=3>; rel="next"` (GitHub, GitLab keyset).

    The token is the full next URL; `SourceClient` accepts absolute URLs.
    https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
    """

    def __init__(self, rel: str = "next") -> None:
        super().__init__(None)
        self.rel = rel

    def get_next(self, response: httpx.Response, data: Any) -> str | None:
        link = response.links.get(self.rel)
        url = link.get("url") if link else None
        return url or None


class RelayCursorPaginator(Paginator[str]):
    """GraphQL relay connections: `pageInfo { hasNextPage endCursor }` (Linear).
    https://linear.app/developers/pagination
    """

    def __init__(self, page_info_path: Sequence[str]) -> None:
        super().__init__(None)
        self.page_info_path = tuple(page_info_path)

    def get_next(self, response: httpx.Response, data: Any) -> str | None:
        info = dig(data, self.page_info_path) or {}
        if not info.get("hasNextPage"):
            return None
        cursor = info.get("endCursor")
        if not cursor:
            raise ConnectorError(f"pageInfo says hasNextPage but gives no endCursor at {'.'.join(self.page_info_path)}")
        return str(cursor)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RowKey = tuple[str, str]


class UpdatedSinceWindow:
    """Paging a list sorted by update time, ascending, as a keyset on time (Redmine, GitHub,
    GitLab's offset mode): every request asks `updated >= anchor` from the window's start.

    Why not plain offset or page-number paging: over a list sorted by update time it is not
    safe. A record edited while we page jumps to the end of the list, every row after its old
    place moves up one, and the row that crosses the page boundary is never read. The run's
    final cursor then lies past that row (the edited record is the newest), so the incremental
    overlap does not bring it back either, and upsert-if-newer cannot recover a row that was
    never read. Anchoring each request on the newest time read so far makes edits and
    deletions behind the anchor harmless: they cannot shift unread rows out of reach.

    - `anchor` (floored to the tool's filter `resolution`) and `offset` are what the next
      request asks for; the offset only grows while one anchor holds more than a page of rows
      (bulk edits) and is always a whole number of pages (`page_number` for `page=N` tools).
    - Rows at the anchor come again: they are recognised by a key (id, update time as sent) and
      dropped by `take`, never counted twice. A tool whose `>=` is fuzzy (Redmine's means
      "later than the second before") may also send rows of the previous step: the keys of
      the last two resolution steps before the anchor are kept for that.
    - The repeated-page guard: an offset step that answers exactly the rows of the step before
      (a server that ignores the paging parameters) raises `RepeatedPageToken`.
    """

    def __init__(
        self,
        since: datetime | None,
        *,
        page_size: int,
        resolution: timedelta = timedelta(seconds=1),
        what: str = "the list",
    ) -> None:
        self.page_size = page_size
        self.resolution = resolution
        self.what = what
        self.anchor = self.floor(since) if since is not None else None
        self.offset = 0
        self.has_more = True
        self._seen: dict[RowKey, datetime | None] = {}
        self._previous: set[RowKey] = set()

    def floor(self, when: datetime) -> datetime:
        """`when` rounded down to the filter's resolution (a filter never asks for later)."""
        step = self.resolution // timedelta(microseconds=1)
        micros = (when - _EPOCH) // timedelta(microseconds=1)
        return _EPOCH + timedelta(microseconds=micros - micros % step)

    @property
    def page_number(self) -> int:
        """The 1-based page number of `offset`, for tools that take `page=N`."""
        return self.offset // self.page_size + 1

    def take(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        key: Callable[[dict[str, Any]], RowKey],
        updated: Callable[[dict[str, Any]], datetime | None],
        more: bool | None = None,
    ) -> list[dict[str, Any]]:
        """The rows of one answer not read before, in order; moves the window on.

        `more`: whether the tool says another page follows (a total, a next link, a next-page
        header); None means a full page may have a successor.
        """
        keys = [key(row) for row in rows]
        if self.offset > 0 and rows and set(keys) == self._previous:
            raise RepeatedPageToken(
                f"{self.what}: offset {self.offset} after {self.anchor} answered the page it gave before; stopping"
            )
        self._previous = set(keys)
        fresh: list[dict[str, Any]] = []
        for row, row_key in zip(rows, keys, strict=True):
            if row_key not in self._seen:
                fresh.append(row)
            when = updated(row)
            self._seen[row_key] = self.floor(when) if when is not None else None
        if more is False or (more is None and len(rows) < self.page_size) or not rows:
            self.has_more = False
            return fresh
        when = updated(rows[-1])
        last = self.floor(when) if when is not None else None
        if last is None or (self.anchor is not None and last <= self.anchor):
            # Still inside the anchor's step(s): never move the anchor back (a fuzzy `>=` can
            # end a page on the step before); take the next page of this window instead.
            self.offset += len(rows)
        else:
            self.anchor, self.offset = last, 0
            keep_from = last - 2 * self.resolution
            self._seen = {k: t for k, t in self._seen.items() if t is not None and t >= keep_from}
        return fresh


async def ahead_in_order(calls: Iterable[Awaitable[T]], window: int) -> AsyncIterator[T]:
    """Await `calls` with up to `window` of them running at once; yield their results in the
    order of `calls`.

    For pages whose addresses are all known up front (a listing of ids, then one request per
    chunk of them): the run then waits for one page's latency per `window` pages instead of
    one per page, and still stores the pages in order, so a page's checkpoint never passes a
    page not stored yet. A call is started only when a slot frees (so at most `window`
    results wait in memory); the first failure cancels the calls still running and
    propagates, as a failed page does; so does closing the iterator early.
    """
    running: deque[asyncio.Future[T]] = deque()
    try:
        for call in calls:
            running.append(asyncio.ensure_future(call))
            if len(running) >= window:
                yield await running.popleft()
        while running:
            yield await running.popleft()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


__all__ = [
    "LinkHeaderPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "PageTokenPaginator",
    "Paginator",
    "RelayCursorPaginator",
    "RepeatedPageToken",
    "UpdatedSinceWindow",
    "ahead_in_order",
    "dig",
]

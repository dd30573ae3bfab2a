"""Paginators: small strategy objects that read "where is the next page" from a response.

Modelled on the Singer SDK's `singer_sdk/pagination.py`: a connector asks `advance(response,
data)` after each page and stops when `has_more` is false; `current_value` is the token to
send with the next request. Every paginator refuses a token it has already seen
(`RepeatedPageToken`): a server that hands out the same token twice would otherwise loop a
sync forever while looking busy.

`data` is the decoded JSON body (the HTTP layer already parsed it); `response` gives headers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
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


__all__ = [
    "LinkHeaderPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "PageTokenPaginator",
    "Paginator",
    "RelayCursorPaginator",
    "RepeatedPageToken",
    "dig",
]

"""Where an issue lives, by its global id, for tools that address one issue by a scope and a
number while webhooks, the store and deletions name it by its global id.

GitHub's `GET /repos/{owner}/{repo}/issues/{number}`
(https://docs.github.com/en/rest/issues/issues#get-an-issue) and GitLab's
`GET /projects/:id/issues/:issue_iid` (https://docs.gitlab.com/api/issues/#single-project-issue)
take no global id. The connector remembers (scope, number) of every issue it sees; an id it
does not know is looked up by listing the scope once, and a complete listing younger than
`fresh_for` seconds answers "unknown id = gone" without listing again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

INDEX_FRESH = 60.0  # seconds a complete id listing is trusted to answer "unknown id = gone"

Where = tuple[str, int]
"""(scope, number): (owner/repo, number) on GitHub, (project id, iid) on GitLab."""


class IssueLocator:
    """Issue id -> (scope, number), filled by everything the connector reads."""

    def __init__(self, clock: Callable[[], float], fresh_for: float = INDEX_FRESH) -> None:
        self._clock = clock
        self._fresh_for = fresh_for
        self._where: dict[str, Where] = {}
        self._complete_at: float | None = None

    def remember(self, native_id: str, scope: str, number: int) -> None:
        self._where[native_id] = (scope, number)

    def forget(self, native_id: str) -> None:
        """The issue is gone, or was found elsewhere than remembered."""
        self._where.pop(native_id, None)

    def get(self, native_id: str) -> Where | None:
        return self._where.get(native_id)

    def listing_started(self) -> float:
        """Call before a complete listing of the scope; pass the result to `listing_complete`."""
        return self._clock()

    def listing_complete(self, started: float) -> None:
        """Every issue in scope was remembered by a listing that started at `started`."""
        self._complete_at = started

    async def locate(self, native_id: str, list_ids: Callable[[], AsyncIterator[str]]) -> Where | None:
        """Where the issue is: remembered, else after one fresh complete listing (`list_ids`,
        which remembers what it lists); None for an id still unknown then (gone)."""
        where = self._where.get(native_id)
        fresh = self._complete_at is not None and self._clock() - self._complete_at <= self._fresh_for
        if where is None and not fresh:
            async for _ in list_ids():
                pass
            where = self._where.get(native_id)
        return where

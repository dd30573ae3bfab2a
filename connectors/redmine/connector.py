"""Redmine: REST pulls only (Redmine has no outbound webhooks: polling plus the id sweep).

API reference:
- REST API overview, auth, paging: https://www.redmine.org/projects/redmine/wiki/Rest_api
- issues (list filters, sort, one issue): https://www.redmine.org/projects/redmine/wiki/Rest_Issues
- projects: https://www.redmine.org/projects/redmine/wiki/Rest_Projects
- current user: https://www.redmine.org/projects/redmine/wiki/Rest_Users#GET-2

Filters use Redmine's generic query syntax (`f[]=field&op[field]=...&v[field][]=...`), the
same the web UI sends, because the short form (`updated_on=>=...`) cannot combine several
projects: `project_id` in the short form names one project and is resolved before filtering.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from datetime import UTC, datetime
from typing import Any, ClassVar, Unpack

import httpx

from connectors.base import Connector, ConnectorConfig, ConnectorError, ConnectorOptions, Page
from connectors.cursors import DatetimeCursor, parse_time
from connectors.paging import RepeatedPageToken, UpdatedSinceWindow
from connectors.redmine.config import RedmineConfig

ISSUES = "/issues.json"
ISSUE = "/issues/{}.json"
PROJECT = "/projects/{}.json"
CURRENT_USER = "/users/current.json"
# Redmine 1.x answered `2011/01/12 16:00:31 -0800`; 2.x and later ISO 8601 with `Z`.
_OLD_TIME_FORMAT = "%Y/%m/%d %H:%M:%S %z"


class _ApiKeyAuth(httpx.Auth):
    """`X-Redmine-API-Key` added per request, so the key never sits in the client's headers."""

    def __init__(self, key: str) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Redmine-API-Key"] = self._key
        yield request


def redmine_time(value: Any) -> datetime | None:
    """A Redmine timestamp (ISO 8601, or 1.x's `2011/01/12 16:00:31 -0800`) as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        pass
    try:
        return datetime.strptime(value, _OLD_TIME_FORMAT).astimezone(UTC)
    except ValueError:
        return None


def filter_time(when: datetime) -> str:
    """A filter value Redmine accepts for `updated_on` (whole seconds, UTC, rounded down)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RedmineConnector(Connector):
    tool: ClassVar[str] = "redmine"
    config_model: ClassVar[type[ConnectorConfig]] = RedmineConfig
    supports_webhooks: ClassVar[bool] = False

    config: RedmineConfig

    def __init__(self, name: str, config: ConnectorConfig, **options: Unpack[ConnectorOptions]) -> None:
        super().__init__(name, config, **options)
        self.http = self.source_client(
            auth=_ApiKeyAuth(self.config.api_key.get_secret_value()),
            auth_hint=(
                f"sources.{name}.api_key: the API access key of a Redmine user who can view the issues in scope "
                f"(My account > API access key), and that the REST API is enabled (Administration > Settings > API)"
            ),
        )
        self._checked = False
        self._project_ids: list[int] | None = None

    # -------------------------------------------------------- scope

    async def check_access(self) -> None:
        """`GET /users/current.json` once per run.

        Redmine answers a wrong or revoked key on `/issues.json` with 200 and the issues an
        anonymous visitor may see (often none): a listing with a bad key looks like mass
        deletion to the id sweep. `/users/current.json` answers 401 instead, which the HTTP
        layer turns into `AuthFailed`.
        """
        if not self._checked:
            await self.http.get_json(CURRENT_USER)
            self._checked = True

    async def project_ids(self) -> list[int]:
        """Numeric ids of the configured projects (the generic `project_id` filter takes ids)."""
        if self._project_ids is None:
            ids: list[int] = []
            for identifier in self.config.projects:
                data, _ = await self.http.get_json(PROJECT.format(identifier), allow_404=True)
                project = data.get("project") if isinstance(data, dict) else None
                if not isinstance(project, dict) or not isinstance(project.get("id"), int):
                    raise ConnectorError(
                        f"source {self.name!r}: Redmine project {identifier!r} does not exist or is not visible to "
                        f"this API key; fix sources.{self.name}.projects"
                    )
                ids.append(project["id"])
            self._project_ids = ids
        return self._project_ids

    async def _filters(self, **extra: tuple[str, list[str]]) -> dict[str, Any]:
        """Generic filter params: every status (`status_id` `*`), the project scope, and `extra`."""
        fields = ["status_id"]
        params: dict[str, Any] = {"op[status_id]": "*"}
        ids = await self.project_ids()
        if ids:
            fields.append("project_id")
            params["op[project_id]"] = "="
            params["v[project_id][]"] = [str(i) for i in ids]
        for field, (op, values) in extra.items():
            fields.append(field)
            params[f"op[{field}]"] = op
            params[f"v[{field}][]"] = values
        params["f[]"] = fields
        return params

    # -------------------------------------------------------- pull

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """Issues in ascending `updated_on` order, about `page_size` at a time.

        Not plain `offset` paging, which skips a row whenever an issue already read is edited
        while we page: each page is asked for as `updated_on >= <second of the last row read>`
        from offset 0 (`connectors.paging.UpdatedSinceWindow` says why and how). Redmine's
        `>=` on a time is in fact "later than the second before" and the database may keep
        sub-second times (SQLite does), so a window also returns rows of the second before, in
        sub-second rather than id order: the window recognises rows already read by
        `(id, updated_on)`. Each yielded page's cursor is the newest `(updated_on, id)` read so far.
        """
        await self.check_access()
        state = DatetimeCursor.parse(cursor)
        window = UpdatedSinceWindow(
            state.since(self.overlap), page_size=self.config.page_size, what=f"{self.name}: Redmine {ISSUES}"
        )
        while window.has_more:
            extra = {"updated_on": (">=", [filter_time(window.anchor)])} if window.anchor is not None else {}
            params = await self._filters(**extra)
            params.update({"sort": "updated_on,id", "offset": window.offset, "limit": window.page_size})
            data, _ = await self.http.get_json(ISSUES, params)
            issues = self._issues(data)
            total = data.get("total_count")
            more = window.offset + len(issues) < total if isinstance(total, int) else None
            fresh = window.take(
                issues, key=lambda i: (str(i["id"]), str(i.get("updated_on"))), updated=_updated, more=more
            )
            if fresh:
                for issue in fresh:
                    updated = _updated(issue)
                    if updated is not None:
                        state.observe(updated, str(issue["id"]))
                yield Page(records=fresh, cursor=state.serialize() or cursor)

    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        """`GET /issues/{id}.json`; None when the issue is gone (404) or no longer visible."""
        await self.check_access()
        data, _ = await self.http.get_json(ISSUE.format(native_id), allow_404=True)
        issue = data.get("issue") if isinstance(data, dict) else None
        if issue is None and isinstance(data, dict) and "id" in data and "subject" in data:
            issue = data  # some 1.x servers answered the issue unwrapped
        if not isinstance(issue, dict):
            return None
        project = (issue.get("project") or {}).get("id")
        if self.config.projects and project is not None and project not in await self.project_ids():
            return None
        return issue

    async def list_ids(self) -> AsyncIterator[str]:
        """Every issue id in scope, ascending, as a keyset on the id (`issue_id >= last + 1`).

        Redmine cannot select fields, so each page carries whole issues; only the ids are kept.
        A keyset rather than offsets, because a deletion during an offset listing shifts an
        unread id into the part already read, and the sweep would tombstone a live issue.
        """
        await self.check_access()
        after = 0
        limit = self.config.page_size
        while True:
            params = await self._filters(issue_id=(">=", [str(after + 1)]))
            params.update({"sort": "id", "limit": limit})
            data, _ = await self.http.get_json(ISSUES, params)
            issues = self._issues(data)
            if not issues:
                return
            ids = [int(i["id"]) for i in issues]
            if max(ids) <= after:
                raise RepeatedPageToken(f"{self.name}: Redmine listed ids up to {after} again; stopping")
            for native_id in ids:
                if native_id > after:
                    yield str(native_id)
            after = max(ids)
            total = data.get("total_count")
            if len(issues) < limit or (isinstance(total, int) and len(issues) >= total):
                return

    def native_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    def _issues(self, data: Any) -> list[dict[str, Any]]:
        issues = data.get("issues") if isinstance(data, dict) else None
        if not isinstance(issues, list) or not all(isinstance(i, dict) and "id" in i for i in issues):
            raise ConnectorError(f"{self.name}: {ISSUES} answered without an 'issues' list of issues with ids")
        return issues


def _updated(issue: dict[str, Any]) -> datetime | None:
    return redmine_time(issue.get("updated_on"))


__all__ = ["RedmineConnector", "filter_time", "redmine_time"]

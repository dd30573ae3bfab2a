"""GitLab (REST v4): project or group issues for pulls, token-checked webhooks for pushes.

API reference:
- list issues (project, group): https://docs.gitlab.com/api/issues/#list-project-issues
- single project issue:         https://docs.gitlab.com/api/issues/#single-project-issue
- pagination (offset, keyset):  https://docs.gitlab.com/api/rest/#pagination
- rate limits:                  https://docs.gitlab.com/security/rate_limits/
- webhooks:                     https://docs.gitlab.com/user/project/integrations/webhooks/
- webhook events:               https://docs.gitlab.com/user/project/integrations/webhook_events/
- resource state events:        https://docs.gitlab.com/api/resource_state_events/#list-project-issue-state-events

Native id. A record's native id is the issue's global `id` (mappings/gitlab.yaml's
`native_id`), not `group/project#iid`: the id survives project renames and transfers of the
project. Only administrators may read `GET /issues/:id`, so the connector keeps an index
id -> (project id, iid), filled by everything that sees an issue (fetch, list_ids, webhook
parsing; the hub's inbox worker parses a delivery with the same connector right before it
refetches), and `fetch_one` of an unknown id lists the scope once to rebuild it.

Epics and iterations come only as the issue JSON carries them (`epic`, `iteration` on
Premium); no extra calls. Deleted issues send no webhook: the deletion sweep finds them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Generator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Unpack
from urllib.parse import quote

import httpx

from connectors.auth import header_value
from connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorError,
    ConnectorOptions,
    IgnoreEvent,
    Page,
    RefetchRecord,
    UpsertRecord,
    WebhookDelivery,
    WebhookEvent,
    WebhookRejected,
)
from connectors.cursors import parse_time
from connectors.gitlab.config import GitLabConfig
from connectors.http import epoch_reset_hint
from connectors.locator import IssueLocator, Where
from connectors.multi import OrderKey, RecordStream, ScopeCursors, epoch, merged_pages
from connectors.paging import LinkHeaderPaginator, PageNumberPaginator, Paginator, UpdatedSinceWindow

API = "/api/v4"
MAX_PER_PAGE = 100  # GitLab's ceiling for per_page
SIGNATURE_TOLERANCE = 300  # seconds between webhook-timestamp and now

ISSUE_HOOKS = frozenset({"Issue Hook", "Confidential Issue Hook"})
NOTE_HOOKS = frozenset({"Note Hook", "Confidential Note Hook"})
# Work item types the issues API lists (others, e.g. Epic or Objective, are not issues here).
ISSUE_WORK_ITEM_TYPES = frozenset({"issue", "incident", "task", "test case", "test_case", "ticket"})


class _TokenAuth(httpx.Auth):
    """`PRIVATE-TOKEN: ...` (access tokens) or `Authorization: Bearer ...` (OAuth), per request."""

    def __init__(self, token: str, bearer: bool) -> None:
        self._token = token
        self._bearer = bearer

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._bearer:
            request.headers["Authorization"] = f"Bearer {self._token}"
        else:
            request.headers["PRIVATE-TOKEN"] = self._token
        yield request


def _ref(id_or_path: str | int) -> str:
    """A project or group as a path segment: 42, or `group%2Fproject` (URL-encoded full path)."""
    return quote(str(id_or_path), safe="")


def _updated(issue: dict[str, Any]) -> datetime | None:
    value = issue.get("updated_at")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _order_key(issue: dict[str, Any]) -> OrderKey:
    ident = issue.get("id")
    return (_updated(issue) or epoch(), ident if isinstance(ident, int) else 0)


class _IssueStream(RecordStream):
    """One project's (or group's) issues in ascending `updated_at` order.

    Keyset pagination (where the instance offers it) follows the `Link` header: GitLab's
    keyset is on (updated_at, id), which edits cannot shift. Offset pagination is not asked by
    page number alone: a page-numbered list sorted by update time shifts when an issue already
    read is edited, and the issue at the boundary would be skipped for good. Each request is
    `updated_after=<millisecond of the newest row read>` (inclusive), with `page` stepping
    only through a millisecond that holds more than a page (`UpdatedSinceWindow`).
    """

    def __init__(self, connector: GitLabConnector, path: str, scope: str, since: datetime | None) -> None:
        super().__init__(scope)
        self.connector = connector
        self.path = path
        self.params: dict[str, Any] = {
            "scope": "all",
            "order_by": "updated_at",
            "sort": "asc",
            "per_page": connector.per_page,
        }
        self.window: UpdatedSinceWindow | None = None
        self.paginator: Paginator[Any] | None = None
        if connector.config.pagination == "keyset":
            self.params["pagination"] = "keyset"
            if since is not None:
                self.params["updated_after"] = _gitlab_time(since)
            self.paginator = connector.paginator()
        else:
            self.window = UpdatedSinceWindow(
                since,
                page_size=connector.per_page,
                resolution=timedelta(milliseconds=1),
                what=f"{connector.name}: {path}",
            )

    @property
    def has_more(self) -> bool:
        return self.paginator.has_more if self.paginator is not None else bool(self.window and self.window.has_more)

    async def fetch_page(self) -> None:
        if self.paginator is not None:
            data, response = await self.connector.get_page(self.path, self.params, self.paginator)
            self.pending.extend(self.connector.issues_of(data, self.path))
            self.paginator.advance(response, data)
            return
        assert self.window is not None
        params = dict(self.params)
        if self.window.anchor is not None:
            params["updated_after"] = _gitlab_time(self.window.anchor)
        if self.window.page_number > 1:
            params["page"] = self.window.page_number
        data, response = await self.connector.http.get_json(self.path, params)
        issues = self.connector.issues_of(data, self.path)
        next_page = response.headers.get("x-next-page")
        more = bool(next_page.strip()) if next_page is not None else None
        self.pending.extend(self.window.take(issues, key=_row_key, updated=_updated, more=more))


def _gitlab_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row_key(issue: dict[str, Any]) -> tuple[str, str]:
    return str(issue.get("id")), str(issue.get("updated_at"))


class GitLabConnector(Connector):
    tool: ClassVar[str] = "gitlab"
    config_model: ClassVar[type[ConnectorConfig]] = GitLabConfig
    supports_webhooks: ClassVar[bool] = True
    supports_history: ClassVar[bool] = True
    # Never stored with a delivery: https://docs.gitlab.com/user/project/integrations/webhooks/#custom-headers
    webhook_secret_headers: ClassVar[frozenset[str]] = frozenset({"x-gitlab-token", "webhook-signature"})

    config: GitLabConfig

    def __init__(self, name: str, config: ConnectorConfig, **options: Unpack[ConnectorOptions]) -> None:
        super().__init__(name, config, **options)
        config = self.config
        self.http = self.source_client(
            auth=_TokenAuth(config.token.get_secret_value(), config.oauth),
            auth_hint=(
                f"sources.{name}.token: a GitLab access token with the read_api scope and at least Reporter "
                f"(Guest for public projects) on the projects/groups in scope"
                + ("" if config.oauth else " (oauth = true for OAuth tokens)")
            ),
            # GitLab sends RateLimit-Reset (epoch seconds) with its 429s, beside Retry-After.
            wait_hints=[epoch_reset_hint("ratelimit-reset", remaining_header="ratelimit-remaining")],
        )
        self.per_page = min(config.page_size, MAX_PER_PAGE)
        self.locator = IssueLocator(self.clock)  # issue id -> (project id, iid)

    # -------------------------------------------------------- scope and paging

    def scopes(self) -> list[tuple[str, str]]:
        """(list path, cursor name) of each project or group in scope."""
        if self.config.projects:
            return [(f"{API}/projects/{_ref(p)}/issues", f"project:{p}") for p in self.config.projects]
        return [(f"{API}/groups/{_ref(g)}/issues", f"group:{g}") for g in self.config.groups]

    def paginator(self) -> Paginator[Any]:
        """Keyset: the Link header's next URL. Offset: `X-Next-Page` (empty on the last page)."""
        if self.config.pagination == "keyset":
            return LinkHeaderPaginator()
        return PageNumberPaginator(self.per_page, lambda data: data if isinstance(data, list) else [])

    async def get_page(self, path: str, params: Mapping[str, Any], paginator: Paginator[Any]) -> tuple[Any, Any]:
        token = paginator.current_value
        if isinstance(token, str):  # keyset: the next URL carries every parameter
            return await self.http.get_json(token)
        query = dict(params)
        if isinstance(token, int) and token > 1:
            query["page"] = token
        return await self.http.get_json(path, query)

    def in_scope(self, project: Mapping[str, Any] | None, project_id: Any) -> bool:
        """Whether a hook's project is in scope. Groups named by numeric id cannot be checked
        offline (hooks carry the namespace path only): deliveries for them are accepted."""
        ids = {str(project_id)} if project_id is not None else set()
        path = ""
        if isinstance(project, Mapping):
            if project.get("id") is not None:
                ids.add(str(project["id"]))
            path = str(project.get("path_with_namespace") or "").lower()
        if self.config.projects:
            wanted = {p.lower() for p in self.config.projects}
            return bool(ids & wanted) or (path != "" and path in wanted)
        if any(g.isdigit() for g in self.config.groups):
            return True
        return any(path.startswith(g.lower() + "/") for g in self.config.groups)

    # -------------------------------------------------------- records

    def issues_of(self, data: Any, path: str) -> list[dict[str, Any]]:
        if not isinstance(data, list) or not all(isinstance(i, dict) and "id" in i for i in data):
            raise ConnectorError(f"{self.name}: {path} did not return a list of issues with ids")
        for issue in data:
            self._remember(issue.get("id"), issue.get("project_id"), issue.get("iid"))
        return data

    def _remember(self, issue_id: Any, project_id: Any, iid: Any) -> None:
        if issue_id is not None and project_id is not None and isinstance(iid, int):
            self.locator.remember(str(issue_id), str(project_id), iid)

    def native_id(self, record: dict[str, Any]) -> str:
        attrs = record.get("object_attributes")
        if isinstance(attrs, dict) and "id" in attrs:  # an Issue Hook delivery (hook_upsert)
            return str(attrs["id"])
        return str(record["id"])

    # -------------------------------------------------------- pull

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """Issues updated on or after each scope's cursor minus the overlap, merged across
        projects/groups into ascending `updated_at` order (`connectors.multi`).

        Both paging modes are safe against issues edited while we page (`_IssueStream`).
        """
        state = ScopeCursors.parse(cursor)
        streams = [
            _IssueStream(self, path, scope, state.get(scope).since(self.overlap)) for path, scope in self.scopes()
        ]
        async for page in merged_pages(
            streams, state, page_size=self.config.page_size, order_key=_order_key, native_id=self.native_id
        ):
            yield page

    async def list_ids(self) -> AsyncIterator[str]:
        """Every issue id in scope, 100 a page; rebuilds the id index as it goes."""
        started = self.locator.listing_started()
        for path, _ in self.scopes():
            paginator = self.paginator()
            params: dict[str, Any] = {"scope": "all", "order_by": "created_at", "sort": "asc", "per_page": 100}
            if self.config.pagination == "keyset":
                params["pagination"] = "keyset"
            while paginator.has_more:
                data, response = await self.get_page(path, params, paginator)
                for issue in self.issues_of(data, path):
                    yield str(issue["id"])
                paginator.advance(response, data)
        self.locator.listing_complete(started)

    async def locate(self, native_id: str) -> Where | None:
        """(project id, iid) of an issue id (connectors/locator.py)."""
        return await self.locator.locate(native_id, self.list_ids)

    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        """`GET /projects/:id/issues/:iid` for the issue the id index names (404: gone)."""
        where = await self.locate(native_id)
        if where is None:
            return None
        project_id, iid = where
        data, _ = await self.http.get_json(f"{API}/projects/{_ref(project_id)}/issues/{iid}", allow_404=True)
        if not isinstance(data, dict) or str(data.get("id")) != native_id:
            self.locator.forget(native_id)
            return None
        return data

    async def fetch_history(self, native_id: str) -> list[dict[str, Any]]:
        """`GET /projects/:id/issues/:iid/resource_state_events`, every page: the issue's
        state changes (`{id, state: opened|closed|reopened, created_at, resource_id, user}`),
        oldest first. Offset pages (`X-Next-Page`): the list only grows at its end, so pages
        cannot shift under us. A 404 or an id no listing knows is an empty history.
        https://docs.gitlab.com/api/resource_state_events/#list-project-issue-state-events
        """
        where = await self.locate(native_id)
        if where is None:
            return []
        project_id, iid = where
        path = f"{API}/projects/{_ref(project_id)}/issues/{iid}/resource_state_events"
        paginator = PageNumberPaginator(self.per_page, lambda data: data if isinstance(data, list) else [])
        events: list[dict[str, Any]] = []
        while paginator.has_more:
            params: dict[str, Any] = {"per_page": self.per_page}
            if paginator.current_value and paginator.current_value > 1:
                params["page"] = paginator.current_value
            data, response = await self.http.get_json(path, params, allow_404=True)
            if data is None:
                return []
            if not isinstance(data, list):
                raise ConnectorError(f"{self.name}: {path} did not return a list of state events")
            events.extend(event for event in data if isinstance(event, dict))
            paginator.advance(response, data)
        return events

    # -------------------------------------------------------- push

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """`X-Gitlab-Token` equals the webhook's secret token (constant time); with a signing
        token configured, the body's signature must hold too (the token alone does not bind the
        body: anyone who saw one delivery could replay it with another body)."""
        secret = self.config.webhook_secret
        if secret is None:
            raise WebhookRejected(
                f"source {self.name!r} has no webhook_secret: set the same secret token in the GitLab webhook and "
                f"in sources.{self.name}.webhook_secret"
            )
        given = header_value(headers, "X-Gitlab-Token")
        if not given:
            raise WebhookRejected("missing X-Gitlab-Token header")
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            raise WebhookRejected("X-Gitlab-Token does not match the webhook secret")
        if self.config.webhook_signing_token is not None:
            self._verify_signature(headers, body, self.config.webhook_signing_token.get_secret_value())

    def _verify_signature(self, headers: Mapping[str, str], body: bytes, token: str) -> None:
        """GitLab's signing token (Standard Webhooks): `webhook-signature: v1,<base64 HMAC-SHA256
        of "{webhook-id}.{webhook-timestamp}.{body}">`, timestamp within 5 minutes of now.
        https://www.standardwebhooks.com/ (a `whsec_` token is the base64 of the key)."""
        msg_id, stamp = header_value(headers, "webhook-id"), header_value(headers, "webhook-timestamp")
        signatures = header_value(headers, "webhook-signature")
        if not (msg_id and stamp and signatures):
            raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature header")
        try:
            sent_at = int(stamp)
        except ValueError:
            raise WebhookRejected("webhook-timestamp is not a number") from None
        if abs(self.clock() - sent_at) > SIGNATURE_TOLERANCE:
            raise WebhookRejected("webhook-timestamp is more than 5 minutes away from now")
        key = base64.b64decode(token[len("whsec_") :]) if token.startswith("whsec_") else token.encode()
        signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
        for candidate in signatures.split():
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(expected, value.encode()):
                return
        raise WebhookRejected("webhook-signature does not match the body")

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Route a verified delivery to events.

        Delivery id: `Idempotency-Key` (the same on GitLab's retries of one event), else
        `X-Gitlab-Event-UUID`, else a hash of the body. `Issue Hook` deliveries become a
        refetch of the issue: the hook's `object_attributes` name milestone and iteration by
        id only and carry no epic, so applying them would drop what the REST issue gives
        (`hook_upsert = true` applies them as delivered; mappings/gitlab.yaml reads both
        shapes). A `Note Hook` on an issue refetches the issue; anything else is ignored.
        """
        payload = self.json_object(body)
        delivery_id = self.delivery_id(headers, body, "Idempotency-Key", "X-Gitlab-Event-UUID")
        event = (header_value(headers, "X-Gitlab-Event") or "").strip()
        return WebhookDelivery(delivery_id=delivery_id, events=self._events(event, payload), payload=payload)

    def _events(self, event: str, payload: dict[str, Any]) -> list[WebhookEvent]:
        kind = str(payload.get("object_kind") or "")
        attrs = payload.get("object_attributes")
        attrs = attrs if isinstance(attrs, dict) else {}
        project = payload.get("project") if isinstance(payload.get("project"), dict) else None
        if event in ISSUE_HOOKS or kind in ("issue", "work_item"):
            action = attrs.get("action") or "(no action)"
            if attrs.get("id") is None:
                return [IgnoreEvent(f"{event or kind} {action} without object_attributes.id")]
            work_type = str(attrs.get("type") or "issue").lower()
            if kind == "work_item" and work_type not in ISSUE_WORK_ITEM_TYPES:
                return [IgnoreEvent(f"work item of type {attrs.get('type')!r} is not an issue")]
            project_id = attrs.get("project_id", (project or {}).get("id"))
            if not self.in_scope(project, project_id):
                where = (project or {}).get("path_with_namespace") or project_id
                return [IgnoreEvent(f"issue {attrs.get('iid')} of project {where} is outside this source's scope")]
            self._remember(attrs["id"], project_id, attrs.get("iid"))
            if self.config.hook_upsert and attrs.get("updated_at") and attrs.get("state"):
                return [UpsertRecord(payload)]
            return [RefetchRecord(str(attrs["id"]))]
        if event in NOTE_HOOKS or kind == "note":
            noteable = attrs.get("noteable_type")
            issue = payload.get("issue")
            if noteable != "Issue" or not isinstance(issue, dict) or issue.get("id") is None:
                return [IgnoreEvent(f"comment on {noteable or 'something other than an issue'} is not synced")]
            project_id = issue.get("project_id", payload.get("project_id"))
            if not self.in_scope(project, project_id):
                return [IgnoreEvent(f"comment on issue {issue.get('iid')} outside this source's scope")]
            self._remember(issue["id"], project_id, issue.get("iid"))
            return [RefetchRecord(str(issue["id"]))]
        return [IgnoreEvent(f"GitLab event {event or kind or '(no X-Gitlab-Event)'!r} is not synced")]

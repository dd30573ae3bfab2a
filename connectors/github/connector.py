"""GitHub Issues: the REST issues list per repository for pulls, signed webhooks for pushes.

API reference (REST, version 2022-11-28):
- list repository issues: https://docs.github.com/en/rest/issues/issues#list-repository-issues
- get an issue:           https://docs.github.com/en/rest/issues/issues#get-an-issue
- issue events:           https://docs.github.com/en/rest/issues/events#list-issue-events
- organisation repos:     https://docs.github.com/en/rest/repos/repos#list-organization-repositories
- pagination:             https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
- rate limits:            https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
- webhooks:               https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues
- signatures:             https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries

Native id. A record's native id is the issue's numeric `id` (what mappings/github.yaml's
`github_issue_id` reads), not `owner/repo#number`: the id survives repository renames and
owner changes, while the key would change and make the deletion sweep tombstone and
re-create every issue of a renamed repository. GitHub has no "get issue by id", so the
connector keeps an index id -> (repository, number), filled by everything that sees an issue
(fetch, list_ids, webhook parsing; the hub's inbox worker parses a delivery with the same
connector right before it refetches). `fetch_one` of an id the index does not know lists
the scope once (as `list_ids` does) to rebuild it; an id still unknown after a fresh listing
is gone (deleted, transferred out of scope), so `None` is the truthful answer.

Pull requests. The issues list returns pull requests too (items with a `pull_request` key);
they are dropped here and never reach the mapping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, Unpack

import httpx

from connectors.auth import BearerAuth, header_value
from connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorError,
    ConnectorOptions,
    DeleteRecord,
    IgnoreEvent,
    Page,
    RefetchRecord,
    UpsertRecord,
    WebhookDelivery,
    WebhookEvent,
    WebhookRejected,
    require_hmac_sha256,
)
from connectors.cursors import parse_time
from connectors.github.config import GitHubConfig
from connectors.http import RequestFailed, epoch_reset_hint
from connectors.locator import IssueLocator, Where
from connectors.multi import OrderKey, RecordStream, ScopeCursors, epoch, merged_pages
from connectors.paging import LinkHeaderPaginator, UpdatedSinceWindow

ISSUES = "/repos/{}/issues"
ISSUE = "/repos/{}/issues/{}"
ISSUE_EVENTS = "/repos/{}/issues/{}/events"
ORG_REPOS = "/orgs/{}/repos"
MAX_PER_PAGE = 100  # GitHub's ceiling for per_page
ORG_REPOS_FRESH = 600.0  # seconds the organisation's repository list is reused
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: without retry-after, wait at least a minute
_SINCE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# `issues` actions whose delivery carries the issue as the REST API returns it. Actions not
# listed here (GitHub adds some, e.g. typed/untyped) are treated the same way.
UPSERT_ACTIONS = frozenset(
    {
        "opened",
        "edited",
        "closed",
        "reopened",
        "labeled",
        "unlabeled",
        "assigned",
        "unassigned",
        "milestoned",
        "demilestoned",
        "pinned",
        "unpinned",
        "locked",
        "unlocked",
    }
)


def _secondary_limit(response: httpx.Response) -> bool:
    return response.status_code == 403 and b"secondary rate limit" in response.content.lower()


def github_rate_limited(response: httpx.Response) -> bool:
    """GitHub answers rate limits with 403 too: the primary limit with `x-ratelimit-remaining: 0`,
    secondary limits with `retry-after` or a "secondary rate limit" message."""
    if response.status_code != 403:
        return False
    if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
        return True
    return "retry-after" in response.headers or _secondary_limit(response)


def secondary_limit_hint(response: httpx.Response, now: float) -> float | None:
    """A secondary limit without `retry-after`: GitHub asks for at least a minute's pause."""
    if _secondary_limit(response) and "retry-after" not in response.headers:
        return SECONDARY_LIMIT_WAIT
    return None


def _updated(issue: dict[str, Any]) -> datetime | None:
    value = issue.get("updated_at")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _with_repository(issue: dict[str, Any], repository: Any) -> dict[str, Any]:
    """The delivered issue, with the delivery's `repository` object beside its fields when the
    issue itself does not name its repository (older deliveries have no `repository_url`).

    Every `issues`/`issue_comment` delivery names the repository at its top level
    (https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues); GitHub's own
    issue representations carry the same `repository` object where the URL is not enough
    (`GET /issues`), and mappings/github.yaml reads either for the key and the container.
    """
    if issue.get("repository_url") or isinstance(issue.get("repository"), dict):
        return issue
    if not isinstance(repository, dict) or not isinstance(repository.get("full_name"), str):
        return issue
    return {**issue, "repository": repository}


def _order_key(issue: dict[str, Any]) -> OrderKey:
    ident = issue.get("id")
    return (_updated(issue) or epoch(), ident if isinstance(ident, int) else 0)


def _row_key(issue: dict[str, Any]) -> tuple[str, str]:
    return str(issue.get("id")), str(issue.get("updated_at"))


def _repo_of(issue: dict[str, Any]) -> str | None:
    """`owner/repo` from an issue's `repository_url` (.../repos/OWNER/REPO)."""
    url = issue.get("repository_url")
    if not isinstance(url, str) or "/repos/" not in url:
        return None
    return url.rsplit("/repos/", 1)[1].strip("/") or None


class _RepoStream(RecordStream):
    """One repository's issues in ascending update order, a page at a time.

    Not by following the `Link` header's page numbers: pages of a list sorted by update time
    shift when an issue already read is edited while we page, and the issue at the boundary
    would be skipped for good. Each request is `since=<second of the newest row read>`
    (`since` is inclusive and GitHub's times are whole seconds) with `page` stepping only
    through a second that holds more than a page (`connectors.paging.UpdatedSinceWindow`).
    The `Link` header still says whether a next page exists.
    """

    def __init__(self, connector: GitHubConnector, repo: str, since: datetime | None) -> None:
        super().__init__(repo)
        self.connector = connector
        self.path = ISSUES.format(repo)
        self.window = UpdatedSinceWindow(since, page_size=connector.per_page, what=f"{connector.name}: {self.path}")

    @property
    def has_more(self) -> bool:
        return self.window.has_more

    async def fetch_page(self) -> None:
        params: dict[str, Any] = {
            "state": "all",
            "sort": "updated",
            "direction": "asc",
            "per_page": self.window.page_size,
        }
        if self.window.anchor is not None:
            params["since"] = self.window.anchor.strftime(_SINCE_FORMAT)
        if self.window.page_number > 1:
            params["page"] = self.window.page_number
        data, response = await self.connector.http.get_json(self.path, params)
        if not isinstance(data, list) or not all(isinstance(i, dict) and "id" in i for i in data):
            raise ConnectorError(f"{self.connector.name}: {self.path} did not return a list of issues with ids")
        # Pull requests count in GitHub's page size, so the window sees every row.
        rows = self.window.take(data, key=_row_key, updated=_updated, more="next" in response.links)
        self.pending.extend(self.connector.issues_of(rows, self.path, self.scope))


class GitHubConnector(Connector):
    tool: ClassVar[str] = "github"
    config_model: ClassVar[type[ConnectorConfig]] = GitHubConfig
    supports_webhooks: ClassVar[bool] = True
    supports_history: ClassVar[bool] = True
    # Never stored with a delivery: https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
    webhook_secret_headers: ClassVar[frozenset[str]] = frozenset({"x-hub-signature", "x-hub-signature-256"})

    config: GitHubConfig

    def __init__(self, name: str, config: ConnectorConfig, **options: Unpack[ConnectorOptions]) -> None:
        super().__init__(name, config, **options)
        config = self.config
        scope = f"organisation {config.organization}" if config.organization else "the repositories in scope"
        self.http = self.source_client(
            auth=BearerAuth(config.token.get_secret_value()),
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": config.api_version},
            auth_hint=(
                f"sources.{name}.token: a GitHub token with read access to issues (fine-grained: "
                f"'Issues: read' and 'Metadata: read') on {scope}"
            ),
            wait_hints=[
                epoch_reset_hint("x-ratelimit-reset", remaining_header="x-ratelimit-remaining"),
                secondary_limit_hint,
            ],
            rate_limited=github_rate_limited,
        )
        self.per_page = min(config.page_size, MAX_PER_PAGE)
        self.locator = IssueLocator(self.clock)  # issue id -> (owner/repo, number)
        self._repos: list[str] | None = None
        self._repos_at = 0.0

    # -------------------------------------------------------- scope

    async def repositories(self) -> list[str]:
        """`owner/repo` of every repository in scope (an organisation's: listed, cached 10 min)."""
        if self.config.repositories:
            return list(self.config.repositories)
        now = self.clock()
        if self._repos is None or now - self._repos_at > ORG_REPOS_FRESH:
            assert self.config.organization is not None
            repos: list[str] = []
            paginator = LinkHeaderPaginator()
            path = ORG_REPOS.format(self.config.organization)
            params: dict[str, Any] | None = {"type": "all", "per_page": MAX_PER_PAGE}
            while paginator.has_more:
                data, response = await self.http.get_json(paginator.current_value or path, params)
                params = None  # the next link carries them
                if not isinstance(data, list):
                    raise ConnectorError(f"{self.name}: {path} did not return a list of repositories")
                # Repositories with issues turned off answer 410 on /issues: skip them.
                repos.extend(
                    str(r["full_name"])
                    for r in data
                    if isinstance(r, dict) and r.get("full_name") and r.get("has_issues", True) is not False
                )
                paginator.advance(response, data)
            self._repos, self._repos_at = repos, now
        return list(self._repos)

    def in_scope(self, repo: str | None) -> bool:
        if not repo:
            return False
        if self.config.organization:
            return repo.partition("/")[0].lower() == self.config.organization.lower()
        return repo.lower() in {r.lower() for r in self.config.repositories}

    # -------------------------------------------------------- records

    def issues_of(self, data: Any, path: str, repo: str | None = None) -> list[dict[str, Any]]:
        """The issues of one list page: pull requests dropped, each remembered in the id index."""
        if not isinstance(data, list) or not all(isinstance(i, dict) and "id" in i for i in data):
            raise ConnectorError(f"{self.name}: {path} did not return a list of issues with ids")
        issues = [i for i in data if "pull_request" not in i]
        for issue in issues:
            self._remember(issue, repo)
        return issues

    def _remember(self, issue: dict[str, Any], repo: str | None = None) -> None:
        repo = _repo_of(issue) or repo
        number = issue.get("number")
        if repo and isinstance(number, int) and issue.get("id") is not None:
            self.locator.remember(str(issue["id"]), repo, number)

    def native_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    # -------------------------------------------------------- pull

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """Issues of every repository in scope, merged into one ascending `updated_at` order.

        Each repository is read with `since = its cursor - overlap`, sorted by `updated` asc,
        paged by the Link header, and `connectors.multi.merged_pages` merges them (one cursor
        per repository in one JSON cursor). Link pages are page numbers: an issue updated
        while paging moves to the end of the list and shifts the issues after it back by
        one, so the issue at a page boundary can be skipped by this run (the moved issue
        itself is read). A later change to the skipped issue, or a full sync, brings it in.
        """
        state = ScopeCursors.parse(cursor)
        streams = [_RepoStream(self, repo, state.get(repo).since(self.overlap)) for repo in await self.repositories()]
        async for page in merged_pages(
            streams, state, page_size=self.config.page_size, order_key=_order_key, native_id=self.native_id
        ):
            yield page

    async def list_ids(self) -> AsyncIterator[str]:
        """Every issue id in scope (`state=all`, 100 a page); rebuilds the id index as it goes."""
        started = self.locator.listing_started()
        for repo in await self.repositories():
            paginator = LinkHeaderPaginator()
            path = ISSUES.format(repo)
            params: dict[str, Any] | None = {"state": "all", "per_page": MAX_PER_PAGE}
            while paginator.has_more:
                data, response = await self.http.get_json(paginator.current_value or path, params)
                params = None
                for issue in self.issues_of(data, path, repo):
                    yield str(issue["id"])
                paginator.advance(response, data)
        self.locator.listing_complete(started)

    async def locate(self, native_id: str) -> Where | None:
        """(owner/repo, number) of an issue id (connectors/locator.py)."""
        return await self.locator.locate(native_id, self.list_ids)

    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        """`GET /repos/{owner}/{repo}/issues/{number}` for the issue the id index names.

        Deleted issues answer 410 (or 404); a transferred one redirects to its new home, which
        has a new id: all three mean this id is gone.
        """
        where = await self.locate(native_id)
        if where is None:
            return None
        repo, number = where
        try:
            data, _ = await self.http.get_json(ISSUE.format(repo, number), allow_404=True)
        except RequestFailed as exc:
            if exc.status == 410:
                self.locator.forget(native_id)
                return None
            raise
        if not isinstance(data, dict) or "pull_request" in data or str(data.get("id")) != native_id:
            self.locator.forget(native_id)
            return None
        self._remember(data, repo)
        return data

    async def fetch_history(self, native_id: str) -> list[dict[str, Any]]:
        """`GET /repos/{owner}/{repo}/issues/{number}/events`, every page (`Link` rel=next):
        the issue's events as GitHub returns them, oldest first; `hub.flow.github` keeps
        `closed` (with `state_reason`) and `reopened`. A deleted issue (404/410) or an id no
        listing knows has an empty history. Events of a transferred issue stay with it.
        https://docs.github.com/en/rest/issues/events#list-issue-events
        """
        where = await self.locate(native_id)
        if where is None:
            return []
        repo, number = where
        path = ISSUE_EVENTS.format(repo, number)
        paginator = LinkHeaderPaginator()
        params: dict[str, Any] | None = {"per_page": self.per_page}
        events: list[dict[str, Any]] = []
        while paginator.has_more:
            try:
                data, response = await self.http.get_json(paginator.current_value or path, params, allow_404=True)
            except RequestFailed as exc:
                if exc.status == 410:
                    return []
                raise
            if data is None:
                return []
            params = None  # the next link carries them
            if not isinstance(data, list):
                raise ConnectorError(f"{self.name}: {path} did not return a list of issue events")
            events.extend(event for event in data if isinstance(event, dict))
            paginator.advance(response, data)
        return events

    # -------------------------------------------------------- push

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` keyed with the webhook secret."""
        secret = self.config.webhook_secret
        if secret is None:
            raise WebhookRejected(
                f"source {self.name!r} has no webhook_secret: set the same secret in the GitHub webhook and in "
                f"sources.{self.name}.webhook_secret"
            )
        require_hmac_sha256(headers, body, secret, "X-Hub-Signature-256", prefix="sha256=")

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Route a verified delivery to events; the delivery id is `X-GitHub-Delivery`.

        `issues` deliveries carry the issue as the REST API returns it: upserted as delivered
        (the store's upsert-if-newer on `updated_at` keeps a late delivery from rolling back).
        `pinned`/`unpinned` carry a thin issue without `state`: refetched. `issue_comment`
        deliveries carry the full issue too, with `updated_at` bumped by the comment: upserted
        as well, saving one API call per comment (a comment on a pull request is ignored).
        """
        payload = self.json_object(body)
        delivery_id = self.delivery_id(headers, body, "X-GitHub-Delivery")
        event = (header_value(headers, "X-GitHub-Event") or "").strip()
        return WebhookDelivery(delivery_id=delivery_id, events=self._events(event, payload), payload=payload)

    def _events(self, event: str, payload: dict[str, Any]) -> list[WebhookEvent]:
        if event == "ping":
            return [IgnoreEvent(f"ping (hook {payload.get('hook_id')}): the webhook is set up")]
        if event not in ("issues", "issue_comment"):
            return [IgnoreEvent(f"GitHub event {event or '(no X-GitHub-Event)'!r} is not synced")]
        action = str(payload.get("action") or "")
        issue = payload.get("issue")
        if not isinstance(issue, dict) or issue.get("id") is None:
            return [IgnoreEvent(f"{event}.{action} without an issue")]
        repo = (payload.get("repository") or {}).get("full_name") or _repo_of(issue)
        if "pull_request" in issue:
            return [IgnoreEvent(f"{event}.{action} is about pull request #{issue.get('number')}, not an issue")]
        issue_id = str(issue["id"])
        if event == "issues" and action == "transferred":
            return self._transferred(issue_id, repo, payload)
        if not self.in_scope(repo):
            return [IgnoreEvent(f"{event}.{action}: repository {repo} is outside this source's scope")]
        issue = _with_repository(issue, payload.get("repository"))
        self._remember(issue, repo)
        if event == "issues" and action == "deleted":
            return [DeleteRecord(issue_id)]
        events: list[WebhookEvent] = [self._issue_event(issue)]
        if event == "issues" and action == "opened":
            events += self._transferred_in(payload)
        return events

    def _issue_event(self, issue: dict[str, Any]) -> WebhookEvent:
        if "state" not in issue or "updated_at" not in issue:
            return RefetchRecord(str(issue["id"]))  # pinned/unpinned: thin issue
        return UpsertRecord(issue)

    def _transferred(self, issue_id: str, repo: str | None, payload: dict[str, Any]) -> list[WebhookEvent]:
        """`transferred`: the old issue is gone; the new one (new id) is synced if its repo is in scope."""
        events: list[WebhookEvent] = []
        if self.in_scope(repo):
            self.locator.forget(issue_id)
            events.append(DeleteRecord(issue_id))
        changes = payload.get("changes") or {}
        new_issue = changes.get("new_issue")
        new_repo = (changes.get("new_repository") or {}).get("full_name")
        if isinstance(new_issue, dict) and new_issue.get("id") is not None and self.in_scope(new_repo):
            new_issue = _with_repository(new_issue, changes.get("new_repository"))
            self._remember(new_issue, new_repo)
            events.append(self._issue_event(new_issue))
        return events or [IgnoreEvent(f"issues.transferred from {repo} to {new_repo}: both outside this source")]

    def _transferred_in(self, payload: dict[str, Any]) -> list[WebhookEvent]:
        """`opened` in the destination of a transfer names the old issue: gone if it was in scope."""
        changes = payload.get("changes") or {}
        old_issue, old_repo = changes.get("old_issue"), (changes.get("old_repository") or {}).get("full_name")
        if isinstance(old_issue, dict) and old_issue.get("id") is not None and self.in_scope(old_repo):
            self.locator.forget(str(old_issue["id"]))
            return [DeleteRecord(str(old_issue["id"]))]
        return []

"""Jira Cloud: enhanced JQL search for pulls, signed webhooks for pushes.

API reference (REST v3):
- search: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get
- bulk fetch: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-bulkfetch-post
- issue:  https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get
- fields: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-fields/#api-rest-api-3-field-get
- myself: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-myself/#api-rest-api-3-myself-get
- remote links: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-remote-links/#api-rest-api-3-issue-issueidorkey-remotelink-get
- changelog: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-changelog-get
- statuses: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-workflow-statuses/#api-rest-api-3-status-get
- rate limits: https://developer.atlassian.com/cloud/jira/platform/rate-limiting/
- webhooks: https://developer.atlassian.com/cloud/jira/platform/webhooks/
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from connectors.auth import BearerAuth
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
from connectors.cursors import DatetimeCursor, parse_time
from connectors.http import iso_reset_hint
from connectors.jira.config import JiraConfig
from connectors.listing import IdListing
from connectors.paging import OffsetPaginator, PageTokenPaginator, ahead_in_order, dig
from mappings import MappingContext, mapper_for

SEARCH = "/rest/api/3/search/jql"
BULK_FETCH = "/rest/api/3/issue/bulkfetch"
FIELDS = "/rest/api/3/field"
MYSELF = "/rest/api/3/myself"
ISSUE = "/rest/api/3/issue/{}"
REMOTE_LINKS = "/rest/api/3/issue/{}/remotelink"
CHANGELOG = "/rest/api/3/issue/{}/changelog"
STATUSES = "/rest/api/3/status"
CHANGELOG_PAGE_SIZE = 100  # Jira's ceiling for the changelog's maxResults
# Jira's ceilings: a search asking for ids only returns up to 5,000 per page; a bulk fetch takes
# up to 100 ids (1,000 only when no many-valued field such as comments is asked for, which a
# source's `fields` may do, so the connector keeps to 100). Search and bulk fetch references above.
ID_SEARCH_PAGE_SIZE = 5000
BULK_FETCH_SIZE = 100

# Fields the connector itself reads from every issue, whatever the mapping says: `updated`
# drives the cursor (see `fetch`). Everything else requested is what the source's mapping
# reads (`Mapper.fields_read`), so a pulled issue carries every field a webhook's full issue
# bean would give the mapping: pull and webhook map to the same item. Asking for those
# explicitly (rather than `*all`) keeps pages small: comments, worklogs and attachments can be
# megabytes per issue.
CONNECTOR_FIELDS: tuple[str, ...] = ("updated",)
# JQL date literals have minute precision and are read in the API user's time zone.
JQL_TIME_FORMAT = "%Y/%m/%d %H:%M"
# When the user's zone is unknown, widen the window by the largest UTC offset instead of guessing.
MAX_UTC_OFFSET = timedelta(hours=14)

# A comment's `self`: https://site/rest/api/2/issue/{issue id}/comment/{comment id}.
COMMENT_SELF = re.compile(r"/rest/api/\d+/issue/(?P<issue>\d+)/comment/[^/]+/?$")

ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated"})
COMMENT_EVENTS = frozenset({"comment_created", "comment_updated", "comment_deleted"})
LINK_EVENTS = frozenset({"issuelink_created", "issuelink_deleted"})


class ChangelogPaginator(OffsetPaginator):
    """The changelog's `startAt`/`maxResults` paging: `isLast: true` ends it, else `total`
    (or a short page) does, as `OffsetPaginator` reads them.
    https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-changelog-get
    """

    def __init__(self, page_size: int) -> None:
        super().__init__(page_size, _changelog_values, total_path=("total",))

    def get_next(self, response: httpx.Response, data: Any) -> int | None:
        if dig(data, ("isLast",)) is True:
            return None
        return super().get_next(response, data)


def _changelog_values(data: Any) -> list[Any]:
    values = data.get("values") if isinstance(data, dict) else None
    return values if isinstance(values, list) else []


class JiraConnector(Connector):
    tool: ClassVar[str] = "jira"
    config_model: ClassVar[type[ConnectorConfig]] = JiraConfig
    supports_webhooks: ClassVar[bool] = True
    supports_history: ClassVar[bool] = True
    # Never stored with a delivery (an HMAC of the body):
    # https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks
    webhook_secret_headers: ClassVar[frozenset[str]] = frozenset({"x-hub-signature"})
    ids_page_size: ClassVar[int] = 1000
    lists_on_full_fetch: ClassVar[bool] = True  # `_fetch_listed`

    config: JiraConfig

    def __init__(self, name: str, config: ConnectorConfig, **options: Unpack[ConnectorOptions]) -> None:
        super().__init__(name, config, **options)
        config = self.config
        auth: httpx.Auth
        if config.bearer_token is not None:
            auth = BearerAuth(config.bearer_token.get_secret_value())
            hint = (
                f"sources.{name}.bearer_token: an OAuth 2.0 access token with read:jira-work and read:jira-user "
                f"scopes, for a user allowed to browse the projects in scope"
            )
        else:
            assert config.email is not None
            assert config.api_token is not None
            auth = httpx.BasicAuth(config.email, config.api_token.get_secret_value())
            hint = (
                f"sources.{name}.email and api_token: an Atlassian API token "
                f"(https://id.atlassian.com/manage-profile/security/api-tokens) belonging to that email, "
                f"for a user with Browse Projects permission on the projects in scope"
            )
        self.http = self.source_client(auth=auth, auth_hint=hint, wait_hints=[iso_reset_hint("X-RateLimit-Reset")])
        self._zone: ZoneInfo | None = None
        self._zone_known = False
        self._catalog: list[dict[str, Any]] | None = None
        self._statuses: dict[str, dict[str, Any]] | None = None
        self._fields: list[str] | None = None

    # -------------------------------------------------------- facts from the site (cached per run)

    async def field_catalog(self) -> list[dict[str, Any]]:
        """`GET /rest/api/3/field`: every system and custom field with its id and display name."""
        if self._catalog is None:
            data, _ = await self.http.get_json(FIELDS)
            if not isinstance(data, list):
                raise ConnectorError(f"{self.name}: {FIELDS} did not return a list of fields")
            self._catalog = data
        return self._catalog

    async def site_statuses(self) -> dict[str, dict[str, Any]]:
        """`GET /rest/api/3/status`: every status of the site's active workflows by id, each with
        its `statusCategory` (a changelog names statuses but not their category)."""
        if self._statuses is None:
            data, _ = await self.http.get_json(STATUSES)
            if not isinstance(data, list):
                raise ConnectorError(f"{self.name}: {STATUSES} did not return a list of statuses")
            self._statuses = {str(s["id"]): s for s in data if isinstance(s, dict) and s.get("id") is not None}
        return self._statuses

    async def request_fields(self) -> list[str]:
        """The `fields` parameter: exactly what the source's mapping reads, then config extras.

        One source of truth: the mapping (the tool's spec with `sources.NAME.mapping` merged)
        is compiled against this site's field catalog and `Mapper.fields_read` lists every
        field id it reads, custom fields already resolved from display name to id (a hand-kept
        list here drifted from mappings/jira.yaml and left `timeoriginalestimate` and
        `startdate` out of pulls while webhooks carried them). Custom fields the catalog lacks
        are skipped (the mapping reports them as unresolved); fields listed in the config must
        exist. Search `fields` parameter:
        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get
        """
        if self._fields is not None:
            return self._fields
        catalog = await self.field_catalog()
        ids = {str(f.get("id")) for f in catalog}
        by_name: dict[str, list[str]] = {}
        for f in catalog:
            by_name.setdefault(str(f.get("name", "")).casefold(), []).append(str(f.get("id")))
        wanted: list[str] = list(CONNECTOR_FIELDS)

        def add(field_ids: Iterable[str]) -> None:
            for fid in field_ids:
                if fid not in wanted:
                    wanted.append(fid)

        add(self.fields_the_mapping_reads(catalog))
        for name in self.config.fields:
            if name in ids or name in wanted:
                add([name])
            elif name.casefold() in by_name:
                add(by_name[name.casefold()])
            else:
                raise ConnectorError(
                    f"source {self.name!r}: field {name!r} is neither a field id nor a field name on this Jira site "
                    f"(see GET {FIELDS}); fix sources.{self.name}.fields or the mapping override"
                )
        self._fields = wanted
        return wanted

    def fields_the_mapping_reads(self, catalog: list[dict[str, Any]]) -> list[str]:
        """Field ids the source's mapping (spec + overrides) reads under `fields`, on this catalog."""
        context = MappingContext(source=self.name, tool=self.tool, base_url=self.config.base_url, fields=catalog)
        return mapper_for(self.tool, context, self.config.mapping, keep_raw=False).fields_read

    async def user_zone(self) -> ZoneInfo | None:
        """The API user's time zone (`GET /rest/api/3/myself`), in which Jira reads JQL dates."""
        if not self._zone_known:
            data, _ = await self.http.get_json(MYSELF)
            name = data.get("timeZone") if isinstance(data, dict) else None
            try:
                self._zone = ZoneInfo(name) if name else None
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = None
            self._zone_known = True
        return self._zone

    async def jql_time(self, since: datetime) -> str:
        """A UTC instant as a JQL date literal in the user's zone, rounded down to the minute."""
        zone = await self.user_zone()
        if zone is None:
            return (since - MAX_UTC_OFFSET).astimezone(UTC).strftime(JQL_TIME_FORMAT)
        return since.astimezone(zone).strftime(JQL_TIME_FORMAT)

    async def mapping_context(self) -> dict[str, Any]:
        context = await super().mapping_context()
        context["fields"] = await self.field_catalog()
        return context

    # -------------------------------------------------------- pull

    def scope_jql(self) -> str:
        if self.config.projects:
            keys = ", ".join(f'"{key}"' for key in self.config.projects)
            return f"project in ({keys})"
        return f"({self.config.jql})"

    async def search_jql(self, cursor: DatetimeCursor) -> str:
        """`(<scope>) [AND updated >= "<since in user zone>"] ORDER BY updated ASC, id ASC`."""
        jql = self.scope_jql()
        since = cursor.since(self.overlap)
        if since is not None:
            jql += f' AND updated >= "{await self.jql_time(since)}"'
        return jql + " ORDER BY updated ASC, id ASC"

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """Issues in ascending `updated` order; each page's cursor is the newest (updated, id) so far.

        Why a token and not `startAt`: the enhanced search has no offsets, and offsets would skip
        records that move while paging. Resuming from a page's cursor re-reads from
        `updated - overlap`, so nothing between pages is lost.

        A full run (no cursor) lists the ids first and fetches the issues in bulk, several
        requests at once (`_fetch_listed`); an incremental run, usually one page, searches.
        """
        state = DatetimeCursor.parse(cursor)
        jql = await self.search_jql(state)
        if cursor is None:
            async for page in self._fetch_listed(jql, state):
                yield page
            return
        fields = ",".join(await self.request_fields())
        paginator = PageTokenPaginator()
        while paginator.has_more:
            params: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": self.config.page_size}
            if paginator.current_value:
                params["nextPageToken"] = paginator.current_value
            data, response = await self.http.get_json(SEARCH, params)
            issues = self._issues(data)
            for issue in issues:
                updated = _updated(issue)
                if updated is not None:
                    state.observe(updated, str(issue["id"]))
            paginator.advance(response, data)
            if self.config.remote_links:
                await self.attach_remote_links(issues)
            yield Page(records=issues, cursor=state.serialize() or cursor)

    async def _fetch_listed(self, jql: str, state: DatetimeCursor) -> AsyncIterator[Page]:
        """The issues `jql` finds, by id: an id-only search (5,000 a page), then one bulk fetch
        per `page_size` ids (at most 100), up to `max_concurrency` of them at once, yielded in
        the listing's order (`ahead_in_order`).

        Why: the search's pages chain (each page's token comes with the page before), so a
        run of N pages waits N page latencies one after the other, and the hub's own work on
        a page delays asking for the next. Listing ids chains only one request per 5,000
        issues; the bulk fetches do not chain at all. Requests: about the same number.

        The cursor: pages come in the listing's `(updated, id)` order, but a bulk fetch returns
        the issue as it is when fetched, and an issue edited since the listing began carries a
        time past issues that are listed after it and not stored yet; a cursor moved to that
        time would skip them on resume. So a page advances the cursor only by issues last
        updated before the listing began (less the overlap, for the tool's clock against
        ours): those are where the listing placed them. An edited one is stored all the same
        and read again by the next run. Issues gone since the listing are left out by Jira;
        an issue Jira could not return now (`issueErrors`) fails the page, as a failed page
        fails: the run resumes from the last page stored. The listing covers the scope
        (`scope_jql`), as `list_ids` does, so it is also the deletion sweep's first listing
        (`full_listing`): a full run lists its ids once.
        """
        listed_at = datetime.now(UTC)
        began = listed_at - self.overlap
        # Each once (a paged search over a live result can list an issue edited meanwhile
        # twice), in order, 16 bytes an id (`IdListing`: 100,000 ids as strings were ~10 MB).
        listed = IdListing()
        async for native_id in self._search_ids(jql, ID_SEARCH_PAGE_SIZE):
            listed.add(native_id)
        self.full_listing = (listed_at, listed)  # the deletion sweep's first listing
        fields = await self.request_fields()
        size = min(self.config.page_size, BULK_FETCH_SIZE)
        ids = iter(listed)
        chunks = iter(lambda: list(itertools.islice(ids, size)), [])
        calls = (self._bulk_fetch(chunk, fields) for chunk in chunks)
        async for issues in ahead_in_order(calls, self.config.max_concurrency):
            for issue in issues:
                updated = _updated(issue)
                if updated is not None and updated <= began:
                    state.observe(updated, str(issue["id"]))
            if self.config.remote_links:
                await self.attach_remote_links(issues)
            yield Page(records=issues, cursor=state.serialize())

    async def _search_ids(self, jql: str, page_size: int) -> AsyncIterator[str]:
        """The ids `jql` finds, in its order, cheaply: `fields=id` and large pages."""
        paginator = PageTokenPaginator()
        while paginator.has_more:
            params: dict[str, Any] = {"jql": jql, "fields": "id", "maxResults": page_size}
            if paginator.current_value:
                params["nextPageToken"] = paginator.current_value
            data, response = await self.http.get_json(SEARCH, params)
            for issue in self._issues(data):
                yield str(issue["id"])
            paginator.advance(response, data)

    async def _bulk_fetch(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        """`POST /issue/bulkfetch`: the issues of `ids` that still exist, in the order of `ids`."""
        data, _ = await self.http.post_json(BULK_FETCH, {"issueIdsOrKeys": ids, "fields": fields})
        issues = self._issues(data, BULK_FETCH)
        errors = data.get("issueErrors") if isinstance(data, dict) else None
        if errors:
            raise ConnectorError(f"{self.name}: {BULK_FETCH} could not return {len(errors)} issue(s): {errors[:3]}")
        order = {native_id: n for n, native_id in enumerate(ids)}
        return sorted(issues, key=lambda issue: order.get(str(issue["id"]), len(order)))

    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        fields = ",".join(await self.request_fields())
        data, _ = await self.http.get_json(ISSUE.format(native_id), {"fields": fields}, allow_404=True)
        if not isinstance(data, dict):
            return None
        if self.config.remote_links:
            await self.attach_remote_links([data])
        return data

    async def remote_links(self, issue_id: str) -> list[dict[str, Any]]:
        """`GET /rest/api/3/issue/{id}/remotelink`: the issue's remote links as the API returns them,
        `{id, globalId?, relationship?, object: {url, title, ...}, application?: {type, name}}`.
        A 404 (the issue is gone or hidden from this user) counts as no links."""
        path = REMOTE_LINKS.format(issue_id)
        data, _ = await self.http.get_json(path, allow_404=True)
        if data is None:
            return []
        if isinstance(data, dict):  # the single-link answer (asked with globalId); accepted all the same
            data = [data]
        if not isinstance(data, list):
            raise ConnectorError(f"{self.name}: {path} did not return a list of remote links")
        return [link for link in data if isinstance(link, dict)]

    async def attach_remote_links(self, issues: list[dict[str, Any]]) -> None:
        """Set `issue["_opshub"]["remote_links"]` on each issue, one request per issue, run
        concurrently (the source's `max_concurrency` bounds them). The first failure cancels the
        rest and propagates as it is, so the page fails the way a failed search page does."""
        if not issues:
            return
        tasks = [asyncio.ensure_future(self.remote_links(str(issue["id"]))) for issue in issues]
        try:
            found = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        for issue, links in zip(issues, found, strict=True):
            extra = issue.get("_opshub")
            issue["_opshub"] = {**(extra if isinstance(extra, dict) else {}), "remote_links": links}

    async def fetch_history(self, native_id: str) -> list[dict[str, Any]]:
        """`GET /rest/api/3/issue/{id}/changelog`, every page: the issue's history entries
        (`{id, created, author, items[]}`, oldest first), status changes among other fields'.

        Not `expand=changelog` on the issue: that embeds at most 100 entries. A 404 (the issue
        is gone or hidden from this user) is an empty history, as `fetch_one` answers None.
        `hub.flow.jira.transitions_from_histories` reads the entries."""
        path = CHANGELOG.format(native_id)
        size = min(self.config.page_size, CHANGELOG_PAGE_SIZE)
        paginator = ChangelogPaginator(size)
        entries: list[dict[str, Any]] = []
        while paginator.has_more:
            params = {"startAt": paginator.current_value or 0, "maxResults": size}
            data, response = await self.http.get_json(path, params, allow_404=True)
            if data is None:
                return []
            if not isinstance(data, dict) or not isinstance(data.get("values"), list):
                raise ConnectorError(f"{self.name}: {path} answered without a 'values' list of history entries")
            entries.extend(entry for entry in data["values"] if isinstance(entry, dict))
            paginator.advance(response, data)
        await self._attach_statuses(entries)
        return entries

    async def _attach_statuses(self, entries: list[dict[str, Any]]) -> None:
        """Set `entry["_opshub"]["statuses"]` to the site's status objects (with their
        `statusCategory`) that the entry's status changes name, so the history's categories are
        read through the mapping's `status_category` table as the issue's own status is. The
        status list costs one request per run (cached), and only when a status changed."""
        wanted = [(entry, _status_ids(entry)) for entry in entries]
        if not any(ids for _, ids in wanted):
            return
        statuses = await self.site_statuses()
        for entry, ids in wanted:
            known = [statuses[i] for i in ids if i in statuses]
            if known:
                extra = entry.get("_opshub")
                entry["_opshub"] = {**(extra if isinstance(extra, dict) else {}), "statuses": known}

    async def list_ids(self) -> AsyncIterator[str]:
        """Every issue id in scope (`_search_ids`)."""
        async for native_id in self._search_ids(self.scope_jql() + " ORDER BY id ASC", self.ids_page_size):
            yield native_id

    def native_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    def _issues(self, data: Any, endpoint: str = SEARCH) -> list[dict[str, Any]]:
        issues = data.get("issues") if isinstance(data, dict) else None
        if not isinstance(issues, list) or not all(isinstance(i, dict) and "id" in i for i in issues):
            raise ConnectorError(f"{self.name}: {endpoint} answered without an 'issues' list of issues with ids")
        return issues

    # -------------------------------------------------------- push

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed with the webhook secret."""
        secret = self.config.webhook_secret
        if secret is None:
            if self.config.webhook_unsigned:
                return
            raise WebhookRejected(
                f"source {self.name!r} has no webhook_secret: set the same secret in the Jira webhook and in "
                f"sources.{self.name}.webhook_secret (or webhook_unsigned = true if the endpoint is protected otherwise)"
            )
        require_hmac_sha256(headers, body, secret, "X-Hub-Signature", prefix="sha256=")

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Route a verified delivery to events. Raises ValueError when the body is not a JSON object.

        Issue created/updated become `UpsertRecord` of the issue as delivered. Webhooks carry the
        REST v2 issue bean (description as wiki text, not ADF); the mapping accepts both, and the
        store's upsert-if-newer on `fields.updated` keeps a late delivery from rolling anything
        back. Refetching instead would cost one API call per event and fail during the very rate
        limit storms webhooks help with. Comment and link events change no field we store on the
        delivered issue bean reliably, so they ask for a refetch. With `remote_links` on, issue
        created/updated are refetches too (see `_events`).
        """
        payload = self.json_object(body)
        delivery_id = self.delivery_id(headers, body, "X-Atlassian-Webhook-Identifier")
        return WebhookDelivery(delivery_id=delivery_id, events=self._events(payload), payload=payload)

    def _events(self, payload: dict[str, Any]) -> list[WebhookEvent]:
        event = str(payload.get("webhookEvent", ""))
        issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else None
        issue_id = str(issue["id"]) if issue and issue.get("id") is not None else None
        if event in ISSUE_EVENTS:
            if issue is None or issue_id is None:
                return [IgnoreEvent(f"{event} without an issue")]
            project = ((issue.get("fields") or {}).get("project") or {}).get("key")
            if self.config.projects and project and project not in self.config.projects:
                return [IgnoreEvent(f"issue {issue.get('key')} is in project {project}, outside this source's scope")]
            if not isinstance(issue.get("fields"), dict) or "updated" not in issue["fields"]:
                return [RefetchRecord(issue_id)]
            if self.config.remote_links:
                # The delivered issue bean carries no remote links (Jira never includes them in an
                # issue representation). Upserting it would map to an item without the remote-link
                # links the last sync stored, and being newer it would replace that item: the links
                # would vanish until the next sync. A refetch reads the issue and its remote links.
                return [RefetchRecord(issue_id)]
            return [UpsertRecord(issue)]
        if event == "jira:issue_deleted":
            if issue_id is None:
                return [IgnoreEvent(f"{event} without an issue id")]
            return [DeleteRecord(issue_id, at=_timestamp(payload.get("timestamp")))]
        if event in COMMENT_EVENTS:
            issue_id = issue_id or _commented_issue_id(payload.get("comment"))
            if issue_id is None:
                return [IgnoreEvent(f"{event} without an issue id")]
            return [RefetchRecord(issue_id)]
        if event in LINK_EVENTS:
            link = payload.get("issueLink") or {}
            ids = [str(link[k]) for k in ("sourceIssueId", "destinationIssueId") if link.get(k) is not None]
            return [RefetchRecord(i) for i in ids] or [IgnoreEvent(f"{event} without issue ids")]
        return [IgnoreEvent(f"Jira event {event or '(none)'!r} is not synced")]


def _updated(issue: dict[str, Any]) -> datetime | None:
    """`fields.updated`, or None when absent or unreadable (the mapping reports such records;
    the cursor just does not advance on them)."""
    value = (issue.get("fields") or {}).get("updated")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _status_ids(entry: Mapping[str, Any]) -> list[str]:
    """Ids of the statuses a changelog entry's status changes leave and enter."""
    ids: list[str] = []
    for item in entry.get("items") or ():
        if isinstance(item, Mapping) and (item.get("fieldId") or str(item.get("field", "")).casefold()) == "status":
            ids.extend(
                str(item[key]) for key in ("from", "to") if item.get(key) is not None and str(item[key]) not in ids
            )
    return ids


def _commented_issue_id(comment: Any) -> str | None:
    """The id of the issue a comment belongs to, from the comment's `self` URL.

    Jira Server and Data Center send `comment_created/updated/deleted` with the comment only
    (no `issue` object; Cloud adds a thin issue), but the comment's REST URL names the issue
    by id. Webhook payloads:
    https://developer.atlassian.com/server/jira/platform/webhooks/
    """
    if not isinstance(comment, dict) or not isinstance(comment.get("self"), str):
        return None
    found = COMMENT_SELF.search(comment["self"])
    return found.group("issue") if found else None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None

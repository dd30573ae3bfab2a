"""Linear: GraphQL pulls, signed webhooks for pushes.

API reference:
- GraphQL and auth: https://linear.app/developers/graphql
- pagination:       https://linear.app/developers/pagination
- filtering:        https://linear.app/developers/filtering
- rate limits:      https://linear.app/developers/rate-limiting
- webhooks:         https://linear.app/developers/webhooks
- issue history:    https://linear.app/developers/graphql (schema: `Issue.history`, `IssueHistory`)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Unpack

import httpx
import orjson

from connectors.base import (
    AuthFailed,
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
from connectors.http import RequestFailed
from connectors.linear import queries
from connectors.linear.config import LinearConfig
from connectors.paging import RelayCursorPaginator, dig

GRAPHQL = "/graphql"
# Linear rejects deliveries older than a minute itself and asks receivers to do the same
# (replay protection): https://linear.app/developers/webhooks#securing-webhooks
WEBHOOK_TOLERANCE_SECONDS = 60.0
_RATE_KINDS = ("requests", "complexity")


class _LinearAuth(httpx.Auth):
    """Personal API keys go bare in `Authorization`; OAuth tokens with `Bearer`. Added per
    request so the secret never sits in the client's default headers."""

    def __init__(self, value: str) -> None:
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._value
        yield request


def _error_codes(body: Any) -> set[str]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(dig(e, ("extensions", "code"))) for e in errors if isinstance(e, dict)}


def _response_codes(response: httpx.Response) -> set[str]:
    try:
        return _error_codes(orjson.loads(response.content))
    except orjson.JSONDecodeError:
        return set()


def is_rate_limited(response: httpx.Response) -> bool:
    """Linear answers an exhausted budget with HTTP 400 and `extensions.code: RATELIMITED`."""
    return response.status_code == 400 and "RATELIMITED" in _response_codes(response)


def rate_limit_hint(response: httpx.Response, now: float) -> float | None:
    """Seconds until the exhausted budget refills: `x-ratelimit-{requests,complexity}-reset`
    (epoch milliseconds) of a budget whose `-remaining` is 0. A RATELIMITED answer that says
    neither budget is at 0 waits for the later of the two resets."""
    waits: dict[str, float] = {}
    exhausted: set[str] = set()
    for kind in _RATE_KINDS:
        reset = response.headers.get(f"x-ratelimit-{kind}-reset")
        if not reset:
            continue
        try:
            waits[kind] = max(0.0, float(reset) / 1000.0 - now)
        except ValueError:
            continue
        if response.headers.get(f"x-ratelimit-{kind}-remaining", "").strip() == "0":
            exhausted.add(kind)
    if exhausted:
        return max(waits[k] for k in exhausted)
    if waits and is_rate_limited(response):
        return max(waits.values())
    return None


class LinearConnector(Connector):
    tool: ClassVar[str] = "linear"
    config_model: ClassVar[type[ConnectorConfig]] = LinearConfig
    supports_webhooks: ClassVar[bool] = True
    supports_history: ClassVar[bool] = True
    history_page_size: ClassVar[int] = 100
    # Never stored with a delivery: https://linear.app/developers/webhooks#securing-webhooks
    webhook_secret_headers: ClassVar[frozenset[str]] = frozenset({"linear-signature"})
    ids_page_size: ClassVar[int] = 250

    config: LinearConfig

    def __init__(self, name: str, config: ConnectorConfig, **options: Unpack[ConnectorOptions]) -> None:
        """`clock` (epoch seconds) decides whether a webhook's `webhookTimestamp` is fresh."""
        super().__init__(name, config, **options)
        config = self.config
        if config.access_token is not None:
            auth = _LinearAuth("Bearer " + config.access_token.get_secret_value())
            hint = f"sources.{name}.access_token: an OAuth 2.0 access token with the `read` scope"
        else:
            assert config.api_key is not None
            auth = _LinearAuth(config.api_key.get_secret_value())
            hint = (
                f"sources.{name}.api_key: a personal API key (Settings > Security & access > Personal API keys) "
                f"of a member of the teams in scope"
            )
        self.auth_hint = hint
        self.http = self.source_client(
            auth=auth, auth_hint=hint, wait_hints=[rate_limit_hint], rate_limited=is_rate_limited
        )

    # -------------------------------------------------------- GraphQL

    async def query(self, document: str, variables: dict[str, Any]) -> tuple[dict[str, Any], httpx.Response]:
        """POST one query; GraphQL errors become ConnectorError (AuthFailed for auth errors)."""
        try:
            body, response = await self.http.post_json(GRAPHQL, {"query": document, "variables": variables})
        except RequestFailed as exc:
            # Linear answers a bad or revoked key with 400 and AUTHENTICATION_ERROR, not 401.
            if exc.status == 400 and "AUTHENTICATION_ERROR" in str(exc):
                raise AuthFailed(
                    f"source {self.name!r}: Linear rejected the credentials; check {self.auth_hint}"
                ) from exc
            raise
        if not isinstance(body, dict):
            raise ConnectorError(f"{self.name}: Linear answered {GRAPHQL} without a JSON object")
        codes = _error_codes(body)
        if "AUTHENTICATION_ERROR" in codes or "FORBIDDEN" in codes:
            raise AuthFailed(
                f"source {self.name!r}: Linear refused the query ({', '.join(sorted(codes))}); check {self.auth_hint}"
            )
        if body.get("errors") and not isinstance(body.get("data"), dict):
            messages = "; ".join(str(e.get("message")) for e in body["errors"] if isinstance(e, dict))
            raise ConnectorError(f"{self.name}: Linear answered with errors: {messages[:300]}")
        return body, response

    def _scope(self, **extra: Any) -> dict[str, Any]:
        """An `IssueFilter`: the team scope plus `extra` conditions."""
        filt: dict[str, Any] = dict(extra)
        if self.config.teams:
            filt["team"] = {"key": {"in": list(self.config.teams)}}
        return filt

    @staticmethod
    def _nodes(body: dict[str, Any]) -> list[dict[str, Any]]:
        nodes = dig(body, ("data", "issues", "nodes"))
        if not isinstance(nodes, list) or not all(isinstance(n, dict) and "id" in n for n in nodes):
            raise ConnectorError("Linear answered without data.issues.nodes of issues with ids")
        return nodes

    # -------------------------------------------------------- pull

    async def scan(self, since: datetime | None) -> list[tuple[datetime, str]]:
        """`(updatedAt, id)` of every issue updated at or after `since`, ascending.

        Linear sorts `orderBy: updatedAt` newest first and documents no ascending order, so
        the window is read newest-first, ids and times only (cheap in requests and
        complexity), and reversed here. An issue edited during the scan can move to the part
        already read and be missed; its new time is later than the scan's start, so the next
        run (which starts at the newest time scanned minus the overlap) reads it.
        """
        filt = self._scope(**({"updatedAt": {"gte": _iso(since)}} if since is not None else {}))
        newest: dict[str, datetime] = {}
        paginator = RelayCursorPaginator(("data", "issues", "pageInfo"))
        while paginator.has_more:
            variables: dict[str, Any] = {"first": self.config.scan_page_size, "filter": filt}
            if paginator.current_value:
                variables["after"] = paginator.current_value
            body, response = await self.query(queries.SCAN, variables)
            for node in self._nodes(body):
                updated = _time(node.get("updatedAt"))
                if updated is None:
                    continue
                native_id = str(node["id"])
                if native_id not in newest or updated > newest[native_id]:
                    newest[native_id] = updated
            paginator.advance(response, body)
        return sorted(((when, native_id) for native_id, when in newest.items()), key=lambda k: (k[0], k[1]))

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """Issues in ascending `updatedAt` order, `page_size` at a time.

        Two steps, because Linear only sorts newest first: `scan()` lists the window's ids and
        update times, then each chunk of ids (oldest first) is fetched whole with
        `filter: {id: {in: [...]}}`. Each page's cursor is the newest *scanned* `(updatedAt,
        id)` of the chunks yielded so far, not the time on the fetched record: an issue edited
        between scan and fetch comes back newer, and advancing the cursor to that time would
        skip the chunks not yet fetched if the run stopped there. Resuming from a page's
        cursor rescans from that time minus the overlap, so nothing between pages is lost;
        `includeArchived` keeps archived issues (completed work) in the hub.
        """
        state = DatetimeCursor.parse(cursor)
        keys = await self.scan(state.since(self.overlap))
        size = self.config.page_size
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            ids = [native_id for _, native_id in chunk]
            body, _ = await self.query(queries.ISSUES_BY_ID, {"first": len(ids), "filter": self._scope(id={"in": ids})})
            records = self._nodes(body)
            records.sort(key=lambda r: (_time(r.get("updatedAt")) or datetime.min.replace(tzinfo=UTC), str(r["id"])))
            for updated, native_id in chunk:
                state.observe(updated, native_id)
            yield Page(records=records, cursor=state.serialize() or cursor)

    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        body, _ = await self.query(queries.ISSUES_BY_ID, {"first": 1, "filter": self._scope(id={"eq": native_id})})
        nodes = self._nodes(body)
        return nodes[0] if nodes else None

    async def fetch_history(self, native_id: str) -> list[dict[str, Any]]:
        """The issue's `history` entries (`IssueHistory`: `createdAt`, `fromState`, `toState`),
        every page, in the order Linear pages them (each entry carries its own time and both
        states, so the order does not matter); `[]` when the issue is gone or outside the
        scope. `hub.flow.linear` keeps the entries that change the state."""
        paginator = RelayCursorPaginator(("history", "pageInfo"))  # read on the issue node
        filt = self._scope(id={"eq": native_id})
        entries: list[dict[str, Any]] = []
        while paginator.has_more:
            variables: dict[str, Any] = {"filter": filt, "first": self.history_page_size}
            if paginator.current_value:
                variables["after"] = paginator.current_value
            body, response = await self.query(queries.HISTORY, variables)
            nodes = self._nodes(body)
            if not nodes:
                return []
            history = nodes[0].get("history")
            page = history.get("nodes") if isinstance(history, dict) else None
            if not isinstance(page, list):
                raise ConnectorError(f"{self.name}: Linear answered issue {native_id} without history.nodes")
            entries.extend(entry for entry in page if isinstance(entry, dict))
            paginator.advance(response, nodes[0])
        return entries

    async def list_ids(self) -> AsyncIterator[str]:
        """Every issue id in scope (archived included, as `fetch` reads them)."""
        paginator = RelayCursorPaginator(("data", "issues", "pageInfo"))
        filt = self._scope()
        while paginator.has_more:
            variables: dict[str, Any] = {"first": self.ids_page_size, "filter": filt}
            if paginator.current_value:
                variables["after"] = paginator.current_value
            body, response = await self.query(queries.IDS, variables)
            for node in self._nodes(body):
                yield str(node["id"])
            paginator.advance(response, body)

    def native_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    # -------------------------------------------------------- push

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """`Linear-Signature`: hex HMAC-SHA256 of the raw body keyed with the webhook's signing
        secret; and `webhookTimestamp` (epoch ms, in the body) within a minute of now."""
        secret = self.config.webhook_secret
        if secret is None:
            raise WebhookRejected(
                f"source {self.name!r} has no webhook_secret: copy the webhook's signing secret from Linear "
                f"(Settings > API > Webhooks) into sources.{self.name}.webhook_secret"
            )
        require_hmac_sha256(headers, body, secret, "Linear-Signature")
        try:
            payload = self.json_object(body)
        except ValueError as exc:  # signed by Linear yet unreadable: refuse, as any unverifiable delivery
            raise WebhookRejected(str(exc)) from exc
        stamp = payload.get("webhookTimestamp")
        if not isinstance(stamp, int | float) or isinstance(stamp, bool):
            raise WebhookRejected("webhook body has no webhookTimestamp (replay protection)")
        age = self.clock() - stamp / 1000.0
        if abs(age) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected(
                f"webhookTimestamp is {age:.0f} s from now (more than {WEBHOOK_TOLERANCE_SECONDS:.0f} s)"
            )

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Route a verified delivery to events. Raises ValueError when the body is not a JSON object.

        Issue create/update become `RefetchRecord` by default: the delivery's `data` is a
        thinner shape than the GraphQL node (only `cycleId`, `projectId`, `labelIds`, no
        emails; 2021 deliveries lack `identifier` and `url`), and because the store applies
        only what is newer, a later poll of the same `updatedAt` would never fill those fields
        back in. One query per event keeps every stored issue in the polled shape.
        `webhook_upsert = true` stores `data` instead (the mapping reads both shapes).
        """
        payload = self.json_object(body)
        delivery_id = self.delivery_id(headers, body, "Linear-Delivery")
        return WebhookDelivery(delivery_id=delivery_id, events=self._events(payload), payload=payload)

    def _events(self, payload: dict[str, Any]) -> list[WebhookEvent]:
        kind = str(payload.get("type", ""))
        action = str(payload.get("action", ""))
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        assert isinstance(data, dict)
        if kind == "Issue":
            issue_id = data.get("id")
            if not issue_id:
                return [IgnoreEvent(f"Issue {action} without data.id")]
            team = dig(data, ("team", "key"))
            if self.config.teams and team and team not in self.config.teams:
                return [IgnoreEvent(f"issue {issue_id} is in team {team}, outside this source's scope")]
            if action == "remove":
                at = _time(data.get("archivedAt")) or _time(payload.get("createdAt"))
                return [DeleteRecord(str(issue_id), at=at)]
            if action in ("create", "update"):
                return [UpsertRecord(data)] if self.config.webhook_upsert else [RefetchRecord(str(issue_id))]
            return [IgnoreEvent(f"Issue action {action!r} is not synced")]
        if kind == "Comment":
            issue_id = data.get("issueId") or dig(data, ("issue", "id"))
            if not issue_id:
                return [IgnoreEvent(f"Comment {action} without an issue id")]
            return [RefetchRecord(str(issue_id))]
        if kind == "IssueLabel":
            return [
                IgnoreEvent(
                    f"IssueLabel {action}: a label catalog change, not an issue change (a renamed label shows on "
                    f"issues when they next change or on a full sync)"
                )
            ]
        return [IgnoreEvent(f"Linear {kind or '(no type)'} events are not synced")]


def _iso(when: datetime) -> str:
    """`2026-01-02T03:04:05.678Z`, the form Linear's DateTime scalar prints."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None

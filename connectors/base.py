"""The connector contract: what every tool's connector offers the hub.

A connector knows one tool: auth, endpoints, pagination, rate limits, webhook signatures
and event parsing. It yields the tool's raw records (dicts exactly as the tool's API returns
them) and never builds WorkItems: that is the mapping's job (mappings/), and storing is the
hub's (hub/). Connectors never import hub's store or app.

Sync protocol. `fetch(cursor)` yields pages of raw records in ascending update order; each
page carries the cursor to resume from *after* that page is stored. The hub commits a page
and its cursor in one transaction, so a crash resumes from the last stored page. Because
the store applies upserts only if newer, re-reading an overlap after resume writes nothing
twice. `cursor=None` means a full sync. Cursors are opaque strings to the hub.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.auth import header_value

if TYPE_CHECKING:
    import httpx

    from connectors.http import SourceClient

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """A whole number and a unit: "90s", "15m", "2h", "1d" (the one rule for every duration
    key: `schedule`, `overlap`, Productboard's `aux_ttl` ...). No bare numbers, fractions or
    milliseconds: a unit-less "30" reads as minutes to some and seconds to others."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like '30s', '15m', '2h' or '1d'")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class ConnectorConfig(BaseModel):
    """Settings every source has; a tool's connector extends this with its own keys."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    base_url: str
    webhook_secret: SecretStr | None = None
    schedule: str | None = Field(default=None, description='How often to sync, e.g. "15m", "1h"; none = on demand.')
    overlap: str = Field(
        default="5m", description="Incremental window re-read before the cursor (clock skew, late commits)."
    )
    max_concurrency: int = Field(default=4, ge=1, le=64)
    request_budget: int | None = Field(default=None, ge=1, description="Most requests one run may make.")
    page_size: int = Field(default=100, ge=1, le=1000)
    timeout_seconds: float = Field(default=30.0, gt=0)
    mapping: dict[str, Any] = Field(default_factory=dict, description="Mapping overrides (see mappings/README.md).")
    history: bool = Field(
        default=False,
        description=(
            "Backfill each changed item's status history from the tool "
            "(costs requests per item; bounded by request_budget)"
        ),
    )

    @field_validator("schedule", "overlap")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


def compact_json(record: dict[str, Any]) -> bytes:
    """`record` as JSON in an exact-size bytes, for listings a connector must keep whole
    (to sort them) before it yields them: orjson's own result keeps its working buffer
    (measured: 16 KB held for a 1.7 KB record), most of the memory of a kept listing."""
    return memoryview(orjson.dumps(record)).tobytes()


@dataclass
class Page:
    """One page of raw records and the cursor to resume from once it is stored."""

    records: list[dict[str, Any]]
    cursor: str | None


# ---------------------------------------------------------------- webhook events


@dataclass(frozen=True)
class UpsertRecord:
    """The delivery carries the full raw record: map and apply it."""

    record: dict[str, Any]


@dataclass(frozen=True)
class DeleteRecord:
    native_id: str
    at: datetime | None = None


@dataclass(frozen=True)
class RefetchRecord:
    """The delivery is thin (or about a child such as a comment): fetch the record fresh."""

    native_id: str


@dataclass(frozen=True)
class IgnoreEvent:
    """Acknowledged on purpose and recorded as ignored, with the reason."""

    reason: str


WebhookEvent = UpsertRecord | DeleteRecord | RefetchRecord | IgnoreEvent


@dataclass
class WebhookDelivery:
    delivery_id: str
    events: list[WebhookEvent] = field(default_factory=list)
    payload: dict[str, Any] | None = None
    """The body as parsed (its JSON object), so the inbox worker reads what the delivery
    states besides its records (Jira's top-level `changelog`) without parsing it again."""


class WebhookRejected(Exception):
    """Signature or secret check failed: answer 401 and store nothing."""


class ConnectorError(Exception):
    """A failure the user can act on (bad credentials, missing permission, bad scope)."""


class AuthFailed(ConnectorError):
    """401/403 from the tool: the source is marked failing with this message."""


# ---------------------------------------------------------------- the contract

CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Headers that carry credentials whatever the tool: never stored with a delivery."""


class ConnectorOptions(TypedDict, total=False):
    """What tests and benchmarks hand a connector; the hub passes none of them.

    `transport` (e.g. `httpx.ASGITransport(fake.app)`) replaces the network, `sleep` (a
    recorder) the waits between retries, `clock` (epoch seconds) the wall clock that decides
    freshness: cached listings, webhook timestamps, dedupe windows."""

    transport: httpx.AsyncBaseTransport | None
    sleep: Callable[[float], Awaitable[None]] | None
    clock: Callable[[], float]


class Connector(ABC):
    tool: ClassVar[str]
    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(
        self,
        name: str,
        config: ConnectorConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`config` may be any `ConnectorConfig`: it is re-validated as the tool's
        `config_model` (the hub builds the right model; tests and callers may not)."""
        self.name = name
        if not isinstance(config, self.config_model):
            config = self.config_model.model_validate(config.model_dump())
        self.config = config
        self.transport = transport
        self.sleep = sleep
        self.clock = clock
        self.overlap: timedelta = parse_duration(config.overlap)
        self._clients: list[SourceClient] = []

    def source_client(self, *, auth: httpx.Auth | None, auth_hint: str, **options: Any) -> SourceClient:
        """The source's HTTP client: timeouts, concurrency and request budget from its config,
        this connector's `transport` and `sleep`, closed by `aclose` and counted in `stats`.
        `options` are the tool's own (`headers`, `wait_hints`, `rate_limited`)."""
        # Imported here: connectors.http imports this module's config and errors.
        from connectors.http import SourceClient

        client = SourceClient.for_source(
            self.name,
            self.config,
            auth=auth,
            auth_hint=auth_hint,
            transport=self.transport,
            sleep=self.sleep,
            **options,
        )
        self._clients.append(client)
        return client

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release HTTP clients."""
        for client in self._clients:
            await client.aclose()

    async def mapping_context(self) -> dict[str, Any]:
        """Facts the mapping needs from the tool (e.g. Jira's custom field catalog)."""
        return {"source": self.name, "tool": self.tool, "base_url": self.config.base_url}

    @abstractmethod
    def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """Pages of raw records in ascending update order; `None` = full sync."""

    @abstractmethod
    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        """One raw record, or None when the tool no longer has it."""

    @abstractmethod
    def list_ids(self) -> AsyncIterator[str]:
        """Every native id in the source's scope now (for the deletion sweep)."""

    lists_on_full_fetch: ClassVar[bool] = False
    """A full `fetch` (no cursor) lists every id in scope before its pages (Jira: ids, then bulk
    fetches) and leaves the listing in `full_listing`: the deletion sweep takes that as its
    first listing instead of listing the same ids again beside the pages."""

    full_listing: tuple[datetime, Collection[str]] | None = None
    """(when the listing began, the ids listed) of the last full `fetch` that listed."""

    @abstractmethod
    def native_id(self, record: dict[str, Any]) -> str:
        """The tool's id of a raw record."""

    # Status history (opt-in per source: `ConnectorConfig.history`). A tool whose API keeps
    # an item's status changes sets `supports_history` and implements `fetch_history`.
    supports_history: ClassVar[bool] = False

    async def fetch_history(self, native_id: str) -> list[dict[str, Any]]:
        """The tool's raw history records for one item, every page, oldest first where the
        tool says; `[]` when the tool no longer has the item (404), as `fetch_one` answers None.

        Requests go through the connector's `SourceClient`, so retries, rate-limit waits and
        the run's `request_budget` apply (a history costs at least one request per item);
        `hub.flow.extract.history_transitions` turns the records into transitions."""
        raise NotImplementedError(f"{self.tool} offers no status history to backfill")

    # Webhooks: a pull-only tool (Redmine) keeps these defaults.
    supports_webhooks: ClassVar[bool] = False

    webhook_secret_headers: ClassVar[frozenset[str]] = frozenset()
    """Lower-case names of the tool's own headers that carry its webhook secret or a value
    derived from it (a signature). Once `verify` has passed, the hub needs none of them, and
    a stored signature beside its body lets anyone who reads the database guess a weak
    secret offline; so the inbox never stores them (see `secret_headers`)."""

    @property
    def secret_headers(self) -> frozenset[str]:
        """Every header the inbox must not store for this source: the generic credential
        headers plus the tool's declared ones. A connector whose secret header is configured
        per source (Aha!'s `webhook_header`) extends this property."""
        return CREDENTIAL_HEADERS | self.webhook_secret_headers

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise WebhookRejected unless the delivery is authentic."""
        raise WebhookRejected(f"{self.tool} sends no webhooks")

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """The delivery id (for dedupe) and the events a verified delivery carries.

        This is the one parse of the body at intake: parse it with `orjson.loads` (which
        refuses nesting deeper than 1,024 levels) and raise ValueError chained from the
        `orjson.JSONDecodeError` when it is not JSON, so the hub answers 400 Malformed JSON."""
        raise WebhookRejected(f"{self.tool} sends no webhooks")

    def webhook_probe(self, query: Mapping[str, str]) -> str | None:
        """Answer to a subscription probe (GET), e.g. Productboard's validationToken."""
        return None

    def stats(self) -> dict[str, int]:
        """Request counters for the run summary: requests, retries, ..."""
        totals: dict[str, int] = {}
        for client in self._clients:
            for key, count in client.stats().items():
                totals[key] = totals.get(key, 0) + count
        return totals

    # Shared pieces of `parse` (and of a `verify` that reads the body).

    @staticmethod
    def json_object(body: bytes) -> dict[str, Any]:
        """A webhook body as a JSON object; ValueError (chained from orjson's error, which
        refuses nesting deeper than 1,024 levels) when it is not JSON or not an object, so the
        hub answers 400 Malformed JSON."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"webhook body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ValueError("webhook body is not a JSON object")
        return payload

    @staticmethod
    def delivery_id(headers: Mapping[str, str], body: bytes, *id_headers: str) -> str:
        """The first of the tool's delivery-id headers present, else `sha256:<hex of the body>`
        (a retry of the same delivery has the same body, so it dedupes as well)."""
        for name in id_headers:
            value = header_value(headers, name)
            if value:
                return value
        return body_digest(body)


def body_digest(body: bytes) -> str:
    """`sha256:<hex>` of a webhook body: the delivery id of a tool that sends none."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def hmac_sha256_matches(secret: SecretStr, body: bytes, given_hex: str) -> bool:
    """Whether `given_hex` (any case, outer whitespace ignored) is the hex HMAC-SHA256 of `body`
    under `secret`, compared in constant time: the signature Jira, GitHub and Linear send.

    `hmac.digest` is OpenSSL's one-shot HMAC, without an HMAC object per delivery
    (https://docs.python.org/3/library/hmac.html#hmac.digest). Compared as bytes: `compare_digest`
    raises TypeError for text with a non-ASCII character, and a header may hold any latin-1 text.
    """
    expected = hmac.digest(secret.get_secret_value().encode(), body, "sha256").hex().encode()
    return hmac.compare_digest(expected, given_hex.strip().lower().encode())


def require_hmac_sha256(
    headers: Mapping[str, str], body: bytes, secret: SecretStr, header: str, *, prefix: str = ""
) -> None:
    """Refuse a delivery whose `header` is not the hex HMAC-SHA256 of `body` under `secret`.

    `prefix` is the method tag the tool writes before the hex (`sha256=` for GitHub and Jira,
    nothing for Linear); the tag's case and the spaces around it are not significant.
    Raises WebhookRejected naming the header, so the sender's log says which one to fix.
    """
    signature = header_value(headers, header)
    if not signature:
        raise WebhookRejected(f"missing {header} header")
    given = signature
    if prefix:
        method, sep, given = signature.partition("=")
        if not sep or f"{method.strip().lower()}=" != prefix or not given:
            raise WebhookRejected(f"{header} must be {prefix}<hex>")
    if not hmac_sha256_matches(secret, body, given):
        raise WebhookRejected(f"{header} does not match the body")

"""Webhook intake and the inbox worker.

Intake (`WebhookIntake.receive`): the source's connector verifies the delivery; the raw
body and headers are committed to the inbox with the tool's delivery id; only then does the
hub answer 202. A delivery id seen before is acknowledged and changes nothing. Intake does
no mapping and no network calls, so it answers fast and a slow tool never times it out.

Worker (`InboxWorker`): claims stored deliveries, turns them into events with the same
connector, and applies them through the store's one write path. Because `apply` writes only
newer versions, a delivery applied twice (a worker died after applying, before marking it
done) has its effect once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from connectors.base import (
    Connector,
    DeleteRecord,
    IgnoreEvent,
    RefetchRecord,
    UpsertRecord,
    WebhookRejected,
)
from hub.config import HubConfig, SourceDefinition
from hub.db.tables import webhook_inbox
from hub.normalise import Normaliser
from hub.schema import ItemDeletion, WorkItem
from hub.store import Store
from hub.store.inbox import DONE, FAILED, IGNORED, InboxDelivery, InboxStore
from mappings import MappingError

log = logging.getLogger("opshub.webhooks")

# Limits checked before anything reaches the database. A header value longer than common
# proxies accept (nginx's default 8 KB buffer) carries no event data we need; the delivery id
# must fit its column (PostgreSQL refuses a longer one with an error, not a 4xx).
MAX_HEADER_VALUE_CHARS = 8192
MAX_DELIVERY_ID_CHARS: int = getattr(webhook_inbox.c.delivery_id.type, "length", None) or 200


class IntakeError(Exception):
    """Maps to an HTTP problem: status, title, detail."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@dataclass
class IntakeResult:
    delivery_id: str
    duplicate: bool


ConnectorFactory = Callable[[SourceDefinition], Connector]


def default_connector(source: SourceDefinition) -> Connector:
    return source.connector()


class WebhookIntake:
    def __init__(
        self,
        store: Store,
        config: HubConfig,
        *,
        max_body_bytes: int = 5 * 1024 * 1024,
        connector_factory: ConnectorFactory = default_connector,
    ) -> None:
        self.inbox = InboxStore(store.engine)
        self.config = config
        self.max_body_bytes = max_body_bytes
        self._connector_factory = connector_factory
        self._connectors: dict[str, Connector] = {}

    def connector(self, source_name: str) -> Connector:
        if source_name not in self.config.sources:
            raise IntakeError(404, "Unknown source", f"no source named {source_name!r} is configured")
        if source_name not in self._connectors:
            self._connectors[source_name] = self._connector_factory(self.config.sources[source_name])
        connector = self._connectors[source_name]
        if not connector.supports_webhooks:
            raise IntakeError(404, "No webhooks", f"{connector.tool} sources receive no webhooks; they are polled")
        return connector

    def probe(self, source_name: str, query: Mapping[str, str]) -> str:
        answer = self.connector(source_name).webhook_probe(query)
        if answer is None:
            raise IntakeError(405, "Method not allowed", "this source's webhooks are delivered with POST")
        return answer

    def receive(self, source_name: str, headers: Mapping[str, str], body: bytes) -> IntakeResult:
        """Verify, parse once, store: the steps of the module docstring, each failing with a 4xx.

        The body is parsed once, by the connector's `parse` (orjson, which refuses JSON nested
        deeper than 1,024 levels with a ValueError instead of recursing until Python's stack
        gives out); the intake does not parse it again to check it is JSON.
        """
        connector = self.connector(source_name)
        if len(body) > self.max_body_bytes:
            raise IntakeError(413, "Payload too large", f"webhook bodies are limited to {self.max_body_bytes} bytes")
        _check_headers(headers)
        try:
            connector.verify(headers, body)
        except WebhookRejected as exc:
            raise IntakeError(401, "Webhook rejected", str(exc)) from None
        try:
            delivery = connector.parse(headers, body)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            if isinstance(exc, orjson.JSONDecodeError) or isinstance(exc.__cause__, orjson.JSONDecodeError):
                raise IntakeError(400, "Malformed JSON", f"the webhook body is not valid JSON: {exc}") from None
            raise IntakeError(400, "Unreadable delivery", f"{type(exc).__name__}: {exc}") from None
        _check_delivery_id(delivery.delivery_id)
        secret = connector.secret_headers
        kept = {k.lower(): v for k, v in headers.items() if k.lower() not in secret}
        is_new = self.inbox.add(source_name, delivery.delivery_id, kept, body)
        return IntakeResult(delivery.delivery_id, duplicate=not is_new)

    async def aclose(self) -> None:
        for connector in self._connectors.values():
            await connector.aclose()


def _check_headers(headers: Mapping[str, str]) -> None:
    """Header names and values short enough to store and free of NUL (PostgreSQL text cannot
    hold one; SQLite would, so refusing it here keeps both backends alike)."""
    for name, value in headers.items():
        if len(value) > MAX_HEADER_VALUE_CHARS or len(name) > MAX_HEADER_VALUE_CHARS:
            raise IntakeError(
                400, "Header too long", f"header {name[:64]!r} is longer than {MAX_HEADER_VALUE_CHARS} characters"
            )
        if "\x00" in value or "\x00" in name:
            raise IntakeError(400, "Invalid header", f"header {name[:64]!r} contains a NUL character")


def _check_delivery_id(delivery_id: str) -> None:
    if len(delivery_id) > MAX_DELIVERY_ID_CHARS:
        raise IntakeError(
            400, "Delivery id too long", f"the delivery id is longer than {MAX_DELIVERY_ID_CHARS} characters"
        )
    if "\x00" in delivery_id:
        raise IntakeError(400, "Invalid delivery id", "the delivery id contains a NUL character")


class InboxWorker:
    """Applies stored deliveries. Safe to run in several processes (rows are claimed)."""

    def __init__(
        self, store: Store, config: HubConfig, *, connector_factory: ConnectorFactory = default_connector
    ) -> None:
        self.store = store
        self.config = config
        self._connector_factory = connector_factory
        self.inbox = InboxStore(store.engine)
        self._connectors: dict[str, Connector] = {}
        self._normalisers: dict[str, Normaliser] = {}

    async def _tools(self, source_name: str) -> tuple[Connector, Normaliser]:
        if source_name not in self._connectors:
            source = self.config.source(source_name)
            connector = self._connector_factory(source)
            self._connectors[source_name] = connector
            self._normalisers[source_name] = Normaliser(
                source.tool, await connector.mapping_context(), source.config.mapping
            )
        return self._connectors[source_name], self._normalisers[source_name]

    async def process_once(self, limit: int = 50) -> int:
        """Apply one batch of pending deliveries; returns how many were handled."""
        deliveries = await asyncio.to_thread(self.inbox.claim, limit)
        for delivery in deliveries:
            status, error = await self._process(delivery)
            await asyncio.to_thread(self.inbox.finish, delivery, status, error)
        return len(deliveries)

    async def drain(self) -> int:
        total = 0
        while n := await self.process_once():
            total += n
        return total

    async def _process(self, delivery: InboxDelivery) -> tuple[str, str | None]:
        try:
            connector, normaliser = await self._tools(delivery.source)
            events = connector.parse(delivery.headers, delivery.body).events
            ops: list[WorkItem | ItemDeletion] = []
            # Records fetched fresh from the tool are its current state. Some tools do not
            # bump their update time for every change (Productboard: a release assignment),
            # so these are applied with `force`: written when the content differs at an
            # equal update time. Force never writes an older version, so order still holds.
            refetched: list[WorkItem | ItemDeletion] = []
            ignored: list[str] = []
            for event in events:
                if isinstance(event, UpsertRecord):
                    ops.append(normaliser.map(event.record))
                elif isinstance(event, DeleteRecord):
                    ops.append(ItemDeletion(source=delivery.source, native_id=event.native_id, deleted_at=event.at))
                elif isinstance(event, RefetchRecord):
                    record = await connector.fetch_one(event.native_id)
                    if record is None:
                        refetched.append(ItemDeletion(source=delivery.source, native_id=event.native_id))
                    else:
                        refetched.append(normaliser.map(record))
                elif isinstance(event, IgnoreEvent):
                    ignored.append(event.reason)
            if ops:
                await asyncio.to_thread(self.store.items.apply, ops)
            if refetched:
                await asyncio.to_thread(partial(self.store.items.apply, refetched, force=True))
            ops += refetched
            if not ops and ignored:
                return IGNORED, "; ".join(ignored)
            return DONE, None
        except MappingError as exc:
            return FAILED, f"mapping: {exc}"
        except Exception as exc:  # noqa: BLE001 - kept on the row and retried with backoff
            log.warning("delivery %s of %s failed: %s", delivery.delivery_id, delivery.source, exc)
            return FAILED, f"{type(exc).__name__}: {exc}"

    async def aclose(self) -> None:
        for connector in self._connectors.values():
            await connector.aclose()


def header_dict(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}

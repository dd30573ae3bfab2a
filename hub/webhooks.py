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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import orjson
from sqlalchemy.exc import DBAPIError, DisconnectionError

from connectors.base import (
    AuthFailed,
    Connector,
    DeleteRecord,
    IgnoreEvent,
    RefetchRecord,
    UpsertRecord,
    WebhookRejected,
)
from connectors.http import RequestFailed
from hub import metrics
from hub.config import HubConfig, SourceDefinition
from hub.db.engine import write_transaction
from hub.db.tables import webhook_inbox
from hub.flow.history import Transition
from hub.group_commit import GroupCommitter, NewDelivery
from hub.logs import log_extra
from hub.normalise import Normaliser
from hub.schema import ItemDeletion, WorkItem
from hub.store import Store
from hub.store.bulk import database_unavailable
from hub.store.clock import utcnow
from hub.store.contexts import ContextStore
from hub.store.inbox import CLAIM_TTL, DEAD, DONE, FAILED, IGNORED, InboxDelivery, InboxStore
from hub.sync import freeze_startup_objects, sync_gc_threshold
from mappings import MappingError

log = logging.getLogger("opshub.webhooks")

# Limits checked before anything reaches the database. A header value longer than common
# proxies accept (nginx's default 8 KB buffer) carries no event data we need; the delivery id
# must fit its column (PostgreSQL refuses a longer one with an error, not a 4xx).
MAX_HEADER_VALUE_CHARS = 8192
MAX_DELIVERY_ID_CHARS: int = getattr(webhook_inbox.c.delivery_id.type, "length", None) or 200
# The worker's lane lets the event loop run between chunks of this many deliveries it maps.
YIELD_EVERY = 20
# While a backlog lasts, claims grow to this many times the configured batch size (see ClaimSize).
BACKLOG_GROWTH = 4
# Bodies up to this size are verified and parsed on the event loop (see WebhookIntake.accept).
INLINE_CHECK_BYTES = 256 * 1024


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
        max_group: int = 500,
    ) -> None:
        self.inbox = InboxStore(store.engine)
        self.committer = GroupCommitter(self.inbox.add_many, max_group=max_group)
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

    def prepare(self, source_name: str, headers: Mapping[str, str], body: bytes) -> NewDelivery:
        """Verify and parse once, without touching the database; each failure is a 4xx.

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
        return NewDelivery(source_name, delivery.delivery_id, kept, body)

    def receive(self, source_name: str, headers: Mapping[str, str], body: bytes) -> IntakeResult:
        """Verify, parse, store in a transaction of its own (CLI, tests); the route uses `accept`."""
        delivery = self.prepare(source_name, headers, body)
        is_new = self.inbox.add(delivery.source, delivery.delivery_id, delivery.headers, delivery.body)
        return IntakeResult(delivery.delivery_id, duplicate=not is_new)

    async def accept(self, source_name: str, headers: Mapping[str, str], body: bytes) -> IntakeResult:
        """Verify, parse, and store with the deliveries arriving at the same time (group commit);
        returns once the group holding this delivery is committed. CommitFailed: not stored.

        Verification and parsing of a small body (an HMAC and one orjson parse: tens of
        microseconds) run on the event loop; a thread hop would cost more than the work. A
        large body is checked in a worker thread so that it does not hold the loop.
        """
        if len(body) <= INLINE_CHECK_BYTES:
            delivery = self.prepare(source_name, headers, body)
        else:
            delivery = await asyncio.to_thread(self.prepare, source_name, headers, body)
        is_new = await self.committer.submit(delivery)
        return IntakeResult(delivery.delivery_id, duplicate=not is_new)

    async def aclose(self) -> None:
        await self.committer.aclose()
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


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: `initial` seconds, doubling per consecutive failure, at most `maximum`."""

    initial: float = 1.0
    maximum: float = 60.0

    def delay(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.initial * 2 ** max(failures - 1, 0), self.maximum))


_LONG_AGO = datetime.min.replace(tzinfo=UTC)


@dataclass
class _Waiting:
    """A source whose tool failed: when to ask it again, and why we wait."""

    failures: int = 0
    retry_at: datetime = _LONG_AGO
    error: str = ""


@dataclass(frozen=True)
class SourceTools:
    """A source's connector and the normaliser built on its mapping context, made together
    (or not at all: a failed set-up caches nothing, so it cannot poison later deliveries)."""

    connector: Connector
    normaliser: Normaliser
    context_at: datetime | None  # when the tool gave the context; None: base context only

    @property
    def provisional(self) -> bool:
        """Mapped without the tool's context: items are marked and mapped again later."""
        return self.context_at is None


@dataclass(frozen=True)
class MappedDelivery:
    """One delivery mapped and ready to apply (the worker applies a batch of them at once)."""

    ops: list[WorkItem | ItemDeletion]
    refetched: list[WorkItem | ItemDeletion]  # fetched fresh from the tool: applied with force
    provisional: list[str]  # items mapped without the tool's context
    status: str  # done or ignored
    error: str | None
    transitions: list[Transition]


@dataclass(frozen=True)
class ProcessedDelivery:
    """What the worker did with one claimed delivery, and in which of its passes."""

    source: str
    delivery_id: str
    status: str  # the status written, or "lost" (the claim had lapsed) / "interrupted"
    claimed_in_pass: int
    finished_in_pass: int


class ClaimSize:
    """How many deliveries the next pass claims: the configured batch size, doubled after each
    pass that claimed a full batch (a backlog) up to `BACKLOG_GROWTH` times it, and back to it
    once a pass finds fewer. A batch pays a fixed cost (its claim, its transaction, apply's
    set-based statements), so a backlog drains faster in larger batches (a 4,000-delivery drain
    on SQLite: ~1,100-1,400 deliveries per CPU-s in batches of 200, ~1,300-1,650 in 500s), while
    a worker that keeps up claims what just arrived, a small batch applied at once."""

    def __init__(self, base: int, *, most: int | None = None) -> None:
        self.base = self.current = base
        self.most = most if most is not None else base * BACKLOG_GROWTH

    def after(self, claimed: int) -> None:
        if not claimed:  # every source busy (or nothing due): says nothing about the backlog
            return
        full = claimed >= self.current
        self.current = min(self.current * 2, self.most) if full else self.base


def tool_unreachable(exc: BaseException) -> bool:
    """Failures a later try can cure: the tool is down, overloaded or refusing our credentials.

    A delivery that hits one waits (its attempt is not counted) instead of heading for `dead`.
    """
    if isinstance(exc, AuthFailed):
        return True
    if isinstance(exc, RequestFailed):
        return exc.status is None or exc.status == 429 or exc.status >= 500
    return isinstance(exc, httpx.TransportError | OSError | TimeoutError)


def store_unavailable(exc: BaseException) -> bool:
    """The database is down or busy (not this data's fault): nothing can be applied now.

    The store's own rule (`database_unavailable`: connection and lock errors, wrapped or raw
    from the bulk path, but not a value past a PostgreSQL limit), plus what only a pooled
    connection raises: an invalidated connection, a pool disconnect, a timeout or socket error.
    A refused value (IntegrityError, DataError ...) is the delivery's fault and fails only it.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return database_unavailable(exc) or isinstance(exc, DisconnectionError | TimeoutError | OSError)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class InboxWorker:
    """Applies stored deliveries. Safe to run in several processes (rows are claimed).

    Each pass claims the due deliveries of every source that is not busy and not waiting
    for its tool, and starts one lane (an asyncio task) per source, which handles that
    source's deliveries in order. A slow or failing tool holds only its own lane: the next
    pass claims the other sources' deliveries. A delivery that needs an unreachable tool is
    released without counting its attempt, and its source waits with backoff; a delivery
    that carries its whole record is mapped with the stored context and applied at once.
    """

    def __init__(
        self,
        store: Store,
        config: HubConfig,
        *,
        connector_factory: ConnectorFactory = default_connector,
        claim_ttl: timedelta = CLAIM_TTL,
        context_max_age: timedelta = timedelta(hours=24),
        tool_backoff: Backoff | None = None,
        pipeline: bool = False,
    ) -> None:
        self.store = store
        self.config = config
        self._connector_factory = connector_factory
        self.inbox = InboxStore(store.engine, claim_ttl=claim_ttl)
        self.contexts = ContextStore(store.engine)
        self.context_max_age = context_max_age
        self.tool_backoff = tool_backoff or Backoff()
        self._tools: dict[str, SourceTools] = {}
        self._context_wait: dict[str, _Waiting] = {}
        self._tool_wait: dict[str, _Waiting] = {}
        self._lanes: dict[str, asyncio.Task[int]] = {}  # a lane's result: the deliveries it claimed itself
        self._held: dict[str, int] = {}  # claim token -> deliveries of it not settled yet
        self._heartbeat: asyncio.Task[None] | None = None
        self._refreshing: dict[str, asyncio.Task[None]] = {}  # background context refreshes
        self.on_lane_done: Callable[[], None] | None = None
        # A lane claims its source's next batch and maps it while the batch before commits
        # (`_lane`), when asked (HUB_INBOX_PIPELINE) and on PostgreSQL only: there the worker
        # waits on the server while its own CPU could map. Off by default: with the server on
        # the same 2 cores, the pairs were no faster at load 3-6 and slower in all five of the
        # lead's quiet pairs (load 1.3-2.9), with more CPU per delivery on both sides: no core
        # was idle for the overlap (bench/README.md, i13pgpipe). Meant for a server on its own
        # host, which was not measured.
        # SQLite's writer is this process: a claim beside an apply only queues on the write
        # lock, and the pipelined drain was slower there.
        self.pipeline = pipeline and store.engine.dialect.name == "postgresql"
        self.passes = 0
        self.recent: deque[ProcessedDelivery] = deque(maxlen=1000)

    # ------------------------------------------------------------------ passes

    async def process_once(
        self, limit: int = 200, *, wait: bool = True, hold_back: Iterable[str] = (), most: int | None = None
    ) -> int:
        """One pass; returns how many deliveries it claimed.

        Claims (up to `limit` at a time) the due deliveries of every source that is neither
        busy nor waiting for its tool, and starts one lane per source. `wait=True` (drain,
        CLI, tests) returns once those lanes are done; the serve loop passes False, so that
        a stuck source never holds the next pass. A pipelined lane (`pipeline`) goes on with its
        source's next batches on its own (claims of `limit`, doubling while they come full, up to
        `most`, by default `limit`); with `wait=True` the count includes them.
        """
        self.passes += 1
        this_pass = self.passes
        started: dict[str, asyncio.Task[int]] = {}
        claimed = 0
        while True:
            now = utcnow()
            skip = {source for source, lane in self._lanes.items() if not lane.done()} | set(started) | set(hold_back)
            skip |= {source for source, waiting in self._tool_wait.items() if waiting.retry_at > now}
            if skip and not set(self.config.sources) - skip:
                # Every source is busy or waiting (the serve loop is woken by each group commit
                # while a lane applies): a claim would only walk their backlogs, in a write
                # transaction that holds up the intake's commits, to find nothing.
                break
            deliveries = await asyncio.to_thread(partial(self.inbox.claim, limit, skip_sources=skip))
            if not deliveries:
                break
            claimed += len(deliveries)
            self._held[deliveries[0].claim_token] = len(deliveries)
            self._ensure_heartbeat()
            by_source: dict[str, list[InboxDelivery]] = {}
            for delivery in deliveries:
                by_source.setdefault(delivery.source, []).append(delivery)
            for source, batch in by_source.items():
                sizes = ClaimSize(limit, most=most or limit)
                lane = asyncio.create_task(self._lane(source, batch, this_pass, sizes), name=f"inbox lane {source}")
                self._lanes[source] = started[source] = lane
            if len(deliveries) < limit or not set(self.config.sources) - skip - set(started):
                # All claimed, or every source is busy now: another claim would only walk the
                # busy sources' backlog (it skips them row by row) to find nothing.
                break
        if wait and started:
            # With the deliveries the pipelined lanes claimed on their own: a drain's count.
            claimed += sum(await asyncio.gather(*started.values()))
        return claimed

    async def drain(self, limit: int = 200) -> int:
        """Apply everything that can be applied now (after the lanes already running), claiming
        `limit` at a time, more while the backlog lasts (ClaimSize).

        A source whose tool failed during the drain is not tried again in it, however short
        its backoff: the drain ends while the tool is down instead of spinning.
        """
        await self.wait_lanes()
        total = 0
        held_back: set[str] = set()
        size = ClaimSize(limit)
        while n := await self.process_once(size.current, hold_back=held_back, most=size.most):
            total += n
            size.after(n)
            held_back |= set(self._tool_wait)
        return total

    async def wait_refreshes(self) -> None:
        """Wait until the background refreshes of stale mapping contexts are done."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def wait_lanes(self, source: str | None = None) -> None:
        """Wait until the running lanes (of one source) are done."""
        lanes = [lane for name, lane in self._lanes.items() if not lane.done() and source in (None, name)]
        if lanes:
            await asyncio.gather(*lanes, return_exceptions=True)

    async def _lane(self, source: str, batch: list[InboxDelivery], claimed_in: int, sizes: ClaimSize) -> int:
        """Map the source's claimed deliveries in order, then apply them in one transaction
        (`_commit_mapped`; what is mapped is applied earlier when a delivery must ask its tool).
        A delivery that cannot be mapped, or waits for its tool, is settled on its own as it
        comes; the rest are applied together.

        Pipelined (`pipeline`): while a batch's transaction runs in its thread, the lane claims
        its source's next due deliveries (that source only) and maps them on the event loop, so
        the hub's CPU and the database server's work overlap instead of adding up. The next
        transaction starts only once the one before has committed: deliveries about one item
        are applied in the order they arrived, and two batches of a source never commit at
        once. The lane goes on while its claims come back full (a backlog) and ends when its
        source has none (or waits for its tool); other sources are never held by it (the passes
        skip only busy sources). A store that is down fails the lane: every claim it holds, of
        the batch committing and of the one mapped after it, is left to lapse and be retried.

        A batch allocates as a sync's page does (bodies, decoded JSON, mapped items, rows,
        freed by reference counting once applied), so it runs under the sync's collector
        settings (hub/sync.py `sync_gc_threshold`, `freeze_startup_objects`): with Python's
        default threshold the collector's passes were ~20 % of a drain's CPU (10,000 Jira
        deliveries on SQLite: 390 us of CPU per delivery, 306 us with the collector off)."""
        freeze_startup_objects()
        unsettled: dict[int, tuple[InboxDelivery, int]] = {}  # claimed, outcome not recorded yet
        committing: asyncio.Task[None] | None = None  # the transaction of the batch mapped last
        others = set(self.config.sources) - {source}
        claimed = 0  # by this lane, after the batch the pass gave it
        try:
            with sync_gc_threshold():
                while True:
                    unsettled.update((delivery.id, (delivery, claimed_in)) for delivery in batch)
                    committing = await self._map_batch(batch, claimed_in, committing, unsettled)
                    # Only through a backlog (the claim came back full): a lane that keeps up
                    # would claim the few deliveries that arrived while it mapped, and those that
                    # arrive during the commit would wait for that small batch's commit too (202
                    # -> queryable at 500/s, bench/README.md i13pgpipe). Past a backlog, the next
                    # pass claims what arrived, in one batch, once this lane is done.
                    if not self.pipeline or source in self._tool_wait or len(batch) < sizes.current:
                        break
                    sizes.after(len(batch))
                    batch = await asyncio.to_thread(partial(self.inbox.claim, sizes.current, skip_sources=others))
                    if not batch:
                        break
                    claimed += len(batch)
                    claimed_in = self.passes
                    self._held[batch[0].claim_token] = len(batch)
                    self._ensure_heartbeat()
                if committing is not None:
                    await committing
        except Exception as exc:  # noqa: BLE001 - the store failed: claims lapse and are retried
            if committing is not None:
                # The transaction before may still be running: what it commits is recorded as
                # done; the rest is left for retry.
                await asyncio.gather(committing, return_exceptions=True)
            log.warning("inbox: %s: %d deliveries left for retry: %s", source, len(unsettled), first_line(exc))
            for delivery, pass_number in list(unsettled.values()):
                self._settled(delivery.claim_token)
                self._record(delivery, "interrupted", pass_number)
        finally:
            if committing is not None and not committing.done():
                committing.cancel()  # the lane was cancelled (shutdown): its claims lapse
            if self.on_lane_done is not None:
                self.on_lane_done()
        return claimed

    async def _map_batch(
        self,
        batch: list[InboxDelivery],
        claimed_in: int,
        previous: asyncio.Task[None] | None,
        unsettled: dict[int, tuple[InboxDelivery, int]],
    ) -> asyncio.Task[None] | None:
        """Map a batch while `previous` (the batch before's transaction) may still run; returns
        the task of this batch's transaction, started only after `previous` committed."""

        def record(delivery: InboxDelivery, status: str | None) -> None:
            unsettled.pop(delivery.id, None)
            self._settled(delivery.claim_token)
            self._record(delivery, status or "lost", claimed_in)

        ready: list[tuple[InboxDelivery, MappedDelivery]] = []
        flush_failed: list[Exception] = []

        async def commit(entries: list[tuple[InboxDelivery, MappedDelivery]]) -> None:
            for (delivery, _), status in zip(entries, await self._commit_mapped(entries), strict=True):
                record(delivery, status)

        async def after_previous() -> None:
            # Order per item: nothing of this batch is applied before the batch before committed.
            nonlocal previous
            if previous is not None:
                running, previous = previous, None
                await running

        async def before_tool() -> None:
            # A delivery is about to ask its tool (a refetch), which may be slow: apply what is
            # mapped first, so a slow tool never holds it. (Not by a timer: mapping alone takes
            # ~0.5 ms a delivery, and a timer cut every batch into small ones that each pay
            # apply's fixed cost.) A failure is raised by the lane, not charged to the delivery.
            if ready and not flush_failed:
                try:
                    await after_previous()
                    entries = ready.copy()
                    ready.clear()
                    await commit(entries)
                except Exception as exc:  # noqa: BLE001 - re-raised by the lane below
                    flush_failed.append(exc)

        for index, delivery in enumerate(batch):
            if index and index % YIELD_EVERY == 0:
                # Mapping runs on the event loop: let the intake answer between chunks
                # instead of holding its requests for a whole batch's mapping.
                await asyncio.sleep(0)
            outcome = await self._prepare(delivery, before_tool)
            if isinstance(outcome, MappedDelivery):
                ready.append((delivery, outcome))
            else:
                record(delivery, outcome)
            if flush_failed:
                raise flush_failed[0]
        await after_previous()
        return asyncio.create_task(commit(ready)) if ready else None

    def _record(self, delivery: InboxDelivery, status: str, claimed_in: int) -> None:
        self.recent.append(ProcessedDelivery(delivery.source, delivery.delivery_id, status, claimed_in, self.passes))
        metrics.inbox_processed(delivery.source, status)
        if log.isEnabledFor(logging.INFO):  # log_extra's dict is built only when the line is written
            log.info(
                "inbox: delivery %s (inbox id %d) of %s: %s (attempt %d)",
                delivery.delivery_id,
                delivery.id,
                delivery.source,
                status,
                delivery.attempts,
                extra=log_extra(
                    source=delivery.source, delivery_id=delivery.delivery_id, inbox_id=delivery.id, outcome=status
                ),
            )

    # ------------------------------------------------------------------ claims

    def _settled(self, token: str) -> None:
        left = self._held.get(token, 0) - 1
        if left > 0:
            self._held[token] = left
        else:
            self._held.pop(token, None)

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._renew_claims(), name="inbox claim heartbeat")

    async def _renew_claims(self) -> None:
        """Keep held claims alive (a third of their lifetime apart) until none is held."""
        interval = self.inbox.claim_ttl.total_seconds() / 3
        while self._held:
            await asyncio.sleep(interval)
            tokens = list(self._held)
            if not tokens:
                return
            try:
                await asyncio.to_thread(self.inbox.renew, tokens)
            except Exception as exc:  # noqa: BLE001 - the claims lapse; another pass retries them
                log.debug("inbox: claim heartbeat failed: %s", first_line(exc))

    # ------------------------------------------------------------------ one delivery

    async def _handle(self, delivery: InboxDelivery) -> str | None:
        """Apply one delivery on its own; returns the status written (None: the claim was lost)."""
        outcome = await self._prepare(delivery)
        if not isinstance(outcome, MappedDelivery):
            return outcome
        return (await self._commit_mapped([(delivery, outcome)]))[0]

    async def _prepare(
        self, delivery: InboxDelivery, before_tool: Callable[[], Awaitable[None]] | None = None
    ) -> MappedDelivery | str | None:
        """Map one delivery (asking its tool when the delivery says to refetch; `before_tool`
        is awaited first, and must not raise).

        Returns what to apply, or, when it cannot be applied now, the status already written
        for it (failed, dead, or pending again while its tool is down; None: claim lost).
        """
        source = delivery.source
        waiting = self._tool_wait.get(source)
        if waiting is not None and waiting.retry_at > utcnow():
            # The tool failed on an earlier delivery of this lane: do not spend attempts.
            return await asyncio.to_thread(self.inbox.release, delivery, waiting.retry_at, waiting.error)
        asked_tool = False
        try:
            tools = await self._tools_for(source)
            parsed = tools.connector.parse(delivery.headers, delivery.body)
            events = parsed.events
            # A delivery may state the change it reports (Jira's top-level `changelog`): that
            # history goes to `apply` with the item. The connector's parse is the one parse
            # of the body; its JSON object comes with the events.
            payload = parsed.payload if tools.normaliser.carries_history else None
            transitions: list[Transition] = []
            ops: list[WorkItem | ItemDeletion] = []
            # Records fetched fresh from the tool are its current state. Some tools do not
            # bump their update time for every change (Productboard: a release assignment),
            # so these are applied with `force`: written when the content differs at an
            # equal update time. Force never writes an older version, so order still holds.
            refetched: list[WorkItem | ItemDeletion] = []
            ignored: list[str] = []
            for event in events:
                if isinstance(event, UpsertRecord):
                    ops.append(item := tools.normaliser.map(event.record))
                    transitions.extend(tools.normaliser.carried_transitions([item], payload))
                elif isinstance(event, DeleteRecord):
                    ops.append(ItemDeletion(source=source, native_id=event.native_id, deleted_at=event.at))
                elif isinstance(event, RefetchRecord):
                    if before_tool is not None and not asked_tool:
                        await before_tool()
                    asked_tool = True
                    record = await tools.connector.fetch_one(event.native_id)
                    if record is None:
                        refetched.append(ItemDeletion(source=source, native_id=event.native_id, reported=False))
                    else:
                        refetched.append(item := tools.normaliser.map(record))
                        transitions.extend(tools.normaliser.carried_transitions([item]))
                elif isinstance(event, IgnoreEvent):
                    ignored.append(event.reason)
        except MappingError as exc:
            return await self._fail(delivery, f"mapping: {exc}")
        except Exception as exc:  # noqa: BLE001 - kept on the row and retried with backoff
            if tool_unreachable(exc):
                return await self._wait_for_tool(delivery, exc)
            return await self._fail(delivery, first_line(exc))
        if asked_tool and self._tool_wait.pop(source, None) is not None:
            log.info("inbox: %s: the tool answers again; its waiting deliveries resume", source)
        if not ops and not refetched and ignored:
            status, error = IGNORED, "; ".join(ignored)
        else:
            status, error = DONE, None
        provisional = [op.id for op in [*ops, *refetched] if isinstance(op, WorkItem)] if tools.provisional else []
        return MappedDelivery(ops, refetched, provisional, status, error, transitions)

    async def _commit_mapped(self, batch: list[tuple[InboxDelivery, MappedDelivery]]) -> list[str | None]:
        """Apply mapped deliveries in ONE transaction; per delivery, the status written
        (None: its claim lapsed and was taken over, nothing of it applied here).

        A batch the store refuses for one of its deliveries (a poisoned delivery: data the
        database will not take) is applied again one delivery at a time, so only that one
        fails and, after its attempts, is dead-lettered. A store that is down (connection
        lost, locked) fails the whole lane instead: its claims lapse and are retried.
        """
        try:
            outcomes = await asyncio.to_thread(self._commit_batch, batch)
        except Exception as exc:
            if store_unavailable(exc):
                raise
            if len(batch) == 1:
                return [await self._fail(batch[0][0], f"apply: {first_line(exc)}")]
            log.warning(
                "inbox: a batch of %d deliveries of %s failed (%s); applying them one by one",
                len(batch),
                batch[0][0].source,
                first_line(exc),
            )
            outcomes = []
            for entry in batch:
                outcomes.extend(await self._commit_mapped([entry]))
            return outcomes
        for (delivery, _), status in zip(batch, outcomes, strict=True):
            if status is None:
                log.info(
                    "inbox: delivery %s of %s: claim lapsed and was taken over; not applied here",
                    delivery.delivery_id,
                    delivery.source,
                )
        return outcomes

    def _commit_batch(self, batch: Sequence[tuple[InboxDelivery, MappedDelivery]]) -> list[str | None]:
        """Apply and mark done in ONE transaction, only the deliveries this worker still holds:
        a delivery is never applied by two workers (nor its effect lost between the two).

        The ops go to `apply` in delivery order, so two deliveries about one item are applied
        in the order they arrived (apply handles repeats of an id within a call in order);
        consecutive deliveries share one `apply` call unless their `force` differs. The
        status histories go with the last call, which stores them after its items.
        """
        with write_transaction(self.store.engine) as conn:
            outcomes = [(delivery, mapped.status, mapped.error) for delivery, mapped in batch]
            held = self.inbox.settle_held(conn, outcomes)
            live = [(delivery, mapped) for delivery, mapped in batch if delivery.id in held]
            segment: list[WorkItem | ItemDeletion] = []
            segment_force = False
            for _, mapped in live:
                for ops, force in ((mapped.ops, False), (mapped.refetched, True)):
                    if not ops:
                        continue
                    if segment and force != segment_force:
                        self.store.items.apply(segment, force=segment_force, conn=conn)
                        segment = []
                    segment.extend(ops)
                    segment_force = force
            # The histories go with the last apply call (one call, not a second one that pays
            # apply's fixed cost again): `apply` stores given facts after its items, and the
            # earlier segments' items are in this transaction already.
            transitions = [t for _, mapped in live for t in mapped.transitions]
            if segment or transitions:
                self.store.items.apply(segment, force=segment_force, conn=conn, transitions=transitions)
            provisional: dict[str, list[str]] = {}
            for delivery, mapped in live:
                provisional.setdefault(delivery.source, []).extend(mapped.provisional)
            for source, ids in provisional.items():
                self.contexts.mark_provisional(conn, source, ids)
        return [mapped.status if delivery.id in held else None for delivery, mapped in batch]

    async def _fail(self, delivery: InboxDelivery, error: str) -> str | None:
        status = await asyncio.to_thread(self.inbox.finish, delivery, FAILED, error)
        if status == DEAD:
            log.warning(
                "inbox: delivery %s of %s is dead after %d attempts: %s (replay: opshub inbox replay %d)",
                delivery.delivery_id,
                delivery.source,
                delivery.attempts,
                error,
                delivery.id,
            )
        elif status is not None:
            log.info(
                "inbox: delivery %s of %s failed (attempt %d): %s",
                delivery.delivery_id,
                delivery.source,
                delivery.attempts,
                error,
            )
        return status

    async def _wait_for_tool(self, delivery: InboxDelivery, exc: BaseException) -> str | None:
        waiting = self._tool_wait.setdefault(delivery.source, _Waiting())
        waiting.failures += 1
        waiting.retry_at = utcnow() + self.tool_backoff.delay(waiting.failures)
        waiting.error = f"waiting for the tool: {first_line(exc)}"
        if waiting.failures == 1:  # one line per outage, not one per delivery or retry
            log.warning(
                "inbox: %s: tool unreachable, its deliveries that need it wait: %s", delivery.source, first_line(exc)
            )
        return await asyncio.to_thread(self.inbox.release, delivery, waiting.retry_at, waiting.error)

    # ------------------------------------------------------------------ set-up
    #
    # A source with a stored context (however old) maps with it at once; a stale one is
    # refreshed in the background, so a tool that hangs never holds its full-record
    # deliveries. A source with no stored context asks its tool in its lane (only that lane
    # waits) and, failing that, maps provisionally with the base context. The refresh of a
    # provisional source also runs in its lane: its deliveries mark items provisional, and a
    # background remap could clear the marks before a lane added one.

    async def _tools_for(self, source: str) -> SourceTools:
        tools = self._tools.get(source)
        if tools is None or (tools.provisional and self._context_due(source, tools)):
            return await self._setup(source, tools)
        if self._context_due(source, tools):
            self._refresh_soon(source, tools.connector)
        return tools

    def _refresh_soon(self, source: str, connector: Connector) -> None:
        if source not in self._refreshing:
            task = asyncio.create_task(self._refresh(source, connector), name=f"inbox context {source}")
            self._refreshing[source] = task
            task.add_done_callback(lambda _task: self._refreshing.pop(source, None))

    def _context_due(self, source: str, tools: SourceTools) -> bool:
        """Provisional or older than the max age, and not waiting for the tool."""
        now = utcnow()
        if tools.context_at is not None and now - tools.context_at < self.context_max_age:
            return False
        waiting = self._context_wait.get(source)
        return waiting is None or waiting.retry_at <= now

    async def _setup(self, source: str, current: SourceTools | None) -> SourceTools:
        definition = self.config.source(source)
        connector = current.connector if current is not None else self._connector_factory(definition)
        try:
            stored = await asyncio.to_thread(self.contexts.load, source)
            found = (stored.context, stored.fetched_at) if stored else await self._fetch_context(source, connector)
            context, context_at = found or (_base_context(source, connector), None)
            tools = self._install(source, connector, context, context_at)
        except BaseException:
            if current is None:
                await connector.aclose()
            raise
        if stored is not None and self._context_due(source, tools):
            self._refresh_soon(source, connector)
        if not tools.provisional:
            await self._remap_provisional(source, tools)
        return tools

    def _install(
        self, source: str, connector: Connector, context: dict[str, Any], context_at: datetime | None
    ) -> SourceTools:
        definition = self.config.source(source)
        tools = SourceTools(connector, Normaliser(definition.tool, context, definition.config.mapping), context_at)
        self._tools[source] = tools
        return tools

    async def _refresh(self, source: str, connector: Connector) -> None:
        """Background: replace a stale context with a fresh one (a sync's, or the tool's)."""
        try:
            stored = await asyncio.to_thread(self.contexts.load, source)
            if stored is not None and utcnow() - stored.fetched_at < self.context_max_age:
                found: tuple[dict[str, Any], datetime] | None = (stored.context, stored.fetched_at)
            else:
                found = await self._fetch_context(source, connector)
            if found is not None:
                tools = self._install(source, connector, *found)
                await self._remap_provisional(source, tools)
        except Exception as exc:  # noqa: BLE001 - the stale context keeps serving; retried later
            log.warning("inbox: %s: refreshing the mapping context failed: %s", source, first_line(exc))

    async def _fetch_context(self, source: str, connector: Connector) -> tuple[dict[str, Any], datetime] | None:
        """Ask the tool for the context and store it; None (and backoff) when it fails."""
        try:
            context = await connector.mapping_context()
        except Exception as exc:  # noqa: BLE001 - any failure: fall back, retry with backoff
            waiting = self._context_wait.setdefault(source, _Waiting())
            waiting.failures += 1
            waiting.retry_at = utcnow() + self.tool_backoff.delay(waiting.failures)
            waiting.error = first_line(exc)
            if waiting.failures == 1:  # one line per outage
                log.warning("inbox: %s: mapping context unavailable: %s", source, waiting.error)
            return None
        self._context_wait.pop(source, None)
        fetched_at = utcnow()
        await asyncio.to_thread(self.contexts.save, source, context, fetched_at)
        return context, fetched_at

    async def _remap_provisional(self, source: str, tools: SourceTools) -> None:
        remapped = await asyncio.to_thread(
            self.contexts.remap_provisional, self.store.items, source, tools.normaliser.map
        )
        if remapped:
            log.info("inbox: %s: %d items mapped again now that the mapping context is known", source, remapped)

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for task in [*self._lanes.values(), *self._refreshing.values()]:
            task.cancel()
        await self.wait_lanes()
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)
        for tools in self._tools.values():
            await tools.connector.aclose()
        self._tools.clear()


def _base_context(source: str, connector: Connector) -> dict[str, Any]:
    """What every mapping can have without asking the tool (`Connector.mapping_context`'s base)."""
    return {"source": source, "tool": connector.tool, "base_url": connector.config.base_url}

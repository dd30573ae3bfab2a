"""The shared HTTP layer: one `SourceClient` (one `httpx.AsyncClient`) per configured source.

What every connector gets from it, so no connector re-implements it:

- timeouts from the source's config, auth (an `httpx.Auth`) and default headers;
- retries with tenacity for what can succeed on retry only: 429, 5xx, timeouts, connection
  errors, and a 2xx whose body is not valid JSON (a truncated response). Other 4xx are never
  retried; 401/403 raise `AuthFailed` with a message naming the source and what to check;
- waits: exponential backoff with jitter, unless the tool says how long to wait. `Retry-After`
  (seconds or an HTTP date) is always honoured; tools' own reset headers plug in as
  `WaitHint`s (`epoch_reset_hint("x-ratelimit-reset")` for GitHub,
  `iso_reset_hint("X-RateLimit-Reset")` for Jira); `rate_limited` marks other answers as rate
  limits (GitHub's primary limit answers 403 with `x-ratelimit-remaining: 0`);
- a per-source concurrency limit (`asyncio.Semaphore`) and a request budget per run
  (`BudgetExceeded`); counters for the run summary (`stats()`) and for Prometheus
  (`hub.metrics`: requests, retries, rate limits by source);
- an injectable `sleep` (tests assert the waits without sleeping) and `transport` (tests and
  the benchmark talk to an in-process fake through `httpx.ASGITransport`).

Errors leave this module as `connectors.base` exceptions, so httpx's types never reach the hub.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from connectors.base import AuthFailed, ConnectorConfig, ConnectorError
from connectors.egress import EgressRefused, ThreadedGuardedTransport, default_policy
from hub import metrics

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
"""Wall-clock seconds since the epoch (time.time); reset headers are absolute times."""

WaitHint = Callable[[httpx.Response, float], float | None]
"""Seconds the tool asks us to wait before retrying this response (None: no opinion)."""

RateLimited = Callable[[httpx.Response], bool]
"""Says a non-429 answer is a rate limit (GitHub answers 403 with `x-ratelimit-remaining: 0`)."""


# ---------------------------------------------------------------- errors


class BudgetExceeded(ConnectorError):
    """The run used up the source's `request_budget`."""


class RequestFailed(ConnectorError):
    """A non-retryable error answer (4xx other than 401/403), or retries ran out."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    """Internal: this attempt failed in a way a retry may fix."""

    def __init__(self, message: str, *, wait_hint: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.wait_hint = wait_hint
        self.status = status


# ---------------------------------------------------------------- wait hints


def retry_after_hint(response: httpx.Response, now: float) -> float | None:
    """`Retry-After: 120` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT` (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def epoch_reset_hint(header: str, *, remaining_header: str | None = None) -> WaitHint:
    """A reset header in epoch seconds (GitHub's `x-ratelimit-reset`).

    With `remaining_header` (GitHub: `x-ratelimit-remaining`) the hint applies only when the
    remaining count is 0, so a 5xx that happens to carry a far reset time is not held up.
    """

    def hint(response: httpx.Response, now: float) -> float | None:
        if remaining_header is not None and response.headers.get(remaining_header, "").strip() not in ("0", ""):
            return None
        value = response.headers.get(header)
        if not value:
            return None
        try:
            return max(0.0, float(value) - now)
        except ValueError:
            return None

    return hint


def iso_reset_hint(header: str) -> WaitHint:
    """A reset header as an ISO 8601 time (Jira's `X-RateLimit-Reset: 2026-01-01T12:30Z`).

    https://developer.atlassian.com/cloud/jira/platform/rate-limiting/
    """

    def hint(response: httpx.Response, now: float) -> float | None:
        value = response.headers.get(header)
        if not value:
            return None
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)

    return hint


# ---------------------------------------------------------------- policy and counters


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. `max_wait` caps every single wait, hinted or not."""

    attempts: int = 6
    initial: float = 0.5
    multiplier: float = 2.0
    max_backoff: float = 30.0
    jitter: float = 0.5
    max_wait: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter for retry number `attempt` (1-based)."""
        base = min(self.max_backoff, self.initial * self.multiplier ** (attempt - 1))
        return base + random.uniform(0, self.jitter)


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    invalid_bodies: int = 0
    waited_ms: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


# ---------------------------------------------------------------- the client

RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


class SourceClient:
    """One source's HTTP client: retries, waits, limits and counters around `httpx.AsyncClient`."""

    def __init__(
        self,
        *,
        source: str,
        base_url: str,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        max_concurrency: int = 4,
        request_budget: int | None = None,
        retry: RetryPolicy | None = None,
        wait_hints: Iterable[WaitHint] = (),
        auth_hint: str = "the credentials",
        rate_limited: RateLimited | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.source = source
        self.retry = retry or RetryPolicy()
        self.request_budget = request_budget
        self.auth_hint = auth_hint
        self.rate_limited = rate_limited
        self.wait_hints: tuple[WaitHint, ...] = (retry_after_hint, *wait_hints)
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._clock = clock
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._stats = HttpStats()
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=auth,
            headers={"Accept": "application/json", "User-Agent": "opshub/0.1", **(headers or {})},
            timeout=httpx.Timeout(timeout),
            # No transport given (the hub's own case): connect only where the egress policy
            # allows, checked at connect time (connectors/egress.py); env proxies would bypass it.
            # Requests go out from worker threads, TLS in C on blocking sockets: less CPU per
            # page than anyio's TLS on the event loop (ThreadedGuardedTransport's doc).
            transport=transport
            if transport is not None
            else ThreadedGuardedTransport(default_policy(), max_workers=max_concurrency),
            trust_env=transport is not None,
            follow_redirects=True,
        )

    @classmethod
    def for_source(
        cls,
        source: str,
        config: ConnectorConfig,
        *,
        auth: httpx.Auth | None = None,
        **kwargs: Any,
    ) -> SourceClient:
        """A client with the timeouts, concurrency and budget from the source's config."""
        return cls(
            source=source,
            base_url=config.base_url,
            auth=auth,
            timeout=config.timeout_seconds,
            max_concurrency=config.max_concurrency,
            request_budget=config.request_budget,
            **kwargs,
        )

    # -------------------------------------------------------- public surface

    async def get_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, allow_404: bool = False
    ) -> tuple[Any, httpx.Response]:
        """GET and decode JSON. With `allow_404`, a 404 returns `(None, response)`."""
        return await self.request_json("GET", path, params=params, allow_404=allow_404)

    async def post_json(
        self, path: str, body: Any, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, httpx.Response]:
        """POST a JSON body and decode the JSON answer (GraphQL, search-by-POST)."""
        return await self.request_json("POST", path, params=params, json=body)

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        allow_404: bool = False,
    ) -> tuple[Any, httpx.Response]:
        """Send with retries; `path` may be relative to the base URL or absolute (Link headers)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            sleep=self._sleep_and_count,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(method, path, params, json, allow_404)
        except _Retryable as exc:
            raise RequestFailed(
                f"{self.source}: {method} {path} still failing after {self.retry.attempts} attempts: {exc}",
                status=exc.status,
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def stats(self) -> dict[str, int]:
        return self._stats.as_dict()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -------------------------------------------------------- internals

    async def _attempt(
        self, method: str, path: str, params: Mapping[str, Any] | None, json: Any, allow_404: bool
    ) -> tuple[Any, httpx.Response]:
        if self.request_budget is not None and self._stats.requests >= self.request_budget:
            raise BudgetExceeded(
                f"{self.source}: request budget of {self.request_budget} used up; "
                f"raise request_budget in the source's config or sync less often"
            )
        self._stats.requests += 1
        metrics.tool_request(self.source)
        async with self._semaphore:
            try:
                content = orjson.dumps(json) if json is not None else None
                headers = {"Content-Type": "application/json"} if content is not None else None
                response = await self._client.request(
                    method, path, params=dict(params) if params else None, content=content, headers=headers
                )
                # The body is read and the stream closed by now. httpx binds a response's stream
                # to the response (`BoundAsyncStream.response`): a reference cycle, so each page's
                # body (~380 KB for 100 Jira issues) stayed alive until the collector ran, and the
                # sync's peak RSS rose by 15-50 MiB when fewer collections ran (bench/README.md,
                # "apply's CPU per item"). Without the cycle, reference counting frees it.
                response.stream = _READ
            except RETRYABLE_TRANSPORT_ERRORS as exc:
                self._stats.transport_errors += 1
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            except EgressRefused as exc:
                raise RequestFailed(f"{self.source}: {method} {path} refused: {exc}") from exc
            except httpx.HTTPError as exc:
                raise RequestFailed(f"{self.source}: {method} {path} failed: {type(exc).__name__}: {exc}") from exc
        return self._check(method, path, response, allow_404)

    def _check(self, method: str, path: str, response: httpx.Response, allow_404: bool) -> tuple[Any, httpx.Response]:
        status = response.status_code
        where = f"{method} {response.request.url.path}"
        if status == 429 or status >= 500 or (self.rate_limited is not None and self.rate_limited(response)):
            if status >= 500:
                self._stats.server_errors += 1
            else:
                metrics.tool_rate_limited(self.source)
            raise _Retryable(f"HTTP {status} from {where}", wait_hint=self._hint(response), status=status)
        if status in (401, 403):
            verb = "rejected the credentials" if status == 401 else "denied access"
            raise AuthFailed(f"source {self.source!r}: {where} answered {status} ({verb}); check {self.auth_hint}")
        if status == 404 and allow_404:
            return None, response
        if status >= 400:
            raise RequestFailed(f"{self.source}: {where} answered {status}: {_snippet(response)}", status=status)
        if not response.content:
            return None, response
        try:
            return orjson.loads(response.content), response
        except orjson.JSONDecodeError as exc:
            self._stats.invalid_bodies += 1
            raise _Retryable(f"invalid JSON body from {where} ({len(response.content)} bytes): {exc}") from exc

    def _hint(self, response: httpx.Response) -> float | None:
        now = self._clock()
        hints = [h for h in (hint(response, now) for hint in self.wait_hints) if h is not None]
        return max(hints) if hints else None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = exc.wait_hint if isinstance(exc, _Retryable) else None
        if hint is not None:
            self._stats.rate_limit_waits += 1
            return min(hint, self.retry.max_wait)
        return min(self.retry.backoff(state.attempt_number), self.retry.max_wait)

    async def _sleep_and_count(self, seconds: float) -> None:
        self._stats.retries += 1
        metrics.tool_retry(self.source)
        self._stats.waited_ms += int(seconds * 1000)
        await self._sleep(seconds)


_READ = httpx.ByteStream(b"")
"""What a read response's `stream` is set to (`_attempt`): the body is in `response.content`."""


def _snippet(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")


__all__ = [
    "BudgetExceeded",
    "Clock",
    "HttpStats",
    "RateLimited",
    "RequestFailed",
    "RetryPolicy",
    "Sleep",
    "SourceClient",
    "WaitHint",
    "epoch_reset_hint",
    "iso_reset_hint",
    "retry_after_hint",
]

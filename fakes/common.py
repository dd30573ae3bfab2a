"""Parts every fake tool server shares: fault injection, latency, request log, serving.

A fake is an ASGI app. Wrap it in `FaultInjectionMiddleware(app, faults, log)` and drive the
faults from a test (`faults.inject(429, count=3, retry_after="2")`, `faults.truncate()`,
`faults.latency = 0.05`). Use it in-process through `httpx.ASGITransport(app)` or on a real
loopback port with `serve(app)` (uvicorn in a thread), as the benchmark does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

import httpx
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WebhookKind = Literal["upsert", "delete", "refetch", "ignore"]


# ---------------------------------------------------------------- faults


@dataclass
class Fault:
    """One injected answer: a status (with headers/body) or `truncate` of the real answer."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncate: bool = False
    path_prefix: str | None = None  # only requests under this path consume the fault


@dataclass
class FaultPlan:
    """What the next requests suffer. Scripted faults are consumed in order, one per request."""

    latency: float = 0.0
    """Seconds added to every request (e.g. 0.05 for a 50 ms page latency)."""
    error_rate: float = 0.0
    """Probability of a random 503 on any request (seeded, so runs repeat)."""
    seed: int = 0
    exempt_prefixes: tuple[str, ...] = ()
    scripted: deque[Fault] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def inject(
        self,
        status: int,
        *,
        count: int = 1,
        retry_after: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """The next `count` requests answer `status` (e.g. a 429 burst with `Retry-After`)."""
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = retry_after
        payload = body if body is not None else orjson.dumps({"errorMessages": [f"injected {status}"]})
        for _ in range(count):
            self.scripted.append(Fault(status=status, headers=hdrs, body=payload, path_prefix=path_prefix))

    def truncate(self, *, count: int = 1, path_prefix: str | None = None) -> None:
        """The next `count` answers are cut in half (valid status, invalid JSON)."""
        for _ in range(count):
            self.scripted.append(Fault(truncate=True, path_prefix=path_prefix))

    def clear(self) -> None:
        self.scripted.clear()
        self.error_rate = 0.0
        self.latency = 0.0

    def take(self, path: str) -> Fault | None:
        if path.startswith(self.exempt_prefixes) if self.exempt_prefixes else False:
            return None
        if self.scripted:
            head = self.scripted[0]
            if head.path_prefix is None or path.startswith(head.path_prefix):
                return self.scripted.popleft()
        if self.error_rate and self._random.random() < self.error_rate:
            return Fault(status=503, body=b'{"errorMessages":["random 503"]}')
        return None


# ---------------------------------------------------------------- request log


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class RequestLog:
    """Every request the fake answered (the newest `keep`), plus counters that never drop."""

    def __init__(self, keep: int = 5000) -> None:
        self.entries: deque[LoggedRequest] = deque(maxlen=keep)
        self.total = 0
        self.by_status: Counter[int] = Counter()
        self.by_path: Counter[str] = Counter()

    def record(self, entry: LoggedRequest) -> None:
        self.entries.append(entry)
        self.total += 1
        self.by_status[entry.status] += 1
        self.by_path[entry.path] += 1

    def clear(self) -> None:
        self.entries.clear()
        self.total = 0
        self.by_status.clear()
        self.by_path.clear()

    def paths(self) -> list[str]:
        return [e.path for e in self.entries]


# ---------------------------------------------------------------- middleware


class TotalLatency:
    """ASGI middleware: each HTTP answer is sent `latency` seconds after the request arrived."""

    def __init__(self, app: ASGIApp, latency: float) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        messages: list[Message] = []

        async def buffer(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, buffer)
        await asyncio.sleep(max(0.0, self.latency - (time.monotonic() - started)))
        for message in messages:
            await send(message)


class FaultInjectionMiddleware:
    """ASGI middleware: latency, scripted/random faults, truncated bodies, request log."""

    def __init__(self, app: ASGIApp, faults: FaultPlan, log: RequestLog) -> None:
        self.app = app
        self.faults = faults
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.faults.latency > 0:
            await asyncio.sleep(self.faults.latency)
        fault = self.faults.take(path)
        status_box = [0]

        if fault is not None and fault.status is not None:
            status_box[0] = fault.status
            hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(fault.body)).encode())]
            hdrs += [(k.lower().encode(), v.encode()) for k, v in fault.headers.items()]
            await send({"type": "http.response.start", "status": fault.status, "headers": hdrs})
            await send({"type": "http.response.body", "body": fault.body})
        elif fault is not None and fault.truncate:
            await self._truncated(scope, receive, send, status_box)
        else:

            async def send_logged(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_box[0] = message["status"]
                await send(message)

            await self.app(scope, receive, send_logged)
        self.log.record(LoggedRequest(scope["method"], path, query, status_box[0], headers))

    async def _truncated(self, scope: Scope, receive: Receive, send: Send, status_box: list[int]) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        cut = body[: max(1, len(body) // 2)]
        status_box[0] = start.get("status", 200)
        hdrs = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        hdrs.append((b"content-length", str(len(cut)).encode()))
        await send({"type": "http.response.start", "status": status_box[0], "headers": hdrs})
        await send({"type": "http.response.body", "body": cut})


# ---------------------------------------------------------------- helpers


def json_response_bytes(data: Any) -> bytes:
    return orjson.dumps(data)


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def asgi_transport(app: ASGIApp) -> httpx.ASGITransport:
    """An httpx transport that calls the fake in-process (no sockets)."""
    return httpx.ASGITransport(app=app)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now. Another process may take it before it is bound (an outgoing connection's
    ephemeral port comes from the same range): bind with `listening_socket` where you can."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port and listening: the port is the caller's from the start,
    so nothing can take it between choosing it and serving on it (`serve(app, sock=...)`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


@contextlib.contextmanager
def serve(
    app: ASGIApp, host: str = "127.0.0.1", port: int | None = None, *, sock: socket.socket | None = None
) -> Iterator[str]:
    """Run `app` with uvicorn on a loopback port in a background thread; yields its base URL.

    Without `port` or `sock`, it listens on a socket of its own (`listening_socket`); with
    `sock`, on that one (uvicorn's `Server.run(sockets=...)`), which it closes at the end."""
    import uvicorn

    if sock is None and port is None:
        sock = listening_socket(host)
    if sock is not None:
        host, port = sock.getsockname()[:2]
    assert port is not None
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    sockets = [sock] if sock is not None else None
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, name=f"fake-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"fake server on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if sock is not None:
            sock.close()


# ---------------------------------------------------------------- what every fake offers


class FakeTool(Protocol):
    """The control surface the conformance suite (and the hub's tests) drive a fake through."""

    app: ASGIApp
    faults: FaultPlan
    log: RequestLog
    base_url: str
    stuck_paging: bool
    """When true, listing endpoints hand out the same next-page token forever."""

    def ids(self) -> list[str]:
        """Every live native id, as the connector's `native_id()` spells it."""

    def record(self, native_id: str) -> dict[str, Any] | None: ...

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        """Change a record (bumping its update time past every earlier one); returns it."""

    def delete(self, native_id: str) -> None: ...

    def add(self, **changes: Any) -> dict[str, Any]: ...

    def updated_at(self, record: dict[str, Any]) -> Any:
        """The record's update time (aware datetime) as the tool reports it."""

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        """Headers and body of a delivery of `kind` about `native_id`, signed when `secret`."""


__all__ = [
    "FakeTool",
    "Fault",
    "FaultInjectionMiddleware",
    "FaultPlan",
    "LoggedRequest",
    "RequestLog",
    "WebhookKind",
    "asgi_transport",
    "free_port",
    "hmac_sha256_hex",
    "json_response_bytes",
    "serve",
]

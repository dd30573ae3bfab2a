"""The connectors' transport (connectors/egress.py `ThreadedGuardedTransport`): requests sent
from worker threads on blocking sockets, answered to the event loop as the async transport
would answer. A loopback HTTP server stands in for the tool (the egress guard's own tests are
in tests/test_egress.py, run on both transports)."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from connectors.egress import EgressPolicy, ThreadedGuardedTransport
from connectors.http import SourceClient

POLICY = EgressPolicy(allow=("127.0.0.1",), allow_http=True)
BODY = orjson.dumps({"issues": [{"id": str(n), "text": "é" * 50} for n in range(200)]})


class Tool:
    """What the loopback server does; `release` holds /slow until set (or 5 s)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.posted: list[bytes] = []
        self.client_ports: list[int] = []
        self.arrived = threading.Event()  # /slow was asked for


@pytest.fixture
def tool() -> Iterator[tuple[Tool, str]]:
    state = Tool()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the tools answer

        def _send(self, body: bytes, **headers: str) -> None:
            self.send_response(200 if body else 504)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.client_ports.append(self.client_address[1])
            if self.path == "/gzip":
                self._send(gzip.compress(BODY), Content_Encoding="gzip")
            elif self.path == "/slow":
                state.arrived.set()
                self._send(b'{"released": true}' if state.release.wait(5) else b"")
            else:
                self._send(BODY)

        def do_POST(self) -> None:
            if self.headers.get("Content-Length") is not None:
                state.posted.append(self.rfile.read(int(self.headers["Content-Length"])))
            else:  # chunked (RFC 9112 §7.1), as httpx sends an async iterator's body
                body = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                state.posted.append(body)
            self._send(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    state.release.set()
    server.shutdown()
    server.server_close()


def test_a_compressed_body_is_decoded_once(tool: tuple[Tool, str]) -> None:
    """The thread hands the body back as it came (gzip), and the client decodes it: decoded in
    the thread as well, the client would gunzip plain JSON and fail."""
    _, url = tool

    async def get() -> Any:
        client = SourceClient(source="t", base_url=url, transport=ThreadedGuardedTransport(POLICY))
        try:
            return (await client.get_json("/gzip"))[0]
        finally:
            await client.aclose()

    assert asyncio.run(get()) == orjson.loads(BODY)


def test_the_event_loop_runs_while_a_request_waits(tool: tuple[Tool, str]) -> None:
    """The tool answers /slow only once a task on the event loop has run: a transport that
    sent from the loop's thread would block the loop, the task would never run, and the tool
    would give up (504) after 5 s."""
    state, url = tool

    async def main() -> int:
        async with httpx.AsyncClient(transport=ThreadedGuardedTransport(POLICY)) as client:
            request = asyncio.ensure_future(client.get(f"{url}/slow"))
            await asyncio.sleep(0.05)  # the request is on its way, in its thread
            state.release.set()  # this line runs only if the loop is free
            return (await request).status_code

    assert asyncio.run(main()) == 200


def test_an_async_body_is_sent(tool: tuple[Tool, str]) -> None:
    """A request body given as an async iterator (not bytes) is read on the loop first: the
    blocking transport can only send bytes."""
    state, url = tool

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    async def main() -> int:
        async with httpx.AsyncClient(transport=ThreadedGuardedTransport(POLICY)) as client:
            return (await client.post(f"{url}/in", content=parts())).status_code

    assert asyncio.run(main()) == 200
    assert state.posted == [b'{"a": 1}']


def test_one_connection_serves_the_pages_one_after_another(tool: tuple[Tool, str]) -> None:
    """Keep-alive holds across threads: ten sequential requests use one TCP connection (one
    TLS handshake on a real tool), as the async pool does."""
    state, url = tool

    async def main() -> None:
        async with httpx.AsyncClient(transport=ThreadedGuardedTransport(POLICY)) as client:
            for _ in range(10):
                response = await client.get(f"{url}/page")
                assert response.json() == orjson.loads(BODY)

    asyncio.run(main())
    assert len(state.client_ports) == 10
    assert len(set(state.client_ports)) == 1


def test_closing_the_client_ends_a_request_stalled_in_its_thread(tool: tuple[Tool, str]) -> None:
    """A thread cannot be cancelled, and the interpreter waits for it at exit: closing the
    transport shuts its sockets down, so a request the tool never answers ends at once (here
    the tool holds /slow until the test's end: without that, the thread would still be
    blocked when checked)."""
    state, url = tool
    transport = ThreadedGuardedTransport(POLICY)

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            request = asyncio.ensure_future(client.get(f"{url}/slow"))
            await asyncio.to_thread(state.arrived.wait, 5)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request

    asyncio.run(main())
    threads = list(transport._executor._threads)
    assert threads
    for thread in threads:
        thread.join(3)  # a deadlock guard: the tool answers only at the test's end
        assert not thread.is_alive()

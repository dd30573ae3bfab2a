"""`fakes.common.serve` on a socket bound before the server starts: no port race."""

from __future__ import annotations

import socket

import httpx
import pytest

from fakes.common import listening_socket, serve


async def _hello(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def test_a_listening_socket_holds_its_port_until_served_on_it() -> None:
    sock = listening_socket()
    port = sock.getsockname()[1]
    # Between choosing the port and serving, nobody else can bind it (with free_port they could).
    with socket.socket() as other, pytest.raises(OSError, match="in use"):
        other.bind(("127.0.0.1", port))
    with serve(_hello, sock=sock) as url:
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(url).text == "hello"
    assert sock.fileno() == -1  # closed with the server


def test_serve_without_a_port_binds_its_own_socket() -> None:
    with serve(_hello) as url:
        assert httpx.get(url).text == "hello"

"""Where the hub may send requests (connectors/egress.py): checked at connect time, on the
address actually connected to. Fake resolvers stand in for DNS; nothing leaves the machine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from connectors.base import ConnectorError
from connectors.egress import EgressPolicy, EgressRefused, GuardedTransport, ThreadedGuardedTransport
from connectors.http import SourceClient


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the network: records every connect (there must be none when refused)."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("test backend: no network")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class BlockingRecordingBackend(httpcore.NetworkBackend):
    """`RecordingBackend` for the threaded transport's blocking pool."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("test backend: no network")


def fake_resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


# Both transports run the same guard: the event loop's (`GuardedTransport`, outbound webhooks)
# and the threaded one (`ThreadedGuardedTransport`, every connector's `SourceClient`).
TRANSPORTS = ["async", "threaded"]


def guarded(kind: str, policy: EgressPolicy, backend: Any = None) -> httpx.AsyncBaseTransport:
    """A guarded transport of `kind` with the fake DNS and, if given, a recording backend."""
    if kind == "async":
        return GuardedTransport(policy, resolver=fake_resolver(DNS), inner_backend=backend)
    return ThreadedGuardedTransport(policy, resolver=lambda host, port: DNS[host], inner_backend=backend)


def recording(kind: str) -> RecordingBackend | BlockingRecordingBackend:
    return RecordingBackend() if kind == "async" else BlockingRecordingBackend()


DNS = {
    "metadata.example": ["169.254.169.254"],
    "intranet.example": ["10.0.0.1"],
    "mixed.example": ["93.184.216.34", "192.168.1.5"],  # one public, one private answer
    "v6-local.example": ["fd00::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "public.example": ["93.184.216.34"],
    "receiver.test": ["127.0.0.1"],
}


async def _get(policy: EgressPolicy, url: str, backend: Any, kind: str = "async") -> httpx.Response:
    async with httpx.AsyncClient(transport=guarded(kind, policy, backend)) as client:
        return await client.get(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://metadata.example/latest/meta-data/",
        "https://intranet.example/",
        "https://mixed.example/",
        "https://v6-local.example/",
        "https://mapped.example/",
        "https://169.254.169.254/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://0.0.0.0/",
    ],
)
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_non_public_destinations_are_refused_before_any_connect(url: str, kind: str) -> None:
    backend = recording(kind)
    with pytest.raises(EgressRefused, match="non-public address"):
        asyncio.run(_get(EgressPolicy(), url, backend, kind))
    assert backend.connects == []


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_public_name_connects_to_the_checked_address_not_the_name(kind: str) -> None:
    backend = recording(kind)
    with pytest.raises(httpx.ConnectError):  # the recording backend has no network
        asyncio.run(_get(EgressPolicy(), "https://public.example/x", backend, kind))
    assert backend.connects == [("93.184.216.34", 443)]


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_plain_http_needs_the_opt_in(kind: str) -> None:
    backend = recording(kind)
    with pytest.raises(EgressRefused, match="plain http"):
        asyncio.run(_get(EgressPolicy(), "http://public.example/", backend, kind))
    assert backend.connects == []
    with pytest.raises(httpx.ConnectError):
        asyncio.run(_get(EgressPolicy(allow_http=True), "http://public.example/", backend, kind))
    assert backend.connects == [("93.184.216.34", 80)]


def test_the_allow_list_takes_hosts_and_cidrs() -> None:
    policy = EgressPolicy(allow=("intranet.example", "169.254.0.0/16"))
    policy.check_address("intranet.example", "10.0.0.1")
    policy.check_address("anything", "169.254.169.254")
    with pytest.raises(EgressRefused):
        policy.check_address("other.example", "10.0.0.1")


@pytest.fixture
def local_server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://metadata.example/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.headers.get("Host", "").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_the_allow_list_lets_loopback_through(local_server: int, kind: str) -> None:
    url = f"http://receiver.test:{local_server}/"
    strict = EgressPolicy(allow_http=True)
    with pytest.raises(EgressRefused):
        asyncio.run(_get(strict, url, None, kind))
    allowed = EgressPolicy(allow=("127.0.0.1",), allow_http=True)
    response = asyncio.run(_get(allowed, url, None, kind))
    assert response.status_code == 200
    assert response.text == f"receiver.test:{local_server}"  # the Host header is the URL's name, not the address


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_redirect_to_a_private_address_is_refused(local_server: int, kind: str) -> None:
    """The allowed receiver answers 302 to the metadata service: the guard checks the
    redirect's connect too (subscriptions never follow redirects; connectors do)."""
    transport = guarded(kind, EgressPolicy(allow=("127.0.0.1",), allow_http=True))

    async def follow() -> None:
        async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
            await client.get(f"http://receiver.test:{local_server}/redirect")

    with pytest.raises(EgressRefused, match=r"169\.254\.169\.254"):
        asyncio.run(follow())


def test_connectors_refuse_a_base_url_on_the_metadata_address() -> None:
    """A source client built without a transport (the hub's case) uses the configured policy
    (the tests' one allows loopback only)."""

    async def fetch() -> None:
        client = SourceClient(source="evil", base_url="http://169.254.169.254/latest")
        try:
            await client.get_json("/meta-data/")
        finally:
            await client.aclose()

    with pytest.raises(ConnectorError, match="non-public address"):
        asyncio.run(fetch())


def test_save_time_check_refuses_literal_addresses_and_schemes() -> None:
    policy = EgressPolicy()
    for url in ("https://10.0.0.1/hook", "https://[fc00::5]/hook", "http://example.com/hook", "ftp://example.com/x"):
        with pytest.raises(EgressRefused):
            policy.check_url_literal(url)
    policy.check_url_literal("https://hooks.example.com/in")  # names are checked when connecting


def test_the_defaults_stay_strict() -> None:
    """Only tests/conftest.py widens the policy (by environment); the settings' defaults do not."""
    from hub.settings import Settings

    assert Settings.model_fields["egress_allow"].default == []
    assert Settings.model_fields["egress_allow_http"].default is False
    assert EgressPolicy() == EgressPolicy(allow=(), allow_http=False)

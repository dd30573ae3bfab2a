"""Where the hub may send requests: a guard against server-side request forgery (SSRF).

A tool's `base_url` and an outbound subscription's URL are typed in by people; without a
guard they could point the hub at its own loopback, the cloud metadata service
(169.254.169.254) or a private network. The rules:

- an address that is not globally routable is refused: loopback, link-local (169.254.0.0/16,
  fe80::/10), private (RFC 1918), unique-local (fc00::/7), unspecified, multicast, reserved,
  carrier-grade NAT ... (Python's `ipaddress.is_global`; IPv4-mapped IPv6 is unwrapped first);
- unless the host name or the address is on the allow-list (`EgressPolicy.allow`: host names
  and CIDRs, from the `HUB_EGRESS_ALLOW` setting);
- plain `http://` is refused unless `allow_http` is set (`HUB_EGRESS_ALLOW_HTTP`).

The check runs at connect time, on the address actually connected to: `GuardedTransport`
(and `ThreadedGuardedTransport`, the connectors' one) gives httpcore a network backend that
resolves the name itself, checks every address, and connects to the checked address. A name
that resolved to a public address when the URL was saved and to 127.0.0.1 now (DNS rebinding)
is refused, and so is a redirect to a private address. TLS is unchanged: httpcore sends SNI
and checks the certificate against the URL's host name, not the address, and the Host header
comes from the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import weakref
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses the host name resolves to."""

BlockingResolver = Callable[[str, int], list[str]]
"""The same, for a worker thread (`ThreadedGuardedTransport`)."""


class EgressRefused(httpx.TransportError):
    """The hub may not send this request (see the module doc); never retried."""


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    """The distinct addresses of `getaddrinfo`'s answer, in its order."""
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def system_resolver(host: str, port: int) -> list[str]:
    return _addresses(await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM))


def blocking_resolver(host: str, port: int) -> list[str]:
    return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


def _literal(host: str) -> list[str] | None:
    """`[host]` when the host is an IP address already (nothing to resolve), else None."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return [host]


@dataclass(frozen=True)
class EgressPolicy:
    allow: tuple[str, ...] = ()
    """Host names (exact, case-insensitive) and addresses or CIDRs that may be reached anyway."""
    allow_http: bool = False
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in self.allow:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_networks", tuple(networks))

    def check_scheme(self, url: httpx.URL | str) -> None:
        # A request's URL is parsed already: parsing it again cost more than the rest of this
        # check on every request of a sync (httpx parses a URL character by character).
        scheme = (url if isinstance(url, httpx.URL) else httpx.URL(url)).scheme
        if scheme == "https" or (scheme == "http" and self.allow_http):
            return
        if scheme == "http":
            raise EgressRefused(f"plain http:// is not allowed ({url}); use https, or set HUB_EGRESS_ALLOW_HTTP=true")
        raise EgressRefused(f"unsupported URL scheme {scheme!r} ({url})")

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self._hosts

    def check_address(self, host: str, address: str) -> None:
        """Raise EgressRefused unless `host` (resolved to `address`) may be connected to."""
        if self.host_allowed(host):
            return
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self._networks):
            return
        if ip.is_global and not ip.is_multicast:
            return
        raise EgressRefused(
            f"{host} resolves to {ip}, a non-public address (loopback, link-local, private or reserved); "
            f"add it to HUB_EGRESS_ALLOW if the hub really must reach it"
        )

    def connect_address(self, host: str, addresses: list[str]) -> str:
        """The address to connect to for `host`: every one it resolved to is checked (a name
        must not mix public and private ones), and the first is returned, so the connection
        goes to a checked address, never to the name (which could resolve again)."""
        if not addresses:
            raise EgressRefused(f"{host} resolves to no address")
        for address in addresses:
            self.check_address(host, address)
        return addresses[0]

    def check_url_literal(self, url: str) -> None:
        """Save-time check: scheme, and a literal IP host. Names are checked when connecting."""
        self.check_scheme(url)
        host = httpx.URL(url).host
        if not host:
            raise EgressRefused(f"the URL has no host: {url}")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return
        self.check_address(host, host)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with a resolve-check-connect step in front of `connect_tcp`."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = self.policy.connect_address(host, _literal(host) or await self.resolver(host, port))
        return await self.inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not an allowed destination")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An `httpx.AsyncHTTPTransport` that only connects where `policy` allows (module doc)."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver = system_resolver,
        inner_backend: httpcore.AsyncNetworkBackend | None = None,
        **transport_kwargs: Any,
    ) -> None:
        self.policy = policy
        self._transport = httpx.AsyncHTTPTransport(**transport_kwargs)
        _use_backend(self._transport, _GuardedBackend(policy, resolver, inner_backend or httpcore.AnyIOBackend()))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_scheme(request.url)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


def _use_backend(transport: httpx.AsyncHTTPTransport | httpx.HTTPTransport, backend: Any) -> None:
    # httpx exposes no network_backend option; the pool it built reads this attribute for
    # every new connection (httpcore 1.x AsyncConnectionPool and ConnectionPool).
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - guard against an httpcore change
        raise RuntimeError("httpcore's connection pool has no _network_backend: update connectors/egress.py")
    pool._network_backend = backend


class _TrackedStream(httpcore.NetworkStream):
    """A blocking connection the backend can interrupt (`_GuardedBlockingBackend.interrupt`);
    its TLS upgrade is tracked as well."""

    def __init__(self, inner: httpcore.NetworkStream, streams: weakref.WeakSet[_TrackedStream]) -> None:
        self.inner = inner
        self.streams = streams
        streams.add(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, timeout)

    def close(self) -> None:
        self.streams.discard(self)
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.streams.discard(self)  # the TLS stream owns the socket from here on
        return _TrackedStream(self.inner.start_tls(ssl_context, server_hostname, timeout), self.streams)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)

    def interrupt(self) -> None:
        """Shut the socket down: a thread blocked reading it returns at once (with an error)."""
        sock = self.inner.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _GuardedBlockingBackend(httpcore.NetworkBackend):
    """`_GuardedBackend` for httpcore's blocking pool: the same resolve-check-connect step.
    It keeps the open connections, so that closing the transport can interrupt them."""

    def __init__(self, policy: EgressPolicy, resolver: BlockingResolver, inner: httpcore.NetworkBackend) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner
        self.streams: weakref.WeakSet[_TrackedStream] = weakref.WeakSet()

    def interrupt(self) -> None:
        for stream in list(self.streams):
            stream.interrupt()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self.policy.connect_address(host, _literal(host) or self.resolver(host, port))
        stream = self.inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _TrackedStream(stream, self.streams)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise EgressRefused("unix sockets are not an allowed destination")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class ThreadedGuardedTransport(httpx.AsyncBaseTransport):
    """`GuardedTransport`'s guard in front of httpx's blocking `HTTPTransport`, each request
    sent and its body read in a worker thread: the connectors' transport (`SourceClient`).

    Why: on the event loop, httpx/httpcore reach TLS through anyio's `TLSStream`, which runs
    OpenSSL over a `ssl.MemoryBIO` and passes every TLS record (16 KB at most) through Python:
    a read is an anyio cancel scope, a socket receive into the BIO, `SSLObject.read`, and h11,
    each through several async layers (https://anyio.readthedocs.io/en/stable/streams.html#tls-streams).
    A 380 KB page of 100 Jira issues is ~24 of them. On a blocking socket `ssl.SSLSocket` reads
    the record in C and the blocking path has no async layers: a Jira page of the fetch side
    costs 16 % fewer instructions (29.9M -> 25.0M, bench/fetch_jira.py under callgrind;
    bench/README.md, branch i13fetch12). The cost is a thread hand-off per request, which a
    page amortises.

    Behaviour is the async transport's: httpx's exceptions (timeouts from the request's
    `timeout` extension, applied per socket operation by httpcore), the egress check at
    connect time, redirects and auth in the client. The body is read whole in the thread and
    handed back raw (still encoded: the client decodes it), so this transport does not stream:
    it is for JSON APIs, not downloads. A thread cannot be cancelled: a request cancelled while
    its thread runs finishes there (its answer dropped, its connection back to the pool), and
    `aclose` shuts down every open socket, so that a thread blocked on a stalled tool ends at
    once instead of at its read timeout (the interpreter waits for these threads at exit: a
    failed or interrupted sync would otherwise linger up to `timeout_seconds`). At most
    `max_workers` requests run at once; more wait for a thread.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: BlockingResolver = blocking_resolver,
        inner_backend: httpcore.NetworkBackend | None = None,
        max_workers: int = 4,
        **transport_kwargs: Any,
    ) -> None:
        self.policy = policy
        self._transport = httpx.HTTPTransport(**transport_kwargs)
        self._backend = _GuardedBlockingBackend(policy, resolver, inner_backend or httpcore.SyncBackend())
        _use_backend(self._transport, self._backend)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="opshub-http")

    def _send(self, request: httpx.Request) -> httpx.Response:
        response = self._transport.handle_request(request)
        try:
            raw = b"".join(response.iter_raw())
        finally:
            response.close()
        extensions = {k: v for k, v in response.extensions.items() if k != "network_stream"}
        return httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(raw), extensions=extensions
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_scheme(request.url)
        if not isinstance(request.stream, httpx.SyncByteStream):
            await request.aread()  # an async body: read here, so the thread sends bytes
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._send, request)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._backend.interrupt()
        self._transport.close()


_default_policy = EgressPolicy()


def configure_default(policy: EgressPolicy) -> None:
    """Set the policy of clients built without one (the hub does this from its settings)."""
    global _default_policy
    _default_policy = policy


def default_policy() -> EgressPolicy:
    return _default_policy

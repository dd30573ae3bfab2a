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
gives httpcore a network backend that resolves the name itself, checks every address, and
connects to the checked address. A name that resolved to a public address when the URL was
saved and to 127.0.0.1 now (DNS rebinding) is refused, and so is a redirect to a private
address. TLS is unchanged: httpcore sends SNI and checks the certificate against the URL's
host name, not the address, and the Host header comes from the URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses the host name resolves to."""


class EgressRefused(httpx.TransportError):
    """The hub may not send this request (see the module doc); never retried."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


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
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            addresses = await self.resolver(host, port)
        if not addresses:
            raise EgressRefused(f"{host} resolves to no address")
        for address in addresses:  # every address: a name must not mix public and private ones
            self.policy.check_address(host, address)
        # Connect to the address just checked, never to the name (which could resolve again).
        return await self.inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
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
        backend = _GuardedBackend(policy, resolver, inner_backend or httpcore.AnyIOBackend())
        # httpx exposes no network_backend option; the pool it built reads this attribute for
        # every new connection (httpcore 1.x AsyncConnectionPool).
        pool = self._transport._pool
        if not hasattr(pool, "_network_backend"):  # pragma: no cover - guard against an httpcore change
            raise RuntimeError("httpcore's connection pool has no _network_backend: update GuardedTransport")
        pool._network_backend = backend

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_scheme(request.url)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


_default_policy = EgressPolicy()


def configure_default(policy: EgressPolicy) -> None:
    """Set the policy of clients built without one (the hub does this from its settings)."""
    global _default_policy
    _default_policy = policy


def default_policy() -> EgressPolicy:
    return _default_policy

"""Small shared pieces of connector auth: request auth that keeps secrets out of client
headers, and case-insensitive header lookup for webhook verification."""

from __future__ import annotations

from collections.abc import Generator, Mapping

import httpx


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer ...` added per request, so the token never sits in client headers
    (and so never in a repr or a logged client configuration)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name (webhook headers arrive in any case)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None

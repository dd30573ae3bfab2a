"""Helpers for the inbox worker tests: fake Jira sources behind a switch, deliveries, passes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from connectors.base import Connector
from fakes.jira import CF_STORY_POINTS, FakeJira
from hub.config import HubConfig, SourceDefinition, parse_config
from hub.db.tables import webhook_inbox
from hub.store import Store
from hub.webhooks import WebhookIntake

SECRET = "s3cret"


class ToolSwitch(httpx.AsyncBaseTransport):
    """A fake tool behind a switch: up, refusing connections (fails at once), or hanging
    (requests wait until the tool is switched up again, as a tool that times out would)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.mode = "up"
        self.requests = 0
        self._released: asyncio.Event | None = None

    def refuse(self) -> None:
        self.mode = "refused"

    def hang(self) -> None:
        self.mode = "hanging"
        self._released = asyncio.Event()

    def up(self) -> None:
        self.mode = "up"
        if self._released is not None:
            self._released.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.mode == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "hanging" and self._released is not None:
            await self._released.wait()
        return await self.inner.handle_async_request(request)


async def no_sleep(_seconds: float) -> None:
    """The connectors' retry waits, skipped (the tests count passes, not seconds)."""


@dataclass
class Sources:
    """Jira sources, each on its own fake behind its own switch."""

    fakes: dict[str, FakeJira]
    switches: dict[str, ToolSwitch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.switches = {name: ToolSwitch(fake.app) for name, fake in self.fakes.items()}
        self.config: HubConfig = parse_config(
            {
                "sources": {
                    name: {
                        "tool": "jira",
                        "base_url": fake.base_url,
                        "email": fake.email,
                        "api_token": fake.api_token,
                        "projects": list(fake.projects),
                        "webhook_secret": SECRET,
                    }
                    for name, fake in self.fakes.items()
                }
            }
        )

    def factory(self) -> Callable[[SourceDefinition], Connector]:
        return lambda source: source.connector_cls(
            source.name, source.config, transport=self.switches[source.name], sleep=no_sleep
        )

    def post(self, store: Store, source: str, kind: str, native_id: str) -> str:
        """Receive one signed delivery (as POST /webhooks/{source} does); returns its delivery id."""
        headers, body = self.fakes[source].webhook(kind, native_id, secret=SECRET)  # type: ignore[arg-type]
        intake = WebhookIntake(store, self.config, connector_factory=self.factory())
        result = intake.receive(source, {k.lower(): v for k, v in headers.items()}, body)
        assert not result.duplicate
        return result.delivery_id


def two_sources() -> Sources:
    return Sources({"acme-jira": FakeJira(30, seed=1), "beta-jira": FakeJira(30, seed=2)})


def statuses(store: Store) -> dict[str, str]:
    """delivery id -> inbox status."""
    t = webhook_inbox.c
    with store.engine.connect() as conn:
        return {row.delivery_id: row.status for row in conn.execute(select(t.delivery_id, t.status))}


def with_points(fake: FakeJira) -> list[str]:
    """Ids of issues that carry story points (mapped only with the field catalog)."""
    return [i for i in fake.ids() if fake._issue(fake._idx(i))["fields"].get(CF_STORY_POINTS) is not None]

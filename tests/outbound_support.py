"""Test receivers for outbound webhooks: they verify every delivery with the reference
`standardwebhooks` package (https://github.com/standard-webhooks/standard-webhooks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import webhooks as sw

from hub.outbound.deliverer import Deliverer
from hub.outbound.store import SubscriptionStore

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def freeze_verifier_clock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """The reference library checks `webhook-timestamp` against datetime.now (5 min tolerance):
    give the receiver the hub's injected clock, as a receiver in sync with the hub would be."""

    class _Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> _Frozen:  # type: ignore[override]
            return clock().astimezone(tz)  # type: ignore[return-value]

    monkeypatch.setattr(sw, "datetime", _Frozen)


Behaviour = Callable[[int], str]
"""Attempt number (1-based, over the receiver's life) -> "ok", "500", "410", "timeout" or "refuse"."""


@dataclass
class Receiver:
    """An in-process receiver (an httpx.MockTransport): verifies, records, answers as scripted."""

    secret: str
    behaviour: Behaviour = lambda _n: "ok"
    received: list[dict[str, Any]] = field(default_factory=list)  # verified, accepted messages
    attempts: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        action = self.behaviour(self.attempts)
        if action == "timeout":
            raise httpx.ReadTimeout("receiver too slow", request=request)
        if action == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        headers = dict(request.headers)
        payload = sw.Webhook(self.secret).verify(request.content, headers)  # raises if the signature is bad
        if action != "ok":
            return httpx.Response(int(action))
        self.headers.append(headers)
        self.bodies.append(request.content)
        self.received.append({"msg_id": headers["webhook-id"], **payload})
        return httpx.Response(204)

    def seqs(self) -> list[int]:
        return [m["data"]["change"]["seq"] for m in self.received if "change" in m["data"]]

    def types(self) -> list[str]:
        return [m["type"] for m in self.received]


def deliverer_for(store_engine: Any, receiver: Receiver, clock: FakeClock, **kwargs: Any) -> Deliverer:
    return Deliverer(
        SubscriptionStore(store_engine), transport=receiver.transport(), clock=clock, rand=lambda: 0.5, **kwargs
    )


def routed(receivers: dict[str, Receiver]) -> httpx.MockTransport:
    """One transport for several receivers, chosen by the request's host."""
    return httpx.MockTransport(lambda request: receivers[request.url.host].handle(request))

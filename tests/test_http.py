"""The shared HTTP layer: what is retried, how long it waits, limits and errors (respx-mocked)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
import respx

from connectors.base import AuthFailed
from connectors.http import (
    BudgetExceeded,
    RequestFailed,
    RetryPolicy,
    SourceClient,
    epoch_reset_hint,
    iso_reset_hint,
    retry_after_hint,
)

BASE = "https://tool.example"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Sleeps(list[float]):
    """An injected sleep that records the waits instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(sleeps: Sleeps, **kwargs: object) -> SourceClient:
    options: dict[str, object] = {"source": "acme", "base_url": BASE, "sleep": sleeps, "clock": lambda: NOW}
    options.update(kwargs)
    return SourceClient(**options)  # type: ignore[arg-type]


@respx.mock
async def test_429_honours_retry_after_seconds() -> None:
    route = respx.get(f"{BASE}/items").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"ok": True})]
    )
    sleeps = Sleeps()
    http = client(sleeps)
    data, response = await http.get_json("/items", {"a": 1})
    assert data == {"ok": True}
    assert response.status_code == 200
    assert sleeps == [7.0]
    assert route.call_count == 2
    assert http.stats()["retries"] == 1
    assert http.stats()["rate_limit_waits"] == 1
    assert http.stats()["requests"] == 2


@respx.mock
async def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 42, UTC), usegmt=True)
    respx.get(f"{BASE}/x").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json=[])]
    )
    sleeps = Sleeps()
    await client(sleeps).get_json("/x")
    assert sleeps == [42.0]


@respx.mock
async def test_jira_iso_reset_header_and_github_epoch_reset() -> None:
    reset = datetime.fromtimestamp(NOW + 120, UTC).strftime("%Y-%m-%dT%H:%MZ")
    respx.get(f"{BASE}/jira").mock(
        side_effect=[httpx.Response(429, headers={"X-RateLimit-Reset": reset}), httpx.Response(200, json={})]
    )
    sleeps = Sleeps()
    await client(sleeps, wait_hints=[iso_reset_hint("X-RateLimit-Reset")]).get_json("/jira")
    assert sleeps == [120.0]

    respx.get(f"{BASE}/gh").mock(
        side_effect=[
            httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)}),
            httpx.Response(200, json={}),
        ]
    )
    sleeps = Sleeps()
    github = client(
        sleeps,
        wait_hints=[epoch_reset_hint("x-ratelimit-reset", remaining_header="x-ratelimit-remaining")],
        rate_limited=lambda r: r.status_code == 403 and r.headers.get("x-ratelimit-remaining") == "0",
    )
    await github.get_json("/gh")
    assert sleeps == [30.0]


def test_wait_hints_ignore_garbage() -> None:
    response = httpx.Response(429, headers={"Retry-After": "soon", "x-ratelimit-reset": "x", "X-RateLimit-Reset": "?"})
    assert retry_after_hint(response, NOW) is None
    assert epoch_reset_hint("x-ratelimit-reset")(response, NOW) is None
    assert iso_reset_hint("X-RateLimit-Reset")(response, NOW) is None
    # remaining > 0: a reset time is no reason to wait
    ok = httpx.Response(500, headers={"x-ratelimit-remaining": "10", "x-ratelimit-reset": str(int(NOW) + 999)})
    assert epoch_reset_hint("x-ratelimit-reset", remaining_header="x-ratelimit-remaining")(ok, NOW) is None


@respx.mock
async def test_5xx_backs_off_exponentially_with_jitter() -> None:
    respx.get(f"{BASE}/x").mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(500), httpx.Response(200, json=1)]
    )
    sleeps = Sleeps()
    http = client(sleeps, retry=RetryPolicy(initial=1.0, multiplier=2.0, jitter=0.5))
    data, _ = await http.get_json("/x")
    assert data == 1
    assert len(sleeps) == 3
    for wait, base in zip(sleeps, [1.0, 2.0, 4.0], strict=True):
        assert base <= wait <= base + 0.5
    assert http.stats()["server_errors"] == 3


@respx.mock
async def test_timeouts_connection_errors_and_truncated_json_are_retried() -> None:
    respx.get(f"{BASE}/x").mock(
        side_effect=[
            httpx.ConnectTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.Response(200, content=b'{"issues": [{"id": "1"'),
            httpx.Response(200, json={"issues": []}),
        ]
    )
    sleeps = Sleeps()
    http = client(sleeps)
    data, _ = await http.get_json("/x")
    assert data == {"issues": []}
    assert len(sleeps) == 3
    assert http.stats()["transport_errors"] == 2
    assert http.stats()["invalid_bodies"] == 1


@pytest.mark.parametrize("status", [400, 404, 405, 409, 422])
@respx.mock
async def test_other_4xx_are_never_retried(status: int) -> None:
    route = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(status, json={"errorMessages": ["bad jql"]}))
    sleeps = Sleeps()
    with pytest.raises(RequestFailed) as info:
        await client(sleeps).get_json("/x")
    assert info.value.status == status
    assert "bad jql" in str(info.value)
    assert route.call_count == 1
    assert sleeps == []


@respx.mock
async def test_404_allowed_returns_none() -> None:
    respx.get(f"{BASE}/issue/9").mock(return_value=httpx.Response(404))
    data, response = await client(Sleeps()).get_json("/issue/9", allow_404=True)
    assert data is None
    assert response.status_code == 404


@pytest.mark.parametrize("status", [401, 403])
@respx.mock
async def test_401_403_raise_auth_failed_naming_source_and_what_to_check(status: int) -> None:
    route = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(status))
    with pytest.raises(AuthFailed) as info:
        await client(Sleeps(), auth_hint="sources.acme.api_token").get_json("/x")
    message = str(info.value)
    assert "acme" in message
    assert "sources.acme.api_token" in message
    assert str(status) in message
    assert route.call_count == 1


@respx.mock
async def test_gives_up_after_the_attempts() -> None:
    route = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(503))
    sleeps = Sleeps()
    with pytest.raises(RequestFailed, match="still failing after 3 attempts") as info:
        await client(sleeps, retry=RetryPolicy(attempts=3)).get_json("/x")
    assert info.value.status == 503
    assert route.call_count == 3
    assert len(sleeps) == 2


@respx.mock
async def test_hinted_waits_are_capped() -> None:
    respx.get(f"{BASE}/x").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "86400"}), httpx.Response(200, json={})]
    )
    sleeps = Sleeps()
    await client(sleeps, retry=RetryPolicy(max_wait=60)).get_json("/x")
    assert sleeps == [60]


@respx.mock
async def test_request_budget_counts_retries_too() -> None:
    respx.get(f"{BASE}/x").mock(return_value=httpx.Response(429, headers={"Retry-After": "1"}))
    http = client(Sleeps(), request_budget=3)
    with pytest.raises(BudgetExceeded, match="budget of 3"):
        await http.get_json("/x")
    assert http.stats()["requests"] == 3


@respx.mock
async def test_absolute_urls_and_post_json() -> None:
    respx.get("https://other.example/page2").mock(return_value=httpx.Response(200, json=[2]))
    graphql = respx.post(f"{BASE}/graphql").mock(return_value=httpx.Response(200, json={"data": {}}))
    http = client(Sleeps())
    assert (await http.get_json("https://other.example/page2"))[0] == [2]
    assert (await http.post_json("/graphql", {"query": "{ viewer { id } }"}))[0] == {"data": {}}
    assert graphql.calls.last.request.headers["content-type"] == "application/json"
    assert graphql.calls.last.request.content == b'{"query":"{ viewer { id } }"}'


async def test_concurrency_is_limited_per_source() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={})

    http = client(Sleeps(), max_concurrency=2, transport=httpx.MockTransport(handler))
    await asyncio.gather(*(http.get_json(f"/x/{i}") for i in range(8)))
    await http.aclose()
    assert peak == 2


async def test_a_read_response_is_freed_without_the_collector() -> None:
    """httpx binds a response's stream to the response (a reference cycle); the client unbinds
    it once the body is read, so a page's body (~380 KB for 100 Jira issues) is freed when its
    reader drops it, not when the collector next runs (the sync's peak RSS followed how often
    it ran)."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"issues": [1, 2]}))
    source = client(Sleeps(), transport=transport)
    gc.disable()
    try:
        body, response = await source.get_json("/page")
        assert body == {"issues": [1, 2]} and response.content
        alive = weakref.ref(response)
        del response
        assert alive() is None
    finally:
        gc.enable()
        await source.aclose()

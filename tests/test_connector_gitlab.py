"""GitLab quirks (respx-mocked) and the real payloads in ../shared/fixtures/gitlab."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.base import IgnoreEvent, RefetchRecord, UpsertRecord, WebhookRejected
from connectors.gitlab import GitLabConfig, GitLabConnector
from connectors.registry import connector_class
from tests.conftest import shared_fixtures

BASE = "https://gitlab.acme.test"
API = f"{BASE}/api/v4"
SECRET = "test-webhook-secret"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def connector(sleeps: Sleeps | None = None, clock: Any = None, **overrides: Any) -> GitLabConnector:
    raw: dict[str, Any] = {"base_url": BASE, "token": "glpat-x", "projects": [14], "webhook_secret": SECRET}
    raw.update(overrides)
    cfg = GitLabConfig.model_validate({k: v for k, v in raw.items() if v is not None})
    kwargs: dict[str, Any] = {"sleep": sleeps if sleeps is not None else Sleeps()}
    if clock is not None:
        kwargs["clock"] = clock
    return GitLabConnector("gl", cfg, **kwargs)


def issue(ident: int, iid: int, updated: str, project_id: int = 14) -> dict[str, Any]:
    return {"id": ident, "iid": iid, "project_id": project_id, "state": "opened", "updated_at": updated}


# ---------------------------------------------------------------- config


def test_registered_under_the_entry_point() -> None:
    assert connector_class("gitlab") is GitLabConnector


def test_config_scope_ids_and_paths() -> None:
    cfg = GitLabConfig.model_validate(
        {"token": "t", "projects": [42, "acme/platform/api"], "base_url": "https://gl.acme.test/api/v4/"}
    )
    assert cfg.projects == ["42", "acme/platform/api"]
    assert cfg.base_url == "https://gl.acme.test"
    with pytest.raises(ValidationError, match="exactly one scope"):
        GitLabConfig.model_validate({"token": "t"})
    with pytest.raises(ValidationError, match="keyset"):
        GitLabConfig.model_validate({"token": "t", "groups": ["acme"], "pagination": "keyset"})
    with pytest.raises(ValidationError, match="full path"):
        GitLabConfig.model_validate({"token": "t", "projects": ["not a path!"]})


# ---------------------------------------------------------------- pulling


def serve_issues(rows: list[dict[str, Any]]) -> Any:
    """A respx side effect answering like GitLab's offset pagination: `updated_after`
    (inclusive) over the rows sorted by `updated_at`, `per_page`, `page`, `x-next-page`."""

    def answer(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        after = params.get("updated_after")
        chosen = sorted((r for r in rows if after is None or r["updated_at"] >= after), key=lambda r: r["updated_at"])
        per_page, page = int(params.get("per_page", "20")), int(params.get("page", "1"))
        more = page * per_page < len(chosen)
        headers = {"x-page": str(page), "x-next-page": str(page + 1) if more else ""}
        return httpx.Response(200, json=chosen[(page - 1) * per_page : page * per_page], headers=headers)

    return answer


@respx.mock
async def test_offset_pages_start_at_the_newest_millisecond_read_with_updated_after() -> None:
    rows = [
        issue(1, 1, "2025-01-01T00:00:00.000Z"),
        issue(2, 2, "2025-01-01T00:00:01.000Z"),
        issue(3, 3, "2025-01-01T00:00:02.500Z"),
    ]
    route = respx.get(f"{API}/projects/acme%2Fapi/issues").mock(side_effect=serve_issues(rows))
    async with connector(projects=["acme/api"], overlap="0s", page_size=2) as gl:
        pages = [page async for page in gl.fetch(None)]
        assert [r["id"] for p in pages for r in p.records] == [1, 2, 3]
        first = route.calls[0].request
        assert first.url.raw_path.startswith(b"/api/v4/projects/acme%2Fapi/issues")
        assert first.headers["private-token"] == "glpat-x"
        assert first.url.params["order_by"] == "updated_at" and first.url.params["sort"] == "asc"
        assert "updated_after" not in first.url.params
        # The next page is asked from the newest time read (that row comes again and is dropped).
        assert route.calls[1].request.url.params["updated_after"] == "2025-01-01T00:00:01.000Z"
        assert "page" not in route.calls[1].request.url.params
        assert route.call_count == 2
        [page async for page in gl.fetch(pages[-1].cursor)]
    assert route.calls[-1].request.url.params["updated_after"] == "2025-01-01T00:00:02.500Z"


@respx.mock
async def test_offset_paging_skips_nothing_when_an_issue_read_is_edited() -> None:
    rows = [issue(n, n, f"2025-01-01T00:00:{n:02d}.000Z") for n in range(1, 8)]
    route = respx.get(f"{API}/projects/acme%2Fapi/issues").mock(side_effect=serve_issues(rows))
    seen: list[int] = []
    async with connector(projects=["acme/api"], page_size=3) as gl:
        async for page in gl.fetch(None):
            seen.extend(r["id"] for r in page.records)
            rows[0]["updated_at"] = f"2025-01-01T00:01:{len(route.calls):02d}.000Z"  # moves to the end
    assert set(seen) == set(range(1, 8))


@respx.mock
async def test_keyset_pages_follow_the_link_header_and_oauth_uses_bearer() -> None:
    route = respx.get(f"{API}/projects/14/issues").mock(
        side_effect=[
            httpx.Response(
                200,
                json=[issue(1, 1, "2025-01-01T00:00:00Z")],
                headers={"Link": f'<{API}/projects/14/issues?cursor=abc&pagination=keyset>; rel="next"'},
            ),
            httpx.Response(200, json=[issue(2, 2, "2025-01-02T00:00:00Z")]),
        ]
    )
    async with connector(pagination="keyset", oauth=True) as gl:
        ids = [r["id"] async for page in gl.fetch(None) for r in page.records]
    assert ids == [1, 2]
    assert route.calls[0].request.url.params["pagination"] == "keyset"
    assert route.calls[1].request.url.params["cursor"] == "abc"
    assert route.calls[0].request.headers["authorization"] == "Bearer glpat-x"


@respx.mock
async def test_429_waits_for_retry_after() -> None:
    respx.get(f"{API}/groups/acme/issues").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "5", "RateLimit-Remaining": "0"}),
            httpx.Response(200, json=[]),
        ]
    )
    sleeps = Sleeps()
    async with connector(sleeps, projects=None, groups=["acme"]) as gl:
        [page async for page in gl.fetch(None)]
    assert sleeps == [5.0]


@respx.mock
async def test_fetch_one_through_the_index_and_404_is_gone() -> None:
    listing = respx.get(f"{API}/projects/14/issues").mock(
        return_value=httpx.Response(200, json=[issue(301, 23, "2025-01-01T00:00:00Z")], headers={"x-next-page": ""})
    )
    respx.get(f"{API}/projects/14/issues/23").mock(return_value=httpx.Response(200, json=issue(301, 23, "x")))
    respx.get(f"{API}/projects/14/issues/24").mock(return_value=httpx.Response(404, json={"message": "404 Not found"}))
    async with connector(clock=lambda: 1000.0) as gl:
        one = await gl.fetch_one("301")
        assert one is not None and one["iid"] == 23
        assert await gl.fetch_one("999") is None
        assert listing.call_count == 1
        body = json.dumps(
            {
                "object_kind": "note",
                "object_attributes": {"noteable_type": "Issue"},
                "issue": {"id": 302, "iid": 24, "project_id": 14},
                "project": {"id": 14},
            }
        ).encode()
        assert gl.parse({"X-Gitlab-Event": "Note Hook"}, body).events == [RefetchRecord("302")]
        assert await gl.fetch_one("302") is None  # indexed by the hook, then 404


# ---------------------------------------------------------------- webhooks


def test_token_is_required_and_compared() -> None:
    gl = connector()
    gl.verify({"X-Gitlab-Token": SECRET}, b"{}")
    for headers in ({}, {"X-Gitlab-Token": "nope"}):
        with pytest.raises(WebhookRejected):
            gl.verify(headers, b"{}")
    with pytest.raises(WebhookRejected, match="webhook_secret"):
        connector(webhook_secret=None).verify({"X-Gitlab-Token": SECRET}, b"{}")


def test_signing_token_binds_the_body_and_the_time() -> None:
    gl = connector(
        webhook_signing_token="whsec_" + base64.b64encode(b"signing-key").decode(), clock=lambda: 1_700_000_000
    )
    body = b'{"object_kind":"issue"}'

    def signed(stamp: int, payload: bytes = body) -> dict[str, str]:
        digest = hmac.new(b"signing-key", b"msg-1." + str(stamp).encode() + b"." + payload, hashlib.sha256).digest()
        return {
            "X-Gitlab-Token": SECRET,
            "webhook-id": "msg-1",
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1,bogus v1," + base64.b64encode(digest).decode(),
        }

    gl.verify(signed(1_700_000_000), body)
    with pytest.raises(WebhookRejected, match="match"):
        gl.verify(signed(1_700_000_000), body + b" ")
    with pytest.raises(WebhookRejected, match="5 minutes"):
        gl.verify(signed(1_700_000_000 - 600), body)
    with pytest.raises(WebhookRejected, match="missing"):
        gl.verify({"X-Gitlab-Token": SECRET}, body)


def test_delivery_ids_prefer_idempotency_key_then_event_uuid_then_body_hash() -> None:
    gl = connector()
    assert gl.parse({"Idempotency-Key": "a", "X-Gitlab-Event-UUID": "b"}, b"{}").delivery_id == "a"
    assert gl.parse({"X-Gitlab-Event-UUID": "b"}, b"{}").delivery_id == "b"
    assert gl.parse({}, b"{}").delivery_id.startswith("sha256:")


def _fixture(name: str) -> bytes:
    return (shared_fixtures("gitlab") / name).read_bytes()


@pytest.mark.parametrize("name", ["webhook-issue-hook.docs-example.json", "webhook-issue-hook.go-gitlab-testdata.json"])
def test_real_issue_hooks_refetch_the_issue(name: str) -> None:
    raw = _fixture(name)
    payload = json.loads(raw)
    attrs = payload["object_attributes"]
    headers = {"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": name}
    # the hook's issue lives in project 14 (object_attributes.project_id) of project gitlabhq/gitlab-test
    for scope in ([attrs["project_id"]], [payload["project"]["path_with_namespace"]], [payload["project"]["id"]]):
        gl = connector(projects=scope)
        gl.verify(headers, raw)
        delivery = gl.parse(headers, raw)
        assert delivery.delivery_id == name
        assert delivery.events == [RefetchRecord(str(attrs["id"]))]
        assert gl.locator.get(str(attrs["id"])) == (str(attrs["project_id"]), attrs["iid"])
    # hook_upsert applies the delivery itself (mappings/gitlab.yaml reads the hook shape)
    (event,) = connector(hook_upsert=True).parse(headers, raw).events
    assert isinstance(event, UpsertRecord) and event.record == payload
    assert connector(hook_upsert=True).native_id(event.record) == str(attrs["id"])
    # groups by path scope by the project's namespace
    assert connector(projects=None, groups=["gitlabhq"]).parse(headers, raw).events == [RefetchRecord(str(attrs["id"]))]
    (ignored,) = connector(projects=[999]).parse(headers, raw).events
    assert isinstance(ignored, IgnoreEvent) and "outside" in ignored.reason


@pytest.mark.parametrize(
    "name", ["webhook-note-hook-comment-on-issue.docs-example.json", "webhook-note-hook-issue.go-gitlab-testdata.json"]
)
def test_real_note_hooks_on_issues_refetch_the_issue(name: str) -> None:
    raw = _fixture(name)
    payload = json.loads(raw)
    headers = {"X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": SECRET}
    gl = connector(projects=[payload["project"]["id"]])
    gl.verify(headers, raw)
    assert gl.parse(headers, raw).events == [RefetchRecord(str(payload["issue"]["id"]))]
    on_mr = json.loads(raw)
    on_mr["object_attributes"]["noteable_type"] = "MergeRequest"
    (event,) = gl.parse(headers, json.dumps(on_mr).encode()).events
    assert isinstance(event, IgnoreEvent) and "MergeRequest" in event.reason


def test_other_events_and_non_issue_work_items_are_ignored() -> None:
    gl = connector()
    (event,) = gl.parse({"X-Gitlab-Event": "Push Hook"}, b'{"object_kind": "push"}').events
    assert isinstance(event, IgnoreEvent) and "Push Hook" in event.reason
    epic = {"object_kind": "work_item", "object_attributes": {"id": 5, "type": "Epic", "project_id": 14}}
    (event,) = gl.parse({"X-Gitlab-Event": "Issue Hook"}, json.dumps(epic).encode()).events
    assert isinstance(event, IgnoreEvent) and "Epic" in event.reason


@respx.mock
async def test_real_issue_list_parses() -> None:
    items = json.loads(_fixture("rest-GET-issues.docs-example.json"))
    respx.get(f"{API}/projects/1/issues").mock(return_value=httpx.Response(200, json=items))
    async with connector(projects=[1]) as gl:
        records = [r async for page in gl.fetch(None) for r in page.records]
        assert records == items
        assert [gl.native_id(r) for r in records] == [str(i["id"]) for i in items]
        assert gl.locator.get(str(items[0]["id"])) == (str(items[0]["project_id"]), items[0]["iid"])

"""GitHub Issues quirks (respx-mocked) and the real payloads in ../shared/fixtures/github."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.base import AuthFailed, DeleteRecord, IgnoreEvent, RefetchRecord, UpsertRecord, WebhookRejected
from connectors.cursors import InvalidCursor
from connectors.github import GitHubConfig, GitHubConnector
from connectors.multi import ScopeCursors
from connectors.registry import connector_class
from tests.conftest import shared_fixtures

API = "https://api.github.com"
SECRET = "test-webhook-secret"
pytestmark = pytest.mark.anyio
# Every repository the real deliveries in ../shared/fixtures/github come from.
FIXTURE_REPOS = ["Codertocat/Hello-World", "github-slack/public-test", "octo-org/octo-repo", "Octocoders/Hello-World"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def config(**overrides: Any) -> GitHubConfig:
    raw: dict[str, Any] = {"token": "ghp_test", "repositories": ["octo/api"], "webhook_secret": SECRET}
    raw.update(overrides)
    return GitHubConfig.model_validate({k: v for k, v in raw.items() if v is not None})


def connector(sleeps: Sleeps | None = None, clock: Any = None, **overrides: Any) -> GitHubConnector:
    kwargs: dict[str, Any] = {"sleep": sleeps if sleeps is not None else Sleeps()}
    if clock is not None:
        kwargs["clock"] = clock
    return GitHubConnector("gh", config(**overrides), **kwargs)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def issue(ident: int, number: int, updated: str, repo: str = "octo/api", **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "number": number,
        "repository_url": f"{API}/repos/{repo}",
        "state": "open",
        "title": f"issue {number}",
        "updated_at": updated,
        **extra,
    }


# ---------------------------------------------------------------- config


def test_registered_under_the_entry_point() -> None:
    assert connector_class("github") is GitHubConnector


def test_config_needs_exactly_one_scope_and_real_repository_names() -> None:
    with pytest.raises(ValidationError, match="exactly one scope"):
        GitHubConfig.model_validate({"token": "t"})
    with pytest.raises(ValidationError, match="exactly one scope"):
        GitHubConfig.model_validate({"token": "t", "repositories": ["a/b"], "organization": "a"})
    with pytest.raises(ValidationError, match="owner/repo"):
        GitHubConfig.model_validate({"token": "t", "repositories": ["just-a-name"]})
    ghes = GitHubConfig.model_validate(
        {"token": "t", "organization": "acme", "base_url": "https://ghe.acme.test/api/v3/"}
    )
    assert ghes.base_url == "https://ghe.acme.test/api/v3"
    assert "ghp_secret" not in repr(GitHubConfig.model_validate({"token": "ghp_secret", "organization": "acme"}))


# ---------------------------------------------------------------- pulling


def serve_issues(rows: list[dict[str, Any]]) -> Any:
    """A respx side effect answering like GitHub: `since` (inclusive, whole seconds) over the
    rows sorted by update time, `per_page` and `page`, a `Link` next while pages remain."""

    def answer(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        since = params.get("since")
        chosen = sorted((r for r in rows if since is None or r["updated_at"] >= since), key=lambda r: r["updated_at"])
        per_page, page = int(params.get("per_page", "30")), int(params.get("page", "1"))
        chunk = chosen[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(chosen)
        headers = {"Link": f'<{request.url.copy_set_param("page", str(page + 1))}>; rel="next"'} if more else {}
        return httpx.Response(200, json=chunk, headers=headers)

    return answer


@respx.mock
async def test_pull_requests_are_dropped_and_each_page_starts_at_the_newest_second_read() -> None:
    rows = [
        issue(1, 1, "2025-01-01T00:00:00Z"),
        issue(2, 2, "2025-01-01T00:00:01Z", pull_request={"url": "x"}),
        issue(3, 3, "2025-01-01T00:00:02Z"),
        issue(4, 4, "2025-01-01T00:00:02Z"),
        issue(5, 5, "2025-01-01T00:00:03Z"),
    ]
    route = respx.get(f"{API}/repos/octo/api/issues").mock(side_effect=serve_issues(rows))
    async with connector(page_size=2) as gh:
        pages = [page async for page in gh.fetch(None)]
    assert [r["id"] for p in pages for r in p.records] == [1, 3, 4, 5]
    first = route.calls[0].request
    assert first.url.params["state"] == "all"
    assert first.url.params["sort"] == "updated"
    assert first.url.params["direction"] == "asc"
    assert "since" not in first.url.params
    assert first.headers["authorization"] == "Bearer ghp_test"
    assert first.headers["x-github-api-version"] == "2022-11-28"
    # The pull request counts in the page; the next page starts at its second (re-read, dropped).
    # Second 02 fills a whole page (3, 4): its next page is asked by number.
    asked = [(c.request.url.params.get("since"), c.request.url.params.get("page")) for c in route.calls]
    assert asked == [
        (None, None),
        ("2025-01-01T00:00:01Z", None),
        ("2025-01-01T00:00:02Z", None),
        ("2025-01-01T00:00:02Z", "2"),
    ]


@respx.mock
async def test_an_edit_behind_the_page_boundary_skips_nothing() -> None:
    rows = [issue(n, n, f"2025-01-01T00:00:{n:02d}Z") for n in range(1, 8)]
    route = respx.get(f"{API}/repos/octo/api/issues").mock(side_effect=serve_issues(rows))
    seen: list[int] = []
    async with connector(page_size=3) as gh:
        async for page in gh.fetch(None):
            seen.extend(r["id"] for r in page.records)
            rows[0]["updated_at"] = f"2025-01-01T00:01:{len(route.calls):02d}Z"  # issue 1 edited: moves to the end
    assert set(seen) == set(range(1, 8))


@respx.mock
async def test_a_second_with_more_than_a_page_of_issues_is_paged_by_number() -> None:
    rows = [issue(n, n, "2025-01-01T00:00:05Z") for n in range(1, 6)] + [issue(9, 9, "2025-01-01T00:00:06Z")]
    route = respx.get(f"{API}/repos/octo/api/issues").mock(side_effect=serve_issues(rows))
    async with connector(page_size=2) as gh:
        records = [r async for page in gh.fetch(None) for r in page.records]
    assert sorted(r["id"] for r in records) == [1, 2, 3, 4, 5, 9]
    assert len(records) == 6
    asked = [(c.request.url.params.get("since"), c.request.url.params.get("page")) for c in route.calls]
    assert asked[1:3] == [("2025-01-01T00:00:05Z", None), ("2025-01-01T00:00:05Z", "2")]


@respx.mock
async def test_repositories_merge_in_update_order_and_resume_each_from_its_own_cursor() -> None:
    api = respx.get(f"{API}/repos/octo/api/issues").mock(
        return_value=httpx.Response(
            200, json=[issue(1, 1, "2025-01-01T00:00:00Z"), issue(3, 2, "2025-01-03T00:00:00Z")]
        )
    )
    web = respx.get(f"{API}/repos/octo/web/issues").mock(
        return_value=httpx.Response(200, json=[issue(2, 1, "2025-01-02T00:00:00Z", repo="octo/web")])
    )
    async with connector(repositories=["octo/api", "octo/web"], overlap="0s") as gh:
        pages = [page async for page in gh.fetch(None)]
        assert [r["id"] for p in pages for r in p.records] == [1, 2, 3]
        cursor = pages[-1].cursor
        state = ScopeCursors.parse(cursor)
        assert state.get("octo/api").updated == state.get("octo/web").updated == datetime(2025, 1, 3, tzinfo=UTC)
        # a repository added to the scope later starts with a full sync, the others resume
        gh.config.repositories.append("octo/new")
        new = respx.get(f"{API}/repos/octo/new/issues").mock(return_value=httpx.Response(200, json=[]))
        [page async for page in gh.fetch(cursor)]
    assert api.calls[-1].request.url.params["since"] == "2025-01-03T00:00:00Z"
    assert web.calls[-1].request.url.params["since"] == "2025-01-03T00:00:00Z"
    assert "since" not in new.calls[0].request.url.params
    with pytest.raises(InvalidCursor):
        ScopeCursors.parse('{"updated": "2025-01-01"}')


@respx.mock
async def test_organization_scope_lists_its_repositories_with_issues() -> None:
    respx.get(f"{API}/orgs/acme/repos").mock(
        return_value=httpx.Response(
            200,
            json=[{"full_name": "acme/a", "has_issues": True}, {"full_name": "acme/off", "has_issues": False}],
            headers={"Link": f'<{API}/organizations/5/repos?page=2>; rel="next"'},
        )
    )
    respx.get(f"{API}/organizations/5/repos").mock(return_value=httpx.Response(200, json=[{"full_name": "acme/b"}]))
    a = respx.get(f"{API}/repos/acme/a/issues").mock(return_value=httpx.Response(200, json=[]))
    b = respx.get(f"{API}/repos/acme/b/issues").mock(return_value=httpx.Response(200, json=[]))
    async with connector(repositories=None, organization="acme") as gh:
        assert await gh.repositories() == ["acme/a", "acme/b"]
        [page async for page in gh.fetch(None)]
        assert gh.in_scope("ACME/anything") and not gh.in_scope("other/a")
    assert a.called and b.called


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        # primary limit: 403 with remaining 0 waits until x-ratelimit-reset
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}, {"message": "API rate limit exceeded"}, 30.0),
        # secondary limit: 403 with retry-after
        ({"retry-after": "7"}, {"message": "You have exceeded a secondary rate limit."}, 7.0),
        # secondary limit without retry-after: at least a minute
        ({}, {"message": "You have exceeded a secondary rate limit. Please wait."}, 60.0),
    ],
)
@respx.mock
async def test_403_rate_limits_wait_as_github_says(headers: dict[str, str], body: Any, expected: float) -> None:
    respx.get(f"{API}/repos/octo/api/issues").mock(
        side_effect=[httpx.Response(403, json=body, headers=headers), httpx.Response(200, json=[])]
    )
    sleeps = Sleeps()
    gh = connector(sleeps)
    gh.http._clock = lambda: 1000.0
    async with gh:
        [page async for page in gh.fetch(None)]
    assert sleeps == [expected]


@respx.mock
async def test_429_secondary_limit_and_plain_403() -> None:
    respx.get(f"{API}/repos/octo/api/issues").mock(
        side_effect=[httpx.Response(429, headers={"retry-after": "3"}), httpx.Response(200, json=[])]
    )
    sleeps = Sleeps()
    async with connector(sleeps) as gh:
        [page async for page in gh.fetch(None)]
    assert sleeps == [3.0]
    respx.get(f"{API}/repos/octo/api/issues").mock(
        return_value=httpx.Response(403, json={"message": "Resource not accessible by personal access token"})
    )
    async with connector() as gh:
        with pytest.raises(AuthFailed, match="Issues: read"):
            [page async for page in gh.fetch(None)]


@respx.mock
async def test_fetch_one_finds_the_issue_through_the_id_index() -> None:
    listing = respx.get(f"{API}/repos/octo/api/issues").mock(
        return_value=httpx.Response(
            200, json=[issue(11, 1, "2025-01-01T00:00:00Z"), issue(12, 2, "2025-01-01T00:00:00Z")]
        )
    )
    respx.get(f"{API}/repos/octo/api/issues/1").mock(
        return_value=httpx.Response(200, json=issue(11, 1, "2025-01-02T00:00:00Z"))
    )
    respx.get(f"{API}/repos/octo/api/issues/2").mock(return_value=httpx.Response(410, json={"message": "deleted"}))
    now = [1000.0]
    async with connector(clock=lambda: now[0]) as gh:
        one = await gh.fetch_one("11")  # unknown id: lists the scope once to learn where it lives
        assert one is not None and one["updated_at"] == "2025-01-02T00:00:00Z"
        assert listing.call_count == 1
        assert await gh.fetch_one("12") is None  # 410 Gone: deleted
        assert await gh.fetch_one("99") is None  # not in a fresh listing: gone
        assert listing.call_count == 1
        now[0] += 120
        assert await gh.fetch_one("99") is None  # the listing went stale: listed again
        assert listing.call_count == 2


@respx.mock
async def test_fetch_one_of_a_transferred_issue_is_none() -> None:
    respx.get(f"{API}/repos/octo/api/issues/1").mock(
        return_value=httpx.Response(200, json=issue(77, 5, "2025-01-02T00:00:00Z", repo="octo/web"))
    )
    async with connector() as gh:
        body = json.dumps(
            {"action": "edited", "issue": issue(11, 1, "2025-01-01T00:00:00Z"), "repository": {"full_name": "octo/api"}}
        ).encode()
        gh.parse({"X-GitHub-Event": "issues"}, body)  # the worker parses before it refetches
        assert await gh.fetch_one("11") is None


# ---------------------------------------------------------------- webhooks


def test_signature_is_checked_in_constant_time_and_required() -> None:
    gh = connector()
    body = b'{"zen": "ok"}'
    gh.verify({"X-Hub-Signature-256": sign(body)}, body)
    for headers in ({}, {"X-Hub-Signature-256": sign(body, "wrong")}, {"X-Hub-Signature-256": "sha1=abc"}):
        with pytest.raises(WebhookRejected):
            gh.verify(headers, body)
    with pytest.raises(WebhookRejected, match="webhook_secret"):
        connector(webhook_secret=None).verify({"X-Hub-Signature-256": sign(body)}, body)


def test_out_of_scope_and_unknown_events_are_ignored_with_a_reason() -> None:
    gh = connector()
    body = json.dumps(
        {
            "action": "opened",
            "issue": issue(1, 1, "2025-01-01T00:00:00Z", repo="other/repo"),
            "repository": {"full_name": "other/repo"},
        }
    ).encode()
    (event,) = gh.parse({"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d1"}, body).events
    assert isinstance(event, IgnoreEvent) and "outside" in event.reason
    (event,) = gh.parse({"X-GitHub-Event": "star"}, b"{}").events
    assert isinstance(event, IgnoreEvent) and "star" in event.reason
    delivery = gh.parse({}, b"{}")
    assert delivery.delivery_id.startswith("sha256:")


def _webhook_files() -> list[Path]:
    return sorted(shared_fixtures("github").glob("webhook-*.json"))


def _event_name(path: Path) -> str:
    name = path.stem.removeprefix("webhook-")
    return name.split("-", 1)[0]


def test_every_real_webhook_delivery_is_verified_and_routed() -> None:
    files = _webhook_files()
    assert len(files) >= 40
    gh = connector(repositories=FIXTURE_REPOS)
    for path in files:
        raw = path.read_bytes()
        event = _event_name(path)
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": path.stem, "X-Hub-Signature-256": sign(raw)}
        gh.verify(headers, raw)
        with pytest.raises(WebhookRejected):
            gh.verify(headers, raw + b"\n")
        delivery = gh.parse(headers, raw)
        assert delivery.delivery_id == path.stem
        payload = json.loads(raw)
        issue_obj = payload.get("issue") or {}
        action = payload.get("action")
        events = delivery.events
        if event == "ping":
            assert len(events) == 1 and isinstance(events[0], IgnoreEvent) and "ping" in events[0].reason
        elif "pull_request" in issue_obj:  # milestoned/demilestoned of a pull request
            assert len(events) == 1 and isinstance(events[0], IgnoreEvent) and "pull request" in events[0].reason
        elif action == "deleted" and event == "issues":
            assert events == [DeleteRecord(str(issue_obj["id"]))]
        elif action == "transferred":
            new = payload["changes"]["new_issue"]
            assert events == [DeleteRecord(str(issue_obj["id"])), UpsertRecord(new)], path.name
        elif action in ("pinned", "unpinned"):  # thin issue without state
            assert events == [RefetchRecord(str(issue_obj["id"]))], path.name
        elif "old_issue" in (payload.get("changes") or {}):  # opened in a transfer's destination
            old = payload["changes"]["old_issue"]
            assert events == [UpsertRecord(issue_obj), DeleteRecord(str(old["id"]))], path.name
        else:  # issues opened/edited/closed/... and issue_comment: the issue as the API shapes it
            assert events == [UpsertRecord(issue_obj)], path.name
            assert "state" in issue_obj and "updated_at" in issue_obj


def test_a_transfer_to_a_repository_outside_the_scope_only_deletes() -> None:
    raw = (shared_fixtures("github") / "webhook-issues-transferred.json").read_bytes()
    payload = json.loads(raw)
    gh = connector(repositories=["octo-org/octo-repo"])
    events = gh.parse({"X-GitHub-Event": "issues"}, raw).events
    assert events == [DeleteRecord(str(payload["issue"]["id"]))]
    gh = connector(repositories=[payload["changes"]["new_repository"]["full_name"]])
    events = gh.parse({"X-GitHub-Event": "issues"}, raw).events
    assert events == [UpsertRecord(payload["changes"]["new_issue"])]


# ---------------------------------------------------------------- real list responses


@respx.mock
async def test_real_2024_issue_list_drops_its_pull_requests_and_pages_on_by_since() -> None:
    folder = shared_fixtures("github")
    items = json.loads((folder / "rest-list-repo-issues-2024-mixed-with-prs.pygithub-replay.json").read_text())
    meta = json.loads(
        (folder / "rest-list-repo-issues-2024-mixed-with-prs.pygithub-replay.response-meta.json").read_text()
    )
    # the recorded headers describe the wire (gzip, length): keep GitHub's own ones
    headers = {k: v for k, v in meta["response_headers"] if k.lower() == "link" or k.lower().startswith("x-")}
    assert 'rel="next"' in headers.get("Link", headers.get("link", ""))
    route = respx.get(f"{API}/repos/PyGithub/PyGithub/issues")
    # The recorded page answers the first request; the follow-up (since the newest second
    # read) finds nothing newer.
    route.side_effect = [httpx.Response(200, json=items, headers=headers), httpx.Response(200, json=[])]
    async with connector(repositories=["PyGithub/PyGithub"], page_size=30) as gh:
        records = [r async for page in gh.fetch(None) for r in page.records]
    assert len(items) == 30
    assert len(records) == 21 == len([i for i in items if "pull_request" not in i])
    assert all("pull_request" not in r for r in records)
    # one repository: its items pass through in the order GitHub sent them
    assert records == [i for i in items if "pull_request" not in i]
    assert route.call_count == 2
    assert route.calls[1].request.url.params["since"] == items[-1]["updated_at"]


@respx.mock
async def test_recorded_octokit_session_pages_by_its_real_link_headers() -> None:
    session = json.loads(
        (shared_fixtures("github") / "rest-list-repo-issues-paginated.recorded-session.json").read_text()
    )
    pages: dict[tuple[str, str | None], tuple[list[Any], str]] = {}
    repo = ""
    for entry in session:
        if entry["method"].lower() != "get" or "/issues" not in entry["path"]:
            continue
        url = httpx.URL("https://api.github.com" + entry["path"])
        raw = entry["rawHeaders"]
        link = next(raw[k + 1] for k in range(0, len(raw), 2) if raw[k].lower() == "link")
        pages[(url.path, url.params.get("page"))] = (entry["response"], link)
        if url.path.startswith("/repos/"):
            repo = url.path.removeprefix("/repos/").removesuffix("/issues")

    def answer(request: httpx.Request) -> httpx.Response:
        body, link = pages[(request.url.path, request.url.params.get("page"))]
        return httpx.Response(200, json=body, headers={"Link": link})

    route = respx.get(url__startswith=API).mock(side_effect=answer)
    async with connector(repositories=[repo]) as gh:
        ids = [native async for native in gh.list_ids()]
    expected = [str(i["id"]) for body, _ in pages.values() for i in body if "pull_request" not in i]
    assert route.call_count == 5
    assert sorted(ids) == sorted(expected)
    assert len(ids) == 13

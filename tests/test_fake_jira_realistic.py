"""The fake Jira serves issues of realistic size and the search shapes Jira Cloud has:
comments and worklogs in ADF with user beans, `expand=changelog`, and the id-only search
(`fields=id`, large pages) a deletion sweep uses.
https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from connectors.jira import JiraConnector
from fakes.jira import FakeJira

JQL = "project in (PROJ, OPS) ORDER BY updated ASC, id ASC"


async def _get(fake: FakeJira, path: str, params: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(fake.app), base_url=fake.base_url, auth=(fake.email, fake.api_token)
    ) as client:
        response = await client.get(path, params=params)
        response.raise_for_status()
        return response.json()


def get(fake: FakeJira, path: str, **params: Any) -> Any:
    return asyncio.run(_get(fake, path, params))


def test_issues_as_the_connector_asks_for_them_average_about_3_to_4_kb() -> None:
    fake = FakeJira(500)

    async def sizes() -> list[int]:
        config = JiraConnector.config_model.model_validate(
            {
                "tool": "jira",
                "base_url": fake.base_url,
                "email": fake.email,
                "api_token": fake.api_token,
                "projects": list(fake.projects),
                "page_size": 100,
                "fields": ["comment", "worklog"],  # as bench/sync_jira.py configures the source
            }
        )
        async with JiraConnector("bench", config, transport=httpx.ASGITransport(fake.app)) as connector:
            await connector.mapping_context()
            return [len(orjson.dumps(r)) async for page in connector.fetch(None) for r in page.records]

    sizes_list = asyncio.run(sizes())
    assert len(sizes_list) == 500
    assert 3_000 <= sum(sizes_list) / len(sizes_list) <= 4_500


def test_comments_and_worklogs_have_jiras_shape() -> None:
    fake = FakeJira(200)
    body = get(fake, "/rest/api/3/search/jql", jql=JQL, fields="comment,worklog,updated", maxResults=100)
    issues = body["issues"]
    assert len(issues) == 100
    with_comments = [i for i in issues if i["fields"]["comment"]["comments"]]
    with_worklogs = [i for i in issues if i["fields"]["worklog"]["worklogs"]]
    assert 20 <= len(with_comments) <= 90 and 10 <= len(with_worklogs) <= 70  # some, not all
    for issue in issues:
        comment, worklog = issue["fields"]["comment"], issue["fields"]["worklog"]
        assert comment["total"] == len(comment["comments"]) and comment["startAt"] == 0
        assert worklog["total"] == len(worklog["worklogs"]) and worklog["startAt"] == 0
        for entry in comment["comments"]:
            assert entry["author"]["accountId"] and entry["body"]["type"] == "doc"
            assert entry["self"].endswith(f"/issue/{issue['id']}/comment/{entry['id']}")
        for entry in worklog["worklogs"]:
            assert entry["issueId"] == issue["id"] and entry["timeSpentSeconds"] > 0
            assert entry["comment"]["type"] == "doc" and entry["timeSpent"].endswith(("h", "m"))
    # The same issue twice is the same bytes (generated from the seed).
    again = get(fake, "/rest/api/3/search/jql", jql=JQL, fields="comment,worklog,updated", maxResults=100)
    assert again == body


def test_other_fields_do_not_depend_on_the_activity() -> None:
    """Comments and worklogs draw from their own random stream: asking for them does not
    change what the other fields are (tests elsewhere pin those)."""
    fake = FakeJira(50)
    plain = get(fake, "/rest/api/3/search/jql", jql=JQL, fields="summary,status,assignee", maxResults=50)
    full = get(fake, "/rest/api/3/search/jql", jql=JQL, fields="*all", maxResults=50)
    for a, b in zip(plain["issues"], full["issues"], strict=True):
        assert a["fields"] == {k: b["fields"][k] for k in ("summary", "status", "assignee")}
        assert "comment" in b["fields"] and "worklog" in b["fields"]


def test_expand_changelog_embeds_the_newest_entries_first() -> None:
    fake = FakeJira(30)
    body = get(fake, "/rest/api/3/search/jql", jql=JQL, fields="status", expand="changelog", maxResults=30)
    statuses = set()
    for issue in body["issues"]:
        changelog = issue["changelog"]
        expected = fake.changelog(issue["id"])[::-1]
        assert changelog["histories"] == expected
        assert changelog["total"] == len(expected) and changelog["startAt"] == 0
        created = [entry["created"] for entry in changelog["histories"]]
        assert created == sorted(created, reverse=True)
        statuses.add(issue["fields"]["status"]["name"])
    assert len(statuses) > 1
    plain = get(fake, "/rest/api/3/search/jql", jql=JQL, fields="status", maxResults=30)
    assert all("changelog" not in issue for issue in plain["issues"])
    one = get(fake, f"/rest/api/3/issue/{body['issues'][0]['id']}", fields="status", expand="changelog")
    assert one["changelog"] == body["issues"][0]["changelog"]


@pytest.mark.parametrize("fields", ["id", "id,key", None])
def test_id_only_search_answers_ids_in_large_pages(fields: str | None) -> None:
    """`fields=id` (also Jira's default) answers `{id}` per issue, up to 5,000 per page."""
    fake = FakeJira(2_500)
    params: dict[str, Any] = {"jql": "project in (PROJ, OPS) ORDER BY id ASC", "maxResults": 5000}
    if fields is not None:
        params["fields"] = fields
    body = get(fake, "/rest/api/3/search/jql", **params)
    assert len(body["issues"]) == 2_500 and body["isLast"] is True
    keys = {"id", "key"} if fields == "id,key" else {"id"}
    assert all(set(issue) == keys for issue in body["issues"])
    assert [issue["id"] for issue in body["issues"]] == [fake.native_id(i) for i in range(1, 2_501)]
    # A page of full issues stays at Jira's 100.
    full = get(fake, "/rest/api/3/search/jql", jql=JQL, fields="summary", maxResults=5000)
    assert len(full["issues"]) == 100 and full["nextPageToken"]


def test_catalog_lists_comment_and_worklog() -> None:
    fake = FakeJira(1)
    catalog = {field["id"]: field["name"] for field in get(fake, "/rest/api/3/field")}
    assert catalog["comment"] == "Comment" and catalog["worklog"] == "Log Work"

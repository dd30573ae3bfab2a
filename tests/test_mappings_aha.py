"""Aha! mapping: every real payload in ../shared/fixtures/aha maps (or is refused for a stated
reason), with values checked against the payloads; plus the HTML -> Markdown converter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.aha.connector import tag
from mappings import Mapper, MappingError
from mappings.context import MappingContext
from mappings.engine import load_spec, merge_overrides
from mappings.transforms.aha import aha_release, html_to_markdown
from tests.conftest import shared_fixtures

CTX = {"source": "acme-aha", "tool": "aha", "base_url": "https://company.aha.io/api/v1"}


def fixtures() -> Path:
    return shared_fixtures("aha")


def load(name: str) -> Any:
    return json.loads((fixtures() / name).read_text())


def mapper(overrides: dict[str, Any] | None = None) -> Mapper:
    return Mapper(merge_overrides(load_spec("aha"), overrides), CTX, keep_raw=False)


def test_every_fixture_is_covered_here() -> None:
    covered = {*DETAIL, *LISTS, *THIN_LISTS, *CONTEXT_ONLY, *WEBHOOKS}
    assert {p.name for p in fixtures().glob("*.json")} == covered


DETAIL = {
    "api-doc-example-GET-features-id.json": ("feature", "features"),
    "api-doc-example-GET-epics-id.json": ("epic", "epics"),
    "api-doc-example-GET-ideas-id.json": ("idea", "ideas"),
    "api-doc-example-GET-ideas-id-merged-duplicate_of.json": ("idea", "ideas"),
}
LISTS = {  # list answers whose records carry updated_at and workflow_status
    "api-doc-example-GET-ideas.json": "ideas",
    "captured-GET-ideas-with-fields-param.demisto-content.json": "ideas",
}
# Thin list answers (no `fields=`): no update time or status, so they cannot be items. The
# connector always sends `fields=`; these prove a thin record is refused, not half-stored.
THIN_LISTS = {
    "api-doc-example-GET-features.json": "features",
    "api-doc-example-GET-epics.json": "epics",
    "api-doc-example-GET-releases-release_id-features.json": "features",
}
CONTEXT_ONLY = {  # releases and workspaces: context for items, never items themselves
    "api-doc-example-GET-products.json",
    "api-doc-example-GET-products-product_id-releases.json",
    "api-doc-example-GET-releases-id.json",
    "api-doc-example-GET-audits.json",
}
WEBHOOKS = {  # integration webhook payloads (tests/test_connector_aha.py routes them)
    "integration-event-create_feature_event.json",
    "integration-event-create_feature_event_assignee.json",
    "integration-event-update_feature_event.json",
    "integration-event-create_release_event.json",
    "integration-event-update_release_event.json",
}


@pytest.mark.parametrize("name", sorted(DETAIL))
def test_detail_answers_map_to_values_taken_from_them(name: str) -> None:
    key, record_type = DETAIL[name]
    raw = load(name)[key]
    item = mapper().map(tag(dict(raw), record_type))
    assert item.native_id == raw["id"] and item.key == raw["reference_num"] and item.url == raw["url"]
    assert item.kind.value == key and item.kind_raw == key
    assert item.title == raw["name"]
    assert item.status.name == raw["workflow_status"]["name"]
    assert item.labels == raw.get("tags", [])
    workspace = raw.get("project") or raw.get("product")
    assert item.container is not None and item.container.key == workspace["reference_prefix"]
    assert item.updated_at.isoformat().startswith(raw["updated_at"][:19])
    facts = {f["name"]: f["value"] for f in raw.get("score_facts", [])}
    if "Effort" in facts:
        assert item.rice is not None and item.rice.effort == facts["Effort"]
        assert item.rice.missing == ["reach", "impact", "confidence"] and item.rice.score is None
    if key == "feature":
        assert item.parent_id == f"acme-aha:{raw['epic']['id']}"
        assert item.release is not None and item.release.id == raw["release"]["id"]
        assert item.assignees[0].email == raw["assigned_to_user"]["email"]
        jira_url = next(f["value"] for f in raw["integration_fields"] if f["name"] == "url")
        assert [(link.type.value, link.url) for link in item.links] == [("implemented_by", jira_url)]
        assert item.custom["jira_keys"] == ["JRA-123"]
        assert item.custom["fields"]["expected_completion_date"] == "2019-01-01"
    if key == "epic":
        assert item.parent_id == f"acme-aha:{raw['initiative']['id']}"
        assert item.custom["jira_keys"] == ["JRA-1222223"]
        # A key without a stored URL links by the URN the hub resolves by key.
        assert [(link.type.value, link.url) for link in item.links] == [("implemented_by", "jira:JRA-1222223")]
    if "duplicate_of" in raw:
        assert ("duplicates", f"acme-aha:{raw['duplicate_of']['id']}") in [
            (link.type.value, link.target_id) for link in item.links
        ]
        assert item.reporter is not None and item.reporter.email == raw["created_by_idea_user"]["email"]


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_answers_with_fields_map(name: str) -> None:
    records = load(name)[LISTS[name]]
    items = [mapper().map(tag(dict(r), "ideas")) for r in records]
    assert [i.native_id for i in items] == [r["id"] for r in records]
    assert all(i.kind.value == "idea" for i in items)
    assert all(i.description is None or "<p>" not in i.description for i in items)
    statuses = {i.status.name: i.status.category.value for i in items}
    assert statuses.get("Request Received", "backlog") == "backlog"


@pytest.mark.parametrize("name", sorted(THIN_LISTS))
def test_thin_list_records_are_refused_not_half_stored(name: str) -> None:
    for record in load(name)[THIN_LISTS[name]]:
        with pytest.raises(MappingError):
            mapper().map(tag(dict(record), THIN_LISTS[name]))


def test_release_context_becomes_the_release_of_features() -> None:
    ctx = MappingContext.coerce(CTX)
    for release in load("api-doc-example-GET-products-product_id-releases.json")["releases"]:
        mapped = aha_release(release, ctx)
        if release.get("parking_lot"):
            assert mapped is None
        else:
            assert mapped == {"id": release["id"], "name": release["name"], "release_on": release["release_date"]}
    detail = load("api-doc-example-GET-releases-id.json")["release"]
    assert aha_release(detail, ctx)["id"] == detail["id"]  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(n for n in WEBHOOKS if "feature" in n))
def test_integration_webhook_features_map_too(name: str) -> None:
    feature = load(name)["feature"]
    item = mapper().map(dict(feature))  # no _opshub: the type comes from PROD-2
    assert item.kind.value == "feature" and item.status.category.value == "todo"  # "Ready to develop"
    assert item.release is not None and item.release.name == "Summer"
    if "update" in name:
        assert [link.url for link in item.links] == [
            "https://watersco.atlassian.net/browse/APP-1"
        ]  # pivotal/redmine entries are not Jira
        assert item.custom["jira_keys"] == ["APP-1"]


def test_jira_key_without_url_links_with_a_base_url_override() -> None:
    epic = tag(dict(load("api-doc-example-GET-epics-id.json")["epic"]), "epics")
    override = {
        "fields": {
            "links": {"path": "$", "transform": "aha_links", "args": {"jira_base_url": "https://big.atlassian.net/"}}
        }
    }
    item = mapper(override).map(epic)
    assert [link.url for link in item.links] == ["https://big.atlassian.net/browse/JRA-1222223"]


def test_rice_fact_names_are_overridable() -> None:
    idea = tag(dict(load("api-doc-example-GET-ideas-id.json")["idea"]), "ideas")
    item = mapper({"reach": "Benefit", "impact": "custom_scorecard_definition", "confidence": "Benefit"}).map(idea)
    assert item.rice is not None
    assert (item.rice.reach, item.rice.impact, item.rice.confidence, item.rice.effort) == (5, 11, 5, 10)
    assert item.rice.score == 5 * 11 * 5 / 10


@pytest.mark.parametrize(
    ("html", "markdown"),
    [
        ("plain text", "plain text"),
        ("<p>a <strong>b</strong> <em>c</em></p><p>d</p>", "a **b** _c_\n\nd"),
        ("<ul><li>x</li><li>y<ol><li>z</li></ol></li></ul>", "- x\n- y\n  1. z"),
        ('<a href="https://e.com/x">link</a> <a href="javascript:alert(1)">bad</a>', "[link](https://e.com/x) bad"),
        ("<script>alert(1)</script><style>p{}</style>ok &amp; fine", "ok & fine"),
        ("<pre>a  b\n c</pre>", "```\na  b\n c\n```"),
        ("<h2>Title</h2>text<br>more", "## Title\n\ntext  \nmore"),
        ('<img src="https://e.com/i.png" alt="pic"><img src="data:x">', "![pic](https://e.com/i.png)"),
    ],
)
def test_html_to_markdown(html: str, markdown: str) -> None:
    assert html_to_markdown(html) == markdown

"""Jira Cloud transforms: people, sprints, fix versions, issue and remote links, browse URLs, epic links.

Shapes follow Jira Cloud REST v3 (`GET /rest/api/3/search/jql`, `/issue/{key}`) and the
v2-style issue inside webhook deliveries, which differ in places (sprints as strings in old
deliveries, descriptions as wiki text): every transform accepts both and treats any
unexpected shape as "no value" rather than failing the record.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform
from mappings.transforms.adf import to_markdown
from mappings.transforms.common import parse_datetime


@transform("jira_person")
def jira_person(value: Any, ctx: MappingContext | None = None) -> dict[str, Any] | None:
    """A Jira user object as a PersonRef: native_id = accountId, name, email when visible.

    The transform itself is the helper `jira_people` calls (`ctx` unused): one call per person,
    not two (bench/README.md "Normalisation, round 4")."""
    if not isinstance(value, dict):
        return None
    # Cloud identifies people by accountId; emailAddress is present only when the user's
    # profile visibility allows it. Server-era payloads carry `key`/`name` instead.
    native = value.get("accountId") or value.get("key") or value.get("name")
    email = value.get("emailAddress") or None
    if not (native or email):
        return None
    out: dict[str, Any] = {"native_id": native, "name": value.get("displayName") or value.get("name")}
    if email:
        out["email"] = email
    return out


@transform("jira_people")
def jira_people(value: Any, ctx: MappingContext) -> list[dict[str, Any]] | None:
    """One user (assignee) or a list of users (multi-user picker) as a list of PersonRefs."""
    if not isinstance(value, list):  # the assignee field: one user
        person = jira_person(value)
        return None if person is None else [person]
    people = []
    for item in value:
        person = jira_person(item)
        if person is not None:
            people.append(person)
    return people or None


# Before 2020 Jira sent sprints as Java toString() text, e.g.
# "com.atlassian.greenhopper.service.sprint.Sprint@38c6bd04[id=1,state=ACTIVE,name=S 1,...]".
_SPRINT_TEXT = re.compile(r"\[(.*)\]\s*$", re.DOTALL)
_SPRINT_PAIR = re.compile(r"(\w+)=(.*?)(?=,\w+=|$)", re.DOTALL)


def _sprint_from_text(text: str) -> dict[str, Any] | None:
    found = _SPRINT_TEXT.search(text)
    if not found:
        return None
    pairs = {k: (None if v == "<null>" else v) for k, v in _SPRINT_PAIR.findall(found.group(1))}
    return pairs if pairs.get("id") else None


@transform("jira_sprint")
def jira_sprint(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """The Sprint field (a list of sprints) as one iteration: the active sprint, else the newest.

    "Newest" is the highest sprint id: Jira numbers sprints in creation order, and a future
    sprint has no start date to compare.
    """
    items = value if isinstance(value, list) else [value]
    best: dict[str, Any] | None = None
    best_order = (0, 0)
    for item in items:  # the first of the highest (active, id), in one pass
        sprint = _sprint_from_text(item) if isinstance(item, str) else item
        if isinstance(sprint, dict) and sprint.get("id") is not None:
            try:
                ident = int(sprint["id"])
            except (TypeError, ValueError):
                ident = -1
            order = (1 if str(sprint.get("state") or "").lower() == "active" else 0, ident)
            if best is None or order > best_order:
                best, best_order = sprint, order
    if best is None:
        return None
    start, end = best.get("startDate"), best.get("endDate")
    return {
        "id": str(best["id"]),
        "name": best.get("name"),
        # ISO text (what Jira sends) parsed here, without a `parse_datetime` call per date (~2k
        # instructions each; bench/README.md "Normalisation, round 4"): the date is the same,
        # as `parse_datetime` only attaches UTC to a naive time, which keeps its date.
        "starts_on": datetime.fromisoformat(start).date() if start.__class__ is str and start else _date_of(start),
        "ends_on": datetime.fromisoformat(end).date() if end.__class__ is str and end else _date_of(end),
    }


def _date_of(value: Any) -> date | None:
    """The date of `parse_datetime(value)` (None for no time)."""
    moment = parse_datetime(value)
    return moment.date() if moment else None


@transform("jira_release")
def jira_release(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """fixVersions as one release: the first unreleased version, else the newest released one."""
    if not isinstance(value, list):
        return None
    versions = []
    for version in value:
        if isinstance(version, dict) and version.get("id") is not None:
            if not version.get("released") and not version.get("archived"):
                best = version  # the first unreleased one
                break
            versions.append(version)
    else:
        if not versions:
            return None
        # Newest by release date; versions without a date sort first, list order breaks ties.
        best = max(enumerate(versions), key=lambda iv: (str(iv[1].get("releaseDate") or ""), iv[0]))[1]
    release_date = best.get("releaseDate")
    return {
        "id": str(best["id"]),
        "name": best.get("name"),
        "release_on": release_date[:10] if isinstance(release_date, str) and release_date else None,
    }


# Link type name (case-folded) -> (type of a link to an outwardIssue, to an inwardIssue).
# The record is the link's *inward* end when the other issue is its outwardIssue: in a
# "Blocks" link (outward "blocks", inward "is blocked by") holding an outwardIssue, this
# issue blocks that one.
DEFAULT_LINK_TYPES: dict[str, list[str]] = {
    "blocks": ["blocks", "blocked_by"],
    "duplicate": ["duplicates", "duplicated_by"],
    "relates": ["relates", "relates"],
    "cloners": ["relates", "relates"],
    "implements": ["implements", "implemented_by"],
    # Jira Product Discovery's idea <-> delivery link ("implements" / "is implemented by").
    "polaris work item link": ["implements", "implemented_by"],
}
# Fallback on the phrases a custom link type shows, for types not in the table.
_PHRASES = {
    "blocks": "blocks",
    "is blocked by": "blocked_by",
    "duplicates": "duplicates",
    "is duplicated by": "duplicated_by",
    "implements": "implements",
    "is implemented by": "implemented_by",
    "relates to": "relates",
}


@transform("jira_links")
def jira_links(
    value: Any, ctx: MappingContext, types: dict[str, list[str]] | None = None, other: str | None = "relates"
) -> list[dict[str, Any]] | None:
    """issuelinks as links to `{source}:{linked issue id}`, typed by the link type's direction.

    `types` adds or replaces entries of the link type table (name -> [outward, inward]);
    a type in neither the table nor the phrase fallback becomes `other` (None = dropped).
    """
    if not isinstance(value, list):
        return None
    table = DEFAULT_LINK_TYPES
    if types:
        table = {**table, **{k.casefold(): v for k, v in types.items()}}
    out: list[dict[str, Any]] = []
    for link in value:
        if not isinstance(link, dict):
            continue
        ltype: dict[str, Any] = link["type"] if isinstance(link.get("type"), dict) else {}
        if isinstance(link.get("outwardIssue"), dict):
            target, side = link["outwardIssue"], 0
        elif isinstance(link.get("inwardIssue"), dict):
            target, side = link["inwardIssue"], 1
        else:
            continue
        if target.get("id") is None:
            continue
        pair = table.get(str(ltype.get("name") or "").casefold())
        kind = (
            pair[side] if pair else _PHRASES.get(str(ltype.get("outward" if side == 0 else "inward") or "").casefold())
        )
        kind = kind or other
        if kind is None:
            continue
        out.append({"type": kind, "target_id": f"{ctx.source}:{target['id']}"})
    return out or None


# Remote link `relationship` text (case-folded) -> link type. Jira stores whatever text the
# creator sent (the UI's web links send none; Confluence sends "mentioned in"), so anything not
# in the table, and a missing relationship, becomes the `other` type (default `relates`).
DEFAULT_REMOTE_RELATIONSHIPS: dict[str, str] = {
    "implements": "implements",
    "is implemented by": "implemented_by",
    "implemented by": "implemented_by",
    "blocks": "blocks",
    "is blocked by": "blocked_by",
    "blocked by": "blocked_by",
    "duplicates": "duplicates",
    "is duplicated by": "duplicated_by",
    "duplicated by": "duplicated_by",
    "relates to": "relates",
}


@transform("jira_remote_links")
def jira_remote_links(
    value: Any, ctx: MappingContext, relationships: dict[str, str] | None = None, other: str | None = "relates"
) -> list[dict[str, Any]] | None:
    """Remote links (`GET /rest/api/3/issue/{id}/remotelink`, which the connector puts in
    `_opshub.remote_links`) as links by URL: `{type, url: object.url}`, http(s) URLs only.

    The type comes from the link's `relationship` text through `DEFAULT_REMOTE_RELATIONSHIPS`,
    to which `relationships` adds or replaces entries (text -> link type); text in neither, or
    no relationship, becomes `other` (None = dropped). The hub resolves URLs that name another
    tool's item (a GitHub issue URL ...) to that item's hub id once it is stored.
    """
    if not isinstance(value, list):
        return None
    table = DEFAULT_REMOTE_RELATIONSHIPS
    if relationships:
        table = {**table, **{str(k).strip().casefold(): v for k, v in relationships.items()}}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for link in value:
        if not isinstance(link, dict) or not isinstance(link.get("object"), dict):
            continue
        url = link["object"].get("url")
        if not isinstance(url, str) or not url.strip().lower().startswith(("https://", "http://")):
            continue
        url = url.strip()
        relationship = link.get("relationship")
        kind = table.get(relationship.strip().casefold()) if isinstance(relationship, str) else None
        kind = kind or other
        if kind is None or (kind, url) in seen:
            continue
        seen.add((kind, url))
        out.append({"type": kind, "url": url})
    return out or None


@transform("jira_all_links")
def jira_all_links(
    value: Any,
    ctx: MappingContext,
    types: dict[str, list[str]] | None = None,
    other: str | None = "relates",
    relationships: dict[str, str] | None = None,
    remote_other: str | None = "relates",
) -> list[dict[str, Any]] | None:
    """`{issuelinks: [...], remote_links: [...]}` -> issue links (`jira_links`, args `types`,
    `other`) followed by remote links (`jira_remote_links`, args `relationships`, and
    `remote_other` for its `other`)."""
    if not isinstance(value, dict):
        return None
    # Either part may be absent (no remote links read): no call for what would give None.
    issue_links, remote_links = value.get("issuelinks"), value.get("remote_links")
    links = (jira_links(issue_links, ctx, types=types, other=other) if issue_links is not None else None) or []
    if remote_links is not None:
        links += jira_remote_links(remote_links, ctx, relationships=relationships, other=remote_other) or []
    return links or None


@transform("jira_browse_url")
def jira_browse_url(value: Any, ctx: MappingContext) -> str | None:
    """The issue's web page, `{base_url}/browse/{KEY}`."""
    if not ctx.base_url or not isinstance(value, str) or not value:
        return None
    return f"{ctx.base_url}/browse/{value}"


_ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")


@transform("jira_issue_ref")
def jira_issue_ref(value: Any, ctx: MappingContext) -> str | None:
    """A reference to another issue as its hub id: an issue object, a numeric id, or a key.

    The classic Epic Link field holds the epic's key (`PROJ-7`), not its id; a key becomes a
    hub id only when the context's `key_index` knows its id (else None; the key itself is
    kept in `custom.parent_key` by the Jira spec).
    """
    if isinstance(value, dict):
        value = value.get("id") or value.get("key")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{ctx.source}:{value}"
    if not isinstance(value, str) or not value:
        return None
    if value.isdigit():
        return f"{ctx.source}:{value}"
    if _ISSUE_KEY.match(value):
        native = ctx.key_index.get(value)
        return f"{ctx.source}:{native}" if native else None
    return None


@transform("jira_issue_key")
def jira_issue_key(value: Any, ctx: MappingContext) -> str | None:
    """A reference to another issue as its key (issue object or key text)."""
    if isinstance(value, dict):
        value = value.get("key")
    return value if isinstance(value, str) and _ISSUE_KEY.match(value) else None


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        items = [_plain(v) for v in value]
        return [v for v in items if v is not None] or None
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return to_markdown(value)
        if "accountId" in value or "emailAddress" in value:
            return value.get("displayName") or value.get("emailAddress") or value.get("accountId")
        for label in ("value", "name", "key", "id"):  # select option, version/component, issue
            if value.get(label) is not None:
                child = value.get("child")  # cascading select: "Parent / Child"
                if label == "value" and isinstance(child, dict) and child.get("value"):
                    return f"{value['value']} / {child['value']}"
                return value[label]
        return None
    return value


@transform("field_value")
def field_value(value: Any, ctx: MappingContext) -> Any:
    """A custom field's value as plain JSON for `custom`: options as their label, users as their
    name, rich text as Markdown, lists element by element."""
    return _plain(value)

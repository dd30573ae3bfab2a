"""GitLab transforms: issue key and project, people, times, epics, labels of closed issues.

GitLab reaches OpsHub in two shapes (see mappings/gitlab.yaml): a REST v4 issue
(`GET /projects/:id/issues`, `GET /groups/:id/issues`) and a whole `Issue Hook` delivery,
whose issue is `object_attributes` with `project`, `labels` and `assignees` beside it.
Hook times are often `2013-12-03 17:15:43 UTC` rather than ISO 8601; both are read.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform
from mappings.transforms.common import parse_datetime
from mappings.transforms.github import label_names

# http://host/group/sub/project/issues/6 and the newer .../project/-/issues/6 (also work_items)
_WEB_URL = re.compile(r"^https?://[^/]+/(.+?)(?:/-)?/(?:issues|work_items)/(\d+)/?$")
_HOOK_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*(UTC|Z|[+-]\d{2}:?\d{2})?$")


def _issue(record: dict[str, Any]) -> dict[str, Any]:
    attrs = record.get("object_attributes")
    return attrs if isinstance(attrs, dict) else record


@transform("gitlab_datetime")
def gitlab_datetime(value: Any, ctx: MappingContext) -> datetime | None:
    """ISO 8601 (REST) or `YYYY-MM-DD HH:MM:SS UTC` (hooks) as an aware datetime."""
    if isinstance(value, str):
        found = _HOOK_TIME.match(value.strip())
        if found:
            zone = found.group(3) or "+00:00"
            zone = "+00:00" if zone in ("UTC", "Z") else zone
            return datetime.fromisoformat(f"{found.group(1)}T{found.group(2)}{zone}")
    return parse_datetime(value)


def _project_path(record: dict[str, Any]) -> str | None:
    project = record.get("project")
    if isinstance(project, dict) and isinstance(project.get("path_with_namespace"), str):
        return str(project["path_with_namespace"])
    issue = _issue(record)
    references = issue.get("references")
    if isinstance(references, dict) and isinstance(references.get("full"), str) and "#" in references["full"]:
        return str(references["full"].rsplit("#", 1)[0])
    for url in (issue.get("web_url"), issue.get("url")):
        found = _WEB_URL.match(str(url or ""))
        if found:
            return found.group(1)
    return None


@transform("gitlab_key")
def gitlab_key(value: Any, ctx: MappingContext) -> str | None:
    """`group/project#iid`: `references.full`, else the project path and `iid`."""
    if not isinstance(value, dict):
        return None
    issue = _issue(value)
    references = issue.get("references")
    if isinstance(references, dict) and isinstance(references.get("full"), str):
        return str(references["full"])
    path, iid = _project_path(value), issue.get("iid")
    if path is None or iid is None:
        return None
    return f"{path}#{iid}"


@transform("gitlab_project")
def gitlab_project(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """The project as a container: id (numeric, as text), key = full path, name when known."""
    if not isinstance(value, dict):
        return None
    issue = _issue(value)
    found = value.get("project")
    project: dict[str, Any] = found if isinstance(found, dict) else {}
    ident = project.get("id", issue.get("project_id"))
    if ident is None:
        return None
    out: dict[str, Any] = {"id": str(ident), "key": _project_path(value)}
    if project.get("name"):
        out["name"] = project["name"]
    return out


def _person(user: Any) -> dict[str, Any] | None:
    if isinstance(user, int) and not isinstance(user, bool):  # a bare id (author_id)
        return {"native_id": str(user)}
    if not isinstance(user, dict):
        return None
    ident, email = user.get("id"), user.get("email") or user.get("public_email") or None
    if ident is None and not email:
        return None
    out: dict[str, Any] = {"native_id": None if ident is None else str(ident)}
    out["name"] = user.get("name") or user.get("username")
    if email:
        out["email"] = email
    return out


@transform("gitlab_person")
def gitlab_person(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """A GitLab user ({id, username, name, email?}) or a bare user id as a PersonRef."""
    return _person(value)


@transform("gitlab_assignees")
def gitlab_assignees(value: Any, ctx: MappingContext) -> list[dict[str, Any]] | None:
    """Assignees of a REST issue or a hook delivery.

    Hook deliveries list assignees beside the issue, and some GitLab versions leave their
    `id` out; their ids are then taken from `object_attributes.assignee_ids`, which GitLab
    fills from the same list in the same order. Older GitLab (before multiple assignees) and
    some hook kinds give only the singular `assignee` object and `assignee_id`: that one id
    pairs with that one user. Hook payloads:
    https://docs.gitlab.com/user/project/integrations/webhook_events/#work-item-events
    """
    if not isinstance(value, dict):
        return None
    issue = _issue(value)
    users = value.get("assignees")
    if not isinstance(users, list):
        users = [value["assignee"]] if isinstance(value.get("assignee"), dict) else []
    users = [dict(u) for u in users if isinstance(u, dict)]
    ids = issue.get("assignee_ids") if issue is not value else None
    if not isinstance(ids, list) and issue is not value and _is_id(issue.get("assignee_id")):
        ids = [issue["assignee_id"]]
    if isinstance(ids, list) and len(ids) == len(users):
        for user, ident in zip(users, ids, strict=True):
            user.setdefault("id", ident)
    people = [p for p in (_person(u) for u in users) if p is not None]
    if not people and isinstance(ids, list):
        people = [{"native_id": str(i)} for i in ids if _is_id(i)]
    return people or None


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@transform("gitlab_closed_labels")
def gitlab_closed_labels(value: Any, ctx: MappingContext) -> list[str] | None:
    """The labels of a closed issue (for the `closed_label` table), else None."""
    if not isinstance(value, dict):
        return None
    if _issue(value).get("state") != "closed":
        return None
    names: list[str] | None = label_names(value.get("labels"), ctx) or label_names(_issue(value).get("labels"), ctx)
    return names


@transform("gitlab_seconds")
def gitlab_seconds(value: Any, ctx: MappingContext) -> float | None:
    """A time estimate in seconds as hours; 0 (GitLab's "not set") is no value."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return value / 3600
    return None


@transform("gitlab_epic_ref")
def gitlab_epic_ref(value: Any, ctx: MappingContext) -> str | None:
    """An issue's `epic` ({id, iid, title, group_id}) as the hub id `{source}:epic-{id}`.

    Epics are group-level and numbered apart from issues; the `epic-` prefix keeps their ids
    from colliding with issue ids when the connector syncs epics under that native id.
    """
    if isinstance(value, dict) and value.get("id") is not None:
        return f"{ctx.source}:epic-{value['id']}"
    return None

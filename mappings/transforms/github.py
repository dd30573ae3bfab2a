"""GitHub Issues transforms: issue key and repository, people, sub-issue parent, labels.

Shapes follow the REST API (`GET /repos/{owner}/{repo}/issues`) and the `issue` object
inside `issues` / `issue_comment` webhook deliveries, which is the same representation
(older deliveries lack `node_id`, `state_reason`, `type`).

The label helpers (`label_names`, `label_matching`) are tool-neutral and GitLab's spec uses
them too: labels come as strings or as objects with a `name` (GitHub) or `title` (GitLab
webhooks).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform

# https://api.github.com/repos/OWNER/REPO (also GitHub Enterprise: https://HOST/api/v3/repos/OWNER/REPO)
_REPO_URL = re.compile(r"/repos/([^/]+)/([^/]+?)/?$")
# https://api.github.com/repos/OWNER/REPO/issues/7
_ISSUE_URL = re.compile(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/?$")


def _repo(issue: dict[str, Any]) -> tuple[str, str] | None:
    found = _REPO_URL.search(str(issue.get("repository_url") or ""))
    if found:
        return found.group(1), found.group(2)
    repository = issue.get("repository")  # GraphQL-ish or hand-built records
    if isinstance(repository, dict) and isinstance(repository.get("full_name"), str):
        owner, _, name = repository["full_name"].partition("/")
        if owner and name:
            return owner, name
    return None


@transform("github_issue_id")
def github_issue_id(value: Any, ctx: MappingContext) -> str | None:
    """The issue's numeric `id` as text; a pull request is refused (the connector drops them)."""
    if not isinstance(value, dict):
        return None
    if value.get("pull_request") is not None:
        raise ValueError("a pull request, not an issue (items with `pull_request` are not mapped)")
    ident = value.get("id")
    if ident is None or isinstance(ident, bool | dict | list):
        return None
    return str(ident)


@transform("github_key")
def github_key(value: Any, ctx: MappingContext) -> str | None:
    """`OWNER/REPO#NUMBER` from the issue's `repository_url` and `number`."""
    if not isinstance(value, dict):
        return None
    repo, number = _repo(value), value.get("number")
    if repo is None or number is None:
        return None
    return f"{repo[0]}/{repo[1]}#{number}"


@transform("github_repository")
def github_repository(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """The repository as a container: id and key `OWNER/REPO`, name `REPO`."""
    if not isinstance(value, dict):
        return None
    repo = _repo(value)
    if repo is None:
        return None
    full = f"{repo[0]}/{repo[1]}"
    return {"id": full, "key": full, "name": repo[1]}


def _person(user: Any) -> dict[str, Any] | None:
    if not isinstance(user, dict):
        return None
    ident, login = user.get("id"), user.get("login")
    email = user.get("email") or None
    if ident is None and not email:
        return None
    out: dict[str, Any] = {"native_id": None if ident is None else str(ident), "name": login or user.get("name")}
    if email:
        out["email"] = email
    return out


@transform("github_person")
def github_person(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """A GitHub user as a PersonRef: native_id = numeric user id, name = login, email if public."""
    return _person(value)


@transform("github_people")
def github_people(value: Any, ctx: MappingContext) -> list[dict[str, Any]] | None:
    """`assignees` (a list of users) or the single `assignee` as PersonRefs."""
    items = value if isinstance(value, list) else [value]
    people = [p for p in (_person(v) for v in items) if p is not None]
    return people or None


@transform("github_parent_key")
def github_parent_key(value: Any, ctx: MappingContext) -> str | None:
    """`parent_issue_url` (REST, present only on sub-issues) as the parent's key `OWNER/REPO#N`."""
    found = _ISSUE_URL.search(str(value)) if isinstance(value, str) else None
    return f"{found.group(1)}/{found.group(2)}#{found.group(3)}" if found else None


@transform("github_parent_ref")
def github_parent_ref(value: Any, ctx: MappingContext) -> str | None:
    """`parent_issue_url` as the parent's hub id, when the context's `key_index` knows its id.

    The URL names the parent by number, but hub ids use the issue's numeric `id`; without a
    key index the key stays in `custom.parent_key` for the hub to resolve later.
    """
    key = github_parent_key(value, ctx)
    if key is None:
        return None
    native = ctx.key_index.get(key)
    return f"{ctx.source}:{native}" if native else None


@transform("github_status_name")
def github_status_name(value: Any, ctx: MappingContext) -> str | None:
    """The tool's status as one name: `open`, `closed`, or `closed: not_planned` style."""
    if not isinstance(value, dict) or not isinstance(value.get("state"), str):
        return None
    reason = value.get("state_reason")
    if value["state"] == "closed" and isinstance(reason, str) and reason:
        return f"closed: {reason}"
    return str(value["state"])


def _label_name(label: Any) -> str | None:
    if isinstance(label, str):
        return label or None
    if isinstance(label, dict):
        name = label.get("name", label.get("title"))
        return name if isinstance(name, str) and name else None
    return None


@transform("label_names")
def label_names(value: Any, ctx: MappingContext) -> list[str] | None:
    """Labels as their names: strings, or objects with `name` (GitHub) or `title` (GitLab hooks)."""
    if not isinstance(value, list):
        return None
    out = [n for n in (_label_name(v) for v in value) if n is not None]
    return out or None


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@transform("label_matching")
def label_matching(value: Any, ctx: MappingContext, pattern: str = "") -> str | None:
    """The first label whose name matches `pattern` (a case-insensitive regex search)."""
    names = label_names(value, ctx) or []
    regex = _compiled(pattern)
    return next((n for n in names if regex.search(n)), None)

"""Settings of a GitLab source (`[sources.NAME]` with `tool = "gitlab"`), gitlab.com or self-managed."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorConfig

_PATH = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$")


def _ids_or_paths(value: list[int | str], what: str) -> list[str]:
    out: list[str] = []
    for item in value:
        text = str(item).strip().strip("/")
        if not (text.isdigit() or _PATH.match(text)):
            raise ValueError(f"not a {what} id or full path: {item!r} (use 42 or 'group/subgroup/{what}')")
        if text.lower() not in {o.lower() for o in out}:
            out.append(text)
    return out


class GitLabConfig(ConnectorConfig):
    """Auth: `token` (personal, project or group access token with `read_api`), sent as
    `PRIVATE-TOKEN`, or an OAuth 2.0 access token with `oauth = true`. Scope:
    `projects` or `groups` (numeric ids or full paths), exactly one; a group includes its
    subgroups' projects."""

    tool: Literal["gitlab"] = "gitlab"
    base_url: str = Field(default="https://gitlab.com", description="The instance, e.g. https://gitlab.example.com")
    token: SecretStr
    oauth: bool = Field(default=False, description="token is an OAuth 2.0 access token (sent as Bearer).")
    projects: list[str] = Field(default_factory=list, description='e.g. [42, "acme/platform/api"]')
    groups: list[str] = Field(default_factory=list, description='e.g. ["acme/platform"]')
    pagination: Literal["offset", "keyset"] = Field(
        default="offset",
        description=(
            "offset: page=N with X-Next-Page (every GitLab version). keyset: pagination=keyset with Link "
            "headers, stable while issues change, for project issues on GitLab versions that offer it."
        ),
    )
    webhook_signing_token: SecretStr | None = Field(
        default=None,
        description=(
            "The webhook's signing token, when GitLab signs deliveries (webhook-id, webhook-timestamp, "
            "webhook-signature headers, Standard Webhooks format). When set, every delivery must carry a valid "
            "signature as well as X-Gitlab-Token = webhook_secret."
        ),
    )
    hook_upsert: bool = Field(
        default=False,
        description=(
            "Apply Issue Hook deliveries as delivered instead of refetching the issue. Saves one API call per "
            "delivery, but hooks carry no epic and name milestone/iteration by id only."
        ),
    )

    @field_validator("projects", "groups", mode="before")
    @classmethod
    def _listed(cls, value: object, info: object) -> object:
        if isinstance(value, list):
            name = getattr(info, "field_name", "project") or "project"
            return _ids_or_paths(value, name.rstrip("s"))
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be the instance's URL, e.g. https://gitlab.com")
        value = value.rstrip("/")
        return value[: -len("/api/v4")] if value.endswith("/api/v4") else value

    @model_validator(mode="after")
    def _exactly_one_scope(self) -> GitLabConfig:
        if bool(self.projects) == bool(self.groups):
            raise ValueError('give exactly one scope: projects = [42, "group/project"] or groups = ["group"]')
        if self.pagination == "keyset" and self.groups:
            raise ValueError("keyset pagination is offered for project issues only; use pagination = 'offset'")
        return self

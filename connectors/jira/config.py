"""Settings of a Jira Cloud source (`[sources.NAME]` with `tool = "jira"`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorConfig

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


class JiraConfig(ConnectorConfig):
    """Auth: `email` + `api_token` (basic auth with an Atlassian API token) or `bearer_token`
    (OAuth 2.0 access token), exactly one. Scope: `projects` (keys) or `jql` (a filter without
    ORDER BY), exactly one: Jira's enhanced search refuses unbounded queries anyway."""

    tool: Literal["jira"] = "jira"
    email: str | None = None
    api_token: SecretStr | None = None
    bearer_token: SecretStr | None = None
    projects: list[str] = Field(default_factory=list, description="Project keys, e.g. ['PROJ', 'OPS'].")
    jql: str | None = Field(default=None, description="A JQL filter instead of projects (no ORDER BY).")
    fields: list[str] = Field(
        default_factory=list, description="Extra fields to fetch, by id (customfield_10042) or display name."
    )
    remote_links: bool = Field(
        default=False,
        description=(
            "Read each changed issue's remote links (GET /rest/api/3/issue/{id}/remotelink: web links, "
            "GitHub/GitLab/Confluence links) and map their URLs to links. Jira's search does not return "
            "remote links, so this costs one extra request per changed issue (and issue webhooks become "
            "refetches); off by default."
        ),
    )
    webhook_unsigned: bool = Field(
        default=False,
        description=(
            "Accept webhooks without a signature when no webhook_secret is set. Jira sends a signature only "
            "for webhooks registered with a secret (admin UI / REST API); app-registered webhooks cannot have "
            "one. Turn this on only when the endpoint is protected some other way (network allow-list)."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be the site's URL, e.g. https://acme.atlassian.net")
        return value.rstrip("/")

    @field_validator("projects")
    @classmethod
    def _project_keys(cls, value: list[str]) -> list[str]:
        bad = [key for key in value if not _PROJECT_KEY.match(key)]
        if bad:
            raise ValueError(f"not Jira project keys: {', '.join(map(repr, bad))} (use keys such as 'PROJ')")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> JiraConfig:
        if (self.email is None) != (self.api_token is None):
            raise ValueError("email and api_token go together (basic auth with an Atlassian API token)")
        basic = self.email is not None
        if basic == (self.bearer_token is not None):
            raise ValueError("give exactly one way to authenticate: email + api_token, or bearer_token")
        if bool(self.projects) == bool(self.jql and self.jql.strip()):
            raise ValueError('give exactly one scope: projects = ["KEY", ...] or jql = "..."')
        if self.jql and _ORDER_BY.search(self.jql):
            raise ValueError("jql must not contain ORDER BY (the connector orders by updated time itself)")
        return self

"""Settings of a GitHub Issues source (`[sources.NAME]` with `tool = "github"`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorConfig

# https://docs.github.com/en/repositories/creating-and-managing-repositories/about-repositories
_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$")
_ORGANIZATION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


class GitHubConfig(ConnectorConfig):
    """Auth: `token` (a fine-grained or classic personal access token, or a GitHub App
    installation token) with read access to issues. Scope: `repositories` ("owner/repo") or
    `organization` (every repository of the organisation that has issues enabled), exactly one.
    Label rules (kind, priority, status) live in the mapping, not here."""

    tool: Literal["github"] = "github"
    base_url: str = Field(
        default="https://api.github.com",
        description="https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server.",
    )
    token: SecretStr
    repositories: list[str] = Field(default_factory=list, description='e.g. ["octo-org/api", "octo-org/web"]')
    organization: str | None = Field(default=None, description="All repositories of this organisation.")
    api_version: str = Field(default="2022-11-28", description="Sent as X-GitHub-Api-Version.")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be the API's URL, e.g. https://api.github.com or https://HOST/api/v3")
        return value.rstrip("/")

    @field_validator("repositories")
    @classmethod
    def _repositories(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not _REPOSITORY.match(name)]
        if bad:
            raise ValueError(f"not repositories: {', '.join(map(repr, bad))} (use 'owner/repo')")
        seen: set[str] = set()
        unique = []
        for name in value:
            if name.lower() not in seen:
                seen.add(name.lower())
                unique.append(name)
        return unique

    @field_validator("organization")
    @classmethod
    def _organization(cls, value: str | None) -> str | None:
        if value is not None and not _ORGANIZATION.match(value):
            raise ValueError(f"not an organisation login: {value!r}")
        return value

    @model_validator(mode="after")
    def _exactly_one_scope(self) -> GitHubConfig:
        if bool(self.repositories) == bool(self.organization):
            raise ValueError('give exactly one scope: repositories = ["owner/repo", ...] or organization = "login"')
        return self

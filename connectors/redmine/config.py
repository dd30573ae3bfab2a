"""Settings of a Redmine source (`[sources.NAME]` with `tool = "redmine"`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from connectors.base import ConnectorConfig

# Redmine project identifiers: lower-case letters, digits, dashes and underscores, starting
# with a letter (https://www.redmine.org/projects/redmine/wiki/RedmineProjectSettings).
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_\-]{0,99}$")


class RedmineConfig(ConnectorConfig):
    """Auth: `api_key` (My account > API access key; the REST API must be enabled in
    Administration > Settings > API). Scope: `projects` (identifiers, e.g. `["web-shop"]`);
    empty = every issue the key can see. Listed projects are matched exactly: list
    sub-projects too if their issues belong in this source."""

    tool: Literal["redmine"] = "redmine"
    api_key: SecretStr
    projects: list[str] = Field(default_factory=list, description="Project identifiers; empty = all visible issues.")
    page_size: int = Field(default=100, ge=1, le=100, description="Redmine caps `limit` at 100.")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be the Redmine site's URL, e.g. https://redmine.example.org")
        return value.rstrip("/")

    @field_validator("projects")
    @classmethod
    def _identifiers(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not _IDENTIFIER.match(p)]
        if bad:
            raise ValueError(
                f"not Redmine project identifiers: {', '.join(map(repr, bad))} "
                f"(use the identifier from the project's URL, e.g. 'web-shop')"
            )
        return value

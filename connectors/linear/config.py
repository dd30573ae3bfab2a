"""Settings of a Linear source (`[sources.NAME]` with `tool = "linear"`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorConfig

_TEAM_KEY = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,9}$")


class LinearConfig(ConnectorConfig):
    """Auth: `api_key` (a personal API key, sent as `Authorization: <key>`) or `access_token`
    (an OAuth 2.0 token, sent as `Authorization: Bearer <token>`), exactly one.
    https://linear.app/developers/graphql#authentication

    Scope: `teams` (team keys such as `ENG`); empty = every issue the credential can see."""

    tool: Literal["linear"] = "linear"
    base_url: str = "https://api.linear.app"
    api_key: SecretStr | None = None
    access_token: SecretStr | None = None
    teams: list[str] = Field(default_factory=list, description="Team keys, e.g. ['ENG', 'DES']; empty = all.")
    page_size: int = Field(
        default=50,
        ge=1,
        le=100,
        description="Issues per hydration query. Linear caps a query's complexity (labels multiply it): keep it modest.",
    )
    scan_page_size: int = Field(
        default=250, ge=1, le=250, description="Ids per page of the cheap update-time scan (Linear's `first` max: 250)."
    )
    webhook_upsert: bool = Field(
        default=False,
        description=(
            "Store Issue webhook `data` as delivered instead of refetching the issue. Saves one API call per "
            "event, but the delivery lacks the cycle, project name, label names and people's emails, and a later "
            "poll of the same version is not newer, so those fields stay thin until the issue changes again."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be the API's URL, e.g. https://api.linear.app")
        return value.rstrip("/").removesuffix("/graphql")

    @field_validator("teams")
    @classmethod
    def _team_keys(cls, value: list[str]) -> list[str]:
        bad = [key for key in value if not _TEAM_KEY.match(key)]
        if bad:
            raise ValueError(f"not Linear team keys: {', '.join(map(repr, bad))} (use keys such as 'ENG')")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> LinearConfig:
        if (self.api_key is None) == (self.access_token is None):
            raise ValueError("give exactly one way to authenticate: api_key (personal API key) or access_token (OAuth)")
        return self

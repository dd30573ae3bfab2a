"""Settings of a Productboard source (`[sources.NAME]` with `tool = "productboard"`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from connectors.base import ConnectorConfig, parse_duration

CUSTOM_FIELD_TYPES = ("text", "custom-description", "number", "dropdown", "multi-dropdown", "member")


class ProductboardConfig(ConnectorConfig):
    """Auth: `token`, a Public API access token (Productboard > Integrations > Public API) or an
    OAuth2 access token, sent as `Authorization: Bearer`. Webhooks: `webhook_secret` is the exact
    `Authorization` header value given when the subscription was created
    (`notification.headers.authorization`, e.g. "Bearer s3cret"); Productboard signs nothing,
    so this shared value is the only check (see connector.py)."""

    tool: Literal["productboard"] = "productboard"
    base_url: str = "https://api.productboard.com"
    token: SecretStr
    page_size: int = Field(default=100, ge=1, le=100, description="Productboard pages hold at most 100 items.")
    include_archived: bool = Field(default=True, description="Sync archived features too (they map as cancelled).")
    releases: bool = Field(default=True, description="Read releases and feature-release assignments (2 listings).")
    custom_fields: bool = Field(default=True, description="Read hierarchy-entity custom fields and their values.")
    custom_field_types: list[str] = Field(
        default_factory=lambda: ["text", "number", "dropdown", "multi-dropdown", "member"],
        description="Custom field types whose values are read ('custom-description' holds long HTML: off by default).",
    )
    jira_links: bool = Field(
        default=True, description="Read the Jira integrations' connections (feature -> Jira issue key)."
    )
    jira_integration_ids: list[str] = Field(
        default_factory=list, description="Only these Jira integrations (saves the GET /jira-integrations call)."
    )
    jira_base_url: str | None = Field(
        default=None,
        description="The connected Jira site, e.g. https://acme.atlassian.net: links then carry the issue's URL "
        "as well as its key (Productboard's API gives the key and id only).",
    )
    aux_ttl: str = Field(
        default="5m",
        description="How long fetch_one (webhook refetches) reuses the statuses/hierarchy/releases it read.",
    )
    webhook_dedupe_window: str = Field(
        default="10m",
        description="Notifications carry no delivery id: identical bodies within this window count as one delivery.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be the API's URL, e.g. https://api.productboard.com")
        return value.rstrip("/")

    @field_validator("jira_base_url")
    @classmethod
    def _jira_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("jira_base_url must be the Jira site's URL, e.g. https://acme.atlassian.net")
        return value.rstrip("/") if value else value

    @field_validator("custom_field_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if t not in CUSTOM_FIELD_TYPES]
        if bad:
            raise ValueError(f"unknown custom field types {bad} (known: {', '.join(CUSTOM_FIELD_TYPES)})")
        return value

    @field_validator("aux_ttl", "webhook_dedupe_window")
    @classmethod
    def _windows(cls, value: str) -> str:
        parse_duration(value)
        return value

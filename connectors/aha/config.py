"""Settings of an Aha! source (`[sources.NAME]` with `tool = "aha"`)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorConfig

RecordType = Literal["initiatives", "epics", "features", "ideas"]
RECORD_TYPES: tuple[RecordType, ...] = ("initiatives", "epics", "features", "ideas")

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
# A workspace's reference prefix (PRJ1, ACME-WEB is not allowed: prefixes have no dash) or its numeric id.
_PRODUCT = re.compile(r"^(?:[A-Z][A-Z0-9]*|\d+)$")
_HEADER = re.compile(r"^[A-Za-z0-9-]+$")


class AhaConfig(ConnectorConfig):
    """Auth: `api_key` (an Aha! API key or OAuth token, sent as `Authorization: Bearer`).
    Where: `subdomain` (`acme` for https://acme.aha.io) or `base_url` (the API root; a bare
    site URL gets `/api/v1` appended). Scope: `products`, workspace reference prefixes
    (`PRJ1`) or numeric ids. Webhooks: Aha! signs nothing, so `webhook_secret` must arrive in
    the header named by `webhook_header` (see AhaConnector.verify)."""

    tool: Literal["aha"] = "aha"
    base_url: str = Field(
        default="",
        validate_default=True,
        description="https://SUBDOMAIN.aha.io/api/v1 (derived from subdomain when empty).",
    )
    subdomain: str | None = Field(default=None, description="acme for https://acme.aha.io")
    api_key: SecretStr
    products: list[str] = Field(
        description='Workspaces in scope: reference prefixes or ids, e.g. ["PRJ1", "131414752"].'
    )
    record_types: list[RecordType] = Field(
        default_factory=lambda: list(RECORD_TYPES), description="Which record types to sync (all four by default)."
    )
    page_size: int = Field(default=200, ge=1, le=1000, description="per_page (Aha! caps it at 200).")
    extra_fields: list[str] = Field(
        default_factory=list, description="More record fields to request from list endpoints (their `fields=`)."
    )
    webhook_header: str = Field(
        default="Authorization",
        description=(
            "Header carrying webhook_secret. `Authorization` accepts `Bearer <secret>` (or Basic with the secret "
            "as password); any other header must carry the secret itself. Never put the secret in the URL's query."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_base_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("base_url") and data.get("subdomain"):
            sub = str(data["subdomain"]).strip().lower()
            if not _SUBDOMAIN.match(sub):
                raise ValueError(f"subdomain {sub!r} is not an Aha! subdomain (acme for https://acme.aha.io)")
            data = {**data, "base_url": f"https://{sub}.aha.io/api/v1"}
        return data

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value:
            raise ValueError("give subdomain (acme for https://acme.aha.io) or base_url")
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be a URL, e.g. https://acme.aha.io/api/v1")
        if "?" in value or "#" in value:
            raise ValueError("base_url must not carry a query or fragment")
        if not value.endswith("/api/v1"):
            value += "/api/v1"
        return value

    @field_validator("products")
    @classmethod
    def _products(cls, value: list[str]) -> list[str]:
        cleaned = [p.strip() for p in value]
        bad = [p for p in cleaned if not _PRODUCT.match(p)]
        if bad:
            raise ValueError(f"not workspace prefixes or ids: {', '.join(map(repr, bad))} (use e.g. 'PRJ1')")
        if not cleaned:
            raise ValueError('give at least one workspace: products = ["PRJ1"]')
        return list(dict.fromkeys(cleaned))

    @field_validator("record_types")
    @classmethod
    def _record_types(cls, value: list[RecordType]) -> list[RecordType]:
        if not value:
            raise ValueError(f"give at least one record type of {', '.join(RECORD_TYPES)}")
        return list(dict.fromkeys(value))

    @field_validator("webhook_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER.match(value):
            raise ValueError(f"not an HTTP header name: {value!r}")
        return value

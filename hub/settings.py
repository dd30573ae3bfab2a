"""The hub's one settings object (environment variables with the `HUB_` prefix)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.schema import ItemKind, PriorityLevel


class Role(StrEnum):
    """What one `opshub serve` process does (hub/api/app.py, README "Process roles")."""

    api = "api"  # the HTTP API and webhook intake; no schedules, no inbox worker
    worker = "worker"  # schedules and the inbox worker; HTTP only for /healthz, /readyz, /metrics
    all = "all"  # both (one process does everything)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///opshub.db",
        description="SQLAlchemy URL. Default: a SQLite file in the working directory. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    config: Path | None = Field(default=None, description="Sources config file (opshub.toml).")
    migrate_on_start: bool = True
    # SQLite memory per connection (hub/db/engine.py; https://www.sqlite.org/pragma.html#pragma_cache_size).
    sqlite_cache_mib: int = Field(
        default=32, ge=1, le=4096, description="SQLite page cache per connection, in MiB (PRAGMA cache_size)."
    )
    sqlite_mmap_mib: int = Field(
        default=0,
        ge=0,
        le=65536,
        description="SQLite memory-mapped I/O per connection, in MiB (PRAGMA mmap_size); 0 = off. The mapped pages "
        "count in the process's RSS.",
    )
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json`: one JSON object per log line (with request_id and extra fields)."
    )
    page_limit_default: int = 50
    page_limit_max: int = 500
    quality_stale_days: int = Field(
        default=14, ge=1, description="Data-quality report: in progress with no update for this many days is a finding."
    )
    api_statement_timeout_ms: int = Field(
        default=15_000,
        ge=0,
        description="PostgreSQL: longest a read behind an API request may run (503 past it); 0 = no limit.",
    )
    webhook_max_bytes: int = Field(default=5 * 1024 * 1024, description="Largest webhook body accepted (413 past it).")
    webhook_group_max: int = Field(
        default=500,
        ge=1,
        le=2000,
        description="Most deliveries committed to the inbox in one transaction (group commit: the deliveries that "
        "arrive while the previous group commits share the next commit; none is answered before its commit).",
    )
    role: Role = Field(
        default=Role.all,
        description="`api`: HTTP API only; `worker`: schedules and inbox worker, HTTP only for health and metrics; "
        "`all`: both. `opshub serve --role` overrides it.",
    )
    background_tasks: bool = Field(
        default=True,
        description="Run scheduled syncs, the webhook inbox worker and the outbound deliverer inside `opshub serve`.",
    )
    inbox_poll_seconds: float = Field(default=1.0, gt=0, description="How often the inbox worker looks for deliveries.")
    inbox_batch_size: int = Field(
        default=200,
        ge=1,
        le=2000,
        description="Most deliveries the inbox worker claims at once and applies in one transaction (per source, "
        "in arrival order; a delivery that fails the batch is retried alone). While a backlog lasts (every claim "
        "full) the claim doubles, up to 4 times this.",
    )
    inbox_pipeline: bool = Field(
        default=False,
        description="PostgreSQL: through a backlog, the inbox worker claims and maps a source's next batch while "
        "the batch before commits (per-item order kept: a batch commits only after the one before). Off by "
        "default: with the database on the same 2 cores it was slower in every quiet pair and dearer in CPU "
        "(bench/README.md, i13pgpipe); meant for a PostgreSQL on its own host, not measured there. Ignored on "
        "SQLite (slower there).",
    )
    schedule_poll_seconds: float = Field(
        default=15.0, gt=0, description="How often `serve` checks which sources are due."
    )
    inbox_claim_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A worker's claim on a delivery lapses this long after its last heartbeat (renewed every third "
        "of it): the deliveries of a killed worker are retried after about this long.",
    )
    inbox_backoff_max_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait between inbox retries (database down, a source's tool unreachable).",
    )
    context_max_age_seconds: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="Refetch a source's stored mapping context (e.g. Jira's field catalog) once it is older than this; "
        "every sync refreshes it too.",
    )
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics needs `Authorization: Bearer <this token>` (a scrape-only credential: "
        "it reads nothing else, and checking it needs no database).",
    )
    # Where the hub may send requests (connectors/egress.py): tool base_urls and outbound webhooks.
    egress_allow: list[str] = Field(
        default=[],
        description="Host names, addresses or CIDRs the hub may reach although they are not public "
        '(loopback, private, link-local ...). JSON list, e.g. ["127.0.0.1", "10.1.0.0/16", "jira.internal"].',
    )
    egress_allow_http: bool = Field(default=False, description="Allow plain http:// URLs (tools and subscriptions).")
    # Outbound webhooks (hub/outbound/, Standard Webhooks).
    outbound_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the idle deliverer looks for new changes (while there is work it goes on at once).",
    )
    outbound_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A process's lease on a subscription lapses this long after its last renewal: the deliveries "
        "of a killed process are taken over (and possibly sent again) after about this long.",
    )
    outbound_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one delivery request.")
    outbound_batch_size: int = Field(
        default=100, ge=1, le=1000, description="Changes read, and delivery results committed, per batch."
    )
    outbound_retry_schedule: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 36000],
        min_length=1,
        description="Seconds before each retry of a failed delivery (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: "
        "about 27.6 h); one failure more disables the subscription.",
    )
    outbound_retry_jitter: float = Field(
        default=0.2, ge=0, lt=1, description="Each retry delay is scaled by a random factor in [1-j, 1+j]."
    )
    outbound_secret_grace_seconds: float = Field(
        default=24 * 3600.0, ge=0, description="After a secret rotation the old secret still signs for this long."
    )
    # Priority matrix (GET /v1/insights/priorities; rules in hub/insights/priorities.py and the README).
    priorities_urgent_levels: list[PriorityLevel] = Field(
        default=[PriorityLevel.urgent, PriorityLevel.high], description="Priority levels that make an open item urgent."
    )
    priorities_window_days: int = Field(
        default=14, ge=0, le=3660, description="Due or released within this many days (or already past) is urgent."
    )
    priorities_rice_top_share: float = Field(
        default=0.25, gt=0, le=1, description="RICE top share that is important (0.25 = the top quartile)."
    )
    priorities_important_kinds: list[ItemKind] = Field(
        default=[ItemKind.initiative, ItemKind.epic, ItemKind.feature],
        description="Item kinds that are important in themselves.",
    )
    # Dashboard sign-in (hub/web/sessions.py; README "Dashboard").
    web_session_minutes: int = Field(
        default=8 * 60, ge=1, le=60 * 24 * 30, description="A dashboard session ends this long after sign-in."
    )
    web_cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Secure flag of the session cookie: auto = when the request came over https (behind a "
        "TLS proxy, run uvicorn with --proxy-headers), always, or never.",
    )
    web_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs session cookies. Unset: one is generated once and kept in the database "
        "(table web_secrets), so every process on that database agrees.",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()

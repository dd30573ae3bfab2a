"""The demo's running parts: the fakes on loopback ports, the sources config naming them, a
synced database and API keys. `opshub demo` serves on top of this; tests and the dashboard's
browser tests use `demo_environment` / `seed_demo` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.egress import EgressPolicy, configure_default, default_policy
from fakes.common import listening_socket, serve
from hub.config import HubConfig, load_config
from hub.demo.fakes import GITHUB_REPOSITORIES, GITLAB_PROJECTS, REDMINE_PROJECT, TOOLS, DemoFakes, load_fakes
from hub.demo.org import AHA_PRODUCT, JIRA_PROJECTS, LINEAR_TEAM, build_org
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from hub.sync import RunSummary, SyncEngine

# Source name per tool, as they appear in the API (GET /v1/sources) and the dashboard.
SOURCE_NAMES = {
    "jira": "northwind-jira",
    "github": "northwind-github",
    "gitlab": "northwind-gitlab",
    "linear": "northwind-linear",
    "redmine": "northwind-redmine",
    "productboard": "northwind-productboard",
    "aha": "northwind-aha",
}
LOOPBACK = "127.0.0.1"


def allow_demo_egress(settings: Settings) -> Settings:
    """The demo's tools are fakes on plain http:// loopback, which the egress guard refuses by
    default (connectors/egress.py): the demo allows exactly that, and says so in its settings,
    so `create_app` (which sets the process's policy from them) keeps allowing it."""
    allow = [*settings.egress_allow, LOOPBACK]
    configure_default(EgressPolicy(allow=tuple(allow), allow_http=True))
    return settings.model_copy(update={"egress_allow": allow, "egress_allow_http": True})


class DemoError(Exception):
    """The demo could not be set up (a source's first sync failed); one line."""


@dataclass(frozen=True)
class DemoKeys:
    read: str
    admin: str


@dataclass
class DemoEnvironment:
    """What `demo_environment` yields: the fakes (still serving), the config, the keys."""

    fakes: DemoFakes
    urls: dict[str, str]
    """tool -> base URL of its fake on a loopback port."""
    config: HubConfig
    config_path: Path
    webhook_secret: str
    keys: DemoKeys | None
    runs: list[RunSummary]

    def source(self, tool: str) -> str:
        return SOURCE_NAMES[tool]


def demo_sources(fakes: DemoFakes, urls: dict[str, str], webhook_secret: str) -> dict[str, dict[str, Any]]:
    """The sources config for the fakes, as `[sources.NAME]` tables of opshub.toml.

    The one place that points the hub at loopback URLs: if the hub refuses private addresses
    for sources one day (an SSRF guard), this is where the demo's allow-list goes.
    """
    jira, github, gitlab = fakes.fakes["jira"], fakes.fakes["github"], fakes.fakes["gitlab"]
    linear, redmine = fakes.fakes["linear"], fakes.fakes["redmine"]
    productboard, aha = fakes.fakes["productboard"], fakes.fakes["aha"]
    common = {"history": True, "webhook_secret": webhook_secret, "page_size": 100, "schedule": "15m"}
    return {
        SOURCE_NAMES["jira"]: {
            "tool": "jira",
            "base_url": urls["jira"],
            "email": jira.email,
            "api_token": jira.api_token,
            "projects": list(JIRA_PROJECTS),
            "remote_links": True,
            **common,
        },
        SOURCE_NAMES["github"]: {
            "tool": "github",
            "base_url": urls["github"],
            "token": github.token,
            "repositories": list(GITHUB_REPOSITORIES),
            **common,
        },
        SOURCE_NAMES["gitlab"]: {
            "tool": "gitlab",
            "base_url": urls["gitlab"],
            "token": gitlab.token,
            "projects": [path for _, path in GITLAB_PROJECTS],
            "webhook_signing_token": webhook_secret,
            **common,
        },
        SOURCE_NAMES["linear"]: {
            "tool": "linear",
            "base_url": urls["linear"],
            "api_key": linear.api_key,
            "teams": [LINEAR_TEAM],
            **common,
        },
        SOURCE_NAMES["redmine"]: {
            "tool": "redmine",
            "base_url": urls["redmine"],
            "api_key": redmine.api_key,
            "projects": [REDMINE_PROJECT],
            **{k: v for k, v in common.items() if k != "webhook_secret"},  # Redmine sends no webhooks
        },
        SOURCE_NAMES["productboard"]: {
            "tool": "productboard",
            "base_url": urls["productboard"],
            "token": productboard.token,
            "jira_base_url": urls["jira"],
            **common,
        },
        SOURCE_NAMES["aha"]: {
            "tool": "aha",
            "base_url": aha.base_url,
            "api_key": aha.api_key,
            "products": [AHA_PRODUCT],
            "webhook_header": "Authorization",
            **common,
        },
    }


def write_sources(path: Path, sources: dict[str, dict[str, Any]]) -> None:
    """Write the sources as opshub.toml. Values are strings, numbers, booleans and lists of
    strings: JSON spells those as TOML does (basic strings, arrays), so json.dumps quotes them."""
    lines = ["# Written by `opshub demo`: the sources of the demo's fake tools (removed at exit).", ""]
    for name, table in sources.items():
        lines.append(f"[sources.{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


async def sync_all(store: Store, config: HubConfig) -> list[RunSummary]:
    """A full sync of every source with the real connectors, all at once. Full, so that a demo
    started again on a kept database (`--database-url`) reads every item of the new fakes."""
    engine = SyncEngine(store, config)
    return list(await asyncio.gather(*(engine.run(name, full=True) for name in config.sources)))


@contextlib.contextmanager
def demo_environment(
    store: Store,
    workdir: Path,
    *,
    seed: int = 1,
    now: datetime | None = None,
    create_keys: bool = True,
) -> Iterator[DemoEnvironment]:
    """Start the seven fakes holding the demo organisation on loopback ports, write their
    sources config to `workdir/opshub.toml`, sync every source into `store` (migrated by
    the caller) and create a read and an admin key. The fakes keep serving until the block
    ends, so a "sync now" or a webhook still reaches them; `store` stays the caller's.

    Raises DemoError naming the sources whose first sync failed.
    """
    policy = default_policy()
    configure_default(EgressPolicy(allow=(*policy.allow, LOOPBACK), allow_http=True))
    org = build_org(seed, now)
    # Each fake's socket is bound now and served later: its port is in the sources config.
    sockets = {tool: listening_socket(LOOPBACK) for tool in TOOLS}
    urls = {tool: f"http://{LOOPBACK}:{sock.getsockname()[1]}" for tool, sock in sockets.items()}
    fakes = load_fakes(org, urls)
    secret = secrets.token_urlsafe(24)
    path = workdir / "opshub.toml"
    write_sources(path, demo_sources(fakes, urls, secret))
    config = load_config(path)
    with contextlib.ExitStack() as stack:
        for sock in sockets.values():
            stack.callback(sock.close)  # also where a fake fails to start (closing twice is harmless)
        for tool in TOOLS:
            stack.enter_context(serve(fakes.fakes[tool].app, sock=sockets[tool]))
        runs = asyncio.run(sync_all(store, config))
        failed = [f"{run.source}: {run.error}" for run in runs if run.status != "succeeded"]
        if failed:
            raise DemoError("demo sync failed for " + "; ".join(failed))
        keys = None
        if create_keys:
            keys = DemoKeys(
                read=store.keys.create(Scope.read, "opshub demo (read)")[1],
                admin=store.keys.create(Scope.admin, "opshub demo (admin)")[1],
            )
        yield DemoEnvironment(fakes, urls, config, path, secret, keys, runs)


def seed_demo(database_url: str, *, seed: int = 1, now: datetime | None = None) -> DemoKeys:
    """Build the demo dataset into `database_url` (migrated first) without serving anything:
    the fakes run only while the sources sync, then stop. Returns a read and an admin key.

    For tests that need a realistic store (e.g. the dashboard's browser tests). Use
    `demo_environment` instead when the fakes must keep answering (a "sync now" button,
    webhooks). The same `seed` and `now` give the same items.
    """
    import tempfile

    store = Store.open(database_url, migrate_schema=True)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="opshub-demo-") as workdir,
            demo_environment(store, Path(workdir), seed=seed, now=now) as env,
        ):
            assert env.keys is not None
            return env.keys
    finally:
        store.close()

"""Browser tests of the dashboard: headless Debian Chromium driven by Selenium.

One hub (uvicorn in a thread, on a free loopback port) and one browser per module. The data
is the demo's (`opshub demo`): the Northwind organisation in the seven fakes, synced with its
status history by the real connectors, and the fakes keep answering while the module runs (so
an admin's "Sync now" really syncs). It comes from ONE fixture, `dashboard_dataset`.
Screenshots go to $HUB_TEST_ARTIFACTS (default test-artifacts/, git-ignored).

Outside CI the tests skip, naming what is missing, when Chromium or its driver is absent;
under CI=true that is a failure (scripts/test installs both).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from hub.api import create_app
from hub.config import HubConfig
from hub.db.tables import items
from hub.demo import demo_environment
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from tests.conftest import IN_CI

CHROMIUM = Path(os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("HUB_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(os.environ.get("HUB_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (dev extras)")
    if missing:
        message = f"browser tests need {', '.join(missing)} (Debian: apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class DashboardDataset:
    """What the tests need to know of the data, read from the store after the demo's sync."""

    config: HubConfig
    jira_source: str
    epics: list[str]
    """The Jira epics, those implemented (across tools) by Linear issues first."""


@pytest.fixture(scope="module")
def dashboard_dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, DashboardDataset]]:
    """The store the browser sees (the demo dataset, fakes still serving), and what is in it."""
    workdir = tmp_path_factory.mktemp("dashboard")
    store = Store.open(f"sqlite:///{workdir / 'hub.db'}")
    try:
        with demo_environment(store, workdir, seed=1, create_keys=False) as env:
            with store.engine.connect() as conn:
                epics = list(
                    conn.scalars(
                        select(items.c.id)
                        .where(items.c.kind == "epic", items.c.tool == "jira", items.c.deleted.is_(False))
                        .order_by(items.c.id)
                    )
                )
            with_linear = [e for e in epics if any(c["tool"] == "linear" for c in _tree_children(store, e))]
            epics = with_linear + [e for e in epics if e not in with_linear]
            yield store, DashboardDataset(env.config, env.source("jira"), epics)
    finally:
        store.close()


def _tree_children(store: Store, item_id: str) -> list[dict[str, object]]:
    from hub.roadmap import RoadmapService

    tree = RoadmapService(store.engine).tree(item_id)
    return list(tree["children"]) if tree is not None else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hub:
    url: str
    store: Store
    dataset: DashboardDataset
    read_key: str
    admin_key: str

    def api(self, path: str, **params: object) -> object:
        response = httpx.get(
            self.url + path, params=params, headers={"Authorization": f"Bearer {self.read_key}"}, timeout=30
        )  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def hub(dashboard_dataset: tuple[Store, DashboardDataset]) -> Iterator[Hub]:
    _require_browser()
    store, dataset = dashboard_dataset
    app = create_app(
        store=store, settings=Settings(database_url="sqlite://", background_tasks=False), config=dataset.config
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the hub did not start within 30 s")
        time.sleep(0.05)
    try:
        yield Hub(
            f"http://127.0.0.1:{port}",
            store,
            dataset,
            store.keys.create(Scope.read, name="browser-read")[1],
            store.keys.create(Scope.admin, name="browser-admin")[1],
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser(hub: Hub) -> Iterator[object]:
    """One headless Chromium for the module, with a fresh profile, 1280 px wide."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="opshub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

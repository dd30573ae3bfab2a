"""The demo started in-process (hub/demo/environment.py, hub/demo/trickle.py): the seven fakes
synced with the real connectors into a store, the API over it, and a trickle webhook that
changes an item. On both backends."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from fakes.common import free_port
from hub.api.app import create_app
from hub.demo.environment import SOURCE_NAMES, DemoEnvironment, demo_environment, seed_demo
from hub.demo.trickle import WebhookTrickle
from hub.settings import Settings
from hub.store import Store

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)


@pytest.fixture
def env(store: Store, tmp_path: Path) -> Iterator[DemoEnvironment]:
    with demo_environment(store, tmp_path, seed=5, now=NOW) as environment:
        yield environment


@pytest.fixture
def client(store: Store, env: DemoEnvironment, db_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, inbox_poll_seconds=0.1, schedule_poll_seconds=3600)
    with TestClient(create_app(store=store, settings=settings, config=env.config)) as test_client:
        assert env.keys is not None
        test_client.headers["Authorization"] = f"Bearer {env.keys.read}"
        yield test_client


def test_every_source_syncs_every_item_of_the_organisation(env: DemoEnvironment, client: TestClient) -> None:
    assert [run.status for run in env.runs] == ["succeeded"] * 7
    expected = Counter(SOURCE_NAMES[item.tool] for item in env.fakes.org.items)
    sources = client.get("/v1/sources").json()["sources"]
    assert {s["name"]: s["item_count"] for s in sources} == dict(expected)
    assert {s["status"] for s in sources} == {"ok"}
    assert "webhook_secret" in env.config_path.read_text()


def test_the_roadmap_rolls_up_exactly_what_the_organisation_links(env: DemoEnvironment, client: TestClient) -> None:
    """Every roadmap item's delivery work, through the tools' own links (Productboard's and Aha!'s
    Jira connections, the epic's stories and its remote links to GitHub, Linear, GitLab and
    Redmine), and nothing else (e.g. no parent a fake would have made up)."""
    org, placed = env.fakes.org, env.fakes.placed
    refs = org.by_ref()

    def hub_id(ref: str) -> str:
        return f"{SOURCE_NAMES[refs[ref].tool]}:{placed[ref].native_id}"

    def below(ref: str) -> set[str]:
        out: set[str] = set()
        for child in [*refs[ref].implemented_by, *(i.ref for i in org.items if i.parent == ref)]:
            if refs[child].kind in ("story", "task", "bug", "subtask"):
                out.add(hub_id(child))
            out |= below(child)
        return out

    rows = {row["item"]["id"]: row for row in client.get("/v1/roadmap").json()["roadmap"]}
    roadmap = [i for i in org.items if i.kind in ("initiative", "feature", "subfeature", "epic")]
    for item in roadmap:
        row = rows[hub_id(item.ref)]
        assert {d["id"] for d in row["delivery_items"]} == below(item.ref), item.title
    feature = next(i for i in roadmap if i.tool == "productboard" and i.kind == "feature")
    tools = {d["tool"] for d in rows[hub_id(feature.ref)]["delivery_items"]}
    assert len(tools) == 2 and "jira" in tools, "Jira stories and the team tool's issues"
    assert any(rows[hub_id(i.ref)]["blocked"] for i in roadmap if i.kind == "epic")


def test_status_history_is_backfilled(env: DemoEnvironment, store: Store, client: TestClient) -> None:
    done = next(i for i in env.fakes.org.items if i.tool == "jira" and i.kind == "story" and i.category == "done")
    item_id = f"{SOURCE_NAMES['jira']}:{env.fakes.native_id(done.ref)}"
    history = client.get(f"/v1/items/{item_id}/history").json()
    names = [t["to_name"] for t in history["transitions"]]
    assert names[-1] == "Done" and "In Progress" in names
    assert history["started_at"] < history["done_at"]
    with store.engine.connect() as conn:
        query = text(
            "SELECT DISTINCT items.source FROM status_transitions JOIN items ON items.id = status_transitions.item_id"
            " WHERE status_transitions.source = 'changelog'"
        )
        sources = {row[0] for row in conn.execute(query)}
    # Every tool whose connector reads a changelog has it in the store.
    assert sources == {SOURCE_NAMES[t] for t in ("jira", "github", "gitlab", "linear")}


def test_the_quality_report_finds_the_work_the_organisation_neglected(env: DemoEnvironment, client: TestClient) -> None:
    """The demo's Data quality page has something to show: the items hub/demo/org.py `neglect`
    left in progress for weeks, and the closed epics with a child still open, each found by
    its id (and nothing the organisation did not neglect)."""
    org, refs = env.fakes.org, env.fakes.org.by_ref()

    def hub_id(ref: str) -> str:
        return f"{SOURCE_NAMES[refs[ref].tool]}:{env.fakes.native_id(ref)}"

    stale_before = NOW.timestamp() - 14 * 86_400
    stale = {hub_id(i.ref) for i in org.items if i.category == "in_progress" and i.updated.timestamp() < stale_before}
    closed = ("done", "cancelled")
    left_open = {
        hub_id(i.parent)
        for i in org.items
        if i.parent and refs[i.parent].category in closed and i.category not in closed
    }
    assert len(stale) >= 3 and left_open
    report = client.get("/v1/insights/quality", params={"as_of": NOW.isoformat(), "limit": 1000}).json()
    found = {f["name"]: {item["id"] for item in f["items"]} for f in report["findings"]}
    assert found["stale_in_progress"] == stale
    assert found["done_parent_open_children"] == left_open


def test_a_trickle_webhook_changes_the_item_it_moved(env: DemoEnvironment, store: Store, client: TestClient) -> None:
    trickle = WebhookTrickle(env, "http://testserver", seed=2, client=client)
    moves = [trickle.step() for _ in range(6)]
    assert all(move is not None and move.status == 202 for move in moves), moves
    deadline = time.monotonic() + 20
    pending = {f"{m.source}:{m.native_id}": m.after for m in moves if m is not None}
    while pending and time.monotonic() < deadline:
        for item_id, category in list(pending.items()):
            doc = store.items.get(item_id)
            if doc is not None and doc["status"]["category"] == category:
                del pending[item_id]
        time.sleep(0.1)
    assert not pending, f"webhooks not applied: {pending}"


def test_seed_demo_builds_the_dataset_and_returns_working_keys(db_url: str) -> None:
    keys = seed_demo(db_url, seed=5, now=NOW)
    store = Store.open(db_url, migrate_schema=False)
    try:
        app = create_app(store=store, settings=Settings(database_url=db_url, background_tasks=False))
        with TestClient(app) as test_client:
            read = test_client.get("/v1/items", headers={"Authorization": f"Bearer {keys.read}"})
            assert read.status_code == 200 and len(read.json()["items"]) > 0
            denied = test_client.get("/v1/items", headers={"Authorization": "Bearer ohk_nope_nope"})
            assert denied.status_code == 401
        assert {k.scope.value for k in store.keys.list()} == {"read", "admin"}
    finally:
        store.close()


def test_demo_command_refuses_a_busy_port_and_a_bad_database_url_in_one_line() -> None:
    from typer.testing import CliRunner

    from hub.cli import app

    runner = CliRunner()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = runner.invoke(app, ["demo", "--port", str(port)])
    assert taken.exit_code == 1
    assert "cannot listen on 127.0.0.1" in taken.output and "Traceback" not in taken.output
    bad = runner.invoke(app, ["demo", "--port", str(free_port()), "--database-url", "nosuchdb://x"])
    assert bad.exit_code == 1
    assert "bad database URL" in bad.output and len(bad.output.strip().splitlines()) <= 2, bad.output


def test_people_are_one_person_across_the_tools_that_give_an_email(client: TestClient) -> None:
    people = client.get("/v1/people", params={"limit": 500}).json()["people"]
    by_email = {p["email"]: {i["source"] for i in p["identities"]} for p in people if p["email"]}
    assert all(email.endswith("@northwind.example") for email in by_email)
    assert max(len(sources) for sources in by_email.values()) >= 4, by_email


def test_sigterm_stops_the_demo_and_removes_its_data(tmp_path: Path) -> None:
    """`docker stop` / `kill` end the demo as Ctrl-C does (the installed test sends SIGINT)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    command = [sys.executable, "-c", "from hub.cli import app; app()", "demo", "--port", str(port), "--no-trickle"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        workdir = Path(re.search(r"sources:\s+(\S+)/opshub\.toml", "".join(lines)).group(1))  # type: ignore[union-attr]
        assert workdir.exists()
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[0]
        assert proc.returncode == 128 + signal.SIGTERM, "".join(lines) + rest
        assert "Traceback" not in rest, rest
        assert not workdir.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

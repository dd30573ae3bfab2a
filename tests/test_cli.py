"""The `opshub` CLI through typer's CliRunner, on a SQLite file per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from hub.cli import app
from hub.db.engine import make_engine, schema_status
from hub.store import Store
from hub.store.keys import Scope

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "items.jsonl"


@pytest.fixture
def url(db_url: str) -> str:
    """An empty migrated database: a SQLite file, then the session's PostgreSQL database."""
    return db_url


@pytest.fixture
def fresh_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet (no schema)."""
    return f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def open_store(url: str) -> Iterator[Store]:
    """The same database the CLI writes to, opened (and closed) by the test."""
    store = Store.open(url)
    try:
        yield store
    finally:
        store.close()


def run(runner: CliRunner, url: str, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, ["--database-url", url, *args], input=input)


def item_line(native_id: int, minutes: int = 0) -> str:
    return json.dumps(
        {
            "source": "acme-jira",
            "tool": "jira",
            "native_id": str(native_id),
            "key": f"CLI-{native_id}",
            "title": f"item {native_id}",
            "status": {"category": "todo", "name": "To Do"},
            "updated_at": f"2026-01-01T00:{minutes:02d}:00Z",
        }
    )


# ---------------------------------------------------------------------- keys


def test_keys_create_list_revoke_round_trip(runner: CliRunner, url: str) -> None:
    created = run(runner, url, "keys", "create", "--scope", "read", "--name", "dashboards", "--quiet")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("ohk_")
    assert len(token.splitlines()) == 1

    store = Store.open(url)
    try:
        key = store.keys.verify(token)
        assert key is not None
        assert key.scope is Scope.read
        assert key.name == "dashboards"

        listed = run(runner, url, "keys", "list")
        assert listed.exit_code == 0, listed.output
        assert key.id in listed.stdout
        assert "dashboards" in listed.stdout
        assert "read" in listed.stdout
        secret = token.split("_", 2)[2]
        assert secret not in listed.output
        assert token not in listed.output

        revoked = run(runner, url, "keys", "revoke", key.id)
        assert revoked.exit_code == 0, revoked.output
        assert store.keys.verify(token) is None
        again = run(runner, url, "keys", "list")
        assert key.id in again.stdout
        assert secret not in again.output
    finally:
        store.close()


def test_keys_create_prints_the_key_once_without_quiet(runner: CliRunner, url: str) -> None:
    created = run(runner, url, "keys", "create", "--scope", "admin")
    assert created.exit_code == 0, created.output
    tokens = [line for line in created.stdout.splitlines() if line.startswith("ohk_")]
    assert len(tokens) == 1
    store = Store.open(url)
    try:
        key = store.keys.verify(tokens[0])
        assert key is not None
        assert key.scope is Scope.admin
    finally:
        store.close()


def test_keys_create_rejects_unknown_scope(runner: CliRunner, url: str) -> None:
    result = run(runner, url, "keys", "create", "--scope", "root")
    assert result.exit_code != 0


@pytest.mark.parametrize("key_id", ["nope", ""])
def test_revoke_unknown_key_is_a_one_line_error(runner: CliRunner, url: str, key_id: str) -> None:
    result = run(runner, url, "keys", "revoke", key_id)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.output


def test_revoke_twice_fails_the_second_time(runner: CliRunner, url: str, open_store: Store) -> None:
    key, _ = open_store.keys.create(Scope.read, "x")
    assert run(runner, url, "keys", "revoke", key.id).exit_code == 0
    second = run(runner, url, "keys", "revoke", key.id)
    assert second.exit_code == 1
    assert "already revoked" in second.stderr


# ---------------------------------------------------------------------- import


def test_import_keeps_good_lines_and_names_the_bad_one(
    runner: CliRunner, url: str, tmp_path: Path, open_store: Store
) -> None:
    lines = [
        item_line(1),
        item_line(2),
        '{"source": "acme-jira", "tool": "jira", "native_id": "3"}',  # no status, no updated_at
        "",  # blank lines are skipped, not errors
        "{not json",
        item_line(4),
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = run(runner, url, "import", str(path), "--batch-size", "2")

    assert result.exit_code == 1, result.output
    assert f"{path}:3: " in result.stderr
    assert "status" in result.stderr
    assert f"{path}:5: invalid JSON" in result.stderr
    assert "Traceback" not in result.output
    assert "5 read, 3 upserted, 0 unchanged, 0 deleted, 2 errors" in result.stdout
    stored = {i: open_store.items.get(f"acme-jira:{i}") for i in (1, 2, 3, 4)}
    assert stored[1] is not None
    assert stored[2] is not None
    assert stored[4] is not None
    assert stored[3] is None


def test_import_stop_on_error_keeps_what_came_before(
    runner: CliRunner, url: str, tmp_path: Path, open_store: Store
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join([item_line(1), item_line(2), "[]", item_line(4)]) + "\n")

    result = run(runner, url, "import", str(path), "--stop-on-error")

    assert result.exit_code == 1
    assert f"{path}:3: expected a JSON object" in result.stderr
    assert open_store.items.get("acme-jira:1") is not None
    assert open_store.items.get("acme-jira:2") is not None
    assert open_store.items.get("acme-jira:4") is None


def test_import_from_stdin_is_upsert_if_newer(runner: CliRunner, url: str, open_store: Store) -> None:
    first = run(runner, url, "import", "-", input=item_line(1, minutes=5) + "\n")
    assert first.exit_code == 0, first.output
    assert "1 read, 1 upserted" in first.stdout
    older = run(runner, url, "import", "-", input=item_line(1, minutes=1) + "\n")
    assert older.exit_code == 0
    assert "1 read, 0 upserted, 1 unchanged" in older.stdout
    doc = open_store.items.get("acme-jira:1")
    assert doc is not None
    assert doc["updated_at"].startswith("2026-01-01T00:05")


def test_import_examples_with_a_tombstone(runner: CliRunner, url: str, open_store: Store) -> None:
    result = run(runner, url, "import", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    assert "30 read, 29 upserted, 0 unchanged, 1 deleted, 0 errors" in result.stdout
    deleted = [line for line in EXAMPLES.read_text().splitlines() if '"deleted": true' in line]
    assert len(deleted) == 1
    item = json.loads(deleted[0])
    doc = open_store.items.get(f"{item['source']}:{item['native_id']}")
    assert doc is not None
    assert doc["deleted"] is True

    again = run(runner, url, "import", str(EXAMPLES))
    assert "30 read, 0 upserted, 30 unchanged, 0 deleted, 0 errors" in again.stdout


def test_import_missing_file_is_a_one_line_error(runner: CliRunner, url: str, tmp_path: Path) -> None:
    result = run(runner, url, "import", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "nope.jsonl" in lines[0]


# ---------------------------------------------------------------------- schema, migrate, errors


def test_schema_prints_valid_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    defs = document["$defs"]
    assert {"WorkItem", "Person", "Change"} <= set(defs)
    assert "updated_at" in defs["WorkItem"]["properties"]
    assert "score" in defs["Rice"]["properties"]  # serialization mode shows the computed score
    validation = json.loads(runner.invoke(app, ["schema", "--mode", "validation"]).stdout)
    assert "score" not in validation["$defs"]["Rice"]["properties"]


def test_migrate_is_idempotent(runner: CliRunner, fresh_url: str) -> None:
    url = fresh_url
    first = run(runner, url, "migrate")
    assert first.exit_code == 0, first.output
    assert "migrated" in first.stdout
    second = run(runner, url, "migrate")
    assert second.exit_code == 0, second.output
    assert "already at revision" in second.stdout
    engine = make_engine(url)
    try:
        current, head = schema_status(engine)
    finally:
        engine.dispose()
    assert current == head is not None


@pytest.mark.parametrize(
    ("database_url", "says"),
    [
        ("not a url", "bad database URL"),
        ("mysql://x@127.0.0.1/db", "bad database URL"),
        ("postgresql://nobody@127.0.0.1:1/nope", "database unavailable"),
        ("sqlite:////nonexistent-dir/x/hub.db", "database unavailable"),
    ],
)
def test_database_errors_are_one_line(runner: CliRunner, database_url: str, says: str) -> None:
    result = run(runner, database_url, "keys", "list")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {says}")
    assert "Traceback" not in result.output

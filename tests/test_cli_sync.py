"""`opshub sync`, `opshub mappings check|preview` and config errors, through the real CLI.

The fake Jira runs on a loopback port so the CLI's connector talks real HTTP to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.common import serve
from fakes.jira import FakeJira
from hub.cli import app
from hub.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def fake_jira() -> Iterator[tuple[FakeJira, str]]:
    fake = FakeJira(150)
    with serve(fake.app) as url:
        yield fake, url


def _config(tmp_path: Path, url: str, fake: FakeJira, extra: str = "") -> Path:
    path = tmp_path / "opshub.toml"
    path.write_text(
        f"""
[sources.acme-jira]
tool = "jira"
base_url = "{url}"
email = "{fake.email}"
api_token = "${{TEST_JIRA_TOKEN}}"
projects = {json.dumps(list(fake.projects))}
{extra}
"""
    )
    return path


def _run(tmp_path: Path, config: Path, *args: str) -> object:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    return runner.invoke(app, ["--database-url", db, "--config", str(config), *args])


def test_sync_full_then_incremental(
    tmp_path: Path, fake_jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_jira
    monkeypatch.setenv("TEST_JIRA_TOKEN", fake.api_token)
    config = _config(tmp_path, url, fake)
    result = _run(tmp_path, config, "sync", "acme-jira")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "full sync succeeded" in result.output  # type: ignore[attr-defined]
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    assert len(store.items.live_ids("acme-jira")) == 150
    again = _run(tmp_path, config, "sync", "acme-jira")
    assert again.exit_code == 0
    assert "incremental sync succeeded" in again.output  # type: ignore[attr-defined]
    store.close()


def test_wrong_token_fails_with_an_actionable_line(
    tmp_path: Path, fake_jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_jira
    monkeypatch.setenv("TEST_JIRA_TOKEN", "wrong")
    result = _run(tmp_path, _config(tmp_path, url, fake), "sync", "acme-jira")
    assert result.exit_code == 1
    assert "acme-jira" in result.output and "Traceback" not in result.output  # type: ignore[attr-defined]
    assert "wrong" not in result.output  # the secret is never echoed  # type: ignore[attr-defined]
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    source = store.queries.get_source("acme-jira")
    store.close()
    assert source is not None and source["status"] == "failing"
    assert source["status_message"] and "acme-jira" in source["status_message"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('schedule = "often"', "sources.acme-jira.schedule:"),
        ("page_size = 0", "sources.acme-jira.page_size:"),
        ('surprise = "x"', "sources.acme-jira.surprise:"),
        (
            '[sources.acme-jira.mapping]\nstatus = { "In Review" = "in-progress" }',
            'sources.acme-jira.mapping.status."In Review"',
        ),
    ],
)
def test_bad_config_is_one_line_naming_source_and_key(
    tmp_path: Path, fake_jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch, extra: str, expected: str
) -> None:
    fake, url = fake_jira
    monkeypatch.setenv("TEST_JIRA_TOKEN", "secret-value")
    result = _run(tmp_path, _config(tmp_path, url, fake, extra), "sync", "acme-jira")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output  # type: ignore[attr-defined]
    assert "secret-value" not in result.output  # type: ignore[attr-defined]


def test_missing_env_var_is_named(
    tmp_path: Path, fake_jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_jira
    monkeypatch.delenv("TEST_JIRA_TOKEN", raising=False)
    result = _run(tmp_path, _config(tmp_path, url, fake), "mappings", "check")
    assert result.exit_code == 1
    assert "sources.acme-jira.api_token: environment variable TEST_JIRA_TOKEN is not set" in result.output  # type: ignore[attr-defined]


def test_mappings_check_and_preview(
    tmp_path: Path, fake_jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_jira
    monkeypatch.setenv("TEST_JIRA_TOKEN", fake.api_token)
    config = _config(tmp_path, url, fake, '[sources.acme-jira.mapping]\nstatus = { "To Do" = "backlog" }')
    checked = _run(tmp_path, config, "mappings", "check")
    assert checked.exit_code == 0, checked.output  # type: ignore[attr-defined]
    record = tmp_path / "issue.json"
    issue = fake.record(fake.ids()[0])
    assert issue is not None
    issue["fields"]["status"] = {"name": "To Do", "statusCategory": {"key": "new"}}
    record.write_text(json.dumps(issue))
    shown = _run(tmp_path, config, "mappings", "preview", "acme-jira", str(record))
    assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
    item = json.loads(shown.output)  # type: ignore[attr-defined]
    assert item["key"] == issue["key"]
    assert item["status"] == {"category": "backlog", "name": "To Do"}  # the override applied
    record.write_text('{"id": "1"}')
    bad = _run(tmp_path, config, "mappings", "preview", "acme-jira", str(record))
    assert bad.exit_code == 1 and "Traceback" not in bad.output  # type: ignore[attr-defined]


def test_unknown_source(tmp_path: Path, fake_jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = fake_jira
    monkeypatch.setenv("TEST_JIRA_TOKEN", fake.api_token)
    result = _run(tmp_path, _config(tmp_path, url, fake), "sync", "nope")
    assert result.exit_code == 1
    assert "no source named 'nope' (known: acme-jira)" in result.output  # type: ignore[attr-defined]

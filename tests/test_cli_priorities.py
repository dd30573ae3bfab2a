"""`opshub report priorities` through typer's CliRunner, on both backends.

The quadrants come from the same service as the API (tests/test_api_insights_priorities.py
checks them against the hand-worked matrix); here: that the table shows them, that --json
is the API's document, that settings (HUB_PRIORITIES_*) change the rules, and that bad
input is one line with exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import Result
from typer.testing import CliRunner

from hub.cli import app
from hub.settings import get_settings
from hub.store import Store
from tests.api_support import api_client
from tests.test_api_insights_priorities import AS_OF, NUMBERS, hid, seed

ARGS = ["priorities", "--container", "TEAM", "--as-of", AS_OF]


@pytest.fixture
def seeded(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    try:
        seed(store)
        yield store
    finally:
        store.close()


def run(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, ["--database-url", store.engine.url.render_as_string(False), "report", *args])


def test_report_priorities_prints_the_matrix(seeded: Store) -> None:
    result = run(seeded, *ARGS)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Priority matrix on 2026-03-18: 19 open items" in out
    # The grid: urgent 3 | 3, not urgent 9 | 4 (tests/test_api_insights_priorities.py's table).
    assert [line.split() for line in out.splitlines() if line.strip().startswith(("│ urgent", "│ not urgent"))] == [
        ["│", "urgent", "│", "3", "│", "3", "│"],
        ["│", "not", "urgent", "│", "9", "│", "4", "│"],
    ]
    assert "urgent, not important: delegate or drop (3)" in out
    assert f"TEAM-{NUMBERS['S3']}" in out and "overdue" in out


def test_report_priorities_json_is_the_api_document(seeded: Store) -> None:
    result = run(seeded, *ARGS, "--limit", "50", "--json")
    assert result.exit_code == 0, result.output
    with api_client(seeded) as client:
        api = client.get("/v1/insights/priorities", params={"container": "TEAM", "as_of": AS_OF, "limit": 50}).json()
    assert json.loads(result.output) == api


def test_report_priorities_reads_the_rules_from_settings(seeded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_PRIORITIES_URGENT_LEVELS", '["urgent"]')
    get_settings.cache_clear()
    try:
        body = json.loads(run(seeded, *ARGS, "--limit", "50", "--json").output)
    finally:
        get_settings.cache_clear()
    why = {i["id"]: i["why"] for i in body["quadrants"]["important_not_urgent"]["items"]}
    assert why[hid("S1")] == ["roadmap"]  # priority high is no longer urgent


def test_report_priorities_bad_day_is_one_line(seeded: Store) -> None:
    result = run(seeded, "priorities", "--as-of", "18/03/2026")
    assert result.exit_code == 1
    assert "--as-of must be a date" in result.output

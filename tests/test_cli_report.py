"""`opshub report flow|forecast` through typer's CliRunner, on both backends.

The figures come from the same services as the API (tests/test_api_insights_*.py check
them against hand-worked values); here: that the tables show them, that --json is the API's
document, and that bad input is one line on stderr with exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from hub.cli import app
from hub.store import Store
from hub.store.transitions import TransitionStore
from tests.api_support import api_client
from tests.insights_support import hub_id, seed_dataset
from tests.test_api_insights_forecast import FEATURE
from tests.test_api_insights_forecast import seed as seed_feature

FLOW_TEAM = {"id": "30003", "key": "FLOW", "name": "Flow team"}  # apart from the forecast's TEAM
FLOW_ARGS = ["--container", "FLOW", "--from", "2026-03-04", "--to", "2026-03-17", "--as-of", "2026-03-18"]


@pytest.fixture
def seeded(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    try:
        seed_dataset(store, container=FLOW_TEAM)
        seed_feature(store)
        yield store
    finally:
        store.close()


def run(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, ["--database-url", store.engine.url.render_as_string(False), "report", *args])


def test_report_flow_prints_the_figures(seeded: Store) -> None:
    result = run(seeded, "flow", *FLOW_ARGS)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Flow 2026-03-04 .. 2026-03-17" in out
    assert "Throughput: 10 done" in out
    assert "2026-W11" in out
    assert "Left out of throughput: cancelled 1, no_completion_time 1, reopened 1" in out
    cycle_row = next(line for line in out.splitlines() if "cycle time" in line)
    assert [cell.strip() for cell in cycle_row.split("│")[2:6]] == ["7", "4", "6", "10"]
    h_row = next(line for line in out.splitlines() if hub_id("H") in line)
    assert "15" in h_row and "above_p95" in h_row
    assert "Work in progress: 6" in out
    assert "nearest rank" in out


def test_report_flow_json_is_the_api_document(seeded: Store) -> None:
    result = run(seeded, "flow", *FLOW_ARGS, "--json")
    assert result.exit_code == 0, result.output
    with api_client(seeded) as client:
        api = client.get(
            "/v1/insights/flow",
            params={"container": "FLOW", "from": "2026-03-04", "to": "2026-03-17", "as_of": "2026-03-18T00:00:00Z"},
        ).json()
    assert json.loads(result.output) == api


def test_report_forecast_prints_dates_and_basis(seeded: Store) -> None:
    result = run(seeded, "forecast", FEATURE, "--as-of", "2026-03-18", "--seed", "3", "--weeks", "12")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "7 open delivery items" in out
    for level in ("50 %", "85 %", "95 %"):
        row = next(line for line in out.splitlines() if level in line)
        assert "3" in row and "2026-04-08" in row
    assert "[3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]" in out
    assert "2 of the remaining items have no status history" in out


def test_report_forecast_without_throughput_says_why(seeded: Store) -> None:
    result = run(seeded, "forecast", FEATURE, "--as-of", "2027-01-06")
    assert result.exit_code == 0, result.output
    assert "No forecast: no item was finished in the 12 weeks of history" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "acme-pb:nope"], "error: no item with id 'acme-pb:nope'"),
        (["forecast", "acme-jira:OPEN-1"], "error: item 'acme-jira:OPEN-1' is a task"),
        (["flow", "--from", "2026-03-10", "--to", "2026-03-01"], "error: period ends (2026-03-01) before it starts"),
        (["flow", "--from", "March"], "error: --from must be a date like 2026-03-04, got 'March'"),
        (["forecast", FEATURE, "--as-of", "soon"], "error: --as-of must be a date"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(seeded: Store, args: list[str], message: str) -> None:
    result = run(seeded, *args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(message)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_readme_worked_example(db_url: str) -> None:
    """The figures README.md's "Flow metrics and forecasts" section quotes for examples/."""
    runner = CliRunner()
    assert runner.invoke(app, ["--database-url", db_url, "import", str(EXAMPLES / "items.jsonl")]).exit_code == 0
    loaded = runner.invoke(app, ["--database-url", db_url, "import-history", str(EXAMPLES / "history.jsonl")])
    assert loaded.exit_code == 0, loaded.output
    assert "39 transitions of 22 items recorded" in loaded.stderr
    args = ["--from", "2026-09-21", "--to", "2026-10-04", "--as-of", "2026-10-06", "--json"]
    body = json.loads(runner.invoke(app, ["--database-url", db_url, "report", "flow", *args]).output)
    assert [w["count"] for w in body["throughput"]["weeks"]] == [0, 4]
    assert body["throughput"]["left_out"] == {"cancelled": 1, "reopened": 1}
    assert [(p["item_id"], p["days"]) for p in body["cycle_time"]["points"]] == [
        ("acme-jira:10002", 6.0),
        ("acme-linear:5c1e0f3a-0005", 5.0),
        ("acme-jira:10006", 3.0),
    ]
    assert body["cycle_time"]["percentiles"] == {"p50": 5.0, "p85": 6.0, "p95": 6.0}
    assert body["cycle_time"]["left_out"] == {"never_in_progress": 1}
    assert sorted(p["days"] for p in body["lead_time"]["points"]) == [107 / 24, 155 / 24, 200 / 24, 200 / 24]
    assert [(a["item_id"], a["age_days"], a["zone"]) for a in body["wip"]["items"]] == [
        ("acme-jira:10007", 233 / 24, "above_p95"),
        ("acme-jira:10003", 177 / 24, "above_p95"),
        ("acme-linear:5c1e0f3a-0002", 6.5, "above_p95"),
        ("acme-github:900101", 137 / 24, "p50_to_p85"),
        ("acme-linear:5c1e0f3a-0006", None, None),
    ]
    last = body["cumulative_flow"]["days"][-1]
    assert last == {
        "day": "2026-10-04",
        "counts": {"backlog": 4, "todo": 8, "in_progress": 5, "done": 4, "cancelled": 1},
    }
    forecast = runner.invoke(
        app, ["--database-url", db_url, "report", "forecast", "acme-jira:10001", "--as-of", "2026-10-06", "--json"]
    )
    plan = json.loads(forecast.output)
    assert plan["remaining"] == 5
    assert plan["basis"]["weekly_throughput"] == [0] * 11 + [2]
    assert plan["weeks"]["p50"] <= plan["weeks"]["p85"] <= plan["weeks"]["p95"]


def test_import_history_refuses_a_bad_line_and_stores_nothing(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "history.jsonl"
    good = '{"item_id": "s:1", "at": "2026-10-01T00:00:00Z", "to": {"category": "todo", "name": "To Do"}}'
    bad.write_text(good + '\n{"item_id": "s:1", "at": "2026-10-02T00:00:00Z", "to": {"category": "doing"}}\n')
    result = CliRunner().invoke(app, ["--database-url", db_url, "import-history", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}:2: to.category: Input should be 'backlog', 'todo', 'in_progress', 'done' or 'cancelled' "
        "(nothing was stored)"
    ]
    store = Store.open(db_url)
    try:
        assert TransitionStore(store.engine).history("s:1") == []
    finally:
        store.close()

"""`opshub import` with text PostgreSQL cannot store, or a line the store refuses: the line
is reported (NAME:LINE: message) and the rest lands; no traceback (issue 8, item 10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.schema import WorkItem
from hub.store import Store
from hub.store.items import ItemStore


def line(native_id: str, title: str) -> str:
    return json.dumps(
        {
            "source": "acme-jira",
            "tool": "jira",
            "native_id": native_id,
            "title": title,
            "labels": [title],
            "status": {"category": "todo"},
            "updated_at": "2026-01-01T00:00:00Z",
        }
    )


def test_nul_in_a_line_is_stored_as_a_replacement_character(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    lone_surrogate = '{"source": "acme-jira", "tool": "jira", "native_id": "3", "title": "\\ud800"}'
    path.write_text("\n".join([line("1", "ok"), line("2", "a\x00b"), lone_surrogate, line("4", "ok")]) + "\n")
    result = CliRunner().invoke(app, ["--database-url", db_url, "import", str(path)])
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output  # the surrogate line only
    assert f"{path}:3: invalid JSON" in result.stderr
    assert "4 read, 3 upserted, 0 unchanged, 0 deleted, 1 errors" in result.stdout
    store = Store.open(db_url)
    try:
        doc = store.items.get("acme-jira:2")
        assert doc is not None
        assert (doc["title"], doc["labels"]) == ("a\ufffdb", ["a\ufffdb"])
    finally:
        store.close()


def test_a_line_the_store_refuses_is_reported(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver error from the bulk insert path (not wrapped by SQLAlchemy) is the line's."""
    original = ItemStore._apply

    class DataError(Exception):  # a PEP 249 DataError, as psycopg or sqlite3 raise it
        pass

    def _apply(self: ItemStore, conn: Any, batch: list[Any], *args: Any) -> Any:
        if any(isinstance(op, WorkItem) and op.native_id == "2" for op in batch):
            raise DataError("value too long for type character varying(255)")
        return original(self, conn, batch, *args)

    monkeypatch.setattr(ItemStore, "_apply", _apply)
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(line(str(n), f"t{n}") for n in (1, 2, 3)) + "\n")
    result = CliRunner().invoke(app, ["--database-url", db_url, "import", str(path)])
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    assert f"{path}:2: refused by the store: " in result.stderr
    assert "value too long" in result.stderr
    assert "3 read, 2 upserted" in result.stdout

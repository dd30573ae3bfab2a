"""Golden tests: a hand-written raw record in, the expected WorkItem out.

Cases live in tests/golden/<tool>/<case>.json as
`{"description", "raw", "context"?, "overrides"?}` with the expected WorkItem (JSON, without
`raw`) beside it in <case>.expected.json. A tool's `context.json` holds the mapping context
its cases share (source, base_url, field catalog); a case's `context` is merged over it.
A new tool adds cases by dropping files into tests/golden/<tool>/; nothing here changes.

Regenerate expected files after an intended change with `UPDATE_GOLDEN=1 pytest ...` and
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mappings.engine import Mapper, load_spec, merge_overrides

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _cases() -> list[Any]:
    found = []
    for path in sorted(GOLDEN.glob("*/*.json")):
        if path.name == "context.json" or path.name.endswith(".expected.json"):
            continue
        found.append(pytest.param(path, id=f"{path.parent.name}/{path.stem}"))
    return found


def _context(path: Path, case: dict[str, Any]) -> dict[str, Any]:
    shared = path.parent / "context.json"
    context = json.loads(shared.read_text()) if shared.exists() else {}
    context.setdefault("tool", path.parent.name)
    context.setdefault("source", f"golden-{path.parent.name}")
    return {**context, **case.get("context", {})}


@pytest.mark.parametrize("path", _cases())
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    tool = path.parent.name
    spec = merge_overrides(load_spec(tool), case.get("overrides"))
    item = Mapper(spec, _context(path, case), keep_raw=False).map(case["raw"])
    got = item.model_dump(mode="json", exclude={"raw"})
    expected_path = path.with_name(f"{path.stem}.expected.json")
    if UPDATE or not expected_path.exists():
        expected_path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
        if not UPDATE:
            pytest.fail(f"wrote missing {expected_path.name}: review it and commit it")
    assert got == json.loads(expected_path.read_text()), case.get("description")


def test_every_tool_with_a_spec_has_golden_cases() -> None:
    from mappings.spec import available_tools

    missing = [tool for tool in available_tools() if not list((GOLDEN / tool).glob("*.expected.json"))]
    assert not missing, f"no golden cases for: {missing}"

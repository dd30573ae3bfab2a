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

from mappings import engine
from mappings.engine import Mapper, load_spec, merge_overrides
from mappings.errors import MappingError

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


# Odd values a perturbed record carries instead of a field's own (shapes the transforms must
# meet without failing, or fail the same way on both paths).
_ODD = [None, "", "Done", 0, -1, 2.5, True, [], {}, [{}], ["a", 1], {"id": 1, "name": "x", "value": "3"}]


def _filled(fill: Any, raw: Any) -> tuple[Any, list[str]]:
    out: dict[str, Any] = {}
    noted: list[str] = []
    token = engine._fell_back.set(noted)
    try:
        fill(raw, out)
    except Exception as exc:  # both paths must fail alike (the closures say where)
        return type(exc.__cause__ if isinstance(exc, MappingError) else exc).__name__, noted
    finally:
        engine._fell_back.reset(token)
    return out, noted


def test_generated_mapping_agrees_with_the_closures() -> None:
    """`Mapper._fill` (the spec written out as one function) gives the closures' values and
    fallbacks on every golden record and on variants with each field swapped for an odd shape."""
    checked = 0
    for param in _cases():
        path = param.values[0]
        case = json.loads(path.read_text())
        spec = merge_overrides(load_spec(path.parent.name), case.get("overrides"))
        mapper = Mapper(spec, _context(path, case))
        raw = case["raw"]
        variants = [raw]
        for i, key in enumerate(raw):
            variants.append({**raw, key: _ODD[i % len(_ODD)]})
        inner = next((k for k in ("fields", "attributes", "data") if isinstance(raw.get(k), dict)), None)
        if inner is not None:
            for i, key in enumerate(raw[inner]):
                variants.append({**raw, inner: {**raw[inner], key: _ODD[(i + checked) % len(_ODD)]}})
        for variant in variants:
            assert _filled(mapper._fill, variant) == _filled(mapper._fill_with_closures, variant), (path.name, variant)
            checked += 1
    assert checked > 500


def test_generated_mapping_walks_list_indexes_as_the_closures_do() -> None:
    """No shipped spec indexes a list (`fields.versions.0.name`); a source's override may."""
    spec = load_spec("jira")
    spec.fields["kind_raw"].path = "fields.versions.0.name"
    spec.fields["title"].path = "fields.versions.-2.name"
    mapper = Mapper(spec, {"source": "s", "tool": "jira"})
    for versions in (None, [], [{"name": "a"}], [{"name": "a"}, {"name": "b"}], {"0": {"name": "c"}}, "ab", [None, 1]):
        raw = {"id": "1", "fields": {"updated": "2025-01-01T00:00:00Z", "versions": versions}}
        assert _filled(mapper._fill, raw) == _filled(mapper._fill_with_closures, raw)
    assert (
        mapper.map(
            raw={"id": "1", "fields": {"updated": "2025-01-01T00:00:00Z", "versions": [{"name": "a"}, {"name": "b"}]}}
        ).kind_raw
        == "a"
    )

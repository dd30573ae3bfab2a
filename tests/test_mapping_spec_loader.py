"""The mapping specs' YAML loader (mappings/spec.py `SPEC_LOADER`): libyaml's safe loader
where PyYAML has it, for start-up speed, and still a *safe* loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mappings import spec as spec_module
from mappings.errors import SpecError
from mappings.spec import SPEC_LOADER, available_tools, read_spec, spec_path


@pytest.mark.parametrize("tool", available_tools())
def test_every_shipped_spec_loads_as_the_pure_python_safe_loader_reads_it(tool: str) -> None:
    text = spec_path(tool).read_text(encoding="utf-8")
    assert yaml.load(text, Loader=SPEC_LOADER) == yaml.safe_load(text)


def test_the_c_loader_is_used_when_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")
    assert SPEC_LOADER is yaml.CSafeLoader


def test_a_spec_cannot_build_python_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec is data a ProductOps user edits: a python tag must be refused, not run."""
    (tmp_path / "evil.yaml").write_text("tool: evil\nboom: !!python/object/apply:os.getcwd []\n", encoding="utf-8")
    monkeypatch.setattr(spec_module, "SPEC_DIR", tmp_path)
    with pytest.raises(SpecError, match="invalid YAML"):
        read_spec("evil")

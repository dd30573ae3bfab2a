"""Transforms registered with `text_unchanged=True` really return text as it is.

The generated mapping code skips their call for a `str` value (mappings/engine.py `_Generator`,
bench/README.md "Normalisation, round 4"), so a transform wrongly marked would change mapped
values only on the generated path; tests/test_mappings_golden.py compares that path with the
closures on every golden record.
"""

from __future__ import annotations

import pytest

from mappings import transforms
from mappings.context import MappingContext

_CTX = MappingContext.coerce({"source": "s", "tool": "jira", "base_url": "https://x.example"})
_TEXTS = ["", " ", "10001", "PROJ-1", "a b", " lead", "x\ny", "# h", "ünï", "https://x.example/browse/A-1", "None"]


def _marked() -> list[str]:
    return sorted(name for name in transforms.registry() if transforms.text_unchanged(name))


def test_the_common_ones_are_marked() -> None:
    assert {"string", "adf_to_markdown"} <= set(_marked())


@pytest.mark.parametrize("name", _marked())
def test_marked_transform_returns_text_unchanged(name: str) -> None:
    fn = transforms.registry()[name]
    for text in _TEXTS:
        assert fn(text, _CTX) is text, (name, text)

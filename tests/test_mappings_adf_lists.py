"""ADF -> Markdown: nested lists and one-text paragraphs, the shapes with their own fast paths.

`_indent` puts the prefix after each newline with one replace when no line below the first is
empty, `_paragraph` renders a paragraph of one plain text node without `_inline`, and an ordered
list without attrs is numbered from 1 without reading them (mappings/transforms/adf.py; bench/README.md
"Normalisation, round 4"). Expectations were checked against main's converter.
"""

from __future__ import annotations

from typing import Any

import pytest

from mappings.transforms.adf import to_markdown


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _para(*texts: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [_text(t) for t in texts]}


def _item(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "listItem", "content": list(blocks)}


def _doc(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def test_nested_ordered_list_is_indented_under_its_item() -> None:
    nested = {"type": "orderedList", "content": [_item(_para("one")), _item(_para("two"))]}
    doc = _doc({"type": "bulletList", "content": [_item(_para("step")), _item(_para("step"), nested)]})
    assert to_markdown(doc) == "- step\n- step\n  1. one\n  2. two"


def test_item_with_a_blank_line_inside_keeps_the_blank_line_unindented() -> None:
    # Two paragraphs in an item are separated by an empty line, which gets no prefix.
    doc = _doc({"type": "orderedList", "content": [_item(_para("a"), _para("b"), _para("c"))]})
    assert to_markdown(doc) == "1. a\n\n   b\n\n   c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A hard line break in text: the lines below the first are indented under the marker.
        ("x\ny", "- x\n  y"),
        # A text ending in a newline: the empty last line stays empty (no trailing prefix, so the
        # document's closing strip leaves the item alone).
        ("x\n", "- x"),
        ("x\n\ny", "- x\n\n  y"),
        ("\nx", "- \n  x"),
    ],
)
def test_multi_line_item_text(text: str, expected: str) -> None:
    doc = _doc({"type": "bulletList", "content": [_item(_para(text))]})
    assert to_markdown(doc) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# not a heading", "\\# not a heading"),
        ("1. not a list", "\\1. not a list"),
        ("- not a list", "\\- not a list"),
        ("a_b", "a\\_b"),
        ("plain", "plain"),
        ("", None),
    ],
)
def test_one_text_paragraph(text: str, expected: str | None) -> None:
    assert to_markdown(_doc(_para(text))) == expected


@pytest.mark.parametrize(
    ("attrs", "first"),
    [(None, "1."), ({}, "1."), ({"order": 3}, "3."), ({"order": "7"}, "7."), ({"order": "x"}, "1."), ("bad", "1.")],
)
def test_ordered_list_start(attrs: Any, first: str) -> None:
    node: dict[str, Any] = {"type": "orderedList", "content": [_item(_para("a"))]}
    if attrs is not None:
        node["attrs"] = attrs
    assert to_markdown(_doc(node)) == f"{first} a"

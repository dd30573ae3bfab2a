"""ADF -> Markdown: each escapable character alone, and children of odd shapes.

The escape check is one `in` test per character (mappings/transforms/adf.py `_escape`),
and inline content is read from a node's raw `content`; the random-tree differential used for
that change (bench/README.md "ADF -> Markdown, round 3") never had a text with only one of the
characters, nor a dict subclass as a child.
"""

from __future__ import annotations

from typing import Any

import pytest

from mappings.transforms.adf import to_markdown


class _Node(dict[str, Any]):
    """A dict subclass, as a JSON decoder with object_hook may give."""


@pytest.mark.parametrize("char", list("\\`*_[]"))
@pytest.mark.parametrize("where", ["paragraph", "heading", "strong", "list item"])
def test_each_escapable_character_alone_is_escaped(char: str, where: str) -> None:
    text: dict[str, Any] = {"type": "text", "text": f"a{char}b"}
    expected = f"a\\{char}b"
    if where == "strong":
        text["marks"] = [{"type": "strong"}]
        expected = f"**{expected}**"
    block: dict[str, Any] = {"type": "paragraph", "content": [text]}
    if where == "heading":
        block = {"type": "heading", "attrs": {"level": 1}, "content": [text]}
        expected = f"# {expected}"
    if where == "list item":
        block = {"type": "bulletList", "content": [{"type": "listItem", "content": [block]}]}
        expected = f"- {expected}"
    assert to_markdown({"type": "doc", "content": [block]}) == expected


@pytest.mark.parametrize("kind", ["paragraph", "heading"])
def test_inline_children_keep_dict_subclasses_and_drop_other_shapes(kind: str) -> None:
    content = [_Node(type="text", text="kept"), "junk", 3, None, {"type": "text", "text": " too"}]
    block = {"type": kind, "attrs": {"level": 2}, "content": content}
    expected = "kept too" if kind == "paragraph" else "## kept too"
    assert to_markdown({"type": "doc", "content": [block]}) == expected


@pytest.mark.parametrize("content", [None, "text", {"type": "text", "text": "x"}, ("a",), 5])
def test_inline_content_that_is_not_a_list_renders_nothing(content: Any) -> None:
    doc = {"type": "doc", "content": [{"type": "paragraph", "content": content}, {"type": "rule"}]}
    assert to_markdown(doc) == "---"


def test_a_run_is_escaped_when_any_of_its_text_nodes_needs_it() -> None:
    # Text is checked once per run; one node needing it (here the last, under a link) must
    # escape every node of the run, each as it would be alone.
    link = {"type": "link", "attrs": {"href": "https://x.example/a_b"}}
    content = [
        {"type": "text", "text": "plain "},
        {"type": "text", "text": "bold", "marks": [{"type": "strong"}]},
        {"type": "text", "text": " and "},
        {"type": "text", "text": "snake_case", "marks": [link]},
        {"type": "text", "text": " `tick`", "marks": [{"type": "code"}]},
    ]
    expected = "plain **bold** and [snake\\_case](https://x.example/a_b)``  `tick` ``"
    assert to_markdown({"type": "doc", "content": [{"type": "paragraph", "content": content}]}) == expected

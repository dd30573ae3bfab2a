"""ADF -> Markdown: each node type, marks, nesting, and graceful degradation."""

from __future__ import annotations

from typing import Any

import pytest

from mappings.transforms.adf import to_markdown


def t(text: str, *marks: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = [m if isinstance(m, dict) else {"type": m} for m in marks]
    return node


def p(*content: Any) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def doc(*content: Any) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(content)}


def li(*content: Any) -> dict[str, Any]:
    return {"type": "listItem", "content": list(content)}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (p(t("plain")), "plain"),
        (p(t("bold", "strong")), "**bold**"),
        (p(t("it", "em")), "*it*"),
        (p(t("x = 1", "code")), "`x = 1`"),
        (p(t("a`b", "code")), "``a`b``"),
        (p(t("gone", "strike")), "~~gone~~"),
        (p(t("both", "strong", "em")), "***both***"),
        (p(t("bold ", "strong"), t("then")), "**bold** then"),
        (p(t("site", {"type": "link", "attrs": {"href": "https://a.example/x"}})), "[site](https://a.example/x)"),
        (p(t("under", "underline")), "under"),
        (p(t("a*b_c")), "a\\*b\\_c"),
        (p(t("# not a heading")), "\\# not a heading"),
        (p(t("one"), {"type": "hardBreak"}, t("two")), "one\\\ntwo"),
        (p({"type": "mention", "attrs": {"id": "abc", "text": "@Ann Lee"}}), "@Ann Lee"),
        (p({"type": "mention", "attrs": {"id": "abc", "text": "Ann"}}), "@Ann"),
        (p({"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}}), "😄"),
        (p({"type": "emoji", "attrs": {"shortName": ":custom:"}}), ":custom:"),
        (
            p({"type": "inlineCard", "attrs": {"url": "https://x.atlassian.net/browse/A-1"}}),
            "<https://x.atlassian.net/browse/A-1>",
        ),
        (p({"type": "date", "attrs": {"timestamp": "1700000000000"}}), "2023-11-14"),
        (p({"type": "status", "attrs": {"text": "IN REVIEW", "color": "blue"}}), "`IN REVIEW`"),
        ({"type": "heading", "attrs": {"level": 3}, "content": [t("Title")]}, "### Title"),
        ({"type": "rule"}, "---"),
        (
            {"type": "codeBlock", "attrs": {"language": "python"}, "content": [t("print(1)\nprint(2)")]},
            "```python\nprint(1)\nprint(2)\n```",
        ),
        ({"type": "codeBlock", "content": [t("x ``` y")]}, "````\nx ``` y\n````"),
        ({"type": "blockquote", "content": [p(t("quoted")), p(t("twice"))]}, "> quoted\n>\n> twice"),
        ({"type": "panel", "attrs": {"panelType": "warning"}, "content": [p(t("careful"))]}, "> [!WARNING]\n> careful"),
        ({"type": "panel", "attrs": {"panelType": "info"}, "content": [p(t("fyi"))]}, "> [!NOTE]\n> fyi"),
        ({"type": "blockCard", "attrs": {"url": "https://example.com/doc"}}, "<https://example.com/doc>"),
        (
            {
                "type": "mediaSingle",
                "content": [{"type": "media", "attrs": {"id": "1", "type": "file", "alt": "diagram.png"}}],
            },
            "[attachment: diagram.png]",
        ),
    ],
)
def test_node(node: dict[str, Any], expected: str) -> None:
    assert to_markdown(doc(node)) == expected


def test_bullet_and_ordered_lists_nest() -> None:
    nested = {"type": "orderedList", "attrs": {"order": 3}, "content": [li(p(t("three"))), li(p(t("four")))]}
    tree = doc({"type": "bulletList", "content": [li(p(t("one")), nested), li(p(t("two")))]})
    assert to_markdown(tree) == "- one\n  3. three\n  4. four\n- two"


def test_list_item_with_two_paragraphs_and_code() -> None:
    tree = doc({"type": "orderedList", "content": [li(p(t("first")), {"type": "codeBlock", "content": [t("x")]})]})
    assert to_markdown(tree) == "1. first\n\n   ```\n   x\n   ```"


def test_task_list() -> None:
    tree = doc(
        {
            "type": "taskList",
            "content": [
                {"type": "taskItem", "attrs": {"state": "DONE"}, "content": [t("shipped")]},
                {"type": "taskItem", "attrs": {"state": "TODO"}, "content": [t("announce")]},
            ],
        }
    )
    assert to_markdown(tree) == "- [x] shipped\n- [ ] announce"


def test_table_is_gfm_with_escaped_pipes() -> None:
    def cell(kind: str, text: str) -> dict[str, Any]:
        return {"type": kind, "content": [p(t(text))]}

    tree = doc(
        {
            "type": "table",
            "content": [
                {"type": "tableRow", "content": [cell("tableHeader", "Name"), cell("tableHeader", "Value")]},
                {"type": "tableRow", "content": [cell("tableCell", "a|b"), cell("tableCell", "1")]},
                {"type": "tableRow", "content": [cell("tableCell", "short")]},
            ],
        }
    )
    assert to_markdown(tree) == "| Name | Value |\n| --- | --- |\n| a\\|b | 1 |\n| short |  |"


def test_blocks_are_separated_by_blank_lines() -> None:
    tree = doc({"type": "heading", "attrs": {"level": 1}, "content": [t("H")]}, p(t("a")), p(), p(t("b")))
    assert to_markdown(tree) == "# H\n\na\n\nb"


def test_unknown_nodes_degrade_to_their_text() -> None:
    tree = doc(
        {"type": "futureWidget", "attrs": {"x": 1}, "content": [t("inside "), t("widget", "strong")]},
        p(t("before "), {"type": "sparkle", "content": [t("inline")]}, t(" after")),
        {"type": "futureBlock", "content": [p(t("para one")), p(t("para two"))]},
        {"type": "opaque"},
    )
    assert to_markdown(tree) == "inside widget\n\nbefore inline after\n\npara one\n\npara two"


def test_expand_and_layout_render_their_content() -> None:
    tree = doc(
        {"type": "expand", "attrs": {"title": "Details"}, "content": [p(t("hidden"))]},
        {"type": "layoutSection", "content": [{"type": "layoutColumn", "content": [p(t("left"))]}]},
    )
    assert to_markdown(tree) == "**Details**\n\nhidden\n\nleft"


def test_malformed_input_does_not_raise() -> None:
    assert to_markdown(None) is None
    assert to_markdown({"type": "doc"}) is None
    assert to_markdown(doc("stray string", p(t("ok")), 7)) == "ok"
    assert to_markdown(doc(p({"type": "text"}))) is None
    assert to_markdown(doc({"type": "heading", "attrs": {"level": "x"}, "content": [t("H")]})) == "# H"


def test_text_passes_through() -> None:
    assert to_markdown("h2. Wiki *markup*") == "h2. Wiki *markup*"

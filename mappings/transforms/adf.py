"""Atlassian Document Format (ADF) -> Markdown (GitHub flavoured).

ADF is the JSON tree Jira Cloud REST v3 uses for rich text (`{"type": "doc", "version": 1,
"content": [...]}`; node reference: developer.atlassian.com/cloud/jira/platform/apis/document/structure/).
Block nodes become Markdown blocks separated by a blank line; inline nodes become text with
marks. A node this module does not know is rendered as the text it contains, so a new ADF
node type degrades to plain text instead of failing the record. Text passes through as is
(webhooks deliver descriptions as wiki-markup strings).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform

Node = dict[str, Any]

_LINE_START = re.compile(r"^(\s{0,3})([#>+-]|\d+[.)])(?=\s)", re.MULTILINE)

_PANEL_LABELS = {
    "info": "NOTE",
    "note": "NOTE",
    "success": "TIP",
    "warning": "WARNING",
    "error": "CAUTION",
    "custom": "NOTE",
}


def _needs_escape(text: str) -> bool:
    # One `in` per character to escape, each a memchr over the text: a set's isdisjoint(text)
    # made a one-character string per character (~90 instructions each, ~18k for a
    # 200-character paragraph; bench/README.md "ADF -> Markdown, round 3").
    return "\\" in text or "`" in text or "*" in text or "_" in text or "[" in text or "]" in text


def _escape(text: str) -> str:
    """A backslash before each of \\ ` * _ [ ].

    str.replace, one character at a time, backslash first (so no inserted backslash is doubled):
    `re.sub` with a template went through Python-level template handling per call (~15k
    instructions per text; bench/README.md "ADF -> Markdown, round 3").
    """
    # `_needs_escape`'s six tests written out here: this runs for every plain text (a heading, each
    # list item) and the call cost as much as the tests (bench/README.md "round 4").
    if "\\" in text or "`" in text or "*" in text or "_" in text or "[" in text or "]" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("`", "\\`")
            .replace("*", "\\*")
            .replace("_", "\\_")
            .replace("[", "\\[")
            .replace("]", "\\]")
        )
    return text


def _attrs(node: Node) -> dict[str, Any]:
    attrs = node.get("attrs")
    return attrs if attrs.__class__ is dict or isinstance(attrs, dict) else {}


def _children(node: Node) -> list[Node]:
    content = node.get("content")
    if content.__class__ is not list:
        return []
    for child in content:
        if child.__class__ is not dict:  # rare: drop malformed children
            return [c for c in content if isinstance(c, dict)]
    return content


def plain_text(node: Any) -> str:
    """All the text under a node, without formatting (for unknown nodes)."""
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text") or "")
    inline = _INLINE.get(str(node.get("type")))
    if inline is not None and not node.get("content"):
        return inline(node)
    return "".join(plain_text(c) for c in _children(node))


# ------------------------------------------------------------------------ inline nodes


def _wrap(text: str, left: str, right: str) -> str:
    """Put delimiters around text, keeping its outer whitespace outside (`** a**` is not bold)."""
    if text and not text[0].isspace() and not text[-1].isspace():  # the usual: nothing to keep out
        return f"{left}{text}{right}"
    stripped = text.strip()
    if not stripped:
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}{left}{stripped}{right}{trail}"


def _code_span(text: str) -> str:
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _text(raw: str, marks: Any, escape: bool) -> str:
    """A text node's text with its marks (`escape` False: the caller knows nothing needs it)."""
    escaped = _escape(raw) if escape else raw
    if not marks:
        return escaped
    if len(marks) == 1 and marks[0].__class__ is dict:  # the common case: one mark
        only = marks[0]
        kind = only.get("type")
        if kind == "strong":  # the commonest marks, without the general path's lookups
            return _wrap(escaped, "**", "**")
        if kind == "link":
            href = _attrs(only).get("href")
            return f"[{escaped}]({_url(href)})" if href else escaped
        kinds = {kind: only}
    else:
        kinds = {m.get("type"): m for m in marks if isinstance(m, dict)}
    text = _code_span(raw) if "code" in kinds else escaped
    if "strike" in kinds:
        text = _wrap(text, "~~", "~~")
    if "em" in kinds:
        text = _wrap(text, "*", "*")
    if "strong" in kinds:
        text = _wrap(text, "**", "**")
    link = kinds.get("link")
    if link is not None:
        href = _attrs(link).get("href")
        if href:
            text = f"[{text}]({_url(href)})"
    return text


def _url(href: str) -> str:
    return f"<{href}>" if (" " in href or ")" in href) else href


def _mention(node: Node) -> str:
    attrs = _attrs(node)
    name = str(attrs.get("text") or attrs.get("id") or "")
    return name if name.startswith("@") else f"@{name}"


def _emoji(node: Node) -> str:
    attrs = _attrs(node)
    return str(attrs.get("text") or attrs.get("shortName") or "")


def _card_url(node: Node) -> str:
    attrs = _attrs(node)
    url = attrs.get("url")
    if not url and isinstance(attrs.get("data"), dict):
        url = attrs["data"].get("url")
    return str(url or "")


def _inline_card(node: Node) -> str:
    url = _card_url(node)
    return f"<{url}>" if url else ""


def _date(node: Node) -> str:
    stamp = _attrs(node).get("timestamp")
    try:
        return datetime.fromtimestamp(int(str(stamp)) / 1000, tz=UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _status(node: Node) -> str:
    text = str(_attrs(node).get("text") or "")
    return _code_span(text) if text else ""


def _media(node: Node) -> str:
    alt = _attrs(node).get("alt")
    return f"[attachment: {_escape(str(alt))}]" if alt else ""


_INLINE: dict[str, Callable[[Node], str]] = {
    "text": lambda node: _text(str(node.get("text") or ""), node.get("marks"), True),
    "hardBreak": lambda node: "\\\n",
    "mention": _mention,
    "emoji": _emoji,
    "inlineCard": _inline_card,
    "date": _date,
    "status": _status,
    "media": _media,
    "mediaInline": _media,
    "placeholder": lambda node: "",
    "inlineExtension": lambda node: str(_attrs(node).get("text") or ""),
}


def _inline(nodes: Any, escape: bool = False) -> str:
    """Inline nodes as text; `nodes` may be a node's raw `content` (not a list: no content).

    Text is escaped once per run: text nodes are first rendered as they are and their text
    checked together at the end; only a run with something to escape (rare in prose) is
    rendered again with `escape`, escaping each text node. Escaping adds a backslash before a
    character, never whitespace, so marks wrap a text the same way either way.
    """
    if nodes.__class__ is not list:
        return ""
    if len(nodes) == 1:  # the commonest run, one plain text (a heading, a list item): no loop
        node = nodes[0]
        if node.__class__ is dict and node.get("type") == "text" and not node.get("marks"):
            raw = node.get("text")
            return _escape(raw if raw.__class__ is str else str(raw or ""))
    parts: list[str] = []
    append = parts.append
    texts: list[str] = []  # the text nodes' text, unescaped
    for node in nodes:
        if node.__class__ is not dict and not isinstance(node, dict):  # as `_children` drops them
            continue
        kind = node.get("type")
        if kind == "text":
            # Most nodes are text, rendered here (a Python call per text node was a tenth of
            # the converter's time, bench/README.md "i13map"); marks are rarer.
            raw = node.get("text")
            text = raw if raw.__class__ is str else str(raw or "")
            texts.append(text)
            marks = node.get("marks")
            if not marks:
                append(_escape(text) if escape else text)
                continue
            if not escape and len(marks) == 1 and marks[0].__class__ is dict:
                # `_text`'s two commonest marks written out (no `_text`, `_wrap`, `_attrs`,
                # `_url` calls: ~1.5k instructions per marked text; bench/README.md "round 4").
                # The escaped run (rare) takes `_text`, the reference for both.
                mark = marks[0]
                kind = mark.get("type")
                if kind == "strong" and text and not text[0].isspace() and not text[-1].isspace():
                    append(f"**{text}**")
                    continue
                attrs = mark.get("attrs")
                if kind == "link" and attrs.__class__ is dict:
                    href = attrs.get("href")
                    if href.__class__ is str:  # an empty href: the text alone
                        if not href:
                            append(text)
                        else:
                            append(f"[{text}](<{href}>)" if " " in href or ")" in href else f"[{text}]({href})")
                        continue
            append(_text(text, marks, escape))
            continue
        render = _INLINE.get(kind)  # type: ignore[arg-type]
        if render is not None:
            append(render(node))
        elif kind in _BLOCK:
            append(_escape(plain_text(node)))
        else:
            append(_inline(node.get("content")) if node.get("content") else _escape(str(node.get("text") or "")))
    if not escape and texts and _needs_escape("".join(texts)):
        return _inline(nodes, True)
    return "".join(parts)


# ------------------------------------------------------------------------- block nodes


def _indent(text: str, prefix: str, first: str | None = None) -> str:
    if "\n" not in text:  # one line (most list items): nothing below the first line to indent
        return (first if first is not None else prefix) + text
    if "\n\n" not in text and text[-1] != "\n":
        # No empty line below the first (a nested list under its item): every line after the
        # first gets the prefix, which is one replace instead of a split and a join.
        return (first if first is not None else prefix) + text.replace("\n", "\n" + prefix)
    lines = text.split("\n")
    head = (first if first is not None else prefix) + lines[0]
    rest = [(prefix + line) if line else line for line in lines[1:]]
    return "\n".join([head, *rest])


def _paragraph(node: Node) -> str:
    content = node.get("content")
    if content.__class__ is list and len(content) == 1:
        # The commonest paragraph (a list item's, most real descriptions'): one plain text node,
        # `_inline`'s one-text path written out here, one call fewer per paragraph.
        only = content[0]
        if only.__class__ is dict and only.get("type") == "text" and not only.get("marks"):
            raw = only.get("text")
            text = _escape(raw if raw.__class__ is str else str(raw or ""))
            return _LINE_START.sub(r"\1\\\2", text) if text[:1] in "#>+-0123456789 " else text
    text = _inline(content)
    # A paragraph starting with "# ", "> ", "- ", "1. " would become another block.
    return _LINE_START.sub(r"\1\\\2", text) if text[:1] in "#>+-0123456789 " else text


def _heading(node: Node) -> str:
    attrs = node.get("attrs")
    level = attrs.get("level") if attrs.__class__ is dict else None
    if level.__class__ is not int:  # an int (what Jira sends) needs no `int()`, nor `_attrs`
        try:
            level = int(_attrs(node).get("level") or 1)
        except (TypeError, ValueError):
            level = 1
    level = 1 if level < 1 else 6 if level > 6 else level  # min(max(...)): two calls fewer
    text = _inline(node.get("content")).replace("\\\n", " ")
    return f"{'#' * level} {text}" if text else ""


def _list_item(node: Node, marker: str) -> str:
    content = node.get("content")
    if content.__class__ is list and len(content) == 1 and content[0].__class__ is dict:
        only = content[0]
        if only.get("type") == "paragraph":
            # The common item, one paragraph: `_block` and the loop below reduced to their result.
            body = _paragraph(only)
            if "\n" not in body:  # one line: `_indent` would only put the marker before it
                return marker + body if body else marker.rstrip()
            return _indent(body, " " * len(marker), marker)
    parts: list[str] = []
    for child in _children(node):
        rendered = _block(child)
        if not rendered:
            continue
        # Nested lists stay tight under their item; other blocks are separate paragraphs.
        sep = "\n" if child.get("type") in _LISTS or not parts else "\n\n"
        parts.append(sep + rendered if parts else rendered)
    body = "".join(parts)
    return _indent(body, " " * len(marker), marker) if body else marker.rstrip()


def _bullet_list(node: Node) -> str:
    # Lists, not generators, into join(): join builds a list from a generator anyway, and
    # resuming the generator per item costs more (CPython 3.11).
    return "\n".join([_list_item(item, "- ") for item in _children(node)])


def _ordered_list(node: Node) -> str:
    if node.get("attrs") is None:  # the usual ordered list: no attrs, numbered from 1
        start = 1
    else:
        try:
            start = int(_attrs(node).get("order") or 1)
        except (TypeError, ValueError):
            start = 1
    return "\n".join([_list_item(item, f"{start + i}. ") for i, item in enumerate(_children(node))])


def _task_list(node: Node) -> str:
    lines = []
    for item in _children(node):
        if item.get("type") == "taskList":
            lines.append(_indent(_task_list(item), "  "))
            continue
        box = "[x]" if _attrs(item).get("state") == "DONE" else "[ ]"
        text = _inline(item.get("content"))
        lines.append(f"- {box} {text}")
    return "\n".join(lines)


def _decision_list(node: Node) -> str:
    return "\n".join(["- " + _inline(item.get("content")) for item in _children(node)])


def _code_block(node: Node) -> str:
    code = "".join(str(c.get("text") or "") for c in _children(node))
    language = str(_attrs(node).get("language") or "")
    fence = "```"
    while fence in code:
        fence += "`"
    return f"{fence}{language}\n{code}\n{fence}"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def _blockquote(node: Node) -> str:
    body = _blocks(node.get("content"))
    return _quote(body) if body else ""


def _panel(node: Node) -> str:
    label = _PANEL_LABELS.get(str(_attrs(node).get("panelType") or "info"), "NOTE")
    body = _blocks(node.get("content"))
    return _quote(f"[!{label}]\n{body}" if body else f"[!{label}]")


def _cell(node: Node) -> str:
    text = "<br>".join(b for b in (_block(c) for c in _children(node)) if b)
    return text.replace("\\\n", "<br>").replace("\n", "<br>").replace("|", "\\|")


def _table(node: Node) -> str:
    rows = [[_cell(c) for c in _children(row)] for row in _children(node) if row.get("type") == "tableRow"]
    rows = [r for r in rows if r]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _expand(node: Node) -> str:
    title = str(_attrs(node).get("title") or "")
    body = _blocks(node.get("content"))
    head = f"**{_escape(title)}**" if title else ""
    return "\n\n".join(p for p in (head, body) if p)


def _card(node: Node) -> str:
    url = _card_url(node)
    return f"<{url}>" if url else ""


def _container(node: Node) -> str:
    return _blocks(node.get("content"))


_LISTS = frozenset({"bulletList", "orderedList", "taskList", "decisionList"})
_BLOCK: dict[str, Callable[[Node], str]] = {
    "doc": _container,
    "paragraph": _paragraph,
    "heading": _heading,
    "bulletList": _bullet_list,
    "orderedList": _ordered_list,
    "taskList": _task_list,
    "decisionList": _decision_list,
    "codeBlock": _code_block,
    "blockquote": _blockquote,
    "panel": _panel,
    "rule": lambda node: "---",
    "table": _table,
    "expand": _expand,
    "nestedExpand": _expand,
    "blockCard": _card,
    "embedCard": _card,
    "mediaSingle": _container,
    "mediaGroup": _container,
    "layoutSection": _container,
    "layoutColumn": _container,
    "bodiedExtension": _container,
    "extension": lambda node: str(_attrs(node).get("text") or ""),
}


def _block(node: Node) -> str:
    kind = node.get("type")
    render = _BLOCK.get(kind if kind.__class__ is str else str(kind))
    if render is not None:
        return render(node)
    if node.get("type") in _INLINE:
        return _inline([node])
    # Unknown node: its text, keeping any blocks inside it apart.
    children = _children(node)
    if any(c.get("type") in _BLOCK for c in children):
        return _blocks(children)
    return _escape(plain_text(node))


def _blocks(nodes: Any) -> str:
    """Block nodes as Markdown; `nodes` may be a node's raw `content` (not a list: no content)."""
    if nodes.__class__ is not list:
        return ""
    out: list[str] = []
    run: list[Node] = []  # inline nodes met at block level are gathered into one paragraph
    for node in nodes:
        if node.__class__ is not dict and not isinstance(node, dict):  # as `_children` drops them
            continue
        kind = node.get("type")
        render = _BLOCK.get(kind)  # type: ignore[arg-type]
        if render is None and kind in _INLINE:
            run.append(node)
            continue
        if run:
            text = _inline(run)
            if text:
                out.append(text)
            run = []
        rendered = render(node) if render is not None else _block(node)
        if rendered:
            out.append(rendered)
    if run:
        text = _inline(run)
        if text:
            out.append(text)
    return "\n\n".join(out)  # only non-empty parts were kept


def to_markdown(document: Any) -> str | None:
    """Markdown for an ADF document (or any ADF node); text is returned unchanged."""
    if document.__class__ is not dict:  # (the usual input is a dict: no isinstance calls)
        if isinstance(document, str):
            return document
        if not isinstance(document, dict):
            return None
    # A whole document (the usual input) goes straight to its blocks: `_block` -> `_container`.
    body = _blocks(document.get("content")) if document.get("type") == "doc" else _block(document)
    text = body.strip("\n")
    return text or None


@transform("adf_to_markdown", text_unchanged=True)
def adf_to_markdown(value: Any, ctx: MappingContext) -> str | None:
    """Rich text as Markdown: ADF documents are converted, text passes through."""
    return to_markdown(value)

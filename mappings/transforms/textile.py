"""Textile -> Markdown, for Redmine descriptions (Redmine's default text formatting).

Small and safe on purpose: it converts the markup Redmine users actually write and leaves
everything else as the text it was. Covered: headings `h1.`-`h6.`, `*bold*` / `**bold**`,
`_italic_` / `__italic__`, `-strike-`, `@code@`, `<pre>` / `<pre><code class="x">` blocks and
`bc.` blocks, block quotes `bq.`, bullet (`*`) and numbered (`#`) lists with nesting,
links `"text":url` (and `"text(title)":url`), images `!url!` / `!url(alt)!` and a
`!image!:link`, and `p.` paragraphs. Tables and any other markup pass through unchanged.
Text inside code is never touched. No HTML is produced.

Reference: https://www.redmine.org/projects/redmine/wiki/RedmineTextFormattingTextile
"""

from __future__ import annotations

import re
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform

_HEADING = re.compile(r"^h([1-6])(?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\]|[<>=]+)*\.\s+(.*)$")
_PARAGRAPH = re.compile(r"^p(?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\]|[<>=]+)*\.\s+(.*)$")
_QUOTE = re.compile(r"^bq\.\s+(.*)$")
_BC = re.compile(r"^bc\.\s+(.*)$")
_LIST = re.compile(r"^([*#]+)\s+(.*)$")
_PRE_OPEN = re.compile(r"^\s*<pre>\s*(?:<code(?:\s+class=\"([\w+#.-]+)\")?>)?(.*)$", re.IGNORECASE)
_PRE_CLOSE = re.compile(r"^(.*?)(?:</code>)?\s*</pre>\s*$", re.IGNORECASE)

# Inline spans. Textile needs a non-word boundary around the markers so that "a*b*c" and
# snake_case_names stay as they are.
_CODE = re.compile(r"(?<![\w@])@([^@\n]+?)@(?![\w@])")
_IMAGE = re.compile(r"!(?P<url>(?:https?://|/)[^\s!()]+)(?:\((?P<alt>[^)]*)\))?!(?::(?P<link>\S+[^\s.,;:!?)\]]))?")
_LINK = re.compile(
    r"\"(?P<text>[^\"\n]+?)(?:\((?P<title>[^)]*)\))?\":(?P<url>(?:https?://|ftp://|mailto:|/)\S+[^\s.,;:!?)\]\"'])"
)
_BOLD = re.compile(r"(?<![\w*])\*{1,2}(?=\S)([^*\n]+?)(?<=\S)\*{1,2}(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_{1,2}(?=\S)([^_\n]+?)(?<=\S)_{1,2}(?![\w_])")
_STRIKE = re.compile(r"(?<![\w-])-(?=\S)([^-\n]+?)(?<=\S)-(?![\w-])")


def _code_span(text: str) -> str:
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _inline(text: str) -> str:
    # Code spans first, kept out of the other rules through placeholders.
    spans: list[str] = []

    def keep(rendered: str) -> str:
        spans.append(rendered)
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE.sub(lambda m: keep(_code_span(m.group(1))), text)

    def image(m: re.Match[str]) -> str:
        md = f"![{m.group('alt') or ''}]({m.group('url')})"
        return keep(f"[{md}]({m.group('link')})" if m.group("link") else md)

    text = _IMAGE.sub(image, text)

    def link(m: re.Match[str]) -> str:
        title = m.group("title")
        suffix = f' "{title}"' if title else ""
        return keep(f"[{m.group('text').strip()}]({m.group('url')}{suffix})")

    text = _LINK.sub(link, text)
    text = _BOLD.sub(lambda m: f"**{m.group(1)}**", text)
    text = _ITALIC.sub(lambda m: f"*{m.group(1)}*", text)
    text = _STRIKE.sub(lambda m: f"~~{m.group(1)}~~", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def textile_to_markdown(text: str) -> str:
    """Convert Redmine Textile to GitHub-flavoured Markdown (see the module docstring)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        pre = _PRE_OPEN.match(line)
        if pre:
            language, rest = pre.group(1) or "", pre.group(2)
            body: list[str] = []
            closing = _PRE_CLOSE.match(rest)
            if closing and re.search(r"</pre>\s*$", rest, re.IGNORECASE):
                body.append(closing.group(1))
            else:
                if rest.strip():
                    body.append(rest)
                i += 1
                while i < len(lines):
                    closing = _PRE_CLOSE.match(lines[i])
                    if closing and re.search(r"</pre>\s*$", lines[i], re.IGNORECASE):
                        if closing.group(1).strip():
                            body.append(closing.group(1))
                        break
                    body.append(lines[i])
                    i += 1
            code = "\n".join(body)
            fence = "```"
            while fence in code:
                fence += "`"
            out.append(f"{fence}{language}\n{code}\n{fence}")
            i += 1
            continue
        bc = _BC.match(line)
        if bc:
            block = [bc.group(1)]
            while i + 1 < len(lines) and lines[i + 1].strip():
                i += 1
                block.append(lines[i])
            code = "\n".join(block)
            fence = "```"
            while fence in code:
                fence += "`"
            out.append(f"{fence}\n{code}\n{fence}")
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            out.append(f"{'#' * int(heading.group(1))} {_inline(heading.group(2).strip())}")
        elif quote := _QUOTE.match(line):
            out.append(f"> {_inline(quote.group(1))}")
        elif para := _PARAGRAPH.match(line):
            out.append(_inline(para.group(1)))
        elif item := _LIST.match(line):
            markers = item.group(1)
            indent = "   " * (len(markers) - 1) if markers[-1] == "#" else "  " * (len(markers) - 1)
            bullet = "1." if markers[-1] == "#" else "-"
            out.append(f"{indent}{bullet} {_inline(item.group(2))}")
        else:
            out.append(_inline(line))
        i += 1
    return "\n".join(out).strip("\n")


@transform("textile_to_markdown")
def textile(value: Any, ctx: MappingContext) -> str | None:
    """Textile text as Markdown; empty text is no description."""
    if not isinstance(value, str):
        return None
    converted = textile_to_markdown(value)
    return converted or None

"""The one HTML -> Markdown converter (mappings/transforms/html_markdown.py) behind Aha!'s and
Productboard's description transforms: same output from both, safe, escaped, deterministic."""

from __future__ import annotations

import re

import pytest

from mappings.context import MappingContext
from mappings.transforms.aha import aha_html_to_markdown
from mappings.transforms.html_markdown import html_to_markdown
from mappings.transforms.productboard import productboard_html

AHA = MappingContext.coerce({"source": "aha", "tool": "aha"})
PB = MappingContext.coerce({"source": "pb", "tool": "productboard"})

CASES = [
    # Markdown specials typed as text stay text (issue 13: this differed between the two tools).
    ("<p>Use *stars*</p>", "Use \\*stars\\*"),
    ("<p>a_b [x] `c` &lt;d&gt;</p>", "a\\_b \\[x\\] \\`c\\` \\<d\\>"),
    ("<p>[click](javascript:alert(1))</p>", "\\[click\\](javascript:alert(1))"),
    ("<p>a <strong>b</strong> <em>c</em> <s>d</s></p><p>e</p>", "a **b** _c_ ~~d~~\n\ne"),
    ("<ul><li>x</li><li>y<ol><li>z</li><li>w</li></ol></li></ul>", "- x\n- y\n  1. z\n  2. w"),
    ("<p>a</p>\n<ul>\n <li>x</li>\n <li>y</li>\n</ul>\n<p> b </p>", "a\n\n- x\n- y\n\nb"),
    ("<pre>a  b\n c</pre>", "```\na  b\n c\n```"),
    ("<p>run <code>make</code></p>", "run `make`"),
    ("<h2>Title</h2>text<br>more", "## Title\n\ntext  \nmore"),
    ("<blockquote>q</blockquote>after", "> q\n\nafter"),
    # Links kept with safe schemes only; parentheses in URLs cannot end the link early.
    ('<a href="https://e.com/x_y">l_i</a> <a href="javascript:alert(1)">bad</a>', "[l\\_i](https://e.com/x_y) bad"),
    (
        '<a href="mailto:a@e.com">mail</a> <a href="/wiki/A_(b)">rel</a>',
        "[mail](mailto:a@e.com) [rel](/wiki/A_%28b%29)",
    ),
    ('<a href="data:text/html,x">d</a><a href=" vbscript:x">v</a>', "dv"),
    (
        '<img src="https://e.com/i.png" alt="pic"><img src="data:x" alt="p"><img src="/rel.png">',
        "![pic](https://e.com/i.png)",
    ),
    # Active or embedded content never leaks, not even as text.
    ("<script>alert(1)</script><style>p{}</style>ok &amp; fine", "ok & fine"),
    ("<noscript>x</noscript><iframe>y</iframe><svg><text>z</text></svg><template>t</template>kept", "kept"),
    ("<p>unknown <span class='x'>tags</span> <marquee>keep text</marquee></p>", "unknown tags keep text"),
    ("plain *text* ", "plain *text*"),
]


@pytest.mark.parametrize(("html", "markdown"), CASES)
def test_html_to_markdown(html: str, markdown: str) -> None:
    assert html_to_markdown(html) == markdown


@pytest.mark.parametrize(("html", "markdown"), CASES)
def test_aha_and_productboard_convert_alike(html: str, markdown: str) -> None:
    assert aha_html_to_markdown(html, AHA) == productboard_html(html, PB) == markdown


def test_conversion_is_deterministic_and_stateless() -> None:
    # One parser per call: an unclosed tag in one description does not bleed into the next.
    assert html_to_markdown("<b>open <script>x") == "**open"
    html = "".join(html for html, _ in CASES)
    first = html_to_markdown(html)
    assert all(html_to_markdown(html) == first for _ in range(3))
    # No live link to an unsafe scheme, whatever the mix (the typed-as-text one is escaped).
    assert re.search(r"(?<!\\)\]\((javascript|data|vbscript):", first) is None


def test_empty_descriptions_are_no_value() -> None:
    assert aha_html_to_markdown("<p> </p>", AHA) is None
    assert productboard_html("<script>x</script>", PB) is None
    assert productboard_html(3, PB) is None

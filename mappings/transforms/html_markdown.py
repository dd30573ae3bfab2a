"""The one HTML -> Markdown converter, for every tool whose rich text is HTML (Aha!, Productboard).

Why in-house rather than markdownify or html2text (figures: `bench/html_markdown.py`):

- speed: on the real Aha! and Productboard descriptions this converter does about 6x the
  conversions per second of markdownify (BeautifulSoup underneath) and about 2x html2text;
  it runs once per record on the normalisation path, whose budget is tens of microseconds;
- safety: both libraries keep `javascript:` links and `data:` images and keep the text of
  `<iframe>`, `<noscript>` and `<svg>`, so either would need the same overrides written here.

Output rules: text is kept, markup becomes Markdown, no raw HTML survives (unknown tags drop to
their text; scripts, styles and embedded documents drop entirely), Markdown specials in text are
escaped (`<p>Use *stars*</p>` -> `Use \\*stars\\*`, as markdownify writes it), links keep only
http(s), mailto and relative URLs and images only http(s). Plain text without tags or entities
is returned trimmed, unescaped. The result depends on the input alone.

Rich-text subsets: Aha! https://www.aha.io/api (`description.body`, note custom fields) and
Productboard https://developer.productboard.com/page/schema (p, b/i/u/s, a, lists, headings,
code, br, img).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

_INLINE = {"b": "**", "strong": "**", "i": "_", "em": "_", "s": "~~", "strike": "~~", "del": "~~"}
_BLOCKS = {"p", "div", "section", "article", "header", "footer", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}
# Elements whose content is never text for a reader (and may be active content).
_DROP = {"script", "style", "head", "title", "template", "iframe", "object", "svg", "noscript"}
_LINK_SCHEMES = {"http", "https", "mailto", ""}  # "" = relative (`/x`, `#anchor`)
_IMAGE_SCHEMES = {"http", "https"}
# Escaped in text so that text never becomes markup (a `[x](javascript:...)` typed as text stays text).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#~|])")
_SPACES = re.compile(r"\s+")
_TRAILING_BLANKS = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")
# After these, text starts a line (or a list item / quote): its leading space is dropped.
_LINE_STARTS = ("\n", "> ", "- ", ". ", "```\n")


def _safe_url(url: str | None, schemes: set[str]) -> str | None:
    if not url:
        return None
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if scheme not in schemes:
        return None  # javascript:, data:, vbscript: ... never reach a Markdown renderer
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


class _Markdown(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.newlines = 0  # newlines at the end of `out` (0 while `out` holds no text yet: see _newline)
        self.started = False
        self.lists: list[list[int]] = []  # per open list: [kind (0 ul, 1 ol), counter]
        self.links: list[str | None] = []
        self.drop = 0
        self.pre = 0

    def _write(self, text: str) -> None:
        if not text:
            return
        self.out.append(text)
        stripped = text.rstrip("\n")
        if stripped:
            self.started = True
            self.newlines = len(text) - len(stripped)
        else:
            self.newlines += len(text)

    def _newline(self, count: int = 1) -> None:
        """End the current line with at least `count` newlines (none before the first text)."""
        if self.started and self.newlines < count:
            self._write("\n" * (count - self.newlines))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self.drop += 1
        elif self.drop:
            return
        elif tag in _INLINE:
            self._write(_INLINE[tag])
        elif tag in _BLOCKS:
            self._newline(2)
            if tag[0] == "h" and tag[1:].isdigit():
                self._write("#" * int(tag[1:]) + " ")
        elif tag == "br":
            self._write("\n" if self.pre else "  \n")
        elif tag == "code":
            if not self.pre:
                self._write("`")
        elif tag == "pre":
            self._newline(2)
            self._write("```\n")
            self.pre += 1
        elif tag == "blockquote":
            self._newline(2)
            self._write("> ")
        elif tag in ("ul", "ol"):
            self._newline(1 if self.lists else 2)
            self.lists.append([1 if tag == "ol" else 0, 0])
        elif tag == "li":
            self._newline(1)
            if self.lists and self.lists[-1][0] == 1:
                self.lists[-1][1] += 1
                bullet = f"{self.lists[-1][1]}. "
            else:
                bullet = "- "
            self._write("  " * max(0, len(self.lists) - 1) + bullet)
        elif tag == "a":
            url = _safe_url(dict(attrs).get("href"), _LINK_SCHEMES)
            self.links.append(url)
            if url:
                self._write("[")
        elif tag == "img":
            attr = dict(attrs)
            url = _safe_url(attr.get("src"), _IMAGE_SCHEMES)
            if url:
                alt = _MD_SPECIAL.sub(r"\\\1", (attr.get("alt") or "").strip())
                self._write(f"![{alt}]({url})")
        elif tag == "hr":
            self._newline(2)
            self._write("---")
            self._newline(2)
        elif tag in ("td", "th"):
            self._write(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.drop = max(0, self.drop - 1)
        elif self.drop:
            return
        elif tag in _INLINE:
            self._write(_INLINE[tag])
        elif tag in _BLOCKS or tag == "blockquote":
            self._newline(2)
        elif tag == "code":
            if not self.pre:
                self._write("`")
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self._newline(1)
            self._write("```")
            self._newline(2)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._newline(1 if self.lists else 2)
        elif tag == "a" and self.links:
            url = self.links.pop()
            if url:
                self._write(f"]({url})")

    def handle_data(self, data: str) -> None:
        if self.drop:
            return
        if self.pre:
            self._write(data)
            return
        text = _SPACES.sub(" ", data)
        if not self.started or self.out[-1].endswith(_LINE_STARTS):
            text = text.lstrip()
        self._write(_MD_SPECIAL.sub(r"\\\1", text))

    def markdown(self) -> str:
        text = "".join(self.out)
        # Keep Markdown hard breaks (two trailing spaces), drop any other trailing blanks.
        text = _TRAILING_BLANKS.sub(lambda m: "  \n" if m.group(0).startswith("  ") else "\n", text)
        return _BLANK_LINES.sub("\n\n", text).strip()


def html_to_markdown(html: str) -> str:
    """Markdown for an HTML fragment; text without tags or entities is returned trimmed."""
    if "<" not in html and "&" not in html:
        return html.strip()
    parser = _Markdown()
    parser.feed(html)
    parser.close()
    return parser.markdown()

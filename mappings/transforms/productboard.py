"""Productboard transforms: HTML descriptions, owner, timeframe dates, hierarchy, releases,
custom-field values and Jira links.

Input is a feature from `GET /features` / `GET /features/{id}` plus the connector's `_opshub`
enrichment (shape in mappings/productboard.yaml). Rich text is the limited HTML subset of
https://developer.productboard.com/page/schema (p, b/i/u/s, a, lists, headings, code, br, img).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from mappings.context import MappingContext
from mappings.transforms import transform

# ---------------------------------------------------------------- HTML -> Markdown

_INLINE = {"b": "**", "strong": "**", "i": "_", "em": "_", "s": "~~", "strike": "~~", "del": "~~"}
_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "pre", "blockquote", "table", "tr", "hr"}
_DROP = {"script", "style", "head", "title", "iframe", "object", "noscript", "template"}
_SAFE_SCHEMES = {"http", "https", "mailto", ""}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#~|])")


def _safe_url(url: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SAFE_SCHEMES:
        return None  # javascript:, data:, vbscript: ... never reach a Markdown renderer
    return url.replace(" ", "%20").replace(")", "%29").replace("(", "%28")


class _Markdown(HTMLParser):
    """A small, forgiving HTML -> Markdown writer. Unknown tags keep their text; dropped tags
    (script, style ...) lose it; link and image URLs with unsafe schemes are removed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.lists: list[list[Any]] = []  # [kind: str, counter: int]
        self.drop = 0
        self.pre = 0
        self.quote = 0
        self.links: list[str | None] = []

    # -- writing helpers
    def _text(self, text: str) -> None:
        self.out.append(text)

    def _break_block(self) -> None:
        self.out.append("\n\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self.drop += 1
            return
        if self.drop:
            return
        attr = dict(attrs)
        if tag in _INLINE:
            self._text(_INLINE[tag])
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._break_block()
            self._text("#" * int(tag[1]) + " ")
        elif tag in ("p", "div", "table", "tr"):
            self._break_block()
        elif tag == "br":
            self._text("  \n" if not self.pre else "\n")
        elif tag == "hr":
            self._break_block()
            self._text("---")
            self._break_block()
        elif tag in ("ul", "ol"):
            if not self.lists:
                self._break_block()
            self.lists.append([tag, 0])
        elif tag == "li":
            depth = max(0, len(self.lists) - 1)
            kind: list[Any] = self.lists[-1] if self.lists else ["ul", 0]
            kind[1] += 1
            bullet = f"{kind[1]}. " if kind[0] == "ol" else "- "
            self._text("\n" + "  " * depth + bullet)
        elif tag == "pre":
            self.pre += 1
            self._break_block()
            self._text("```\n")
        elif tag == "code" and not self.pre:
            self._text("`")
        elif tag == "blockquote":
            self.quote += 1
            self._break_block()
            self._text("> ")
        elif tag == "a":
            url = _safe_url(attr.get("href"))
            self.links.append(url)
            if url:
                self._text("[")
        elif tag == "img":
            url = _safe_url(attr.get("src"))
            if url:
                alt = _MD_SPECIAL.sub(r"\\\1", attr.get("alt") or "")
                self._text(f"![{alt}]({url})")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.drop = max(0, self.drop - 1)
            return
        if self.drop:
            return
        if tag in _INLINE:
            self._text(_INLINE[tag])
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            if not self.lists:
                self._break_block()
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self._text("\n```")
            self._break_block()
        elif tag == "code" and not self.pre:
            self._text("`")
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._break_block()
        elif tag == "a":
            url = self.links.pop() if self.links else None
            if url:
                self._text(f"]({url})")
        elif tag in _BLOCKS and tag != "li":
            self._break_block()

    def handle_data(self, data: str) -> None:
        if self.drop:
            return
        if self.pre:
            self._text(data)
            return
        text = re.sub(r"\s+", " ", data)
        if self.lists and not text.strip():
            return
        self._text(_MD_SPECIAL.sub(r"\\\1", text))

    def markdown(self) -> str:
        text = "".join(self.out)
        text = re.sub(r"[ \t]+\n", lambda m: "  \n" if m.group(0).startswith("  ") else "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
        lines = [line.rstrip() if not line.endswith("  ") else line for line in text.strip().split("\n")]
        return "\n".join(line.lstrip(" ") if not line.lstrip(" ").startswith(("- ", "1")) else line for line in lines)


def html_to_markdown(html: str) -> str:
    parser = _Markdown()
    parser.feed(html)
    parser.close()
    return parser.markdown()


@transform("productboard_html_to_markdown")
def productboard_html(value: Any, ctx: MappingContext) -> str | None:
    """Productboard's HTML subset -> Markdown (safe: no raw HTML, no unsafe URL schemes)."""
    if not isinstance(value, str):
        return None
    if "<" not in value and "&" not in value:
        return value.strip() or None
    return html_to_markdown(value) or None


# ---------------------------------------------------------------- fields


@transform("productboard_person")
def productboard_person(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`owner: {email}` -> PersonRef (Productboard gives only the email; obfuscated ones are kept
    as the identity's id but not as an email)."""
    if not isinstance(value, dict):
        return None
    email = value.get("email")
    if not isinstance(email, str) or not email:
        return None
    if "@" not in email:
        return {"native_id": email}
    return {"native_id": email, "email": email}


@transform("productboard_people")
def productboard_people(value: Any, ctx: MappingContext) -> list[dict[str, Any]] | None:
    person = productboard_person(value, ctx)
    return [person] if person else None


@transform("productboard_date")
def productboard_date(value: Any, ctx: MappingContext) -> str | None:
    """Timeframe dates: `YYYY-MM-DD`, or the string "none" for unset."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    return None


@transform("productboard_parent")
def productboard_parent(value: Any, ctx: MappingContext, kinds: list[str] | None = None) -> str | None:
    """`parent` -> hub id of the parent when it is one of `kinds` (default: feature only, as
    components and products are not items in the store)."""
    if not isinstance(value, dict):
        return None
    for kind in kinds or ["feature"]:
        ref = value.get(kind)
        if isinstance(ref, dict) and ref.get("id"):
            return f"{ctx.source}:{ref['id']}"
    return None


@transform("productboard_release")
def productboard_release(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`_opshub.release` -> `{id, name, release_on}` (release_on = the timeframe's end)."""
    if not isinstance(value, dict) or not value.get("id"):
        return None
    return {
        "id": str(value["id"]),
        "name": value.get("name"),
        "release_on": productboard_date(value.get("endDate"), ctx),
    }


@transform("productboard_custom_values")
def productboard_custom_values(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`_opshub.custom_fields` -> `{field name: value}` (all custom fields read)."""
    if not isinstance(value, list):
        return None
    out: dict[str, Any] = {}
    for entry in value:
        if isinstance(entry, dict) and entry.get("value") not in (None, "", []):
            out[str(entry.get("name") or entry.get("id"))] = entry["value"]
    return out or None


@transform("productboard_jira_links")
def productboard_jira_links(
    value: Any, ctx: MappingContext, type: str = "implemented_by"
) -> list[dict[str, Any]] | None:
    """`_opshub.jira` -> links. The API gives the issue key and id, not the site: with the
    source's `jira_base_url` the connector adds the browse URL; without it the link's url is the
    URN `jira:KEY`, which the hub resolves by key."""
    if not isinstance(value, list):
        return None
    links = []
    for entry in value:
        if not isinstance(entry, dict) or not entry.get("issueKey"):
            continue
        links.append({"type": type, "url": entry.get("url") or f"jira:{entry['issueKey']}"})
    return links or None


@transform("productboard_jira_keys")
def productboard_jira_keys(value: Any, ctx: MappingContext) -> list[str] | None:
    if not isinstance(value, list):
        return None
    keys = [str(e["issueKey"]) for e in value if isinstance(e, dict) and e.get("issueKey")]
    return keys or None


@transform("productboard_hierarchy")
def productboard_hierarchy(value: Any, ctx: MappingContext) -> list[str] | None:
    """`_opshub.hierarchy` -> names from the product down to the parent (`Web / Payments`)."""
    if not isinstance(value, list):
        return None
    names = [str(e.get("name")) for e in value if isinstance(e, dict) and e.get("name")]
    return names or None

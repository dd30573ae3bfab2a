"""Redmine transforms: times in both API date styles, issue URL and key, people, text format.

Redmine 2.x and later send ISO 8601 (`2014-01-31T10:47:41Z`, dates `2014-01-31`); Redmine
1.x sent `2011/01/12 16:00:31 -0800` and dates as `2011/01/12`. Both are accepted.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform
from mappings.transforms.common import parse_datetime
from mappings.transforms.textile import textile_to_markdown

_OLD_TIME = re.compile(r"^(\d{4})/(\d{2})/(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\s*([+-]\d{2}:?\d{2}|Z|UTC))?$")
_OLD_DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")


def parse_redmine_time(value: Any) -> datetime | None:
    """A Redmine timestamp in either style, as an aware datetime (no zone = UTC)."""
    if not isinstance(value, str) or not value.strip():
        return parse_datetime(value) if not isinstance(value, str) else None
    text = value.strip()
    old = _OLD_TIME.match(text)
    if old:
        zone = old.group(7) or "+00:00"
        zone = "+00:00" if zone in ("Z", "UTC") else zone
        if ":" not in zone:
            zone = f"{zone[:3]}:{zone[3:]}"
        y, mo, d, h, mi, s = old.group(1, 2, 3, 4, 5, 6)
        return datetime.fromisoformat(f"{y}-{mo}-{d}T{h}:{mi}:{s}{zone}")
    return parse_datetime(text)


@transform("redmine_datetime")
def redmine_datetime(value: Any, ctx: MappingContext) -> datetime | None:
    """`created_on` / `updated_on` / `closed_on` in the ISO or the 1.x style."""
    moment = parse_redmine_time(value)
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@transform("redmine_date")
def redmine_date(value: Any, ctx: MappingContext) -> date | None:
    """`start_date` / `due_date` as `YYYY-MM-DD` or `YYYY/MM/DD`."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    old = _OLD_DATE.match(text)
    if old:
        return date(int(old.group(1)), int(old.group(2)), int(old.group(3)))
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = parse_redmine_time(text)
    return None if moment is None else moment.date()


@transform("redmine_url")
def redmine_url(value: Any, ctx: MappingContext) -> str | None:
    """The issue's web page: `{base_url}/issues/{id}` (None without a base URL)."""
    if value is None or isinstance(value, bool | dict | list) or not ctx.base_url:
        return None
    return f"{ctx.base_url}/issues/{value}"


@transform("redmine_key")
def redmine_key(value: Any, ctx: MappingContext) -> str | None:
    """The key Redmine users write: `#123`."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    return f"#{value}"


def _person(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("id") is None:
        return None
    out: dict[str, Any] = {"native_id": str(value["id"]), "name": value.get("name")}
    if value.get("mail"):  # only when the API user may see addresses (admin)
        out["email"] = value["mail"]
    return out


@transform("redmine_person")
def redmine_person(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`author` / `assigned_to` ({id, name}) as a PersonRef. A group assignee is kept the same way."""
    return _person(value)


@transform("redmine_people")
def redmine_people(value: Any, ctx: MappingContext) -> list[dict[str, Any]] | None:
    """`assigned_to` (one user or group) as a list of PersonRefs."""
    person = _person(value)
    return [person] if person else None


@transform("redmine_text")
def redmine_text(value: Any, ctx: MappingContext) -> str | None:
    """`{text, format}` -> Markdown: Textile is converted, Markdown (and CommonMark) passes through.

    `format` is the source's `params.text_formatting` (`textile` or `markdown`; Redmine's
    "Text formatting" setting is per server, not per issue). Empty text is no description.
    """
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return None
    text = value["text"]
    if not text.strip():
        return None
    style = str(value.get("format") or "textile").strip().lower()
    if style == "textile":
        return textile_to_markdown(text) or None
    return str(text).replace("\r\n", "\n")

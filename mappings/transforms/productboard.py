"""Productboard transforms: HTML descriptions, owner, timeframe dates, hierarchy, releases,
custom-field values and Jira links.

Input is a feature from `GET /features` / `GET /features/{id}` plus the connector's `_opshub`
enrichment (shape in mappings/productboard.yaml). Rich text is the limited HTML subset of
https://developer.productboard.com/page/schema (p, b/i/u/s, a, lists, headings, code, br, img).
"""

from __future__ import annotations

import re
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform
from mappings.transforms.html_markdown import html_to_markdown


@transform("productboard_html_to_markdown")
def productboard_html(value: Any, ctx: MappingContext) -> str | None:
    """Productboard's HTML subset -> Markdown (mappings/transforms/html_markdown.py, shared with Aha!)."""
    if not isinstance(value, str):
        return None
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

"""Aha! transforms: record type, people, workspace, release, links, custom fields, HTML -> Markdown.

Aha! API v1 record shapes: https://www.aha.io/api (features, epics, initiatives, ideas).
"""

from __future__ import annotations

import re
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform
from mappings.transforms.html_markdown import html_to_markdown

# Reference numbers: PRJ1-12 (feature), PRJ1-E-3 (epic), PRJ1-S-1 (initiative), PRJ1-I-7 (idea),
# PRJ1-12-2 (requirement). Used only when the connector's `_opshub.type` is absent.
_REFERENCE_KINDS = (
    (re.compile(r"^[A-Z][A-Z0-9]*-E-\d+$"), "epic"),
    (re.compile(r"^[A-Z][A-Z0-9]*-S-\d+$"), "initiative"),
    (re.compile(r"^[A-Z][A-Z0-9]*-I-\d+$"), "idea"),
    (re.compile(r"^[A-Z][A-Z0-9]*-\d+-\d+$"), "requirement"),
    (re.compile(r"^[A-Z][A-Z0-9]*-\d+$"), "feature"),
)


@transform("aha_record_type")
def aha_record_type(value: Any, ctx: MappingContext) -> str | None:
    """The record's type: `_opshub.type` from the connector, else read off `reference_num`."""
    if not isinstance(value, dict):
        return None
    tagged = (value.get("_opshub") or {}).get("type") if isinstance(value.get("_opshub"), dict) else None
    if isinstance(tagged, str) and tagged:
        return tagged
    reference = value.get("reference_num")
    if isinstance(reference, str):
        for pattern, kind in _REFERENCE_KINDS:
            if pattern.match(reference):
                return kind
    return None


@transform("aha_person")
def aha_person(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`{id, name, email}` (assigned_to_user, created_by_user, idea portal users) -> PersonRef."""
    if not isinstance(value, dict):
        return None
    native_id = value.get("id")
    email = value.get("email")
    if native_id is None and not email:
        return None
    return {
        "native_id": None if native_id is None else str(native_id),
        "name": value.get("name"),
        "email": email or None,
    }


@transform("aha_people")
def aha_people(value: Any, ctx: MappingContext) -> list[dict[str, Any]] | None:
    person = aha_person(value, ctx)
    return [person] if person else None


@transform("aha_workspace")
def aha_workspace(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`project` / `product` `{id, reference_prefix, name}`, else `product_id` -> Container."""
    if not isinstance(value, dict):
        return None
    workspace = value.get("project") or value.get("product")
    if isinstance(workspace, dict) and workspace.get("id") is not None:
        return {"id": str(workspace["id"]), "key": workspace.get("reference_prefix"), "name": workspace.get("name")}
    if value.get("product_id") is not None:
        return {"id": str(value["product_id"])}
    return None


@transform("aha_release")
def aha_release(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`release {id, name, release_date, parking_lot}` -> Release; a parking lot is no release."""
    if not isinstance(value, dict) or value.get("id") is None or value.get("parking_lot") is True:
        return None
    when = value.get("release_date")
    return {
        "id": str(value["id"]),
        "name": value.get("name"),
        "release_on": when if isinstance(when, str) and len(when) == 10 else None,
    }


@transform("aha_ref")
def aha_ref(value: Any, ctx: MappingContext) -> str | None:
    """A reference object `{id, reference_num, ...}` (epic, initiative, feature) -> hub id."""
    if isinstance(value, dict) and value.get("id") is not None and str(value["id"]) != "":
        return f"{ctx.source}:{value['id']}"
    return None


def _integration(record: dict[str, Any], services: list[str]) -> list[tuple[str, str, str]]:
    """(service, name, value) of a record's integration_fields for `services`."""
    found = record.get("integration_fields")
    out = []
    if isinstance(found, list):
        for entry in found:
            if not isinstance(entry, dict):
                continue
            service = str(entry.get("service_name") or "").lower()
            value = entry.get("value")
            if service in services and isinstance(value, str | int) and str(value).strip():
                out.append((service, str(entry.get("name") or ""), str(value).strip()))
    return out


@transform("aha_jira_keys")
def aha_jira_keys(value: Any, ctx: MappingContext) -> list[str] | None:
    """Issue keys Aha!'s Jira integration stored on the record (`integration_fields` name `key`)."""
    if not isinstance(value, dict):
        return None
    keys = [v for service, name, v in _integration(value, ["jira"]) if name == "key"]
    return list(dict.fromkeys(keys)) or None


@transform("aha_links")
def aha_links(
    value: Any,
    ctx: MappingContext,
    services: list[str] | None = None,
    jira_base_url: str | None = None,
) -> list[dict[str, Any]] | None:
    """Links from one Aha! record (the whole record is the value):

    - `integration_fields` of `services` (default: jira) -> `implemented_by` with the `url` Aha!
      stored; a Jira `key` without a url becomes `{jira_base_url}/browse/{key}` when
      `jira_base_url` is given, else the URN `jira:{key}` (the hub resolves it by key);
    - `duplicate_of {id}` (a merged idea) -> `duplicates` the idea it was merged into;
    - `feature` / `epic` of an idea (promoted) -> `implemented_by` that record.
    """
    if not isinstance(value, dict):
        return None
    wanted = [s.lower() for s in (services or ["jira"])]
    links: list[dict[str, Any]] = []
    urls: list[str] = []
    keys: list[str] = []
    for service, name, v in _integration(value, wanted):
        if name == "url" and v.startswith(("https://", "http://")):
            urls.append(v)
        elif name == "key" and service == "jira":
            keys.append(v)
    base = (jira_base_url or "").rstrip("/")
    for key in keys:
        if not any(u.rstrip("/").endswith("/" + key) for u in urls):
            urls.append(f"{base}/browse/{key}" if base else f"jira:{key}")
    links += [{"type": "implemented_by", "url": u} for u in dict.fromkeys(urls)]
    original = value.get("duplicate_of")
    if isinstance(original, dict) and original.get("id") is not None:
        links.append({"type": "duplicates", "target_id": f"{ctx.source}:{original['id']}"})
    if aha_record_type(value, ctx) == "idea":
        for key in ("feature", "epic"):
            promoted = value.get(key)
            if isinstance(promoted, dict) and promoted.get("id") is not None:
                links.append({"type": "implemented_by", "target_id": f"{ctx.source}:{promoted['id']}"})
    return links or None


@transform("aha_custom_fields")
def aha_custom_fields(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """`custom_fields [{key, name, value, type}]` -> `{key: value}` (notes as Markdown; scorecards
    as their score; attachment fields as file names)."""
    if not isinstance(value, list):
        return None
    out: dict[str, Any] = {}
    for entry in value:
        if not isinstance(entry, dict):
            continue
        key = entry.get("key") or entry.get("name")
        if not key:
            continue
        kind = entry.get("type")
        if kind == "attachment":
            files = [a.get("file_name") for a in entry.get("attachments") or [] if isinstance(a, dict)]
            field_value: Any = [f for f in files if f] or None
        elif kind == "note":
            field_value = html_to_markdown(str(entry.get("value") or entry.get("body") or "")) or None
        else:
            field_value = entry.get("value")
        if field_value is not None and field_value != "" and field_value != []:
            out[str(key)] = field_value
    return out or None


@transform("aha_html_to_markdown")
def aha_html_to_markdown(value: Any, ctx: MappingContext) -> str | None:
    """Aha!'s rich text (HTML, e.g. `description.body`) -> Markdown (mappings/transforms/html_markdown.py);
    plain text passes through."""
    if not isinstance(value, str):
        return None
    return html_to_markdown(value) or None

"""Small builders for test WorkItems (our own data; real payloads stay in ../shared)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.schema import WorkItem

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def make_item(
    native_id: str | int, *, minutes: int = 0, source: str = "acme-jira", tool: str = "jira", **fields: Any
) -> WorkItem:
    data: dict[str, Any] = {
        "source": source,
        "tool": tool,
        "native_id": str(native_id),
        "key": f"PROJ-{native_id}",
        "title": f"Item {native_id}",
        "status": {"category": "todo", "name": "To Do"},
        "updated_at": BASE_TIME + timedelta(minutes=minutes),
    }
    data.update(fields)
    return WorkItem.model_validate(data)

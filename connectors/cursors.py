"""Incremental sync cursors (Airbyte's `DatetimeBasedCursor` idea, kept small).

A `DatetimeCursor` remembers the newest update time seen (with the record id as a tie-break, so
the cursor is a total order even when many records share a timestamp) and serialises to the
opaque string the hub stores. The next run asks the tool for records updated at or after
`since(overlap)`: the cursor minus a lookback window that covers clock skew between the tool's
nodes, transactions that commit late with an older `updated` time, and rounding of the tool's
filter (Jira JQL has minute precision). Re-reading that window is harmless because the store
upserts only if newer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from connectors.base import ConnectorError


def parse_time(value: str) -> datetime:
    """A tool's timestamp (ISO 8601, with `Z`, `+00:00` or Jira's `-0800`) as aware UTC."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _id_key(native_id: str) -> tuple[int, int | str]:
    # Numeric ids compare as numbers ("9" < "10"); others as text, after all numeric ones.
    return (0, int(native_id)) if native_id.isdigit() else (1, native_id)


class InvalidCursor(ConnectorError):
    """A stored cursor string this connector cannot read (use a full sync to recover)."""


@dataclass
class DatetimeCursor:
    """Newest `(updated, id)` seen so far; `None` fields mean "nothing seen yet" (full sync)."""

    updated: datetime | None = None
    last_id: str | None = None

    def observe(self, updated: datetime, native_id: str) -> None:
        """Advance to `(updated, native_id)` if it is newer than what was seen."""
        updated = updated.astimezone(UTC)
        if self.updated is None or (updated, _id_key(native_id)) > (self.updated, _id_key(self.last_id or "")):
            self.updated, self.last_id = updated, native_id

    def since(self, overlap: timedelta) -> datetime | None:
        """Where the next incremental read starts: cursor minus the lookback window."""
        return None if self.updated is None else self.updated - overlap

    def serialize(self) -> str | None:
        if self.updated is None:
            return None
        body: dict[str, Any] = {"v": 1, "updated": self.updated.isoformat(timespec="microseconds")}
        if self.last_id is not None:
            body["id"] = self.last_id
        return orjson.dumps(body).decode()

    @classmethod
    def parse(cls, cursor: str | None) -> DatetimeCursor:
        if cursor is None:
            return cls()
        try:
            body = orjson.loads(cursor)
            if not isinstance(body, dict) or body.get("v") != 1:
                raise ValueError("unknown cursor version")
            return cls(updated=parse_time(body["updated"]), last_id=body.get("id"))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCursor(f"unreadable cursor {cursor[:100]!r}: {exc}; run a full sync") from exc

    def copy(self) -> DatetimeCursor:
        return DatetimeCursor(self.updated, self.last_id)


__all__ = ["DatetimeCursor", "InvalidCursor", "parse_time"]

"""The hub's clock: one `utcnow` every module imports, so tests and the store agree on UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)

"""The store: one object per database, grouping the write path and the read queries."""

from __future__ import annotations

from sqlalchemy import Engine

from hub.db.engine import SQLITE_CACHE_MIB, SQLITE_MMAP_MIB, make_engine, migrate, schema_status
from hub.store.apply import ApplyResult
from hub.store.cursors import Checkpoint
from hub.store.items import ItemStore
from hub.store.keys import ApiKeyStore
from hub.store.queries import InvalidCursor, ItemQueries, ItemQuery

__all__ = ["ApplyResult", "Checkpoint", "InvalidCursor", "ItemQuery", "Store"]


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.items = ItemStore(engine)
        self.queries = ItemQueries(engine)
        self.keys = ApiKeyStore(engine)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate_schema: bool = True,
        sqlite_cache_mib: int = SQLITE_CACHE_MIB,
        sqlite_mmap_mib: int = SQLITE_MMAP_MIB,
    ) -> Store:
        store = cls(make_engine(url, sqlite_cache_mib=sqlite_cache_mib, sqlite_mmap_mib=sqlite_mmap_mib))
        if migrate_schema:
            migrate(store.engine)
        return store

    def is_ready(self) -> tuple[bool, str]:
        """Database reachable and migrated to the code's newest revision."""
        try:
            current, head = schema_status(self.engine)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; say which
            return False, f"database unreachable: {type(exc).__name__}"
        if current != head:
            return False, f"schema at revision {current}, code expects {head}: run `opshub migrate`"
        return True, "ok"

    def close(self) -> None:
        self.engine.dispose()

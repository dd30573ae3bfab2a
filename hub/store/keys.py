"""API keys: only a hash of each key's secret is stored; the key is shown once at creation.

A key looks like `ohk_<id>_<secret>`. The id finds the row; the secret is compared by hash
in constant time. SHA-256 (not a slow password hash) is right here: the secret is 256 random
bits, so there is nothing to brute-force, and every API request verifies one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, select, update

from hub.db.engine import write_transaction
from hub.db.tables import api_keys
from hub.store.clock import utcnow

KEY_PREFIX = "ohk"
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is refreshed at most this often


class Scope(StrEnum):
    read = "read"
    admin = "admin"

    def allows(self, needed: Scope) -> bool:
        return self is Scope.admin or needed is Scope.read


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, scope: Scope, name: str = "") -> tuple[ApiKey, str]:
        """Create a key; returns it and its full token (never stored, never shown again)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        with write_transaction(self.engine) as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key_id, name=name, scope=scope.value, secret_hash=_hash(secret), created_at=now
                )
            )
        return ApiKey(key_id, name, scope, now, None, None), f"{KEY_PREFIX}_{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [ApiKey(r.id, r.name, Scope(r.scope), r.created_at, r.revoked_at, r.last_used_at) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return result.rowcount > 0

    def verify(self, token: str) -> ApiKey | None:
        """The live key this token belongs to, or None."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        _, key_id, secret = parts
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
            with write_transaction(self.engine) as conn:
                conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))
        return ApiKey(row.id, row.name, Scope(row.scope), row.created_at, None, now)

"""Dashboard sessions: sign in once with an API key, then a signed, expiring cookie.

Server-side sessions: the cookie carries a random 256-bit token plus an HMAC signature of
it; the database keeps only the token's SHA-256 (table web_sessions) with the key id, the
scope and the expiry. A session is live while its row exists, has not expired, and its API
key is not revoked, so logout (row deleted) and `opshub keys revoke` both end it at once.

The signature lets the hub reject a forged or mangled cookie before touching the database;
the signing key is HUB_WEB_SECRET or, when unset, one generated once and kept in the table
web_secrets, so every process on the same database signs and checks alike.

CSRF tokens are derived from the session token (HMAC with a separate label), so each session
has its own and nothing more is stored.

The sign-in form has no session yet, so it is guarded against login CSRF (another site
signing the browser in with the attacker's key) by a signed double-submit nonce: GET /signin
sets a random nonce, signed, in the HttpOnly, SameSite=Strict cookie `opshub_signin` and puts
the same nonce in the form; POST /signin wants both, equal, with a valid signature. Another
site can neither read the cookie nor make the browser send it with a cross-site POST, and it
cannot mint a signed one. (OWASP CSRF cheat sheet, "signed double-submit cookie":
https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from hub.db.engine import write_transaction
from hub.db.tables import api_keys, web_secrets, web_sessions
from hub.store.items import utcnow
from hub.store.keys import ApiKey, Scope

COOKIE_NAME = "opshub_session"
SIGNIN_COOKIE_NAME = "opshub_signin"
SIGNIN_NONCE_SECONDS = 3600
"""How long a sign-in form stays good: past that, the POST asks the visitor to reload the form."""
_SECRET_NAME = "session_signing_key"  # noqa: S105 - the row's name, not a secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class WebSession:
    """A live dashboard session."""

    token: str
    key_id: str
    scope: Scope
    expires_at: datetime
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.scope.allows(Scope.admin)


class WebSessionStore:
    def __init__(self, engine: Engine, secret: str | None = None) -> None:
        self.engine = engine
        self._secret = secret.encode() if secret else None

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = self._shared_secret().encode()
        return self._secret

    def _shared_secret(self) -> str:
        """The signing key kept in the database, created by whichever process needs it first."""
        with self.engine.connect() as conn:
            found = conn.execute(select(web_secrets.c.value).where(web_secrets.c.name == _SECRET_NAME)).scalar()
        if found is not None:
            return str(found)
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    web_secrets.insert().values(name=_SECRET_NAME, value=secrets.token_hex(32), created_at=utcnow())
                )
        except IntegrityError:
            pass  # another process inserted it first: use theirs
        with self.engine.connect() as conn:
            return str(conn.execute(select(web_secrets.c.value).where(web_secrets.c.name == _SECRET_NAME)).scalar_one())

    def _sign(self, label: str, token: str) -> str:
        return _b64(hmac.new(self.secret, f"{label}:{token}".encode(), hashlib.sha256).digest())

    def create(self, key: ApiKey, lifetime: timedelta, *, now: datetime | None = None) -> str:
        """Open a session for `key`; returns the cookie value (shown to nobody but the browser)."""
        now = now or utcnow()
        token = secrets.token_urlsafe(32)
        with write_transaction(self.engine) as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))  # keep the table small
            conn.execute(
                web_sessions.insert().values(
                    id_hash=_hash(token),
                    key_id=key.id,
                    scope=key.scope.value,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
        return f"{token}.{self._sign('cookie', token)}"

    def _token(self, cookie: str) -> str | None:
        token, _, signature = cookie.partition(".")
        if not token or not hmac.compare_digest(signature, self._sign("cookie", token)):
            return None
        return token

    def resolve(self, cookie: str | None, *, now: datetime | None = None) -> WebSession | None:
        """The live session behind a cookie value, or None (bad signature, unknown, expired, key revoked)."""
        token = self._token(cookie) if cookie else None
        if token is None:
            return None
        now = now or utcnow()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(web_sessions.c.key_id, web_sessions.c.scope, web_sessions.c.expires_at)
                .join(api_keys, api_keys.c.id == web_sessions.c.key_id)
                .where(
                    web_sessions.c.id_hash == _hash(token),
                    web_sessions.c.expires_at > now,
                    api_keys.c.revoked_at.is_(None),
                )
            ).first()
        if row is None:
            return None
        return WebSession(token, row.key_id, Scope(row.scope), row.expires_at, self._sign("csrf", token))

    def end(self, session: WebSession) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _hash(session.token)))

    def signin_nonce(self) -> tuple[str, str]:
        """A fresh sign-in nonce: (the signed cookie value, the value for the form's hidden field)."""
        nonce = secrets.token_urlsafe(32)
        return f"{nonce}.{self._sign('signin', nonce)}", nonce

    def signin_ok(self, cookie: str | None, submitted: str | None) -> bool:
        """The form's nonce equals the cookie's, and the cookie carries our signature."""
        if not cookie or not submitted:
            return False
        nonce, _, signature = cookie.partition(".")
        return bool(nonce) and (
            hmac.compare_digest(signature, self._sign("signin", nonce)) & hmac.compare_digest(nonce, submitted)
        )

    @staticmethod
    def csrf_ok(session: WebSession, submitted: str | None) -> bool:
        return submitted is not None and hmac.compare_digest(session.csrf_token, submitted)

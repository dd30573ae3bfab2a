"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec "Signature scheme").

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is the base64
of its HMAC-SHA256 under the secret's key, sent as `v1,<signature>`. During a rotation both
secrets sign and the header carries both, space-separated, so a receiver verifies with
either. A secret is `whsec_` + base64 of 24 random bytes (the key is the decoded bytes).
Receivers verify with any Standard Webhooks library (the tests use the reference Python one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature_header(msg_id: str, timestamp: int, body: bytes, secrets_: Iterable[str]) -> str:
    """The `webhook-signature` value: one `v1,<base64>` per secret, space-separated."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets_:
        digest = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def webhook_headers(msg_id: str, timestamp: int, body: bytes, secrets_: Iterable[str]) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(msg_id, timestamp, body, secrets_),
        "content-type": "application/json",
    }

"""The hex HMAC-SHA256 signature Jira, GitHub and Linear send, checked in one place
(connectors/base.py `hmac_sha256_matches`): any case and outer whitespace accepted, anything
else refused, including a header with a non-ASCII character (a refusal, never a TypeError)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from connectors.base import Connector, WebhookRejected, hmac_sha256_matches
from connectors.jira import JiraConnector
from connectors.linear import LinearConnector
from tests import test_connector_github, test_connector_jira, test_connector_linear

BODY = b'{"webhookEvent": "jira:issue_updated"}'


def _hex(secret: str, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_the_signature_matches_in_any_case_and_with_outer_whitespace() -> None:
    secret = SecretStr("s3cret")
    good = _hex("s3cret")
    assert hmac_sha256_matches(secret, BODY, good)
    assert hmac_sha256_matches(secret, BODY, f"  {good.upper()}\t")
    assert not hmac_sha256_matches(secret, BODY, _hex("other"))
    assert not hmac_sha256_matches(secret, BODY + b" ", good)
    assert not hmac_sha256_matches(secret, BODY, good[:-1])
    assert not hmac_sha256_matches(secret, BODY, "")


def test_a_non_ascii_signature_is_refused_not_an_error() -> None:
    secret = SecretStr("s3cret")
    assert not hmac_sha256_matches(secret, BODY, "é" * 64)
    assert not hmac_sha256_matches(secret, BODY, _hex("s3cret")[:-1] + "é")


VERIFIERS: dict[str, tuple[Callable[[], Connector], str, str]] = {
    # tool: (connector, signature header, what goes before the hex)
    "jira": (
        lambda: JiraConnector("j", test_connector_jira.config()),
        "X-Hub-Signature",
        "sha256=",
    ),
    "github": (lambda: test_connector_github.connector(), "X-Hub-Signature-256", "sha256="),
    "linear": (
        lambda: LinearConnector("l", test_connector_linear.config()),
        "Linear-Signature",
        "",
    ),
}


@pytest.mark.parametrize("tool", sorted(VERIFIERS))
def test_each_signing_connector_refuses_a_non_ascii_signature(tool: str) -> None:
    make, header, prefix = VERIFIERS[tool]
    connector = make()
    with pytest.raises(WebhookRejected, match="does not match the body"):
        connector.verify({header: prefix + "é" * 64}, BODY)

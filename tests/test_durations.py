"""One `parse_duration` for every duration key (`schedule`, `overlap`, Productboard's windows).

There were two: the connectors' accepted "250ms", "1.5h" and bare numbers of seconds; the
hub's accepted only a whole number and a unit, and refused the rest at start. The kept rule
is the hub's, checked once where the key is declared (`ConnectorConfig`), so a config the
connector accepted can no longer fail later in the hub, and the error names the key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from connectors.base import parse_duration
from hub.config import ConfigError, parse_config

# Spellings both former parsers read the same way.
COMMON = [
    ("90s", timedelta(seconds=90)),
    ("5m", timedelta(minutes=5)),
    ("15m", timedelta(minutes=15)),
    ("2h", timedelta(hours=2)),
    ("1d", timedelta(days=1)),
    (" 30 s ", timedelta(seconds=30)),
    ("0s", timedelta(0)),
]
# Spellings only the connectors' parser read: ambiguous (unit-less) or finer than any
# schedule or overlap needs; refused now, with the spelling to use instead.
CONNECTOR_ONLY = ["250ms", "1.5h", "30", "0.5m"]
NEVER = ["", "soon", "5 minutes", "-5m", "5M", "m"]


@pytest.mark.parametrize(("text", "expected"), COMMON)
def test_whole_number_and_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", CONNECTOR_ONLY + NEVER)
def test_other_spellings_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration like '30s', '15m', '2h' or '1d'"):
        parse_duration(text)


def _jira(**extra: Any) -> dict[str, Any]:
    table = {
        "tool": "jira",
        "base_url": "https://acme.atlassian.net",
        "email": "ops@acme.com",
        "api_token": "t",
        "projects": ["PROJ"],
        **extra,
    }
    return {"sources": {"acme-jira": table}}


@pytest.mark.parametrize("key", ["overlap", "schedule"])
@pytest.mark.parametrize("text", CONNECTOR_ONLY)
def test_config_error_is_one_line_naming_source_and_key(key: str, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_jira(**{key: text}))
    message = str(caught.value)
    assert message.startswith(f"sources.acme-jira.{key}: ")
    assert "not a duration" in message
    assert "\n" not in message


@pytest.mark.parametrize("key", ["aux_ttl", "webhook_dedupe_window"])
def test_productboard_windows_follow_the_same_rule(key: str) -> None:
    table = {"tool": "productboard", "base_url": "https://api.productboard.com", "token": "t", key: "250ms"}
    with pytest.raises(ConfigError, match=rf"^sources\.pb\.{key}: .*not a duration"):
        parse_config({"sources": {"pb": table}})


def test_accepted_durations_reach_the_source_and_its_connector() -> None:
    source = parse_config(_jira(overlap="90s", schedule="15m")).source("acme-jira")
    assert source.overlap == timedelta(seconds=90)
    assert source.schedule == timedelta(minutes=15)
    assert source.connector().overlap == timedelta(seconds=90)

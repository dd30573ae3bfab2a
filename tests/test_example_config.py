"""The README's sources file (examples/opshub.toml) parses and its mappings check clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.config import ConfigError, load_config
from mappings import check_all

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "opshub.toml"


def test_example_config_loads_every_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in set(re.findall(r"\$\{([A-Z_]+)\}", EXAMPLE.read_text())):
        monkeypatch.setenv(name, f"secret-{name.lower()}")
    config = load_config(EXAMPLE)
    assert {s.tool for s in config.sources.values()} == {
        "jira",
        "linear",
        "github",
        "gitlab",
        "redmine",
        "productboard",
        "aha",
    }
    assert config.source("acme-jira").schedule is not None
    assert check_all({n: (s.tool, s.config.mapping) for n, s in config.sources.items()}) == []
    # Secrets stay SecretStr: never in a repr.
    assert "secret-jira_api_token" not in repr(config.source("acme-jira").config)


def test_example_config_names_a_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in set(re.findall(r"\$\{([A-Z_]+)\}", EXAMPLE.read_text())):
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("JIRA_API_TOKEN")
    with pytest.raises(
        ConfigError, match=r"sources\.acme-jira\.api_token: environment variable JIRA_API_TOKEN is not set"
    ):
        load_config(EXAMPLE)

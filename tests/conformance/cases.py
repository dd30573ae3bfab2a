"""The connector registry of the conformance suite: one `ConformanceCase` per connector.

Adding a connector to the suite is one entry in `CASES`: the connector class, a config for
a given fake base URL, and a factory for its fake server (a `fakes.common.FakeTool`). The
hub-level conformance tests may import `CASES` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Connector, ConnectorConfig
from connectors.github import GitHubConnector
from connectors.gitlab import GitLabConnector
from connectors.jira import JiraConnector
from connectors.linear import LinearConnector
from connectors.redmine import RedmineConnector
from fakes.common import FakeTool
from fakes.github import FakeGitHub
from fakes.gitlab import FakeGitLab
from fakes.jira import FakeJira
from fakes.linear import FakeLinear
from fakes.redmine import FakeRedmine

WEBHOOK_SECRET = "conformance-secret"


@dataclass(frozen=True)
class ConformanceCase:
    id: str
    connector: type[Connector]
    config: Callable[[FakeTool], dict[str, Any]]
    """Raw source config (as in opshub.toml) for a connector talking to this fake."""
    fake: Callable[[int], FakeTool]
    """A fake serving `n` records."""
    setup_requests: int = 0
    """Most requests a sync makes besides the listing pages (catalogs, time zone ...)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def make_config(self, fake: FakeTool, **overrides: Any) -> ConnectorConfig:
        raw = {**self.config(fake), "webhook_secret": WEBHOOK_SECRET, **overrides}
        return self.connector.config_model.model_validate(raw)


def _jira_config(fake: FakeTool) -> dict[str, Any]:
    assert isinstance(fake, FakeJira)
    return {
        "tool": "jira",
        "base_url": fake.base_url,
        "email": fake.email,
        "api_token": fake.api_token,
        "projects": list(fake.projects),
        "page_size": 50,
    }


CASES: list[ConformanceCase] = [
    ConformanceCase(
        "jira", JiraConnector, _jira_config, lambda n: FakeJira(n, time_zone="Europe/Berlin"), setup_requests=2
    ),
]


def _github_config(fake: FakeTool) -> dict[str, Any]:
    assert isinstance(fake, FakeGitHub)
    return {
        "tool": "github",
        "base_url": fake.base_url,
        "token": fake.token,
        "repositories": list(fake.repositories),
        "page_size": 50,
    }


# Two repositories with pull requests mixed in: 120 issues take 4 list requests, not 3.
CASES.append(ConformanceCase("github", GitHubConnector, _github_config, lambda n: FakeGitHub(n), setup_requests=3))


def _linear_config(fake: FakeTool) -> dict[str, Any]:
    assert isinstance(fake, FakeLinear)
    return {"tool": "linear", "base_url": fake.base_url, "api_key": fake.api_key, "page_size": 50}


# Setup: the id scan (one page of 250 ids covers the suite's 120 issues).
CASES.append(ConformanceCase("linear", LinearConnector, _linear_config, lambda n: FakeLinear(n), setup_requests=1))


def _redmine_config(fake: FakeTool) -> dict[str, Any]:
    assert isinstance(fake, FakeRedmine)
    return {
        "tool": "redmine",
        "base_url": fake.base_url,
        "api_key": fake.api_key,
        "projects": list(fake.projects),
        "page_size": 50,
    }


# Setup: /users/current.json (the key check) and one /projects/{identifier}.json per project.
CASES.append(ConformanceCase("redmine", RedmineConnector, _redmine_config, lambda n: FakeRedmine(n), setup_requests=3))


def _gitlab_config(fake: FakeTool) -> dict[str, Any]:
    assert isinstance(fake, FakeGitLab)
    (first_id, _), (_, second_path) = fake.projects[:2]
    return {
        "tool": "gitlab",
        "base_url": fake.base_url,
        "token": fake.token,
        "projects": [first_id, second_path],  # a numeric id and a full path
        "page_size": 50,
        "webhook_signing_token": WEBHOOK_SECRET,  # X-Gitlab-Token alone does not bind the body
    }


# GitLab sends no webhook when an issue is deleted (the deletion sweep finds it).
CASES.append(
    ConformanceCase(
        "gitlab",
        GitLabConnector,
        _gitlab_config,
        lambda n: FakeGitLab(n),
        setup_requests=2,
        extra={"webhook_deletes": False},
    )
)


def _productboard_config(fake: FakeTool) -> dict[str, Any]:
    from fakes.productboard import FakeProductboard

    assert isinstance(fake, FakeProductboard)
    return {"tool": "productboard", "base_url": fake.base_url, "token": fake.token, "page_size": 50}


def _productboard_fake(n: int) -> FakeTool:
    from fakes.productboard import FakeProductboard

    return FakeProductboard(n)


def _productboard_connector() -> type[Connector]:
    from connectors.productboard import ProductboardConnector

    return ProductboardConnector


# GET /features has no "updated since" filter: every run lists all features (3 pages of 50 for
# 120), then the auxiliary listings it joins: statuses, components, products, releases,
# assignments, custom fields, their values (5 pages of 100 for this fake's 120 features), Jira
# integrations and one integration's connections = 13. Setup = those 13 + the 2 listing pages
# beyond the one an incremental run of a tool with an "updated since" filter would read.
# Productboard signs nothing: its Authorization value does not bind the body.
CASES.append(
    ConformanceCase(
        "productboard",
        _productboard_connector(),
        _productboard_config,
        _productboard_fake,
        setup_requests=15,
        extra={"webhook_binds_body": False},
    )
)


def _aha_config(fake: FakeTool) -> dict[str, Any]:
    from fakes.aha import FakeAha

    assert isinstance(fake, FakeAha)
    return {
        "tool": "aha",
        "base_url": fake.base_url,
        "api_key": fake.api_key,
        "products": list(fake.products),
        "page_size": 50,
    }


def _aha_fake(n: int) -> FakeTool:
    from fakes.aha import FakeAha

    return FakeAha(n)


def _aha_connector() -> type[Connector]:
    from connectors.aha import AhaConnector

    return AhaConnector


# One stream per record type (initiatives, epics, features, ideas): 120 records take 5 list
# requests (features need two pages), and an unchanged incremental run still asks each type
# once. Aha! signs nothing: its shared secret travels in a header and does not bind the body.
CASES.append(
    ConformanceCase(
        "aha",
        _aha_connector(),
        _aha_config,
        _aha_fake,
        setup_requests=3,
        extra={"webhook_binds_body": False},
    )
)

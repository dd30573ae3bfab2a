"""GitHub Issues connector (REST API + webhooks)."""

from connectors.github.config import GitHubConfig
from connectors.github.connector import GitHubConnector

__all__ = ["GitHubConfig", "GitHubConnector"]

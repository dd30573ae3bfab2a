"""GitLab issues connector (REST API v4 + webhooks), gitlab.com or self-managed."""

from connectors.gitlab.config import GitLabConfig
from connectors.gitlab.connector import GitLabConnector

__all__ = ["GitLabConfig", "GitLabConnector"]

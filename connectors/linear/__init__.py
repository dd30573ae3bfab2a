"""Linear connector (GraphQL API + signed webhooks)."""

from connectors.linear.config import LinearConfig
from connectors.linear.connector import LinearConnector

__all__ = ["LinearConfig", "LinearConnector"]

"""Aha! Roadmaps connector (REST API v1 + activity / integration webhooks)."""

from connectors.aha.config import AhaConfig
from connectors.aha.connector import AhaConnector

__all__ = ["AhaConfig", "AhaConnector"]

"""Redmine connector (REST API, pull only: Redmine sends no webhooks)."""

from connectors.redmine.config import RedmineConfig
from connectors.redmine.connector import RedmineConnector

__all__ = ["RedmineConfig", "RedmineConnector"]

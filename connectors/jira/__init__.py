"""Jira Cloud connector (REST API v3 + webhooks)."""

from connectors.jira.config import JiraConfig
from connectors.jira.connector import JiraConnector

__all__ = ["JiraConfig", "JiraConnector"]

"""Productboard connector (Public REST API v1 + webhook notifications)."""

from connectors.productboard.config import ProductboardConfig
from connectors.productboard.connector import ProductboardConnector

__all__ = ["ProductboardConfig", "ProductboardConnector"]

"""The dashboard: server-rendered pages over the same services as the API (issue 11)."""

from hub.web.routes import install_web

__all__ = ["install_web"]

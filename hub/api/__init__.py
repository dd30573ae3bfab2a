"""The unified read API (FastAPI): `create_app` builds it."""

from hub.api.app import create_app

__all__ = ["create_app"]

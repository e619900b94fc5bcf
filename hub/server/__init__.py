"""The hub's HTTP service (aiohttp)."""

from hub.server.app import create_app, utc_now

__all__ = ["create_app", "utc_now"]

"""Typed keys for the console's app and request state (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from agency_adapters.node.console.services import NodeServices
    from agency_adapters.node.console.settings import ConsoleSettings
    from agency_adapters.node.users import Session

__all__ = ["SERVICES", "SESSION", "SETTINGS"]

SERVICES: web.AppKey[NodeServices] = web.AppKey("services")
SETTINGS: web.AppKey[ConsoleSettings] = web.AppKey("settings")
# The signed-in session on a request (request[SESSION]); absent before sign-in.
SESSION: web.RequestKey[Session] = web.RequestKey("session")

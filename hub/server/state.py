"""Typed application state (aiohttp ``web.AppKey``, STYLE.md rule 11)."""

from __future__ import annotations

from aiohttp import web

from hub.config import HubConfig
from hub.server.auth import RequestAuthenticator
from hub.server.blobs import BlobService
from hub.server.exchange import ExchangeService
from hub.store import Store

__all__ = ["AUTHENTICATOR", "BLOBS", "CONFIG", "EXCHANGE", "STORE"]

CONFIG = web.AppKey("config", HubConfig)
STORE = web.AppKey("store", Store)
EXCHANGE = web.AppKey("exchange", ExchangeService)
BLOBS = web.AppKey("blobs", BlobService)
AUTHENTICATOR = web.AppKey("authenticator", RequestAuthenticator)

"""Typed application state (aiohttp ``web.AppKey``, STYLE.md rule 11)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from hub.config import HubConfig
from hub.policy.registry import Registry
from hub.server.audit import AuditService
from hub.server.auth import RequestAuthenticator
from hub.server.blobs import BlobService
from hub.server.exchange import ExchangeService
from hub.server.keys import KeyService
from hub.server.retention import RetentionService
from hub.server.workflows import WorkflowService
from hub.store import Store

__all__ = [
    "AUDIT",
    "AUTHENTICATOR",
    "BLOBS",
    "CLOCK_FN",
    "CONFIG",
    "EXCHANGE",
    "KEYS",
    "RETENTION",
    "STORE",
    "WORKFLOWS",
]

CONFIG = web.AppKey("config", HubConfig)
STORE = web.AppKey("store", Store)
EXCHANGE = web.AppKey("exchange", ExchangeService)
BLOBS = web.AppKey("blobs", BlobService)
AUTHENTICATOR = web.AppKey("authenticator", RequestAuthenticator)
WORKFLOWS = web.AppKey("workflows", WorkflowService)
AUDIT = web.AppKey("audit", AuditService)
KEYS = web.AppKey("keys", KeyService)
REGISTRY = web.AppKey("registry", Registry)
RETENTION = web.AppKey("retention", RetentionService)
# The injected clock, so handlers can compute deadlines against the same time as services.
CLOCK_FN: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")

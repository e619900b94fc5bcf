"""The aiohttp application factory: config in, app out (STYLE.md rules 8 and 11)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from hub.audit.log import AuditLog
from hub.config import HubConfig
from hub.crypto import NodeKeys, read_key_file
from hub.policy.registry import Registry, RegistryError, load_registry
from hub.server.access import access_middleware
from hub.server.admission import ADMISSION, Admission, admission_middleware
from hub.server.audit import AuditService
from hub.server.auth import RequestAuthenticator
from hub.server.blobs import BlobFiles, BlobService
from hub.server.exchange import Clock, ExchangeService, HubIdentity
from hub.server.handlers import routes
from hub.server.keys import KeyService
from hub.server.metrics import METRICS, install_metrics
from hub.server.nodes import NodeCache
from hub.server.notify import InboxNotifier
from hub.server.problems import problem_middleware
from hub.server.retention import RetentionService
from hub.server.state import (
    AUDIT,
    AUTHENTICATOR,
    BLOBS,
    CLOCK_FN,
    CONFIG,
    EXCHANGE,
    KEYS,
    REGISTRY,
    RETENTION,
    STORE,
    WORKFLOWS,
)
from hub.server.workflows import WorkflowService
from hub.store import GroupCommitter, SqlStore, Store
from hub.store.migrate import prepare_database

__all__ = ["create_app", "utc_now"]

log = logging.getLogger("hub.server")
_NONCE_PURGE_SECONDS = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def load_hub_keys(config: HubConfig) -> NodeKeys:
    passphrase = None
    if config.signing_key_passphrase_file is not None:
        passphrase = config.signing_key_passphrase_file.read_bytes().strip()
    return read_key_file(config.signing_key_path, passphrase=passphrase)


def create_app(
    config: HubConfig,
    *,
    clock: Clock = utc_now,
    hub_keys: NodeKeys | None = None,
    store: Store | None = None,
    registry: Registry | None = None,
) -> web.Application:
    """Build the hub. Resources (database, background tasks) open and close with the app."""
    keys = hub_keys if hub_keys is not None else load_hub_keys(config)
    # Loaded and checked once at start-up: a broken registry stops the hub, naming the file.
    policy = registry if registry is not None else load_registry(config.registry_dir)
    if policy.retention is None:
        raise RegistryError("the policy registry has no retention.yaml: the hub purges by it")
    retention_policy = policy.retention
    # Bodies are read by the handlers with per-endpoint limits; this is the outer bound
    # for aiohttp's own readers.
    app = web.Application(
        # The access log is outermost: it sees the answer the problem middleware gives
        # (including a 429 from the admission middleware inside it).
        middlewares=[access_middleware, problem_middleware, admission_middleware],
        client_max_size=config.limits.message_body_bytes,
    )
    app[CONFIG] = config
    app[ADMISSION] = Admission(config.limits)
    app[CLOCK_FN] = clock
    app[REGISTRY] = policy
    app.add_routes(routes)
    install_metrics(app, config.metrics, hub_id=config.hub_id, rule_ids=policy.rule_ids())

    async def resources(app: web.Application) -> AsyncIterator[None]:
        the_store: Store
        if store is not None:
            the_store = store
            await the_store.create_schema()
        else:
            # Serving goes through the migrations: an empty database is brought to head,
            # one behind or ahead of the code raises SchemaError (hub/store/migrate.py).
            await prepare_database(config.database_url)
            the_store = SqlStore.open(config.database_url)
        files = BlobFiles(config.blob_dir)
        files.ensure()
        app[STORE] = the_store
        writes = GroupCommitter(the_store, on_batch=app[METRICS].write_batch)
        notifier = InboxNotifier()
        app[METRICS].watch(
            store=the_store, writes=writes, notifier=notifier, blob_dir=config.blob_dir
        )
        audit_log = AuditLog(hub_keys=keys)
        app[AUDIT] = AuditService(
            store=the_store, log=audit_log, auditors=config.auditors, clock=clock
        )
        nodes = NodeCache(the_store, max_age=config.limits.node_cache_seconds)
        app[EXCHANGE] = ExchangeService(
            store=the_store,
            nodes=nodes,
            writes=writes,
            registry=policy,
            audit=audit_log,
            hub=HubIdentity(hub_id=config.hub_id, keys=keys),
            notifier=notifier,
            clock=clock,
            limits=config.limits,
        )
        app[WORKFLOWS] = WorkflowService(store=the_store, registry=policy)
        app[KEYS] = KeyService(
            store=the_store,
            nodes=nodes,
            audit=audit_log,
            clock=clock,
            window_seconds=config.limits.signature_window_seconds,
        )
        app[BLOBS] = BlobService(store=the_store, files=files, clock=clock, limits=config.limits)
        app[AUTHENTICATOR] = RequestAuthenticator(
            nodes=nodes,
            writes=writes,
            clock=clock,
            window_seconds=config.limits.signature_window_seconds,
        )
        app[RETENTION] = RetentionService(
            store=the_store,
            files=files,
            policy=retention_policy,
            limits=config.limits,
            clock=clock,
            audit=audit_log,
        )
        purger = asyncio.create_task(_purge_nonces(the_store, clock))
        sweeper = asyncio.create_task(
            _retention_sweeps(app[RETENTION], config.limits.retention_sweep_seconds)
        )
        proof_index = asyncio.create_task(app[AUDIT].prepare_proofs())
        yield
        for task in (purger, sweeper, proof_index):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await writes.close()
        if store is None:
            await the_store.close()

    app.cleanup_ctx.append(resources)
    return app


async def _purge_nonces(store: Store, clock: Clock) -> None:
    while True:
        await asyncio.sleep(_NONCE_PURGE_SECONDS)
        try:
            async with store.transaction() as tx:
                purged = await tx.nonces.purge_expired(clock())
            if purged:
                log.debug("purged %d expired nonces", purged)
        except Exception:
            log.exception("nonce purge failed; will retry")


async def _retention_sweeps(retention: RetentionService, seconds: float) -> None:
    """Expire uploads and purge ciphertext that is due, every ``seconds`` (deploy/retention.md)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await retention.sweep()
        except Exception:
            log.exception("retention sweep failed; will retry")

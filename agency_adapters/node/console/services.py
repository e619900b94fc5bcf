"""What the console's views call: the node's own services, opened once at start-up.

Views never touch SQL or crypto (STYLE.md rule 19): they ask :class:`NodeServices` for the
node's stores, its client to the hub and its registry, and record every view of case data
through :meth:`NodeServices.viewed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from agency_adapters.node.checks import check_draft_at_node, payload_bytes
from agency_adapters.node.store import NodeStore, NodeStoreError, node_database_path
from agency_adapters.node.sync import background_sync
from agency_adapters.node.users import SignInSettings, User, UserStore
from hub.client import (
    HubProblem,
    NodeClient,
    NodeProfile,
    Outbox,
    OutboxError,
    PayloadSource,
    ResendOutcome,
    VerificationFailed,
    load_node_profile,
)
from hub.crypto import NodeKeys
from hub.model import EnvelopeFields, Receipt, Violation
from hub.policy.registry import Registry, load_registry

__all__ = ["Clock", "NodeServices"]

log = logging.getLogger("seh.console")

Clock = Callable[[], datetime]
# What resending the outbox at start-up may meet: the hub unreachable or refusing, an
# answer that does not verify, an unreadable outbox entry or node store. Logged, not fatal.
_RESEND_FAILURES = (
    HubProblem,
    VerificationFailed,
    OutboxError,
    NodeStoreError,
    OSError,
    sqlite3.Error,
    aiohttp.ClientError,
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class NodeServices:
    """The node's profile, keys, stores, hub client and policy registry."""

    profile: NodeProfile
    keys: NodeKeys
    store: NodeStore
    users: UserStore
    client: NodeClient
    registry: Registry
    clock: Clock = _utc_now
    _sync_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _resend_task: asyncio.Task[list[ResendOutcome]] | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        node_dir: Path,
        *,
        clock: Clock = _utc_now,
        sign_in: SignInSettings | None = None,
        registry: Registry | None = None,
        client: NodeClient | None = None,
    ) -> NodeServices:
        profile = load_node_profile(node_dir)
        keys = profile.load_keys()
        database = node_database_path(profile)
        store = NodeStore.open(database)
        users = UserStore.open(database, clock=clock, settings=sign_in or SignInSettings())
        registry = registry or load_registry()
        if client is None:
            client = NodeClient(
                hub_url=profile.hub_url,
                node_id=profile.node_id,
                keys=keys,
                hub_signing_key=profile.hub_signing_key,
                spool_dir=profile.spool_dir,
                clock=clock,
                registry=registry,
                outbox=Outbox(profile.outbox_dir),
            )
        return cls(
            profile=profile,
            keys=keys,
            store=store,
            users=users,
            client=client,
            registry=registry,
            clock=clock,
        )

    @property
    def node_id(self) -> str:
        return self.profile.node_id

    def now(self) -> datetime:
        return self.clock()

    def viewed(self, user: User, object_kind: str, object_id: str, action: str = "view") -> None:
        """Write one line to the node's access log: who looked at what, when."""
        self.store.log_access(
            user_ref=user.user_ref,
            username=user.username,
            action=action,
            object_kind=object_kind,
            object_id=object_id,
            at=self.now(),
        )

    async def preflight(self, fields: EnvelopeFields, payload: PayloadSource) -> list[Violation]:
        """Every rule a draft breaks: the same verdict as the hub's and the receiver's."""
        return await check_draft_at_node(self.client, fields, payload)

    async def send(self, fields: EnvelopeFields, payload: PayloadSource) -> Receipt:
        """Send a draft that passed :meth:`preflight`; keep it in sent items, sealed.

        Kept in sent items before the client forgets its outbox entry, so a crash between
        the two leaves the message to be resent (and kept) when the console next starts.
        """

        def keep(envelope: dict[str, Any], receipt: Receipt, ciphertext: Path | None) -> None:
            self.store.keep_sent(
                envelope, receipt, payload_bytes(payload), self.keys.public, ciphertext=ciphertext
            )

        _, receipt = await self.client.send_with_envelope(fields, payload, receipted=keep)
        return receipt

    async def resend_outbox(self) -> list[ResendOutcome]:
        """Resend what an earlier run sealed but never had receipted (``hub node outbox``
        does the same); each one accepted goes into sent items."""

        def keep(envelope: dict[str, Any], receipt: Receipt, ciphertext: Path | None) -> None:
            self.store.keep_sent(envelope, receipt, None, self.keys.public, ciphertext=ciphertext)

        try:
            outcomes = await self.client.resend_pending(receipted=keep)
        except _RESEND_FAILURES as exc:
            log.warning("console: the outbox could not be resent (%s)", type(exc).__name__)
            return []
        for outcome in outcomes:
            if outcome.receipt is not None:
                log.info("console: resent %s from the outbox: accepted", outcome.message_id)
            elif outcome.kept:
                log.warning("console: %s is still not confirmed; kept", outcome.message_id)
            else:
                log.warning("console: %s was refused on resend", outcome.message_id)
        return outcomes

    async def lifetime(self, sync_wait: float) -> AsyncIterator[None]:
        """Resend the outbox and run the inbox sync beside the console; close everything
        on the way out."""
        self._resend_task = asyncio.create_task(self.resend_outbox())
        if sync_wait > 0:
            self._sync_task = asyncio.create_task(
                background_sync(self.client, self.profile, self.store, wait=sync_wait)
            )
        try:
            yield
        finally:
            self._resend_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resend_task
            if self._sync_task is not None:
                self._sync_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sync_task
            await self.client.close()
            self.users.close()
            self.store.close()

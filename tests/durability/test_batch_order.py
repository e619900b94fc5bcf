"""A group-commit batch: the audit append is its last, short locked step; answers follow the commit.

These run the real hub in-process on each engine and watch what it sends to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import event

from hub.audit.log import AuditLog
from hub.config import HubConfig
from hub.server import create_app
from hub.store import SqlStore, UnitOfWork
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    HubFixture,
    MutableClock,
    enrol_test_nodes,
)
from tests.server.helpers import HEALTH, LA, POLICE, signed_envelope, submit


@contextlib.asynccontextmanager
async def hub_on(store: Any, config: HubConfig, database: SqlStore) -> AsyncIterator[HubFixture]:
    """The hub app on ``store`` (the store fixture, or a wrapper of it) in a test server."""
    clock = MutableClock()
    await enrol_test_nodes(database, now=clock(), audit=AuditLog(hub_keys=INSECURE_TEST_HUB_KEYS))
    app = create_app(config, clock=clock, hub_keys=INSECURE_TEST_HUB_KEYS, store=store)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield HubFixture(config=config, store=database, server=server, clock=clock, clients={})
    finally:
        await server.close()


# -- the statements of a batch -----------------------------------------------------------


def _record_transactions(store: SqlStore) -> list[list[str]]:
    """Every transaction's statements, in order, as the engine sends them."""
    done: list[list[str]] = []
    open_ones: dict[int, list[str]] = {}
    engine = store._engine.sync_engine

    def begin(conn: Any) -> None:
        open_ones[id(conn)] = []

    def statement(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if id(conn) in open_ones:
            open_ones[id(conn)].append(" ".join(sql.split()))

    def end(conn: Any) -> None:
        if id(conn) in open_ones:
            done.append(open_ones.pop(id(conn)))

    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", end)
    return done


_LOCKED_TAIL = (
    "INSERT INTO audit_log ",
    "INSERT INTO audit_heads ",
    "UPDATE audit_state SET",
    "UPDATE messages SET receipt_json",
)


def _tail_step(statement: str) -> int | None:
    return next((n for n, p in enumerate(_LOCKED_TAIL) if statement.startswith(p)), None)


async def test_a_batch_takes_the_audit_lock_last_and_holds_it_for_its_own_statements(
    store: SqlStore, make_config: Callable[..., HubConfig]
) -> None:
    async with hub_on(store, make_config(), store) as hub:
        transactions = _record_transactions(store)
        routes = [(HEALTH, [LA, POLICE]), (POLICE, [LA]), (LA, [POLICE])]
        envelopes = [
            (sender, signed_envelope(hub, sender=sender, recipients=recipients))
            for sender, recipients in routes * 8
        ]
        async with aiohttp.ClientSession() as session:
            replies = await asyncio.gather(
                *(submit(session, hub, envelope, node=sender) for sender, envelope in envelopes)
            )
        assert [r.status for r in replies] == [201] * len(envelopes)
    batches = [t for t in transactions if any(s.startswith("INSERT INTO messages") for s in t)]
    assert sum(sum(s.startswith("INSERT INTO messages") for s in t) for t in batches) == 24
    # Concurrent submits share transactions (else this test would show nothing).
    assert max(sum(s.startswith("INSERT INTO messages") for s in t) for t in batches) >= 2
    for statements in batches:
        lock = next(n for n, s in enumerate(statements) if "FROM audit_state" in s)
        before, tail = statements[:lock], statements[lock + 1 :]
        # Everything else the batch writes comes first, and nothing of the log.
        assert not [s for s in before if "audit_" in s], before
        # Then the log's state row, its entries, heads and state, and the batch's receipts:
        # one statement each, whatever the batch's size.
        assert [_tail_step(s) for s in tail] == list(range(len(_LOCKED_TAIL))), tail
    if store.dialect.name == "postgresql":
        assert all("FOR UPDATE" in next(s for s in t if "FROM audit_state" in s) for t in batches)


# -- no answer before the commit ---------------------------------------------------------


@dataclass
class CommitGate:
    """The store, with write transactions that stop just before committing a chosen message.

    The stop is an end step asked for after the operations of the batch, so it runs after
    the log's append and the receipts, when the batch has written everything but the commit.
    """

    inner: SqlStore
    message_id: str | None = None
    reached: asyncio.Event | None = None
    opened: asyncio.Event | None = None

    def read(self) -> Any:
        return self.inner.read()

    async def create_schema(self) -> None:
        await self.inner.create_schema()

    async def close(self) -> None:
        await self.inner.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        async with self.inner.transaction() as tx:
            yield tx
            tx.at_end(CommitGate, lambda: _Stop(self))


@dataclass
class _Stop:
    gate: CommitGate

    async def run(self, tx: UnitOfWork) -> None:
        gate = self.gate
        if gate.message_id is None or await tx.messages.get(gate.message_id) is None:
            return
        assert gate.reached is not None
        assert gate.opened is not None
        gate.reached.set()
        await gate.opened.wait()


async def test_no_receipt_leaves_the_hub_before_its_batch_has_committed(
    store: SqlStore, make_config: Callable[..., HubConfig]
) -> None:
    gate = CommitGate(store, reached=asyncio.Event(), opened=asyncio.Event())
    assert gate.reached is not None
    assert gate.opened is not None
    async with hub_on(gate, make_config(), store) as hub, aiohttp.ClientSession() as session:
        envelope = signed_envelope(hub)
        async with store.read() as view:
            head_before = await view.audit.latest_head()
        gate.message_id = envelope["id"]
        answer = asyncio.create_task(submit(session, hub, envelope))
        try:
            await asyncio.wait_for(gate.reached.wait(), 30)
            # Written, logged and its receipt signed, but not committed: no answer yet, and
            # neither the message nor the head that includes it is visible to anyone else.
            await asyncio.sleep(0.3)
            assert not answer.done()
            async with store.read() as view:
                assert await view.messages.get(envelope["id"]) is None
                assert await view.audit.latest_head() == head_before
        finally:
            gate.opened.set()
        reply = await answer
        assert reply.status == 201, reply.body[:300]
        receipt = reply.json()
        async with store.read() as view:
            stored = await view.messages.get(envelope["id"])
            head = await view.audit.latest_head()
        assert stored is not None
        assert head is not None
        assert receipt["log"]["tree_head"]["size"] == head.size == receipt["log"]["index"] + 1

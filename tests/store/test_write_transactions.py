"""Write transactions: durable commits, the write lock from the first read, locked state.

Two ``SqlStore`` objects on one database stand for two hub processes: each has its own
engine, pool and in-process writer lock, so only the database can keep them apart.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.audit.log import AuditLog
from hub.model import AuditEntry
from hub.store import SqlStore, WorkflowRecord, database_url_for_path
from hub.store.dialect import open_engine
from tests.conftest import INSECURE_TEST_HUB_KEYS
from tests.store.conftest import _pin_search_path

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
AUDIT = AuditLog(hub_keys=INSECURE_TEST_HUB_KEYS)


def _entry(actor: str) -> AuditEntry:
    return AuditEntry(at=NOW, action="key_change", actor=actor, outcome="ENROLLED")


async def test_sqlite_connections_fsync_every_commit_in_wal_mode(tmp_path: Path) -> None:
    engine, _ = open_engine(database_url_for_path(tmp_path / "hub.sqlite3"))
    try:
        for _ in range(2):  # a fresh connection and one back from the pool
            async with engine.connect() as conn:
                synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
                journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                assert (synchronous, journal) == (2, "wal")  # 2 is FULL
    finally:
        await engine.dispose()


async def test_a_sqlite_write_transaction_holds_the_write_lock_from_its_first_read(
    tmp_path: Path,
) -> None:
    url = database_url_for_path(tmp_path / "hub.sqlite3")
    first, second = SqlStore.open(url), SqlStore.open(url)
    try:
        await first.create_schema()
        read_state = asyncio.Event()
        release = asyncio.Event()

        async def append_after_reading(store: SqlStore, actor: str) -> None:
            async with store.transaction() as tx:
                await tx.audit.state_for_update()  # only a read so far
                read_state.set()
                await release.wait()
                await AUDIT.append(tx, _entry(actor))

        async def append_now() -> None:
            async with second.transaction() as tx:
                await AUDIT.append(tx, _entry("police.second"))

        holder = asyncio.create_task(append_after_reading(first, "health.first"))
        try:
            await read_state.wait()
            # The second "process" cannot begin writing while the first has only read: had
            # it written now, the first would append the same index (UNIQUE audit_log.idx).
            other = asyncio.create_task(append_now())
            await asyncio.sleep(0.5)
            assert not other.done()
        finally:
            release.set()
            await holder
        await other
        async with first.read() as view:
            size, _ = await view.audit.state_for_update()
            rows = await view.audit.rows(0, size)
        assert [(r.idx, r.actor) for r in rows] == [(0, "health.first"), (1, "police.second")]
    finally:
        await first.close()
        await second.close()


async def test_the_audit_state_is_read_afresh_in_every_transaction(store: SqlStore) -> None:
    """Appends through two stores in turn: each sees the other's entries (nothing cached)."""
    other = await _second_process(store)
    try:
        for n in range(6):
            writer = store if n % 2 == 0 else other
            async with writer.transaction() as tx:
                queued = await AUDIT.append(tx, _entry(f"health.n{n}"))
            assert queued.position.index == n
            assert queued.position.tree_head.size == n + 1
    finally:
        await other.close()


async def test_a_workflow_read_in_a_write_transaction_holds_its_row(store: SqlStore) -> None:
    if store.dialect.name == "sqlite":
        pytest.skip("SQLite: a write transaction holds the whole file's lock from its BEGIN")
    record = WorkflowRecord("request", "req-1", '{"stage": "SUBMITTED"}', NOW)
    async with store.transaction() as tx:
        await tx.workflows.save(record, parties=["health.a"], message_id="m-1", created=True)
    other = await _second_process(store)
    try:
        holding = asyncio.Event()
        release = asyncio.Event()

        async def decide_first() -> None:
            async with store.transaction() as tx:
                assert await tx.workflows.get("request", "req-1") is not None
                holding.set()
                await release.wait()
                await tx.workflows.save(
                    WorkflowRecord("request", "req-1", '{"stage": "DECIDED"}', NOW),
                    parties=[],
                    message_id="m-2",
                )

        async def read_in_second_process(write: bool) -> str:
            opening = other.transaction() if write else other.read()
            async with opening as tx:
                found = await tx.workflows.get("request", "req-1")
            assert found is not None
            return found.state_json

        first = asyncio.create_task(decide_first())
        try:
            await holding.wait()
            # A read view is not held up; a second writer waits and then sees the decision.
            assert await read_in_second_process(write=False) == '{"stage": "SUBMITTED"}'
            second = asyncio.create_task(read_in_second_process(write=True))
            await asyncio.sleep(0.5)
            assert not second.done()
        finally:
            release.set()  # a failed check must not leave the first transaction open
            await first
        assert await second == '{"stage": "DECIDED"}'
    finally:
        await other.close()


async def test_a_read_view_cannot_queue_an_audit_append(store: SqlStore) -> None:
    async with store.read() as view:
        with pytest.raises(RuntimeError, match="a read view cannot queue writes"):
            await AUDIT.append(view, _entry("health.a"))


async def test_a_position_is_known_only_once_its_transaction_has_reached_its_end(
    store: SqlStore,
) -> None:
    async with store.transaction() as tx:
        queued = await AUDIT.append(tx, _entry("health.a"))
        with pytest.raises(RuntimeError, match="appended at its transaction's end, not yet"):
            _ = queued.position
    assert queued.position.index == 0


async def _second_process(store: SqlStore) -> SqlStore:
    """Another store (engine, pool, writer lock) on the same database, as a process has."""
    other = SqlStore(*open_engine(store._engine.url.render_as_string(hide_password=False)))
    if store.dialect.name == "postgresql":
        # The store fixture pins a schema of the test's own: the second store follows it.
        async with store._engine.connect() as conn:
            schema = str((await conn.exec_driver_sql("SHOW search_path")).scalar())
        _pin_search_path(other._engine, schema.strip('"'))
    return other

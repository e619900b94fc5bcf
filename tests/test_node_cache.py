"""The in-process registry view: fresh within max_age, re-read after it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from hub.registry import enrol_node, set_node_status
from hub.server.nodes import NodeCache
from hub.store import SqlStore, database_url_for_path
from tests.conftest import INSECURE_TEST_NODE_KEYS

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


async def _store(tmp_path: Path) -> SqlStore:
    store = SqlStore.open(database_url_for_path(tmp_path / "cache.sqlite3"))
    await store.create_schema()
    await enrol_node(
        store,
        node_id="health.bsw-icb",
        agency_type="health",
        display_name="health",
        public_keys=INSECURE_TEST_NODE_KEYS["health.bsw-icb"].public,
        accreditation="OFFICIAL-SENSITIVE",
        now=NOW,
    )
    return store


async def test_a_suspension_is_seen_once_the_snapshot_ages(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        cache = NodeCache(store, max_age=0.2)
        first = await cache.get("health.bsw-icb")
        assert first is not None
        assert first.status == "active"
        await set_node_status(store, "health.bsw-icb", "suspended", now=NOW)
        # Within max_age the snapshot may be stale: that is the documented trade.
        stale = await cache.get("health.bsw-icb")
        assert stale is not None
        assert stale.status == "active"
        await asyncio.sleep(0.25)
        fresh = await cache.get("health.bsw-icb")
        assert fresh is not None
        assert fresh.status == "suspended"
        assert await cache.get("police.unknown") is None
    finally:
        await store.close()


async def test_zero_max_age_reads_the_registry_every_time(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        cache = NodeCache(store, max_age=0)
        assert (await cache.get_many(["health.bsw-icb"]))["health.bsw-icb"] is not None
        await set_node_status(store, "health.bsw-icb", "revoked", now=NOW)
        record = await cache.get("health.bsw-icb")
        assert record is not None
        assert record.status == "revoked"
    finally:
        await store.close()

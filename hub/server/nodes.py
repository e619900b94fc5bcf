"""An in-process view of the node registry, refreshed at most every ``max_age`` seconds.

Every request needs its node (authentication) and every message its recipients (routing).
Reading them from the database each time costs more than the rest of the request; the
registry changes rarely. A snapshot of all nodes is reloaded when older than ``max_age``
(``limits.node_cache_seconds``, default 1 s; 0 reads every time), so a suspension or
revocation made with ``hub admin`` — possibly from another process — takes effect within
that time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from hub.store import NodeRecord, Store

__all__ = ["NodeCache"]


class NodeCache:
    def __init__(self, store: Store, *, max_age: float) -> None:
        self._store = store
        self._max_age = max_age
        self._nodes: dict[str, NodeRecord] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def _snapshot(self) -> dict[str, NodeRecord]:
        loop = asyncio.get_running_loop()
        if self._fresh(loop.time()):
            return self._nodes
        async with self._lock:  # one reload at a time; the others use its result
            if not self._fresh(loop.time()) or self._max_age == 0:
                started = loop.time()
                async with self._store.read() as view:
                    records = await view.nodes.list_all()
                self._nodes = {record.id: record for record in records}
                self._loaded_at = started
            return self._nodes

    def _fresh(self, now: float) -> bool:
        return (
            self._max_age > 0
            and self._loaded_at is not None
            and now - self._loaded_at < self._max_age
        )

    def forget(self) -> None:
        """Drop the snapshot (after a key change here): the next lookup reads the registry."""
        self._loaded_at = None

    async def get(self, node_id: str) -> NodeRecord | None:
        return (await self._snapshot()).get(node_id)

    async def get_many(self, node_ids: Iterable[str]) -> dict[str, NodeRecord | None]:
        snapshot = await self._snapshot()
        return {node_id: snapshot.get(node_id) for node_id in node_ids}

"""Read side of the transparency log: heads, proofs and entries, for the nodes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hub.audit.log import AuditLog
from hub.audit.merkle import ProofError
from hub.errors import BadRequest
from hub.store import NodeRecord, Store

__all__ = ["AuditService"]

_MAX_ENTRIES = 1000


class AuditService:
    def __init__(
        self,
        *,
        store: Store,
        log: AuditLog,
        auditors: tuple[str, ...],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._log = log
        self._auditors = frozenset(auditors)
        self._clock = clock

    async def head(self) -> dict[str, Any]:
        async with self._store.read() as view:
            head = await self._log.head(view, self._clock())
        return head.model_dump(mode="json")

    async def _size(self) -> int:
        async with self._store.read() as view:
            head = await self._log.head(view, self._clock())
        return head.size

    async def inclusion(self, index: int, size: int) -> dict[str, Any]:
        if size > await self._size():
            raise BadRequest(f"the log has fewer than {size} entries")
        try:
            async with self._store.read() as view:
                proof = await self._log.inclusion(view, index, size)
        except ProofError as exc:
            raise BadRequest(f"no inclusion proof: {exc}") from exc
        return {"index": index, "size": size, "proof": [node.hex() for node in proof]}

    async def consistency(self, first: int, second: int) -> dict[str, Any]:
        if second > await self._size():
            raise BadRequest(f"the log has fewer than {second} entries")
        try:
            async with self._store.read() as view:
                proof = await self._log.consistency(view, first, second)
        except ProofError as exc:
            raise BadRequest(f"no consistency proof: {exc}") from exc
        return {"first": first, "second": second, "proof": [node.hex() for node in proof]}

    async def entries(self, node: NodeRecord, start: int, end: int) -> dict[str, Any]:
        """Entries in [start, end): all for an auditor, otherwise the node's own."""
        if end < start:
            raise BadRequest("end must not be before start")
        end = min(end, start + _MAX_ENTRIES)
        actor = None if node.id in self._auditors else node.id
        async with self._store.read() as view:
            rows = await view.audit.rows(start, end, actor=actor)
        return {
            "entries": [
                {
                    "index": row.idx,
                    "leaf_hash": row.leaf_hash.hex(),
                    "entry": json.loads(row.entry_json),
                }
                for row in rows
            ]
        }

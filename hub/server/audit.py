"""Read side of the transparency log: heads, proofs and entries, for the nodes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hub.audit.log import AuditLog
from hub.audit.merkle import ProofError
from hub.audit.proofs import LogProofs
from hub.errors import BadRequest
from hub.store import NodeRecord, Store

__all__ = ["AuditService"]

log = logging.getLogger("hub.audit")

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
        # Subtree roots kept in memory so a proof reads O(log n), not every leaf
        # (hub/audit/proofs.py explains the choice).
        self._proofs = LogProofs()

    async def prepare_proofs(self) -> None:
        """Read the log into the proof index as it is now (the hub runs it at start).

        A failure is logged, not raised: proofs then read what they need when asked.
        """
        try:
            await self._proofs.catch_up(self._store)
        except Exception:
            log.exception("could not index the audit log for proofs; proofs will retry")
        else:
            log.debug("audit log indexed for proofs: %d entries", self._proofs.known)

    async def head(self) -> dict[str, Any]:
        async with self._store.read() as view:
            head = await self._log.head(view, self._clock())
        return head.model_dump(mode="json")

    async def inclusion(self, index: int, size: int) -> dict[str, Any]:
        await self._check_size(size)
        try:
            proof = await self._proofs.inclusion(self._store, index, size)
        except ProofError as exc:
            raise BadRequest(f"no inclusion proof: {exc}") from exc
        return {"index": index, "size": size, "proof": [node.hex() for node in proof]}

    async def consistency(self, first: int, second: int) -> dict[str, Any]:
        await self._check_size(second)
        try:
            proof = await self._proofs.consistency(self._store, first, second)
        except ProofError as exc:
            raise BadRequest(f"no consistency proof: {exc}") from exc
        return {"first": first, "second": second, "proof": [node.hex() for node in proof]}

    async def _check_size(self, size: int) -> None:
        # The log only grows: a size whose leaves the proof index has read is in it.
        if size <= self._proofs.known:
            return
        async with self._store.read() as view:
            logged = (await self._log.head(view, self._clock())).size
        if size > logged:
            raise BadRequest(f"the log has fewer than {size} entries")

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

"""Group commit: write operations from concurrent requests share one transaction.

One transaction per message would cap the hub at a few thousand messages a second on
SQLite (DESIGN.md section 10); committing a batch costs about the same as committing one
row. Each caller gets its own result only once the batch that holds its operation is
durable: the result is handed over after the transaction's commit has returned, and a
commit returns only once it is on disk (SQLite synchronous=FULL, one fsync per batch;
PostgreSQL synchronous_commit not off; hub/store/dialect.py). So no receipt or signed tree
head leaves the hub before the batch that holds it has committed. The transaction's end
steps (the audit log's append, then the receipts that name its positions) run after every
operation of the batch and before that commit (UnitOfWork.at_end). If any operation in a
batch fails, the batch is rolled back and every operation in it is retried in a
transaction of its own, so one bad write fails only its own request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hub.store.interfaces import Store, UnitOfWork

__all__ = ["GroupCommitter"]

log = logging.getLogger("hub.store")
T = TypeVar("T")
Operation = Callable[[UnitOfWork], Awaitable[Any]]


class GroupCommitter:
    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 512,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self._store = store
        # Told each batch's size and seconds once it is done (the hub's /metrics).
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._pending: list[tuple[Operation, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, operation: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run ``operation`` in a shared write transaction; return once it is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((operation, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller that goes away must not cancel a commit others wait on.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            started = time.perf_counter()
            try:
                async with self._store.transaction() as tx:
                    results = [await operation(tx) for operation, _ in batch]
            except Exception:
                if len(batch) > 1:
                    log.info("a batch of %d writes failed; retrying each alone", len(batch))
                await self._one_by_one(batch)
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            if self._on_batch is not None:
                self._on_batch(len(batch), time.perf_counter() - started)

    async def _one_by_one(self, batch: list[tuple[Operation, asyncio.Future[Any]]]) -> None:
        for operation, future in batch:
            try:
                async with self._store.transaction() as tx:
                    result = await operation(tx)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        """Finish what is queued."""
        if self._flusher is not None:
            await self._flusher

    @property
    def pending(self) -> int:
        """Operations queued and not yet taken into a batch."""
        return len(self._pending)

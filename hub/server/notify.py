"""Wakes inbox long-polls in this process when a delivery arrives for a node."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

__all__ = ["InboxNotifier"]


class InboxNotifier:
    """Per-node wake-ups. Other hub processes are covered by a bounded re-poll interval."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)

    @property
    def waiting(self) -> int:
        """Long-polls waiting in this process now."""
        return sum(len(waiters) for waiters in self._waiters.values())

    def notify(self, node_id: str) -> None:
        for waiter in self._waiters.pop(node_id, set()):
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, node_id: str, seconds: float) -> bool:
        """Wait up to ``seconds`` for a delivery to ``node_id``; True if woken."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[node_id].add(waiter)
        try:
            await asyncio.wait_for(waiter, seconds)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(node_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    with contextlib.suppress(KeyError):
                        del self._waiters[node_id]

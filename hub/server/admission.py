"""What a connection and a node may hold of the hub at once (deploy/limits.md).

Why: a body is read only after its request's headers authenticate, but the bytes a client
sends do not wait for that. The kernel buffers them, and asyncio reads what the kernel
holds into memory before any handler runs. Three bounds keep strangers from turning that
into the hub's memory, and one keeps a node from crowding out the others:

- **Read-ahead** (``limits.receive_buffer_bytes``): ``hub serve`` gives every accepted
  socket a small kernel receive buffer and aiohttp the same read-ahead, so each connection
  holds at most a few times that many unread bytes in the hub, whatever it announces.
- **Unauthenticated connections** (``limits.max_unauthenticated_connections``): a
  connection counts from its accept until a request on it authenticates. At the cap the
  hub accepts no more: new connections wait in the kernel's listen queue, unread, until
  one of those counted authenticates, is answered and closed, or times out. So a thousand
  strangers cost the memory of the cap, not of a thousand, and a burst of honest nodes
  is delayed by milliseconds instead of refused.
- **Time to authenticate** (``limits.unauthenticated_connection_seconds``): a connection
  that has not authenticated by then is closed, so idle or trickling strangers cannot hold
  the cap's places.
- **Per-node concurrency** (``limits.per_node_concurrent_requests``): an authenticated
  node's requests in progress at once; one more is answered ``429`` with ``Retry-After``.
  An authenticated body may be up to ``limits.message_body_bytes``, so this also bounds
  what one node's stalled bodies can hold.

The connection gate works on ``hub serve``'s listening socket (``hub.server.serving``); an
app served another way (the in-process test server) has the per-node limit only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.config import Limits
from hub.errors import TooManyRequests

__all__ = ["ADMISSION", "Admission", "admission_middleware", "admit"]

log = logging.getLogger("hub.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RETRY_AFTER_SECONDS = 1
_FULL_LOG_SECONDS = 10.0


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted by the gate until it authenticates."""

    def __init__(self, inner: asyncio.Protocol, gate: Admission) -> None:
        self._inner = inner
        self._gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._gate._arrived(self._inner, transport)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gate._left(self._inner)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class Admission:
    """The hub's admission limits: the unauthenticated-connection gate and per-node slots."""

    def __init__(self, limits: Limits) -> None:
        self._max_waiting = limits.max_unauthenticated_connections
        self._deadline = limits.unauthenticated_connection_seconds
        self._per_node = limits.per_node_concurrent_requests
        # Connections not yet authenticated, with the timer that closes them.
        self._waiting: dict[object, asyncio.TimerHandle] = {}
        self._in_flight: Counter[str] = Counter()
        self._room: asyncio.Event | None = None
        self._full_logged = 0.0

    # -- the connection gate (hub serve's listening socket) --------------------------------

    def protocol(self, make: Callable[[], asyncio.Protocol]) -> asyncio.Protocol:
        """The protocol for a newly accepted connection: aiohttp's from ``make``, counted."""
        return _Counted(make(), self)

    async def room(self) -> None:
        """Wait until fewer than the cap of connections are waiting to authenticate."""
        if self._room is None:
            self._room = asyncio.Event()
            self._update_room()
        if not self._room.is_set():
            self._note_full()
        await self._room.wait()

    def _update_room(self) -> None:
        if self._room is not None:
            if len(self._waiting) < self._max_waiting:
                self._room.set()
            else:
                self._room.clear()

    @property
    def unauthenticated_connections(self) -> int:
        return len(self._waiting)

    def _arrived(self, connection: object, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        self._waiting[connection] = loop.call_later(
            self._deadline, self._expire, connection, transport
        )
        self._update_room()

    def _expire(self, connection: object, transport: asyncio.BaseTransport) -> None:
        if self._waiting.pop(connection, None) is not None:
            log.info("closing a connection that did not authenticate within %gs", self._deadline)
            transport.close()
            self._update_room()

    def _left(self, connection: object) -> None:
        timer = self._waiting.pop(connection, None)
        if timer is not None:
            timer.cancel()
            self._update_room()

    def _authenticated(self, connection: object) -> None:
        self._left(connection)

    def _note_full(self) -> None:
        now = time.monotonic()
        if now - self._full_logged >= _FULL_LOG_SECONDS:
            log.warning(
                "%d connections are waiting to authenticate "
                "(limits.max_unauthenticated_connections): accepting no more until one has",
                len(self._waiting),
            )
            self._full_logged = now

    # -- per-node concurrency -------------------------------------------------------------

    def enter(self, node_id: str) -> None:
        """Take one of ``node_id``'s request slots, or raise :class:`TooManyRequests`."""
        if self._in_flight[node_id] >= self._per_node:
            raise TooManyRequests(
                f"This node already has {self._per_node} requests in progress "
                "(limits.per_node_concurrent_requests); retry when one has finished.",
                retry_after_seconds=RETRY_AFTER_SECONDS,
                node=node_id,
            )
        self._in_flight[node_id] += 1

    def leave(self, node_id: str) -> None:
        self._in_flight[node_id] -= 1
        if self._in_flight[node_id] <= 0:
            del self._in_flight[node_id]

    def in_flight(self, node_id: str) -> int:
        return self._in_flight[node_id]


ADMISSION = web.AppKey("admission", Admission)
_ADMITTED_NODE: web.RequestKey[str] = web.RequestKey("admitted_node")


def admit(request: web.Request, node_id: str) -> None:
    """Call once a request has authenticated as ``node_id``: its connection leaves the
    gate's count, and the request takes one of the node's slots until it has finished."""
    admission = request.app[ADMISSION]
    admission._authenticated(request.protocol)
    admission.enter(node_id)
    request[_ADMITTED_NODE] = node_id


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives back the node's slot when its request has finished, however it finished."""
    try:
        return await handler(request)
    finally:
        node_id = request.get(_ADMITTED_NODE)
        if node_id is not None:
            request.app[ADMISSION].leave(node_id)

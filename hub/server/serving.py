"""``hub serve``'s listening socket and event loop: aiohttp's runner behind the hub's
connection gate (``hub.server.admission``), with a small kernel receive buffer.

``web.run_app`` would do the rest of this, but it accepts every connection the kernel
queues; here a connection is accepted only while fewer than
``limits.max_unauthenticated_connections`` are waiting to authenticate, each goes through
:meth:`Admission.protocol`, and the socket buffers are set before the first accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from aiohttp import web

from hub.config import Limits
from hub.server.admission import ADMISSION, Admission

__all__ = ["limit_receive_buffer", "serve"]

log = logging.getLogger("hub.server")


def limit_receive_buffer(listener: socket.socket, limits: Limits) -> None:
    """Accepted sockets inherit the listener's receive buffer (and their TCP window from
    it), so a client can have at most about this much in flight to the hub per connection.

    A connection takes the buffer the listener has when its handshake arrives: call this
    as soon as the socket listens, before anyone is told the port."""
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, limits.receive_buffer_bytes)


class _Listener(asyncio.AbstractServer):
    """Accepts connections one by one while the gate has room (aiohttp's site only calls
    :meth:`close`; the runner closes the connections themselves)."""

    def __init__(self, sock: socket.socket, admission: Admission, server: web.Server) -> None:
        self._sock = sock
        self._task = asyncio.get_running_loop().create_task(self._accept(admission, server))

    async def _accept(self, admission: Admission, server: web.Server) -> None:
        loop = asyncio.get_running_loop()
        self._sock.setblocking(False)
        while True:
            await admission.room()
            try:
                connection, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # e.g. EMFILE: the connection stays queued; retry shortly
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            try:
                await loop.connect_accepted_socket(lambda: admission.protocol(server), connection)
            except OSError:
                connection.close()
            except Exception:  # never stop accepting over one connection
                log.exception("could not set up an accepted connection")
                connection.close()

    def close(self) -> None:
        self._task.cancel()
        self._sock.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._task.get_loop()

    def is_serving(self) -> bool:
        return not self._task.done()

    async def start_serving(self) -> None:
        """Serving starts with the accept task."""

    async def serve_forever(self) -> None:
        await self.wait_closed()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class _GatedSockSite(web.SockSite):
    __slots__ = ("_admission",)

    def __init__(self, runner: web.AppRunner, sock: socket.socket, admission: Admission) -> None:
        super().__init__(runner, sock)
        self._admission = admission

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        self._server = _Listener(self._sock, self._admission, server)


async def _serve(app: web.Application, listener: socket.socket, limits: Limits) -> None:
    # handle_signals: SIGINT and SIGTERM stop the loop through web.GracefulExit.
    runner = web.AppRunner(
        app,
        handle_signals=True,
        access_log=None,
        # As web.run_app does (aiohttp's own default is an hour): an idle keep-alive
        # connection is closed after 75 s.
        keepalive_timeout=75.0,
        # aiohttp pauses reading a request's body once twice this much is buffered.
        read_bufsize=limits.receive_buffer_bytes,
    )
    await runner.setup()
    try:
        await _GatedSockSite(runner, listener, app[ADMISSION]).start()
        await asyncio.Event().wait()  # until a signal raises web.GracefulExit
    finally:
        await runner.cleanup()


def serve(app: web.Application, listener: socket.socket, limits: Limits) -> None:
    """Serve ``app`` on ``listener`` until SIGINT or SIGTERM."""
    limit_receive_buffer(listener, limits)  # again, in case the caller has not
    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(_serve(app, listener, limits))

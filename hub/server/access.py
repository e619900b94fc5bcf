"""The access log and the request metrics: one middleware, outermost, one line per request.

Each line names the method, the route *pattern* (``/v1/messages/{message_id}``, never the
raw path or the query string, which can carry references a node chose), the status, the
duration in milliseconds, the response body's bytes, the authenticated node (if the
request authenticated) and the direct peer's address. Health checks and scrapes are logged
at DEBUG, everything else at INFO, on the ``hub.access`` logger.

The middleware writes the answer itself (``prepare`` and ``write_eof``; aiohttp then finds
it sent), so the duration covers streaming a blob download and the byte count is known.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import dataclass

from aiohttp import web

from hub.server.metrics import METRICS, UNMATCHED_ROUTE
from hub.server.problems import Handler

__all__ = ["CLIENT_WENT_AWAY", "access_middleware", "note_authenticated"]

log = logging.getLogger("hub.access")

# Logged at DEBUG: polled by machines every few seconds.
_QUIET_ROUTES = frozenset({"/v1/health", "/metrics"})
# The status recorded for a request whose client left before it was answered (as nginx).
CLIENT_WENT_AWAY = 499


@dataclass(slots=True)
class _RequestNote:
    node: str | None = None


# Request-scoped, not global state: aiohttp runs each request in a task of its own, and
# the middleware sets a fresh note in that task's context. The authenticator writes to it
# without having to know about HTTP requests.
_NOTE: contextvars.ContextVar[_RequestNote | None] = contextvars.ContextVar(
    "seh_hub_request_note", default=None
)


def note_authenticated(node_id: str) -> None:
    """Record the node a request authenticated as, for its access-log line."""
    note = _NOTE.get()
    if note is not None:
        note.node = node_id


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    note = _RequestNote()
    token = _NOTE.set(note)
    status = 500  # an exception that escapes every middleware becomes aiohttp's 500
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        status = response.status
        await response.prepare(request)
        await response.write_eof()
        return response
    except ConnectionError:
        if response is None:
            raise
        return response  # the client left while the answer was written; aiohttp knows
    except web.HTTPException as exc:  # a redirect or other non-error the problems pass on
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_WENT_AWAY
        raise
    finally:
        _NOTE.reset(token)
        _record(request, status, time.perf_counter() - started, response, note.node)


def _record(
    request: web.Request,
    status: int,
    seconds: float,
    response: web.StreamResponse | None,
    node: str | None,
) -> None:
    route = _route(request)
    request.app[METRICS].request(request.method, route, status, seconds)
    level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
    if not log.isEnabledFor(level):
        return
    size = (response.content_length or 0) if response is not None else 0
    duration_ms = round(seconds * 1000, 3)
    remote = request.remote
    log.log(
        level,
        "%s %s %d %.1fms %dB node=%s remote=%s",
        request.method,
        route,
        status,
        duration_ms,
        size,
        node or "-",
        remote or "-",
        extra={
            "event": "request",
            "method": request.method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "bytes": size,
            "node": node,
            "remote": remote,
        },
    )

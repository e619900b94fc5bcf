"""The access log and the request metrics: one middleware, outermost, one line per request.

Each line names the method, the route *pattern* (``/v1/messages/{message_id}``, never the
raw path or the query string, which can carry references a node chose), the status, the
duration in milliseconds, the response body's bytes, the authenticated node (if the
request authenticated) and the direct peer's address. Health checks and scrapes are logged
at DEBUG, everything else at INFO, on the ``hub.access`` logger.

A line is written when the request's task ends, after aiohttp has sent the answer, so the
duration covers streaming a blob download and a file's byte count is known.
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
    answer: web.StreamResponse | None = None
    try:
        answer = await handler(request)
        return answer
    except web.HTTPException as exc:  # a redirect or other non-error the problems pass on
        answer = exc
        raise
    finally:
        _NOTE.reset(token)
        _when_sent(request, started, answer, note)


def _when_sent(
    request: web.Request,
    started: float,
    answer: web.StreamResponse | None,
    note: _RequestNote,
) -> None:
    """Record the request once aiohttp has written its answer.

    aiohttp handles each request in a task of its own (for the contextvars, aiohttp#3406)
    and writes the answer in that task after the middlewares return, so the task's end is
    when the last byte went out: the duration then covers a streamed blob download, and
    a file response knows its length.
    """

    def done(task: asyncio.Future[object] | None) -> None:
        if task is not None and task.cancelled():
            status = CLIENT_WENT_AWAY
        else:
            # No answer: an exception escaped every middleware and aiohttp answers 500.
            status = 500 if answer is None else answer.status
        size = 0 if answer is None else (answer.content_length or 0)
        # A signature that verified over a body whose digest then did not match is still
        # a 401: no node is named for a request the hub did not accept as that node's.
        node = None if status == 401 else note.node
        _record(request, status, time.perf_counter() - started, size, node)

    task = asyncio.current_task()
    if task is None:
        done(None)
    else:
        task.add_done_callback(done)


def _record(
    request: web.Request,
    status: int,
    seconds: float,
    size: int,
    node: str | None,
) -> None:
    route = _route(request)
    request.app[METRICS].request(request.method, route, status, seconds)
    level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
    if not log.isEnabledFor(level):
        return
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

"""The one place errors become RFC 9457 ``application/problem+json`` (STYLE.md rule 5)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import hdrs, web

from hub.errors import PROBLEM_TYPE_BASE, HubError
from hub.model import PROBLEM_MEDIA_TYPE, Violation

__all__ = ["ClientGone", "problem_middleware", "problem_response"]

log = logging.getLogger("hub.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem_response(
    *,
    status: int,
    problem_type: str,
    title: str,
    detail: str | None,
    instance: str | None,
    violations: Sequence[Violation] = (),
) -> web.Response:
    body: dict[str, object] = {"type": problem_type, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    if violations:
        body["violations"] = [v.model_dump() for v in violations]
    return web.Response(
        status=status, text=json.dumps(body), content_type=PROBLEM_MEDIA_TYPE, charset="utf-8"
    )


class ClientGone(Exception):
    """The client closed the connection before its request body had arrived."""


async def _closing(request: web.Request, response: web.Response) -> web.Response:
    """Answer, then close the connection, when the request's body was never read in full
    (refused from its headers, too large or stalled): the server would otherwise linger,
    reading and discarding what a stranger chooses to send, for up to ten seconds."""
    if request.body_exists and not request.content.at_eof():
        response.force_close()
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionResetError:
            return response  # the client left first
        if request.transport is not None:
            request.transport.close()
    return response


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ClientGone as gone:
        # Not an error of the hub's: one info line, no traceback (nobody reads the answer).
        log.info("client went away mid-body on %s %s (%s)", request.method, request.path, gone)
        response = problem_response(
            status=400,
            problem_type=f"{PROBLEM_TYPE_BASE}bad-request",
            title="The request body did not arrive",
            detail=None,
            instance=request.path,
        )
        response.force_close()  # the connection is gone already: nothing to linger for
        return response
    except HubError as exc:
        if exc.debug:
            log.info(
                "%s %s -> %d %s %s", request.method, request.path, exc.status, exc.slug, exc.debug
            )
        answer = problem_response(
            status=exc.status,
            problem_type=exc.problem_type,
            title=exc.title,
            detail=exc.detail,
            instance=request.path,
            violations=exc.violations,
        )
        answer.headers.update(exc.headers)
        return await _closing(request, answer)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem_response(
            status=exc.status,
            problem_type=f"{PROBLEM_TYPE_BASE}http-{exc.status}",
            title=exc.reason,
            detail=None,
            instance=request.path,
        )
        # RFC 9110 section 15.5.6: a 405 must say which methods the resource allows.
        if hdrs.ALLOW in exc.headers:
            response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        # Unknown failures say nothing to the caller; the traceback goes to the log.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(
            status=500,
            problem_type=f"{PROBLEM_TYPE_BASE}internal-error",
            title="Internal error",
            detail=None,
            instance=None,
        )

"""The one place errors become RFC 9457 ``application/problem+json`` (STYLE.md rule 5)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import hdrs, web

from hub.errors import PROBLEM_TYPE_BASE, HubError
from hub.model import PROBLEM_MEDIA_TYPE, Violation

__all__ = ["problem_middleware", "problem_response"]

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


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as exc:
        if exc.debug:
            log.info(
                "%s %s -> %d %s %s", request.method, request.path, exc.status, exc.slug, exc.debug
            )
        return problem_response(
            status=exc.status,
            problem_type=exc.problem_type,
            title=exc.title,
            detail=exc.detail,
            instance=request.path,
            violations=exc.violations,
        )
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

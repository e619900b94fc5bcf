"""The console's app factory: settings and the node's services in, an aiohttp app out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from agency_adapters.node.console.keys import SERVICES, SETTINGS
from agency_adapters.node.console.rendering import render, setup_templates
from agency_adapters.node.console.routes import ROUTES
from agency_adapters.node.console.security import (
    Handler,
    RoleRequired,
    csrf,
    security_headers,
    sessions,
)
from agency_adapters.node.console.services import NodeServices
from agency_adapters.node.console.settings import ConsoleSettings
from agency_adapters.node.users import ROLE_LABELS

__all__ = ["ConsoleAccessLogger", "create_console_app"]

log = logging.getLogger("seh.console")

STATIC_DIR = Path(__file__).parent / "static"


class ConsoleAccessLogger(AbstractAccessLogger):
    """Method, path and status only: a query string can hold a search for a name."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


_ERROR_PAGES = {
    401: ("Sign in first", ["Your session has ended or you have not signed in."]),
    403: ("You cannot do that here", ["Your account does not have the role this needs."]),
    404: ("Page not found", ["There is nothing here, or you do not have access to it."]),
    405: ("Page not found", ["There is nothing here, or you do not have access to it."]),
    413: ("That is too large", ["The form or file you sent is larger than this console takes."]),
}


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as pages in the layout, never with a traceback or any case data."""
    try:
        return await handler(request)
    except RoleRequired as exc:
        needed = ", ".join(ROLE_LABELS.get(role, role) for role in sorted(exc.roles))
        return render(
            request,
            "error.html",
            {
                "heading": "You cannot do that here",
                "paragraphs": [
                    f"This page is for users with one of these roles: {needed}.",
                    "Ask your node administrator if you need it.",
                ],
            },
            title="No access",
            status=403,
        )
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status not in _ERROR_PAGES:
            raise
        heading, paragraphs = _ERROR_PAGES[exc.status]
        if exc.status == 403 and exc.text and not exc.text.startswith("403"):
            paragraphs = [exc.text]
        return render(
            request,
            "error.html",
            {"heading": heading, "paragraphs": paragraphs},
            title=heading,
            status=exc.status,
        )
    except Exception:
        log.exception("console: unhandled error on %s %s", request.method, request.path)
        return render(
            request,
            "error.html",
            {
                "heading": "Sorry, there is a problem with the service",
                "paragraphs": ["Nothing was sent. Try again later, or tell your administrator."],
            },
            title="Sorry, there is a problem",
            status=500,
        )


def create_console_app(settings: ConsoleSettings, services: NodeServices) -> web.Application:
    """The console for one node: its pages, its sign-in, its background inbox sync."""
    app = web.Application(
        middlewares=[security_headers, error_pages, sessions, csrf],
        client_max_size=2 << 20,
    )
    app[SETTINGS] = settings
    app[SERVICES] = services
    setup_templates(app)
    app.router.add_routes(ROUTES)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async for _ in services.lifetime(settings.sync_wait):
            yield

    app.cleanup_ctx.append(lifetime)
    return app

"""For the node administrator: the node's users and its access log."""

from __future__ import annotations

from aiohttp import web

from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.rendering import render
from agency_adapters.node.console.security import requires

__all__ = ["access_log", "admin_home"]

PAGE_SIZE = 100


@requires("NODE_ADMIN")
async def admin_home(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    return render(
        request,
        "admin.html",
        {"users": services.users.list_users()},
        title="Administration",
    )


@requires("NODE_ADMIN")
async def access_log(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    user = request.query.get("user") or None
    entries = services.store.access_entries(
        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, user=user
    )
    return render(
        request,
        "access_log.html",
        {"entries": entries, "page": page, "user_filter": user or ""},
        title="Access log",
    )

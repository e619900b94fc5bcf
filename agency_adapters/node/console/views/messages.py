"""Inbox, sent items and one message."""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web

from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.rendering import highest_marking, render
from agency_adapters.node.console.security import current_session
from agency_adapters.node.store import NodeStoreError

__all__ = ["inbox", "message", "sent"]

PAGE_SIZE = 50


def _listing(request: web.Request, direction: Literal["in", "out"]) -> dict[str, Any]:
    services = request.app[SERVICES]
    filters = {
        "kind": request.query.get("kind") or None,
        "case_ref": request.query.get("case") or None,
        "request_id": request.query.get("request") or None,
        "search": request.query.get("q") or None,
    }
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    rows = services.store.list_messages(
        direction, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters
    )
    total = services.store.count_messages(direction, **filters)
    return {"rows": rows, "total": total, "page": page, "filters": filters, "direction": direction}


async def inbox(request: web.Request) -> web.StreamResponse:
    listing = _listing(request, "in")
    return render(
        request,
        "messages.html",
        {**listing, "heading": "Inbox"},
        title="Inbox",
        marking=highest_marking([row.marking for row in listing["rows"]]),
    )


async def sent(request: web.Request) -> web.StreamResponse:
    listing = _listing(request, "out")
    return render(
        request,
        "messages.html",
        {**listing, "heading": "Sent"},
        title="Sent",
        marking=highest_marking([row.marking for row in listing["rows"]]),
    )


async def message(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    message_id = request.match_info["message_id"]
    stored = services.store.get(message_id)
    if stored is None:
        raise web.HTTPNotFound()
    services.viewed(session.user, "message", stored.id)
    payload: Any = None
    unavailable = None
    try:
        raw = services.store.open_payload(stored.id, services.keys, services.node_id)
        payload = json.loads(raw) if stored.media_type.endswith("json") else None
    except NodeStoreError as exc:
        unavailable = str(exc)
    return render(
        request,
        "message.html",
        {"message": stored, "payload": payload, "unavailable": unavailable},
        title=f"{stored.kind.replace('_', ' ').capitalize()} {stored.id[:13]}",
        marking=stored.marking,
    )

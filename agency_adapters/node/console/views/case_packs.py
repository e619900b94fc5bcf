"""The case pack reader for panel members: the packs this node received, each until its
access expiry, on screen and as a marked PDF.

A pack is readable only until the access expiry its envelope carries (DESIGN.md section
6). The time is checked against the console's clock on every request, not only when the
purge ran: an expired pack answers 410 Gone with a page saying when access ended and that
its content has been deleted from this node, and its ciphertext is purged on the way.
Every view and every download is written to the node's access log.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web
from pydantic import ValidationError

from agency_adapters.node.casepack_pdf import CasePackRenderError, render_case_pack_pdf
from agency_adapters.node.console.channel import time_left
from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.rendering import highest_marking, render
from agency_adapters.node.console.security import current_session, requires
from agency_adapters.node.console.services import NodeServices
from agency_adapters.node.store import NodeStoreError, PayloadPurged, StoredMessage
from hub.model.payloads import CasePackPayload

__all__ = ["case_pack", "case_pack_pdf", "case_packs"]

log = logging.getLogger("seh.console")

READER_ROLES = ("PANEL_MEMBER", "CHANNEL_CHAIR")
PAGE_SIZE = 100


def _expired(stored: StoredMessage, now: datetime) -> bool:
    return stored.access_expires_at is None or stored.access_expires_at <= now


@requires(*READER_ROLES)
async def case_packs(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    now = services.now()
    rows = services.store.list_messages("in", kind="case_pack", limit=PAGE_SIZE)
    packs = [
        {
            "message": row,
            "expired": _expired(row, now),
            "time_left": None
            if row.access_expires_at is None
            else time_left(row.access_expires_at, now),
        }
        for row in rows
    ]
    return render(
        request,
        "case_packs.html",
        {"packs": packs},
        title="Case packs",
        marking=highest_marking([row.marking for row in rows if not _expired(row, now)]),
    )


def _received_pack(services: NodeServices, message_id: str) -> StoredMessage:
    stored = services.store.get(message_id)
    # Only a pack this node received: the chair's own sent copy is not read here.
    if stored is None or stored.direction != "in" or stored.kind != "case_pack":
        raise web.HTTPNotFound()
    return stored


def _gone(request: web.Request, stored: StoredMessage) -> web.Response:
    """The 410 page for a pack whose access ended; purges what is still kept."""
    services = request.app[SERVICES]
    services.store.purge(services.now())
    services.viewed(current_session(request).user, "case_pack", stored.id, action="refused-expired")
    return render(
        request,
        "case_pack_gone.html",
        {"message": stored, "ended_at": stored.access_expires_at},
        title="Access to this case pack has ended",
        status=410,
    )


def _open_pack(services: NodeServices, stored: StoredMessage) -> CasePackPayload:
    raw = services.store.open_payload(stored.id, services.keys, services.node_id)
    try:
        return CasePackPayload.model_validate_json(raw)
    except ValidationError as exc:
        # The receiver checked it against the model before acknowledging it.
        raise NodeStoreError(f"case pack {stored.id} is not a readable case pack") from exc


@requires(*READER_ROLES)
async def case_pack(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    stored = _received_pack(services, request.match_info["message_id"])
    now = services.now()
    if _expired(stored, now):
        return _gone(request, stored)
    try:
        pack = _open_pack(services, stored)
    except PayloadPurged:
        return _gone(request, stored)
    except NodeStoreError as exc:
        services.viewed(session.user, "case_pack", stored.id, action="view-failed")
        return render(
            request,
            "error.html",
            {"heading": "This case pack cannot be opened", "paragraphs": [str(exc)]},
            title="Case pack unavailable",
            marking=stored.marking,
            status=500,
        )
    services.viewed(session.user, "case_pack", stored.id)
    assert stored.access_expires_at is not None  # not expired, so it has one
    return render(
        request,
        "case_pack.html",
        {
            "message": stored,
            "pack": pack,
            "time_left": time_left(stored.access_expires_at, now),
        },
        title=f"Case pack for {stored.case_ref or 'a Channel case'}",
        marking=stored.marking,
    )


@requires(*READER_ROLES)
async def case_pack_pdf(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    stored = _received_pack(services, request.match_info["message_id"])
    now = services.now()
    if _expired(stored, now):
        return _gone(request, stored)
    try:
        pack = _open_pack(services, stored)
    except PayloadPurged:
        return _gone(request, stored)
    directory = await services.client.directory()
    own = directory.get(services.node_id)
    assert stored.access_expires_at is not None  # not expired, so it has one
    try:
        body = render_case_pack_pdf(
            pack,
            marking=stored.marking,
            reader_name=session.user.display_name,
            reader_organisation=own.display_name if own is not None else services.node_id,
            case_ref=stored.case_ref or "",
            message_id=stored.id,
            access_expires_at=stored.access_expires_at,
            generated_at=now,
        )
    except CasePackRenderError:
        log.exception("console: case pack %s could not be rendered as a PDF", stored.id)
        raise
    services.viewed(session.user, "case_pack", stored.id, action="download")
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="case-pack-{stored.id}.pdf"',
            "Cache-Control": "no-store",
        },
    )

"""Inbox, sent items, one message, and "Check for new messages".

Lists show what the node's store holds (never one hub call per row): the stored state of
each message, and for information requests whether the hub has them as decided or
overdue, from one ``client.requests()`` call per page. The message page opens the
payload on view, renders it by kind (``templates/kinds/<kind>.html``), and for a sent
message fetches the hub's live per-recipient status and keeps it for the lists.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.presenting import (
    REQUEST_STATES,
    STATE_LABELS,
    STORED_STATES_FOR,
    approved_scope_rows,
    decision_payload_sections,
    delivery_state,
    fhir_tables,
    gateway_rows,
    manifest_rows,
    model_sections,
    parse_payload,
    referral_sections,
    scope_rows,
)
from agency_adapters.node.console.rendering import highest_marking, render
from agency_adapters.node.console.security import current_session
from agency_adapters.node.console.services import NodeServices
from agency_adapters.node.console.views.decide import DECIDER_ROLES
from agency_adapters.node.store import NodeStoreError, PayloadPurged, StoredMessage
from agency_adapters.node.sync import sync_inbox
from hub.client import HubProblem, VerificationFailed
from hub.model import MESSAGE_KINDS, Envelope
from hub.model.payloads import (
    CaseOpenPayload,
    CaseReviewPayload,
    ConsentRecordPayload,
    DecisionPayload,
    InformationRequestPayload,
    NationalPreventReferralForm,
    PanelOutcomePayload,
    ReferrerFeedback,
)

__all__ = ["inbox", "message", "sent", "sync_now"]

log = logging.getLogger("seh.console")

PAGE_SIZE = 25
Direction = Literal["in", "out"]
# What a failed call to the hub can raise: its refusal, the network, a bad signature.
HUB_ERRORS = (HubProblem, VerificationFailed, aiohttp.ClientError, TimeoutError)


def kind_label(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


def _page_number(request: web.Request) -> int:
    try:
        return max(1, int(request.query.get("page", "1")))
    except ValueError:
        return 1


async def _hub_requests(services: NodeServices) -> tuple[dict[str, dict[str, Any]], bool]:
    """The hub's information requests this node is party to, by id; False when the hub
    could not be reached (the page says so and shows what the store holds)."""
    try:
        found = await services.client.requests()
    except HUB_ERRORS as exc:
        log.warning("console: request states unavailable (%s)", type(exc).__name__)
        return {}, False
    return {str(item["request_id"]): item for item in found}, True


def _request_flag(item: dict[str, Any] | None) -> str | None:
    if item is None:
        return None
    if item.get("overdue"):
        return "overdue"
    if item.get("decision_outcome") not in (None, "ESCALATED"):
        return "decided"
    return None


def _pagination(base: str, query: dict[str, str], page: int, pages: int) -> dict[str, Any]:
    def href(number: int) -> str:
        return f"{base}?{urlencode({**query, 'page': str(number)})}"

    window = [n for n in range(1, pages + 1) if n in (1, pages) or abs(n - page) <= 2]
    items: list[dict[str, Any]] = []
    previous = 0
    for number in window:
        if number - previous > 1:
            items.append({"ellipsis": True})
        items.append(
            {"ellipsis": False, "number": number, "href": href(number), "current": number == page}
        )
        previous = number
    return {
        "pages": items if pages > 1 else [],
        "previous": href(page - 1) if page > 1 else None,
        "next": href(page + 1) if page < pages else None,
    }


async def _listing(request: web.Request, direction: Direction) -> dict[str, Any]:
    services = request.app[SERVICES]
    kind = request.query.get("kind") or None
    if kind is not None and kind not in MESSAGE_KINDS:
        kind = None
    state = request.query.get("state") or None
    if state is not None and state not in STATE_LABELS:
        state = None
    search = (request.query.get("q") or "").strip()[:100] or None
    page = _page_number(request)
    requests, hub_reached = await _hub_requests(services)
    filters: dict[str, Any] = {"kind": kind, "search": search}
    if state in STORED_STATES_FOR:
        filters["states"] = STORED_STATES_FOR[state]
    elif state in REQUEST_STATES:
        filters["kind"] = "information_request"
        filters["ids"] = [rid for rid, item in requests.items() if _request_flag(item) == state]
    total = services.store.count_messages(direction, **filters)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    rows = services.store.list_messages(
        direction, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters
    )
    query = {k: v for k, v in (("kind", kind), ("state", state), ("q", search)) if v}
    return {
        "rows": [
            {
                "message": row,
                "kind_label": kind_label(row.kind),
                "state_label": STATE_LABELS.get(row.state, row.state.capitalize()),
                "request_flag": _request_flag(requests.get(row.request_id or ""))
                if row.kind == "information_request"
                else None,
            }
            for row in rows
        ],
        "total": total,
        "page": page,
        "pages": pages,
        "first_shown": (page - 1) * PAGE_SIZE + 1 if total else 0,
        "last_shown": (page - 1) * PAGE_SIZE + len(rows),
        "pagination": _pagination(request.path, query, page, pages),
        "filters": {"kind": kind or "", "state": state or "", "q": search or ""},
        "kinds": [(k, kind_label(k)) for k in MESSAGE_KINDS],
        "states": list(STATE_LABELS.items()),
        "direction": direction,
        "hub_reached": hub_reached,
        "markings": [row.marking for row in rows],
    }


def _sync_banner(request: web.Request) -> str | None:
    value = request.query.get("synced")
    if value is None:
        return None
    if value == "failed":
        return "The hub could not be reached. Nothing new was fetched; try again later."
    try:
        count = int(value)
    except ValueError:
        return None
    if count == 0:
        return "No new messages."
    return f"{count} new message{'' if count == 1 else 's'}"


async def inbox(request: web.Request) -> web.StreamResponse:
    listing = await _listing(request, "in")
    return render(
        request,
        "messages.html",
        {**listing, "heading": "Inbox", "banner": _sync_banner(request)},
        title="Inbox",
        marking=highest_marking(listing["markings"]),
    )


async def sent(request: web.Request) -> web.StreamResponse:
    listing = await _listing(request, "out")
    return render(
        request,
        "messages.html",
        {**listing, "heading": "Sent", "banner": None},
        title="Sent",
        marking=highest_marking(listing["markings"]),
    )


async def sync_now(request: web.Request) -> web.StreamResponse:
    """Fetch, check and answer new inbox messages once (for when background sync is off)."""
    services = request.app[SERVICES]
    session = current_session(request)
    try:
        results = await sync_inbox(
            services.client, services.profile, services.store, wait=0, now=services.now()
        )
    except (*HUB_ERRORS, NodeStoreError) as exc:
        log.warning(
            "console: inbox sync by %s failed (%s)", session.user.user_ref, type(exc).__name__
        )
        raise web.HTTPSeeOther(location="/inbox?synced=failed") from exc
    fresh = sum(1 for result in results if result.state != "expired")
    raise web.HTTPSeeOther(location=f"/inbox?synced={fresh}")


# -- one message -------------------------------------------------------------------------


_DIRECTIONS: tuple[Direction, ...] = ("in", "out")


def _thread(services: NodeServices, stored: StoredMessage) -> dict[str, Any]:
    parent = None
    if stored.in_reply_to is not None:
        kept = services.store.get(stored.in_reply_to)
        parent = {
            "id": stored.in_reply_to,
            "kind_label": kind_label(kept.kind) if kept is not None else None,
            "kept": kept is not None,
        }
    replies = [
        {"id": reply.id, "kind_label": kind_label(reply.kind), "sender": reply.sender}
        for direction in _DIRECTIONS
        for reply in services.store.list_messages(direction, in_reply_to=stored.id, limit=100)
    ]
    return {"parent": parent, "replies": replies}


async def _live_status(services: NodeServices, stored: StoredMessage) -> dict[str, Any] | None:
    """The hub's per-recipient status of a message this node sent, kept for the lists."""
    try:
        status = await services.client.status(stored.id)
    except HUB_ERRORS as exc:
        log.warning("console: status unavailable (%s)", type(exc).__name__)
        return None
    state, rules = delivery_state(status.recipients)
    services.store.set_state(stored.id, state, rules)
    return {
        "state": state,
        "state_label": STATE_LABELS.get(state, state),
        "recipients": status.recipients,
    }


async def _request_state(services: NodeServices, request_id: str | None) -> dict[str, Any] | None:
    if request_id is None:
        return None
    try:
        return await services.client.request_state(request_id)
    except HUB_ERRORS as exc:
        log.warning("console: request state unavailable (%s)", type(exc).__name__)
        return None


def _kind_view(
    services: NodeServices, stored: StoredMessage, envelope: Envelope, model: BaseModel | None
) -> dict[str, Any]:
    """What the kind's template shows, from the envelope and the opened payload."""
    registry = services.registry
    view: dict[str, Any] = {"sections": []}
    if isinstance(model, NationalPreventReferralForm):
        view["sections"] = referral_sections(model)
    elif isinstance(model, InformationRequestPayload):
        view["scope"] = scope_rows(envelope.scope, registry, model)
        view["sections"] = model_sections(
            model,
            "The request",
            skip=("requested",),
            own_sections=("requester", "subject", "recipients", "onward_sharing"),
        )
    elif isinstance(model, DecisionPayload):
        view["payload"] = model
        view["sections"] = decision_payload_sections(model)
    elif isinstance(model, ReferrerFeedback):
        view["sections"] = model_sections(model, "What the referrer is told")
    elif isinstance(model, CaseOpenPayload):
        view["sections"] = model_sections(
            model, "Channel case", own_sections=("subject", "coordinator")
        )
    elif isinstance(model, ConsentRecordPayload):
        view["sections"] = model_sections(
            model, "Consent", own_sections=("sought_by", "parent_or_guardian")
        )
    elif isinstance(model, PanelOutcomePayload):
        view["sections"] = model_sections(
            model,
            "Panel outcome",
            own_sections=("support_plan", "consent_request", "referred_on_to"),
        )
    elif isinstance(model, CaseReviewPayload):
        view["sections"] = model_sections(
            model, "Case review", own_sections=("reviewed_by", "referred_on_to")
        )
    if envelope.kind == "decision" and envelope.decision is not None:
        requested = envelope.scope
        parent = services.store.get(envelope.in_reply_to) if envelope.in_reply_to else None
        if parent is not None:
            requested = parent.envelope.scope
        view["approved"] = approved_scope_rows(
            requested, envelope.decision.approved_scope, registry
        )
    if envelope.manifest is not None:
        view["manifest"] = manifest_rows(envelope.manifest, registry)
    return view


def _purpose_name(services: NodeServices, purpose: str) -> str:
    entry = services.registry.purpose(purpose)
    return entry.name if entry is not None else purpose


async def message(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    message_id = request.match_info["message_id"]
    stored = services.store.get(message_id)
    if stored is None:
        raise web.HTTPNotFound()
    services.viewed(session.user, "message", stored.id)
    envelope = stored.envelope
    purged: dict[str, Any] | None = None
    unreadable: str | None = None
    raw_json: Any = None
    model: BaseModel | None = None
    release_tables: list[Any] = []
    # A case pack is read in the case-pack reader (its expiry, its PDF), never here.
    if stored.kind != "case_pack":
        try:
            raw = services.store.open_payload(stored.id, services.keys, services.node_id)
        except PayloadPurged as gone:
            purged = {"reason": gone.reason, "at": gone.purged_at}
        except NodeStoreError as exc:
            unreadable = str(exc)
        else:
            if stored.kind == "release":
                try:
                    release_tables = fhir_tables(json.loads(raw), services.registry)
                except (ValueError, AttributeError):
                    unreadable = "The release's content is not a readable FHIR bundle."
            else:
                model, unreadable = parse_payload(envelope, raw, services.now().date())
                if model is None:
                    try:
                        raw_json = json.loads(raw)
                    except ValueError:
                        raw_json = None
                        unreadable = unreadable or "The content is not JSON."
    elif stored.purged:
        purged = {"reason": stored.purge_reason or "purged", "at": stored.purged_at}
    live = await _live_status(services, stored) if stored.direction == "out" else None
    request_state = await _request_state(services, stored.request_id)
    view = _kind_view(services, stored, envelope, model)
    kind_template = f"kinds/{stored.kind}.html" if stored.kind in MESSAGE_KINDS else None
    return render(
        request,
        "message.html",
        {
            "message": stored,
            "envelope": envelope,
            "kind_label": kind_label(stored.kind),
            "kind_template": kind_template,
            "purpose_name": _purpose_name(services, stored.purpose),
            "gateways": gateway_rows(envelope.legal_basis, services.registry),
            "purged": purged,
            "unreadable": unreadable,
            "raw_json": raw_json,
            "model": model,
            "view": view,
            "release_tables": release_tables,
            "live": live,
            "request_state": request_state,
            "thread": _thread(services, stored),
            "state_label": STATE_LABELS.get(stored.state, stored.state),
            "receipt": stored.receipt,
            "may_decide": bool(session.user.roles & set(DECIDER_ROLES)),
        },
        title=f"{kind_label(stored.kind)} {stored.id[:13]}",
        marking=stored.marking,
    )

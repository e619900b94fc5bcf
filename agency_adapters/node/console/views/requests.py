"""The requests tracker: requests this node sent and requests it must answer, by due date.

The hub tracks each information request's state and deadline (``client.requests()``);
the node's store adds whether the request message was acknowledged and links to each
message it holds. One hub call for the page, never one per row.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.presenting import STATE_LABELS
from agency_adapters.node.console.rendering import highest_marking, render
from agency_adapters.node.console.security import current_session
from agency_adapters.node.console.views.decide import DECIDER_ROLES
from agency_adapters.node.console.views.messages import HUB_ERRORS

__all__ = ["requests_tracker"]

log = logging.getLogger("seh.console")

_FAR_FUTURE = "9999-12-31T23:59:59Z"


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


async def requests_tracker(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    overdue_only = request.query.get("overdue") == "1"
    error = None
    try:
        found = await services.client.requests(overdue=overdue_only)
    except HUB_ERRORS as exc:
        log.warning("console: requests unavailable (%s)", type(exc).__name__)
        found, error = [], "The hub could not be reached. Try again later."
    sent: list[dict[str, Any]] = []
    to_answer: list[dict[str, Any]] = []
    markings: list[str] = []
    for item in sorted(found, key=lambda r: (r.get("due_at") or _FAR_FUTURE, r["request_id"])):
        kept = services.store.get(str(item["request_id"]))
        decision = services.store.get(item["decision_id"]) if item.get("decision_id") else None
        if kept is not None:
            markings.append(kept.marking)
        purpose = services.registry.purpose(str(item.get("purpose", "")))
        row = {
            **item,
            "purpose_name": purpose.name if purpose is not None else item.get("purpose"),
            "due": _parse(item.get("due_at")),
            "submitted": _parse(item.get("submitted_at")),
            "kept": kept,
            "delivery": STATE_LABELS.get(kept.state, kept.state) if kept is not None else None,
            "decision_kept": decision is not None,
            "releases_list": services.store.list_messages(
                "in" if item.get("requester") == services.node_id else "out",
                kind="release",
                request_id=str(item["request_id"]),
            ),
        }
        (sent if item.get("requester") == services.node_id else to_answer).append(row)
    return render(
        request,
        "requests.html",
        {
            "sent": sent,
            "to_answer": to_answer,
            "overdue_only": overdue_only,
            "error": error,
            "overdue_count": sum(1 for row in [*sent, *to_answer] if row.get("overdue")),
            "may_decide": bool(current_session(request).user.roles & set(DECIDER_ROLES)),
        },
        title="Requests",
        marking=highest_marking(markings),
    )

"""One Jinja2 environment, one layout, and the pieces every page shares.

Every page is rendered through :func:`render`, which adds the signed-in user, the CSRF
token, the navigation for the user's roles and the page's protective marking. The marking
is shown in a banner at the top and at the bottom of every page (one macro,
``templates/macros/marking.html``), as the marking rules ask of any document holding
marked material (REFERENCE.md 1.7; SEED 004: material is "protectively marked at OFFICIAL
SENSITIVE"). A page holding nothing marked says OFFICIAL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from agency_adapters.node.console.keys import SERVICES, SESSION
from agency_adapters.node.users import ROLE_LABELS, Session

__all__ = [
    "NavItem",
    "highest_marking",
    "navigation_for",
    "render",
    "setup_templates",
]

log = logging.getLogger("seh.console")

DEFAULT_MARKING = "OFFICIAL"


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    text: str
    roles: frozenset[str]


# The console's sections and who sees them in the navigation (the views check again).
NAVIGATION: tuple[NavItem, ...] = (
    NavItem("/inbox", "Inbox", frozenset()),
    NavItem("/sent", "Sent", frozenset()),
    NavItem("/requests", "Requests", frozenset()),
    NavItem(
        "/referrals/new",
        "New referral",
        frozenset(
            {"REFERRER", "SAFEGUARDING_LEAD", "PREVENT_POLICE_OFFICER", "CHANNEL_COORDINATOR"}
        ),
    ),
    NavItem(
        "/requests/new",
        "New request",
        frozenset(
            {"SAFEGUARDING_LEAD", "PREVENT_POLICE_OFFICER", "CHANNEL_CHAIR", "CHANNEL_COORDINATOR"}
        ),
    ),
    NavItem("/cases", "Channel cases", frozenset({"CHANNEL_CHAIR", "CHANNEL_COORDINATOR"})),
    NavItem("/case-packs", "Case packs", frozenset({"PANEL_MEMBER", "CHANNEL_CHAIR"})),
    NavItem("/audit", "Audit", frozenset({"AUDITOR", "DPO", "IG_LEAD", "CALDICOTT_GUARDIAN"})),
    NavItem("/admin", "Administration", frozenset({"NODE_ADMIN"})),
)


def navigation_for(roles: frozenset[str], current_path: str) -> list[dict[str, Any]]:
    items = []
    for item in NAVIGATION:
        if item.roles and not item.roles & roles:
            continue
        current = current_path == item.href or current_path.startswith(item.href + "/")
        items.append({"href": item.href, "text": item.text, "current": current})
    return items


_TIER_ORDER = ("OFFICIAL", "OFFICIAL-SENSITIVE")


def highest_marking(markings: Sequence[str]) -> str:
    """The marking of a page that lists several items: the highest of theirs."""
    best = DEFAULT_MARKING
    for marking in markings:
        level = "OFFICIAL-SENSITIVE" if "OFFICIAL-SENSITIVE" in marking else "OFFICIAL"
        if _TIER_ORDER.index(level) > _TIER_ORDER.index(best.split(" ")[0]):
            best = "OFFICIAL-SENSITIVE"
    return best


def setup_templates(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("agency_adapters.node.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["role_labels"] = ROLE_LABELS
    env.filters["when"] = _when
    env.filters["roles_text"] = _roles_text
    return env


def _roles_text(roles: frozenset[str]) -> str:
    return ", ".join(ROLE_LABELS.get(role, role) for role in sorted(roles))


def _when(value: Any) -> str:
    """A timestamp as people read it: '6 Dec 2026 14:05 UTC'."""
    if value is None:
        return "—"
    try:
        return f"{value:%-d %b %Y %H:%M} UTC"
    except (TypeError, ValueError):
        return str(value)


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    title: str,
    marking: str = DEFAULT_MARKING,
    status: int = 200,
) -> web.Response:
    """Render ``template`` inside the layout, with the page's marking at top and bottom."""
    session: Session | None = request.get(SESSION)
    services = request.app[SERVICES]
    page: dict[str, Any] = {
        "title": title,
        "marking": marking,
        "node_id": services.node_id,
        "agency_type": services.profile.agency_type,
        "user": session.user if session is not None else None,
        "csrf_token": session.csrf_token if session is not None else "",
        "navigation": navigation_for(session.user.roles, request.path) if session else [],
        "request_path": request.path,
    }
    page.update(context or {})
    return aiohttp_jinja2.render_template(template, request, page, status=status)

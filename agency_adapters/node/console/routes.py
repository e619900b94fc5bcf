"""The console's one route table (STYLE.md rule 11)."""

from __future__ import annotations

from aiohttp import web

from agency_adapters.node.console.views import admin, audit, auth, messages, requests

__all__ = ["ROUTES"]

ROUTES: tuple[web.RouteDef, ...] = (
    web.get("/", auth.home),
    web.get("/healthz", auth.health),
    web.get("/sign-in", auth.sign_in_form),
    web.post("/sign-in", auth.sign_in_submit),
    web.post("/sign-out", auth.sign_out),
    web.get("/inbox", messages.inbox),
    web.post("/inbox/sync", messages.sync_now),
    web.get("/sent", messages.sent),
    web.get("/messages/{message_id}", messages.message),
    web.get("/requests", requests.requests_tracker),
    web.get("/audit", audit.audit_home),
    web.get("/audit/disclosures", audit.disclosures),
    web.get("/audit/assurance", audit.assurance),
    web.get("/admin", admin.admin_home),
    web.get("/admin/access-log", admin.access_log),
)

"""The console's one route table (STYLE.md rule 11)."""

from __future__ import annotations

from aiohttp import web

from agency_adapters.node.console.views import (
    admin,
    audit,
    auth,
    case_packs,
    cases,
    decide,
    messages,
    referral_new,
    request_new,
    requests,
)

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
    web.get("/messages/{message_id}/decide", decide.decide_form),
    web.post("/messages/{message_id}/decide", decide.decide_submit),
    web.get("/messages/{message_id}/release", decide.release_preview),
    web.post("/messages/{message_id}/release", decide.release_submit),
    web.get("/cases", cases.cases),
    web.get("/cases/new", cases.case_new_form),
    web.post("/cases/new", cases.case_new_submit),
    web.get("/cases/{case_ref}", cases.case_detail),
    web.get("/cases/{case_ref}/sent/{message_id}", cases.case_sent),
    web.get("/cases/{case_ref}/consent/new", cases.consent_form),
    web.post("/cases/{case_ref}/consent/new", cases.consent_submit),
    web.get("/cases/{case_ref}/outcome/new", cases.outcome_form),
    web.post("/cases/{case_ref}/outcome/new", cases.outcome_submit),
    web.get("/cases/{case_ref}/review/new", cases.review_form),
    web.post("/cases/{case_ref}/review/new", cases.review_submit),
    web.get("/cases/{case_ref}/packs/new", cases.pack_form),
    web.post("/cases/{case_ref}/packs/new", cases.pack_submit),
    web.get("/case-packs", case_packs.case_packs),
    # The PDF first: a message id never holds a dot, so the two never overlap.
    web.get("/case-packs/{message_id:[0-9a-f-]+}.pdf", case_packs.case_pack_pdf),
    web.get("/case-packs/{message_id:[0-9a-f-]+}", case_packs.case_pack),
    web.get("/requests", requests.requests_tracker),
    web.get("/requests/new", request_new.request_new_form),
    web.post("/requests/new", request_new.request_new_submit),
    web.get("/requests/sent/{message_id}", request_new.request_sent),
    web.get("/referrals/new", referral_new.referral_new_form),
    web.post("/referrals/new", referral_new.referral_new_submit),
    web.get("/referrals/sent/{message_id}", referral_new.referral_sent),
    web.get("/audit", audit.audit_home),
    web.get("/audit/disclosures", audit.disclosures),
    web.get("/audit/assurance", audit.assurance),
    web.get("/admin", admin.admin_home),
    web.get("/admin/access-log", admin.access_log),
)

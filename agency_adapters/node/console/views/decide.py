"""Deciding an information request, category by category, and releasing what was approved.

The decider (at health, the safeguarding lead or the Caldicott Guardian or IG officer the
decision is escalated to: ``roles.yaml`` DECIDE-HEALTH, SEED 004 paras 61, 69) answers
each category the request asks for: release it, or withhold it. What is released makes
the outcome (all of it: ``APPROVED_FULL``; some: ``APPROVED_PARTIAL``; none: ``REFUSED``,
REFERENCE.md 3.6), and a reason from the registry (``decision_reasons.yaml``) says why
anything was withheld. The rationale, whether the person was told (REFERENCE.md 3.7), the
entry in the patient record (ROLE-06, SEED 004 para 62) and the Caldicott consultation
(ROLE-05, para 69) complete it. The node's pre-flight judges the draft before it is sent,
and each rule it breaks is shown at its field.

The release follows an approval: the release builder reads the patient's record from
the node's records folder (``DIR/records/<subject_ref>.json``, a FHIR R4 Bundle: where
the node's record system puts the record it is asked about) and the page shows exactly
what goes, what is withheld and why, before anything is sent. Confirming sends the
release bound to the decision (MAN-01..03) and writes the disclosure log entry once the
hub has accepted it; a decision is released against once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from agency_adapters.health.disclosure_log import DisclosureLog, DisclosureLogError
from agency_adapters.health.release_builder import InvalidRecord, UnsupportedScope
from agency_adapters.node.console import channel
from agency_adapters.node.console.forms import FormErrors, violation_errors
from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.presenting import category_label, fhir_tables, scope_rows
from agency_adapters.node.console.rendering import render
from agency_adapters.node.console.security import current_session, requires
from agency_adapters.node.console.services import NodeServices
from agency_adapters.node.console.views.cases import (
    Draft,
    FormValues,
    _check_and_send,
    _organisation,
    _posted,
)
from agency_adapters.node.release import ReleasePlan, ReleasePlanError, disclosure_record
from agency_adapters.node.release import plan_release as _plan_release
from agency_adapters.node.store import NodeStoreError, StoredMessage
from agency_adapters.node.users import ROLE_LABELS, User
from hub.client import HubProblem, VerificationFailed
from hub.model import Envelope, ScopeItem, Violation, rfc3339
from hub.model.payloads import DecisionPayload, InformationRequestPayload
from hub.policy.engine import ordered
from hub.policy.registry import RoleAct
from hub.policy.roles import allowed_roles

__all__ = [
    "DECIDER_ROLES",
    "decide_form",
    "decide_submit",
    "records_path",
    "release_preview",
    "release_submit",
]

log = logging.getLogger("seh.console")

# Who may open the decision pages: every role a grant in roles.yaml lets decide or release
# (DECIDE-HEALTH, DECIDE-HEALTH-DPO, DECIDE-ANY; RELEASE-*). Which of them may decide a
# given request is the registry's to say for the node's agency type and the request's
# purpose (ROLE-02), and the pre-flight checks it again.
DECIDER_ROLES: tuple[str, ...] = (
    "SAFEGUARDING_LEAD",
    "CALDICOTT_GUARDIAN",
    "IG_LEAD",
    "DPO",
    "PREVENT_POLICE_OFFICER",
    "CHANNEL_CHAIR",
    "CHANNEL_COORDINATOR",
)
RELEASE = "release"
WITHHOLD = "withhold"
CHOICES = ((RELEASE, "Release"), (WITHHOLD, "Withhold"))
# The consultations a decider may record (ConsultedRole; SEED 004 para 69).
CONSULTED = (
    ("CALDICOTT_GUARDIAN", "The Caldicott Guardian"),
    ("IG_LEAD", "The Information Governance officer"),
    ("DPO", "The Data Protection Officer"),
)
HUB_ERRORS = (HubProblem, VerificationFailed, aiohttp.ClientError, TimeoutError)
# Where the envelope's and the payload's fields are on this form.
ALIASES = {
    "decision.reason_code": "reason_code",
    "decision.approved_scope": "scope",
    "decision.consulted": "consultation.role",
    "decision.recorded_in_subject_record": "payload.recorded_in_subject_record",
    "decision.outcome": "scope",
    "payload.outcome": "scope",
    "payload.consultations": "consultation.role",
    "payload.decided_by.role": "_acting_as",
    "author": "_acting_as",
    "in_reply_to": "",
}


def records_path(services: NodeServices, subject_ref: str) -> Path:
    """The patient's record the release builder reads: ``DIR/records/<subject_ref>.json``."""
    return services.profile.root / "records" / f"{subject_ref}.json"


def _request_or_404(services: NodeServices, message_id: str) -> StoredMessage:
    stored = services.store.get(message_id)
    if stored is None or stored.direction != "in" or stored.kind != "information_request":
        raise web.HTTPNotFound()
    return stored


def _request_payload(
    services: NodeServices, stored: StoredMessage
) -> InformationRequestPayload | None:
    try:
        raw = services.store.open_payload(stored.id, services.keys, services.node_id)
        return InformationRequestPayload.model_validate_json(raw)
    except (NodeStoreError, ValueError):
        return None


def _decisions_of(services: NodeServices, request_id: str) -> list[StoredMessage]:
    return services.store.list_messages("out", kind="decision", in_reply_to=request_id)


def _releases_of(services: NodeServices, decision_id: str) -> list[StoredMessage]:
    return services.store.list_messages("out", kind="release", in_reply_to=decision_id)


def _acting_roles(services: NodeServices, user: User, act: RoleAct, purpose: str) -> list[str]:
    """The user's roles the registry lets do ``act`` for this node and purpose."""
    found = allowed_roles(services.registry, act, services.profile.agency_type, purpose)
    permitted = set(DECIDER_ROLES) if found is None else set(found[0])
    return [role for role in DECIDER_ROLES if role in user.roles and role in permitted]


def _outcome(values: FormValues, count: int) -> str | None:
    chosen = [values.get(f"scope.{i}.choice") for i in range(count)]
    if any(choice not in (RELEASE, WITHHOLD) for choice in chosen):
        return None
    released = chosen.count(RELEASE)
    if released == count:
        return "APPROVED_FULL"
    return "APPROVED_PARTIAL" if released else "REFUSED"


# --- deciding ---------------------------------------------------------------------------


@dataclass
class DecidePage:
    stored: StoredMessage
    envelope: Envelope
    payload: InformationRequestPayload | None


def _field_names(count: int) -> list[str]:
    return [
        "",
        "_acting_as",
        "scope",
        *(f"scope.{i}.choice" for i in range(count)),
        "reason_code",
        "payload.rationale",
        "payload.refusal_reason",
        "payload.public_interest_considerations",
        "payload.subject_informed",
        "payload.subject_informed.informed",
        "payload.subject_informed.reason_not_informed",
        "payload.recorded_in_subject_record",
        "payload.subject_record_ref",
        "payload.decided_by.job_title",
        "consultation.role",
        "consultation.name",
        "consultation.advice",
    ]


def _render_decide(
    request: web.Request,
    page: DecidePage,
    values: FormValues,
    errors: FormErrors | None,
    *,
    status: int = 200,
) -> web.Response:
    services = request.app[SERVICES]
    user = current_session(request).user
    registry = services.registry
    roles = _acting_roles(services, user, "decide", page.envelope.purpose)
    reasons = {
        outcome: [
            {"id": r.id, "title": r.title, "explanation": r.explanation, "source": r.source}
            for r in registry.decision_reasons_for(outcome)
        ]
        for outcome in ("APPROVED_FULL", "APPROVED_PARTIAL", "REFUSED")
    }
    seen: dict[str, dict[str, Any]] = {}
    for found in reasons.values():
        for reason in found:
            seen.setdefault(reason["id"], reason)
    return render(
        request,
        "decide.html",
        {
            "message": page.stored,
            "envelope": page.envelope,
            "scope": scope_rows(page.envelope.scope, registry, page.payload),
            "values": values,
            "errors": errors,
            "choices": CHOICES,
            "reasons": list(seen.values()),
            "reason_outcomes": {
                rid: [o for o, found in reasons.items() if any(r["id"] == rid for r in found)]
                for rid in seen
            },
            "consulted_options": CONSULTED,
            "acting_choices": [(role, ROLE_LABELS.get(role, role)) for role in roles],
            "decided": _decisions_of(services, page.stored.id),
        },
        title=f"Decide request {page.stored.id[:13]}",
        marking=page.stored.marking,
        status=status,
    )


def _page(services: NodeServices, message_id: str) -> DecidePage:
    stored = _request_or_404(services, message_id)
    return DecidePage(stored, stored.envelope, _request_payload(services, stored))


@requires(*DECIDER_ROLES)
async def decide_form(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    page = _page(services, request.match_info["message_id"])
    services.viewed(user, "message", page.stored.id, action="decide")
    values = FormValues()
    roles = _acting_roles(services, user, "decide", page.envelope.purpose)
    if roles:
        values.set("_acting_as", roles[0])
    values.set("payload.recorded_in_subject_record", "true")
    return _render_decide(request, page, values, None)


def _build_decision(
    services: NodeServices,
    user: User,
    page: DecidePage,
    values: FormValues,
    organisation: str,
) -> tuple[Draft, bool]:
    """The decision's envelope and payload from the post; (draft, author missing)."""
    requested = page.envelope.scope
    draft = Draft({}, {})
    errors = draft.errors
    for i, item in enumerate(requested):
        if values.get(f"scope.{i}.choice") not in (RELEASE, WITHHOLD):
            name = category_label(item.category, services.registry)
            errors.add(f"scope.{i}.choice", f"Choose whether to release or withhold {name}")
    outcome = _outcome(values, len(requested)) or "APPROVED_PARTIAL"
    approved: list[ScopeItem] = [
        item for i, item in enumerate(requested) if values.get(f"scope.{i}.choice") == RELEASE
    ]
    roles = _acting_roles(services, user, "decide", page.envelope.purpose)
    author, role = channel.author_for(roles, values.get("_acting_as") or None, user)
    consulted_role = values.get("consultation.role")
    consulted = [consulted_role] if consulted_role else []
    reason_code = values.get("reason_code") or None
    if reason_code is not None:
        reason = services.registry.decision_reason(reason_code)
        if reason is None:
            errors.add("reason_code", "Choose one of the reasons offered")
        elif outcome not in reason.outcomes:
            errors.add(
                "reason_code",
                f"'{reason.title}' is not a reason for {_OUTCOME_WORDS[outcome]}; choose one "
                "that fits what you decided",
            )
    elif outcome != "APPROVED_FULL":
        errors.add(
            "reason_code",
            f"Choose the reason for {_OUTCOME_WORDS[outcome]} (REFERENCE.md 3.6: a decision "
            "that withholds anything says why)",
        )
    recorded = values.get("payload.recorded_in_subject_record") == "true"
    draft.envelope.update(
        {
            "kind": "decision",
            "recipients": [page.envelope.sender],
            "marking": page.envelope.marking.model_dump(mode="json"),
            "subject_ref": page.envelope.subject_ref,
            "purpose": page.envelope.purpose,
            "in_reply_to": page.stored.id,
            "decision": {
                "outcome": outcome,
                "approved_scope": [item.model_dump(mode="json") for item in approved],
                "reason_code": reason_code,
                "consulted": consulted,
                "recorded_in_subject_record": recorded,
            },
        }
    )
    if page.envelope.case_ref is not None:
        draft.envelope["case_ref"] = page.envelope.case_ref
    if author is not None:
        draft.envelope["author"] = author.model_dump(mode="json")
    payload: dict[str, Any] = {
        "outcome": outcome,
        "rationale": values.get("payload.rationale"),
        "decided_by": {
            "name": user.display_name,
            "role": role or values.get("_acting_as") or "SAFEGUARDING_LEAD",
            "organisation": organisation,
        },
        "recorded_in_subject_record": recorded,
    }
    job_title = values.get("payload.decided_by.job_title").strip()
    if job_title:
        payload["decided_by"]["job_title"] = job_title
    for name in ("refusal_reason", "public_interest_considerations", "subject_record_ref"):
        text = values.get(f"payload.{name}").strip()
        if text:
            payload[name] = text
    if outcome == "REFUSED" and "refusal_reason" not in payload:
        errors.add(
            "payload.refusal_reason",
            "Say why the request is refused: the requester is told this",
        )
    if outcome != "REFUSED":
        payload.pop("refusal_reason", None)
    informed = values.get("payload.subject_informed.informed")
    if informed in ("true", "false"):
        told: dict[str, Any] = {"informed": informed == "true"}
        why = values.get("payload.subject_informed.reason_not_informed").strip()
        if informed == "false":
            if why:
                told["reason_not_informed"] = why
            else:
                errors.add(
                    "payload.subject_informed.reason_not_informed",
                    "Say why the person was not told of the disclosure (REFERENCE.md 3.7)",
                )
                told["reason_not_informed"] = "-"
        payload["subject_informed"] = told
    elif outcome != "REFUSED":
        errors.add(
            "payload.subject_informed.informed",
            "Say whether the person was told of the disclosure (REFERENCE.md 3.7)",
        )
    if consulted_role:
        advice = values.get("consultation.advice").strip()
        if not advice:
            errors.add("consultation.advice", "Record what you were advised")
        payload["consultations"] = [
            {
                "role": consulted_role,
                "name": values.get("consultation.name").strip() or None,
                "consulted_at": rfc3339(services.now()),
                "advice": advice or "-",
            }
        ]
    draft.payload = payload
    return draft, author is None


_OUTCOME_WORDS = {
    "APPROVED_FULL": "approving everything asked",
    "APPROVED_PARTIAL": "withholding part of what was asked",
    "REFUSED": "refusing the request",
}


@requires(*DECIDER_ROLES)
async def decide_submit(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    page = _page(services, request.match_info["message_id"])
    values = FormValues(await _posted(request))
    if _decisions_of(services, page.stored.id):
        errors = FormErrors()
        errors.add("", "This request has already been decided here: see the decision sent")
        return _render_decide(request, page, values, errors, status=409)
    organisation = await _organisation(services)
    draft, author_missing = _build_decision(services, user, page, values, organisation)
    message_id, errors = await _check_and_send(
        request,
        draft,
        DecisionPayload,
        case_view=None,
        aliases=ALIASES,
        field_names=_field_names(len(page.envelope.scope)),
        author_missing=author_missing,
        rows={},
    )
    if message_id is None:
        return _render_decide(request, page, values, errors, status=400)
    outcome = draft.envelope["decision"]["outcome"]
    if outcome in ("APPROVED_FULL", "APPROVED_PARTIAL"):
        raise web.HTTPSeeOther(location=f"/messages/{message_id}/release")
    raise web.HTTPSeeOther(location=f"/messages/{message_id}")


# --- releasing --------------------------------------------------------------------------


@dataclass
class ReleaseView:
    decision: StoredMessage
    plan: ReleasePlan | None
    problem: str | None
    violations: FormErrors
    released: list[StoredMessage]


def _decision_or_404(services: NodeServices, message_id: str) -> StoredMessage:
    stored = services.store.get(message_id)
    if stored is None or stored.direction != "out" or stored.kind != "decision":
        raise web.HTTPNotFound()
    return stored


def _load_record(services: NodeServices, decision: StoredMessage) -> dict[str, Any]:
    subject = decision.subject_ref or ""
    path = records_path(services, subject)
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ReleasePlanError(
            f"no record for {subject} in this node's records folder (records/{subject}.json):"
            " put the patient's FHIR record there to build the release"
        ) from None
    except (OSError, ValueError) as exc:
        raise ReleasePlanError(f"the record records/{subject}.json cannot be read: {exc}") from exc
    if not isinstance(record, dict):
        raise ReleasePlanError(f"the record records/{subject}.json is not a FHIR Bundle")
    return record


async def _release_view(
    request: web.Request, decision: StoredMessage, role: str | None
) -> ReleaseView:
    services = request.app[SERVICES]
    user = current_session(request).user
    released = _releases_of(services, decision.id)
    if released:
        return ReleaseView(decision, None, None, FormErrors(), released)
    author = user.author(role) if role else None
    try:
        record = _load_record(services, decision)
        plan = await _plan_release(services.client, decision.id, record, author=author)
    except (ReleasePlanError, InvalidRecord, UnsupportedScope) as exc:
        return ReleaseView(decision, None, str(exc), FormErrors(), [])
    except HUB_ERRORS as exc:
        return ReleaseView(
            decision, None, f"the hub could not be reached ({type(exc).__name__})", FormErrors(), []
        )
    violations: list[Violation] = await services.preflight(plan.fields, plan.payload())
    found = violation_errors(ordered(violations), services.registry)
    return ReleaseView(decision, plan, None, found, [])


def _render_release(
    request: web.Request,
    view: ReleaseView,
    values: FormValues,
    *,
    status: int = 200,
    note: str | None = None,
) -> web.Response:
    services = request.app[SERVICES]
    user = current_session(request).user
    context: dict[str, Any] = {
        "decision": view.decision,
        "problem": view.problem,
        "errors": view.violations or None,
        "released": view.released,
        "values": values,
        "note": note,
        "acting_choices": [
            (role, ROLE_LABELS.get(role, role))
            for role in _acting_roles(services, user, "release", view.decision.purpose)
        ],
    }
    plan = view.plan
    if plan is not None:
        summary = plan.summary()
        requested = {item.category for item in plan.request.scope}
        approved = (
            {item.category for item in plan.decision.decision.approved_scope}
            if (plan.decision.decision is not None)
            else set()
        )
        context.update(
            {
                "summary": summary,
                "tables": fhir_tables(json.loads(plan.bundle_json), services.registry),
                "not_approved": [
                    category_label(category, services.registry)
                    for category in sorted(requested - approved)
                ],
                "not_in_record": [
                    category_label(c, services.registry)
                    for c in summary["approved_but_not_in_record"]
                ],
                "labels": {
                    c["category"]: category_label(c["category"], services.registry)
                    for c in summary["releases"]
                },
            }
        )
    return render(
        request,
        "release_preview.html",
        context,
        title=f"Release against decision {view.decision.id[:13]}",
        marking=view.decision.marking,
        status=status,
    )


def _release_role(services: NodeServices, user: User, values: FormValues, purpose: str) -> str:
    roles = _acting_roles(services, user, "release", purpose)
    chosen = values.get("_acting_as")
    if chosen in roles:
        return chosen
    return roles[0] if roles else ""


@requires(*DECIDER_ROLES)
async def release_preview(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    decision = _decision_or_404(services, request.match_info["message_id"])
    values = FormValues(list(request.query.items()))
    role = _release_role(services, user, values, decision.purpose)
    values.set("_acting_as", role)
    view = await _release_view(request, decision, role or None)
    services.viewed(user, "release-preview", decision.id, action="preview")
    return _render_release(request, view, values)


@requires(*DECIDER_ROLES)
async def release_submit(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    decision = _decision_or_404(services, request.match_info["message_id"])
    values = FormValues(await _posted(request))
    role = _release_role(services, user, values, decision.purpose)
    values.set("_acting_as", role)
    view = await _release_view(request, decision, role or None)
    if view.released:
        return _render_release(
            request, view, values, status=409, note="This decision has already been released."
        )
    if view.plan is None or view.violations:
        return _render_release(request, view, values, status=400)
    plan = view.plan
    if values.get("content_sha256") != plan.manifest.content_sha256:
        # The record changed since the preview was shown: show the new one to confirm.
        return _render_release(
            request,
            view,
            values,
            status=409,
            note=(
                "The record has changed since the preview you confirmed. Check what goes "
                "now and confirm again."
            ),
        )
    try:
        receipt = await services.send(plan.fields, plan.payload())
    except HubProblem as refusal:
        found = violation_errors(ordered(refusal.problem.violations), services.registry)
        if not found:
            found.add("", refusal.problem.detail or refusal.problem.title)
        view.violations = found
        return _render_release(request, view, values, status=400)
    log.info("console: release sent %s", receipt.message_id)
    disclosure_log = DisclosureLog(services.profile.disclosure_log_path)
    try:
        disclosure_log.record(disclosure_record(plan, receipt, receipt.received_at))
    except (DisclosureLogError, OSError) as exc:
        log.error("console: release %s sent but not logged (%s)", receipt.message_id, exc)
        return _render_release(
            request,
            ReleaseView(decision, None, None, FormErrors(), _releases_of(services, decision.id)),
            values,
            status=500,
            note=(
                f"The release was SENT (message {receipt.message_id}) but the disclosure log "
                f"could not be written: {exc}. Record this disclosure by hand."
            ),
        )
    raise web.HTTPSeeOther(location=f"/messages/{receipt.message_id}")


async def not_released_rows(services: NodeServices, envelope: Envelope) -> list[dict[str, str]]:
    """For a release: what its request asked for that it does not carry, and why.

    From the decision it answers (in the requester's inbox) and the request that decision
    decided (in sent items, or from the hub when it was sent another way, such as ``hub
    node submit``); the reason is the decision's, in the registry's words. Empty when
    either cannot be had.
    """
    if envelope.in_reply_to is None:
        return []
    decision = services.store.get(envelope.in_reply_to)
    if decision is None or decision.envelope.decision is None:
        return []
    request_id = decision.envelope.in_reply_to or ""
    kept = services.store.get(request_id)
    if kept is not None:
        requested = kept.envelope.scope
    else:
        try:
            requested = (await services.client.fetch(request_id)).envelope.scope
        except HUB_ERRORS as exc:
            log.warning("console: request %s unavailable (%s)", request_id, type(exc).__name__)
            return []
    released = {item.category for item in envelope.scope}
    record = decision.envelope.decision
    approved = {item.category for item in record.approved_scope}
    reason = services.registry.decision_reason(record.reason_code or "")
    rows = []
    for item in requested:
        if item.category in released:
            continue
        if item.category in approved:
            why = "Approved, but the record held nothing of it in the approved period"
        elif reason is not None:
            why = f"Not approved: {reason.title.lower()} ({reason.id}). {reason.explanation}"
        else:
            why = "Not approved" + (f" ({record.reason_code})" if record.reason_code else "")
        rows.append(
            {
                "category": item.category,
                "label": category_label(item.category, services.registry),
                "why": why,
            }
        )
    return rows

"""Channel cases for the panel chair: the cases, opening one, and each step of a case.

Every form here builds its draft through the wire models (``EnvelopeFields`` and the
payload models of ``hub/model/payloads.py``), runs the node's pre-flight and the hub's
Channel workflow rules against the case as the hub holds it, and sends nothing until
both pass; each broken rule is shown beside the field it concerns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from agency_adapters.node.console import channel, plain_words
from agency_adapters.node.console.forms import (
    FieldError,
    FormErrors,
    unflatten,
    violation_errors,
)
from agency_adapters.node.console.keys import SERVICES, SETTINGS
from agency_adapters.node.console.rendering import highest_marking, render
from agency_adapters.node.console.security import current_session, requires
from agency_adapters.node.console.services import NodeServices
from agency_adapters.node.store import StoredMessage
from agency_adapters.node.users import ROLE_LABELS, User
from hub.client import HubProblem, PayloadSource
from hub.model import OpaqueRef, Violation, rfc3339
from hub.model.messages import DirectoryEntry, MessageStatus
from hub.model.payloads import (
    CaseOpenPayload,
    CasePackPayload,
    CaseReviewPayload,
    ConsentRecordPayload,
    PanelOutcomePayload,
)
from hub.policy.engine import ordered

__all__ = [
    "case_detail",
    "case_new_form",
    "case_new_submit",
    "case_sent",
    "cases",
    "consent_form",
    "consent_submit",
    "outcome_form",
    "outcome_submit",
    "pack_form",
    "pack_submit",
    "review_form",
    "review_submit",
]

log = logging.getLogger("seh.console")

CHAIR_ROLES = channel.CHANNEL_ROLES
PANEL_ROLE_LABELS = {
    "CHANNEL_CHAIR": "Channel chair",
    "CHANNEL_COORDINATOR": "Channel coordinator",
    "POLICE_PREVENT": "Police Prevent",
    "HEALTH": "Health",
    "CHILDRENS_SOCIAL_CARE": "Children's social care",
    "ADULT_SOCIAL_CARE": "Adult social care",
    "EDUCATION": "Education",
    "PROBATION": "Probation",
    "YOUTH_JUSTICE": "Youth justice",
    "HOUSING": "Housing",
    "INTERVENTION_PROVIDER": "Intervention provider",
    "OTHER_PARTNER": "Other partner",
}
MEMBER_ROWS = 6
SIMPLE_SECTION_ROWS = 4
SUPPORT_PLAN_ROW = SIMPLE_SECTION_ROWS
PARTNER_RETURN_ROW = SIMPLE_SECTION_ROWS + 1
PLAN_ITEM_ROWS = 3
REFERRAL_ROWS = 2
SIMPLE_SECTION_KINDS = {
    "REFERRAL_SUMMARY": "Referral summary",
    "TRIAGE_SUMMARY": "Police triage summary and risk assessment",
    "OTHER_VULNERABILITIES_AND_SUPPORT": "Other vulnerabilities and existing support",
    "CONSENT_AND_CAPACITY": "Consent status and capacity",
    "REVIEW_HISTORY": "Review history",
}
SECTION_MARKINGS = (
    "OFFICIAL-SENSITIVE - PERSONAL DATA",
    "OFFICIAL-SENSITIVE",
    "OFFICIAL",
)
CONSENT_STATES = {
    "OBTAINED": "Consent obtained",
    "NOT_SOUGHT": "Not sought",
    "REFUSED": "Refused",
    "WITHDRAWN": "Withdrawn",
    "LACKS_CAPACITY": "The person lacks capacity",
    "CHILD_PARENT_CONSENT": "A parent or guardian consented (under 18)",
    "CHILD_OWN_CONSENT": "A competent child consented",
    "UNKNOWN": "Not known",
}
NOT_SOUGHT_REASONS = {
    "DECONFLICTION_STAGE": "Deconfliction stage: police have not yet cleared contact",
    "NOT_YET_SOUGHT_SUPPORT_PLAN": "To be sought as the support plan sets out",
    "WOULD_PREJUDICE_OUTCOME": "Seeking it would prejudice the outcome",
    "RISK_TO_OTHERS_OR_STAFF": "Seeking it would put others or staff at risk",
    "URGENT_NO_TIME": "Urgent: no time to seek it",
    "CANNOT_CONTACT": "The person cannot be contacted",
    "TERRORISM_RISK": "Terrorism risk: the person must not be told",
}
AGE_BANDS = {
    "ADULT": "18 or over",
    "AGED_16_17": "16 or 17",
    "UNDER_16": "Under 16",
    "UNKNOWN": "Not known",
}
CONSENT_METHODS = {
    "IN_PERSON_WRITTEN": "In person, in writing",
    "IN_PERSON_VERBAL": "In person, spoken",
    "TELEPHONE": "By telephone",
    "VIDEO_CALL": "By video call",
    "LETTER": "By letter",
    "EMAIL": "By email",
    "OTHER": "Another way",
}
PANEL_OUTCOMES = {
    "ADOPTED": "Adopted as a Channel case, with a support plan",
    "NOT_ADOPTED_NFA": "Not adopted: no further action",
    "NOT_ADOPTED_REFERRED_ON": "Not adopted: referred to other services",
    "EXITED": "Exited from Channel support",
}
SUPPORT_TYPES = {
    "IDEOLOGICAL_MENTORING": "Ideological mentoring",
    "LIFE_SKILLS_MENTORING": "Life skills mentoring",
    "EDUCATION_OR_TRAINING": "Education or training",
    "EMPLOYMENT": "Employment",
    "HEALTH": "Health",
    "MENTAL_HEALTH": "Mental health",
    "HOUSING": "Housing",
    "SUBSTANCE_MISUSE": "Substance misuse",
    "FAMILY_SUPPORT": "Family support",
    "DIVERSIONARY_ACTIVITY": "Diversionary activity",
    "OTHER": "Other support",
}
DESTINATIONS = {
    "EARLY_HELP": "Early Help",
    "CHILDRENS_SOCIAL_CARE": "Children's social care",
    "ADULT_SOCIAL_CARE": "Adult social care",
    "MENTAL_HEALTH_SERVICES": "Mental health services",
    "OTHER_HEALTH_SERVICES": "Other health services",
    "EDUCATION": "Education",
    "HOUSING": "Housing",
    "SUBSTANCE_MISUSE_SERVICES": "Substance misuse services",
    "EMPLOYMENT_SUPPORT": "Employment support",
    "VOLUNTARY_SECTOR": "Voluntary sector",
    "OTHER": "Other",
}
REVIEW_POINTS = {"6_MONTHS": "6 months after exit", "12_MONTHS": "12 months after exit"}
REVIEW_OUTCOMES = {
    "NO_FURTHER_CONCERNS": "No further concerns",
    "REVIEW_EXTENDED": "Reviews extended",
    "REOPENED": "Case reopened",
    "REFERRED_ON": "Referred to other services",
}
DEFAULT_PURPOSE = {
    "case_open": "CHANNEL_ASSESSMENT",
    "consent_record": "CHANNEL_SUPPORT",
    "case_pack": "CHANNEL_ASSESSMENT",
    "panel_outcome": "CHANNEL_ASSESSMENT",
    "case_review": "CHANNEL_REVIEW",
}
# Envelope paths a form fills from other fields: a rule on one is shown at the field it
# came from.
_COMMON_ALIASES = {"subject_ref": "subject_ref", "in_reply_to": ""}
Choices = Sequence[tuple[str, str]]


# --- what a form shows again ---------------------------------------------------------


class FormValues:
    """The values a form was posted with (or starts with), by field name."""

    def __init__(self, pairs: Sequence[tuple[str, str]] = ()) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def has(self, name: str, value: str) -> bool:
        return value in self._values.get(name, [])

    def set(self, name: str, *values: str) -> None:
        self._values[name] = list(values)

    def setdefault(self, name: str, *values: str) -> None:
        if name not in self._values:
            self._values[name] = list(values)


async def _posted(request: web.Request) -> list[tuple[str, str]]:
    form = await request.post()
    return [(name, value) for name, value in form.items() if isinstance(value, str)]


# --- the case as the hub and this node have it ----------------------------------------


async def _directory(services: NodeServices) -> dict[str, DirectoryEntry]:
    return await services.client.directory()


async def _case_view(services: NodeServices, case_ref: str) -> dict[str, Any] | None:
    try:
        return await services.client.case_state(case_ref)
    except HubProblem as problem:
        if problem.problem.status == 404:
            return None
        raise


def _case_messages(services: NodeServices, case_ref: str) -> list[StoredMessage]:
    rows = [
        *services.store.list_messages("out", case_ref=case_ref, limit=500),
        *services.store.list_messages("in", case_ref=case_ref, limit=500),
    ]
    return sorted(rows, key=lambda row: (row.received_at, row.id))


def _case_or_404(view: dict[str, Any] | None) -> dict[str, Any]:
    if view is None:
        raise web.HTTPNotFound()
    return view


def _opening(messages: Sequence[StoredMessage]) -> StoredMessage | None:
    openings = [m for m in messages if m.kind == "case_open"]
    return openings[0] if openings else None


def _latest_consent(messages: Sequence[StoredMessage]) -> dict[str, Any] | None:
    """The consent position of the case's latest message that states one."""
    for stored in reversed(messages):
        consent = stored.envelope_document.get("consent")
        if isinstance(consent, dict):
            return consent
    return None


def _node_options(
    nodes: Sequence[str], directory: Mapping[str, DirectoryEntry]
) -> list[tuple[str, str]]:
    """(node id, "Display name (node id)") for a choice of nodes."""
    out = []
    for node in nodes:
        entry = directory.get(node)
        name = entry.display_name if entry is not None else node
        out.append((node, name if name == node else f"{name} ({node})"))
    return out


def _author(user: User, values: FormValues) -> tuple[dict[str, Any] | None, str]:
    author, role = channel.author_for(CHAIR_ROLES, values.get("_acting_as") or None, user)
    return (None if author is None else author.model_dump(mode="json")), role


# --- listing ------------------------------------------------------------------------


@requires(*CHAIR_ROLES)
async def cases(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    openings = [
        *services.store.list_messages("out", kind="case_open", limit=500),
        *services.store.list_messages("in", kind="case_open", limit=500),
    ]
    refs: dict[str, StoredMessage] = {}
    for stored in sorted(openings, key=lambda row: row.received_at, reverse=True):
        if stored.case_ref is not None:
            refs.setdefault(stored.case_ref, stored)
    directory = await _directory(services)
    rows = []
    for case_ref, opened in refs.items():
        view = await _case_view(services, case_ref)
        rows.append({"case_ref": case_ref, "opened": opened, "view": view})
    return render(
        request,
        "cases.html",
        {
            "rows": rows,
            "directory": directory,
            "panel_role_labels": PANEL_ROLE_LABELS,
        },
        title="Channel cases",
        marking=highest_marking([opened.marking for opened in refs.values()]),
    )


# --- shared form machinery ----------------------------------------------------------


@dataclass
class Draft:
    """A form's post, built into the envelope and payload dictionaries the models read."""

    envelope: dict[str, Any]
    payload: dict[str, Any]
    errors: FormErrors = field(default_factory=FormErrors)


def _envelope_common(
    draft: Draft,
    *,
    kind: str,
    author: dict[str, Any] | None,
    recipients: Sequence[str],
    case_ref: str | None,
) -> None:
    env = draft.envelope
    env["kind"] = kind
    if author is not None:
        env["author"] = author
    env["recipients"] = list(recipients)
    if case_ref is not None:
        env["case_ref"] = case_ref
    marking = env.setdefault("marking", {})
    if isinstance(marking, dict):
        marking.setdefault("tier", "OFFICIAL")


def _to_utc_text(container: dict[str, Any], key: str) -> None:
    """A ``datetime-local`` answer as an RFC 3339 UTC timestamp (left as given if unreadable)."""
    value = container.get(key)
    if isinstance(value, str):
        moment = channel.parse_expiry(value)
        if moment is not None:
            container[key] = rfc3339(moment)


def _remap(
    errors: FormErrors, aliases: Mapping[str, str], rows: Mapping[str, Sequence[int]]
) -> FormErrors:
    """Errors moved to the fields they came from, on the form's own row numbers."""
    for prefix, numbers in rows.items():
        errors = channel.remap_rows(errors, prefix, numbers)
    moved = []
    for error in errors.errors:
        name = error.field
        for source, target in aliases.items():
            if name == source or name.startswith(source + "."):
                name = target
                break
        moved.append(FieldError(name, error.message, error.rule, error.explanation, error.source))
    return FormErrors(moved)


async def _check_and_send(
    request: web.Request,
    draft: Draft,
    payload_model: type[BaseModel],
    *,
    case_view: dict[str, Any] | None,
    aliases: Mapping[str, str],
    field_names: Sequence[str],
    author_missing: bool,
    rows: Mapping[str, Sequence[int]],
    missing: Mapping[str, str] | None = None,
) -> tuple[str | None, FormErrors]:
    """Validate, pre-flight and send; the sent message id, or the errors by field."""
    services = request.app[SERVICES]
    now = services.now()
    missing = missing or {}
    fields, payload, found = channel.validate_draft(
        draft.envelope, draft.payload, payload_model, today=now.date()
    )
    own = FormErrors(list(draft.errors.errors))
    if author_missing:
        own.add("_acting_as", "Choose the role you are acting in")
    if fields is None or payload is None or own:
        errors = plain_words.without_echoes(_remap(found, aliases, rows))
        return None, plain_words.one_per_problem(errors, own, field_names, missing)
    source = PayloadSource(media_type="application/json", data=payload.model_dump_json().encode())
    directory = await _directory(services)
    violations: list[Violation] = await services.preflight(fields, source)
    violations += channel.case_workflow_violations(
        fields,
        sender=services.node_id,
        case_view=case_view,
        agency_types={node: entry.agency_type for node, entry in directory.items()},
        registry=services.registry,
        now=now,
    )
    if violations:
        found = violation_errors(ordered(violations), services.registry)
        return None, _remap(found, aliases, rows).attach_to(field_names)
    try:
        receipt = await services.send(fields, source)
    except HubProblem as refusal:
        found = violation_errors(ordered(refusal.problem.violations), services.registry)
        if not found:
            found.add("", refusal.problem.detail or refusal.problem.title)
        return None, _remap(found, aliases, rows).attach_to(field_names)
    log.info("console: %s sent %s", fields.kind, receipt.message_id)
    return receipt.message_id, FormErrors()


def _form_context(
    services: NodeServices,
    user: User,
    kind: str,
    values: FormValues,
    errors: FormErrors | None,
    directory: Mapping[str, DirectoryEntry],
) -> dict[str, Any]:
    gateways = channel.gateway_choices(services.registry, services.profile.agency_type)
    acting = [role for role in CHAIR_ROLES if role in user.roles]
    return {
        "values": values,
        "errors": errors,
        "kind": kind,
        "purposes": [
            (pid, f"{name} ({pid})") for pid, name in channel.purposes_for(services.registry, kind)
        ],
        "gateway_options": {
            key: [(g.id, f"{g.title} ({g.id})") for g in found] for key, found in gateways.items()
        },
        "consent_state_options": list(CONSENT_STATES.items()),
        "not_sought_options": list(NOT_SOUGHT_REASONS.items()),
        "age_options": list(AGE_BANDS.items()),
        "acting_choices": [(role, ROLE_LABELS.get(role, role)) for role in acting],
        "directory": directory,
        "node_id": services.node_id,
        "panel_roles": PANEL_ROLE_LABELS,
    }


def _start_values(
    services: NodeServices,
    user: User,
    kind: str,
    *,
    subject_ref: str | None = None,
    consent: Mapping[str, Any] | None = None,
    legal_basis: Mapping[str, Any] | None = None,
) -> FormValues:
    values = FormValues()
    values.set("purpose", DEFAULT_PURPOSE[kind])
    values.set("marking.sensitive", "true")
    values.set("marking.descriptors", "PERSONAL_DATA")
    if subject_ref:
        values.set("subject_ref", subject_ref)
    for key, value in (consent or {}).items():
        if isinstance(value, bool):
            if value:
                values.set(f"consent.{key}", "true")
        elif isinstance(value, str):
            values.set(f"consent.{key}", value)
    for key, value in (legal_basis or {}).items():
        if isinstance(value, list):
            values.set(f"legal_basis.{key}", *[str(v) for v in value])
        elif isinstance(value, str):
            values.set(f"legal_basis.{key}", value)
    acting = [role for role in CHAIR_ROLES if role in user.roles]
    if acting:
        values.set("_acting_as", acting[0])
    return values


def _professional(values: FormValues, prefix: str, user: User, organisation: str) -> None:
    values.setdefault(f"{prefix}.name", user.display_name)
    values.setdefault(f"{prefix}.organisation", organisation)


async def _organisation(services: NodeServices) -> str:
    entry = (await _directory(services)).get(services.node_id)
    return entry.display_name if entry is not None else services.node_id


ENVELOPE_FIELDS = (
    "_acting_as",
    "subject_ref",
    "purpose",
    "marking.sensitive",
    "marking.descriptors",
    "consent.state",
    "consent.given_by",
    "consent.reason_code",
    "consent.subject_age",
    "consent.subject_not_to_be_told",
    "consent.best_interests",
    "legal_basis.powers",
    "legal_basis.art6",
    "legal_basis.art9",
    "legal_basis.sch1",
    "legal_basis.art10",
    "legal_basis.confidentiality",
    "legal_basis",
    "consent",
    "marking",
)


# --- opening a case -----------------------------------------------------------------

OPEN_FIELDS = (
    *ENVELOPE_FIELDS,
    "case_ref",
    "case.members",
    *(f"case.members.{i}.{part}" for i in range(MEMBER_ROWS) for part in ("node", "role")),
    "payload.subject.forenames",
    "payload.subject.surname",
    "payload.subject.date_of_birth",
    "payload.subject",
    "payload.case_summary",
    "payload.referral_date",
    "payload.meeting_date",
)
# A case reference is checked for its shape (an opaque reference) before the hub is asked.
_CASE_REF: TypeAdapter[str] = TypeAdapter(OpaqueRef)


def _well_formed(case_ref: str) -> bool:
    try:
        _CASE_REF.validate_python(case_ref)
    except ValidationError:
        return False
    return True


OPEN_ALIASES = {
    "recipients": "case.members",
    "case.chair": "case.members",
    "case": "case.members",
    "sender": "",
    "kind": "",
}


async def _open_page(
    request: web.Request, values: FormValues, errors: FormErrors | None, status: int = 200
) -> web.Response:
    services = request.app[SERVICES]
    user = current_session(request).user
    directory = await _directory(services)
    context = _form_context(services, user, "case_open", values, errors, directory)
    context["member_rows"] = range(MEMBER_ROWS)
    context["candidate_options"] = _node_options(
        [n for n in sorted(directory) if n != services.node_id], directory
    )
    return render(request, "case_new.html", context, title="Open a Channel case", status=status)


@requires(*CHAIR_ROLES)
async def case_new_form(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    values = _start_values(
        services,
        user,
        "case_open",
        consent={"state": "NOT_SOUGHT", "reason_code": "DECONFLICTION_STAGE"},
    )
    return await _open_page(request, values, None)


@requires(*CHAIR_ROLES)
async def case_new_submit(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    pairs = await _posted(request)
    values = FormValues(pairs)
    posted = channel.split_post(unflatten(pairs))
    draft = Draft(posted.envelope, posted.payload)
    case_part = draft.envelope.pop("case", {})
    members, rows = channel.compact_rows(
        case_part.get("members") if isinstance(case_part, dict) else None
    )
    if not members:
        draft.errors.add("case.members", "Choose at least one panel member and their role")
    author, _ = _author(user, values)
    case_ref = str(draft.envelope.pop("case_ref", "")) or None
    _envelope_common(
        draft,
        kind="case_open",
        author=author,
        recipients=[str(m["node"]) for m in members if m.get("node")],
        case_ref=case_ref,
    )
    draft.envelope["case"] = {"chair": services.node_id, "members": members}
    if case_ref is None:
        draft.errors.add("case_ref", "Enter a case reference")
    elif _well_formed(case_ref) and await _case_view(services, case_ref) is not None:
        # The hub reads a second case_open from the chair as a change of the panel (WF-08);
        # this form only opens new cases, so a reference in use is refused here.
        draft.errors.add("case_ref", f"Case reference {case_ref} is already in use: choose another")
    message_id, errors = await _check_and_send(
        request,
        draft,
        CaseOpenPayload,
        case_view=None,
        aliases=OPEN_ALIASES,
        field_names=OPEN_FIELDS,
        author_missing=author is None,
        rows={"case.members": rows},
    )
    if message_id is None:
        return await _open_page(request, values, errors, status=400)
    raise web.HTTPSeeOther(location=f"/cases/{case_ref}/sent/{message_id}")


# --- one case -----------------------------------------------------------------------


async def _pack_statuses(
    services: NodeServices, packs: Sequence[StoredMessage]
) -> dict[str, MessageStatus | None]:
    statuses: dict[str, MessageStatus | None] = {}
    for pack in packs:
        try:
            statuses[pack.id] = await services.client.status(pack.id)
        except HubProblem:
            statuses[pack.id] = None
    return statuses


@requires(*CHAIR_ROLES)
async def case_detail(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    case_ref = request.match_info["case_ref"]
    view = _case_or_404(await _case_view(services, case_ref))
    services.viewed(session.user, "case", case_ref)
    messages = _case_messages(services, case_ref)
    packs = [m for m in messages if m.kind == "case_pack" and m.direction == "out"]
    now = services.now()
    return render(
        request,
        "case.html",
        {
            "case_ref": case_ref,
            "view": view,
            "directory": await _directory(services),
            "panel_role_labels": PANEL_ROLE_LABELS,
            "opening": _opening(messages),
            "consents": [m for m in messages if m.kind == "consent_record"],
            "outcomes": [m for m in messages if m.kind == "panel_outcome"],
            "reviews": [m for m in messages if m.kind == "case_review"],
            "packs": packs,
            "statuses": await _pack_statuses(services, packs),
            "now": now,
            "time_left": channel.time_left,
            "is_chair": view["chair"] == services.node_id,
            "consent_states": CONSENT_STATES,
            "panel_outcomes": PANEL_OUTCOMES,
            "review_points": REVIEW_POINTS,
        },
        title=f"Channel case {case_ref}",
        # A case about a person is at least OFFICIAL-SENSITIVE (MK-10), even before this
        # node holds any of its messages.
        marking=highest_marking(["OFFICIAL-SENSITIVE", *(m.marking for m in messages)]),
    )


@requires(*CHAIR_ROLES)
async def case_sent(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    case_ref = request.match_info["case_ref"]
    stored = services.store.get(request.match_info["message_id"])
    if stored is None or stored.direction != "out" or stored.case_ref != case_ref:
        raise web.HTTPNotFound()
    services.viewed(session.user, "message", stored.id)
    return render(
        request,
        "case_sent.html",
        {"case_ref": case_ref, "message": stored, "receipt": stored.receipt},
        title="Sent",
        marking=stored.marking,
    )


async def sent_message_page(
    request: web.Request, kind: str, template: str, title: str
) -> web.StreamResponse:
    """The confirmation page of a message of ``kind`` this node sent: its receipt and
    recipients (the view is recorded in the access log)."""
    services = request.app[SERVICES]
    session = current_session(request)
    stored = services.store.get(request.match_info["message_id"])
    if stored is None or stored.direction != "out" or stored.kind != kind:
        raise web.HTTPNotFound()
    services.viewed(session.user, "message", stored.id)
    directory = await _directory(services)
    return render(
        request,
        template,
        {
            "message": stored,
            "receipt": stored.receipt,
            "recipients": _node_options(list(stored.recipients), directory),
        },
        title=title,
        marking=stored.marking,
    )


# --- the chair's steps on a case -----------------------------------------------------


@dataclass
class Step:
    """One of the chair's forms on an open case."""

    kind: Literal["consent_record", "panel_outcome", "case_review", "case_pack"]
    template: str
    title: str
    path: str
    payload_model: type[BaseModel]
    field_names: tuple[str, ...]
    aliases: Mapping[str, str]
    # Fills the draft from the post (payload parts the envelope repeats, rows).
    build: Callable[[Draft, FormValues, dict[str, Any]], list[str] | None]
    context_for: Callable[[NodeServices, dict[str, Any], list[StoredMessage]], dict[str, Any]]
    # This form's plain words for a missing answer (over plain_words.MISSING).
    missing: Mapping[str, str] = field(default_factory=dict)


def _members_but_me(services: NodeServices, view: Mapping[str, Any]) -> list[str]:
    nodes = [str(m["node"]) for m in view.get("members", [])]
    if view.get("chair") not in nodes:
        nodes.append(str(view["chair"]))
    return [n for n in nodes if n != services.node_id]


def _rows_into(container: dict[str, Any], key: str) -> list[int]:
    rows, numbers = channel.compact_rows(container.get(key))
    if rows:
        container[key] = rows
    else:
        container.pop(key, None)
    return numbers


def _build_consent(draft: Draft, values: FormValues, view: dict[str, Any]) -> list[str] | None:
    payload = draft.payload
    for key in ("decided_at", "withdrawn_at"):
        _to_utc_text(payload, key)
    position = draft.envelope.get("consent")
    age = position.get("subject_age") if isinstance(position, dict) else None
    draft.envelope["consent"] = channel.envelope_consent_for(
        str(payload.get("outcome") or "") or None,
        str(payload.get("given_by") or "") or None,
        str(age) if age else None,
    )
    return None


def _build_outcome(draft: Draft, values: FormValues, view: dict[str, Any]) -> list[str] | None:
    payload = draft.payload
    if payload.get("outcome"):
        draft.envelope["panel_outcome"] = payload["outcome"]
    plan_rows = _rows_into(payload, "support_plan")
    referral_rows = _rows_into(payload, "referred_on_to")
    draft.envelope["_rows"] = {"support_plan": plan_rows, "referred_on_to": referral_rows}
    return None


def _build_review(draft: Draft, values: FormValues, view: dict[str, Any]) -> list[str] | None:
    payload = draft.payload
    if payload.get("review_point"):
        draft.envelope["review_point"] = payload["review_point"]
    referral_rows = _rows_into(payload, "referred_on_to")
    draft.envelope["_rows"] = {"referred_on_to": referral_rows}
    return None


def _section_filled(row: dict[str, Any]) -> bool:
    return any(
        row.get(key) for key in ("kind", "title", "content", "support_plan", "partner_return")
    )


def _build_pack(draft: Draft, values: FormValues, view: dict[str, Any]) -> list[str] | None:
    payload = draft.payload
    env = draft.envelope
    expiry = env.get("access_expires_at")
    if not expiry:
        draft.errors.add("access_expires_at", plain_words.MISSING["access_expires_at"])
    elif not isinstance(expiry, str) or channel.parse_expiry(expiry) is None:
        draft.errors.add(
            "access_expires_at", "Enter a real date and time, for example 2026-12-20T17:00"
        )
    _to_utc_text(env, "access_expires_at")
    recipient = env.pop("recipients", None)
    chosen = recipient if isinstance(recipient, list) else []
    if not chosen:
        draft.errors.add("recipients", "Choose the panel member this pack is for")
    raw = payload.get("sections")
    for row in raw if isinstance(raw, list) else []:
        plan = row.get("support_plan") if isinstance(row, dict) else None
        if isinstance(plan, dict):
            items, _ = channel.compact_rows(plan.get("items"))
            if items:
                plan["items"] = items
            else:
                plan.pop("items", None)
            if not plan:
                row.pop("support_plan")
    sections, numbers = channel.compact_rows(raw, filled=_section_filled)
    if sections:
        payload["sections"] = sections
    else:
        payload.pop("sections", None)
        draft.errors.add("payload.sections", "Add at least one section to the pack")
    env["_rows"] = {"sections": numbers}
    return [str(node) for node in chosen]


def _no_extra(
    services: NodeServices, view: dict[str, Any], messages: list[StoredMessage]
) -> dict[str, Any]:
    return {}


def _pack_extra(
    services: NodeServices, view: dict[str, Any], messages: list[StoredMessage]
) -> dict[str, Any]:
    return {
        "section_rows": range(SIMPLE_SECTION_ROWS),
        "support_plan_row": SUPPORT_PLAN_ROW,
        "partner_return_row": PARTNER_RETURN_ROW,
        "plan_item_rows": range(PLAN_ITEM_ROWS),
        "simple_kinds": SIMPLE_SECTION_KINDS,
        "section_marking_options": [(marking, marking) for marking in SECTION_MARKINGS],
        "consent_record_options": [
            (m.id, f"Consent record of {m.received_at:%-d %b %Y %H:%M} UTC ({m.id[:13]}…)")
            for m in messages
            if m.kind == "consent_record"
        ],
        "support_types": SUPPORT_TYPES,
    }


def _outcome_extra(
    services: NodeServices, view: dict[str, Any], messages: list[StoredMessage]
) -> dict[str, Any]:
    return {
        "panel_outcomes": PANEL_OUTCOMES,
        "support_types": SUPPORT_TYPES,
        "destinations": DESTINATIONS,
        "plan_item_rows": range(PLAN_ITEM_ROWS),
        "referral_rows": range(REFERRAL_ROWS),
    }


def _consent_extra(
    services: NodeServices, view: dict[str, Any], messages: list[StoredMessage]
) -> dict[str, Any]:
    return {"consent_methods": CONSENT_METHODS}


def _review_extra(
    services: NodeServices, view: dict[str, Any], messages: list[StoredMessage]
) -> dict[str, Any]:
    return {
        "review_points": REVIEW_POINTS,
        "review_outcomes": REVIEW_OUTCOMES,
        "destinations": DESTINATIONS,
        "referral_rows": range(REFERRAL_ROWS),
    }


def _professional_fields(prefix: str) -> tuple[str, ...]:
    return (prefix, *(f"{prefix}.{part}" for part in ("name", "role", "organisation", "email")))


CONSENT_FIELDS = (
    *ENVELOPE_FIELDS,
    "payload.outcome",
    "payload.given_by",
    "payload.parent_or_guardian",
    "payload.parent_or_guardian.name",
    "payload.parent_or_guardian.relationship",
    "payload.parent_or_guardian.parental_responsibility",
    "payload.consent_to",
    "payload.method",
    "payload.decided_at",
    *_professional_fields("payload.sought_by"),
    "payload.information_given",
    "payload.right_to_withdraw_explained",
    "payload.competence_or_capacity_note",
    "payload.withdrawn_at",
    "payload.withdrawal_note",
)
OUTCOME_FIELDS = (
    *ENVELOPE_FIELDS,
    "payload.outcome",
    "payload.meeting_date",
    "payload.rationale",
    "payload.decided_by",
    "payload.support_plan",
    *(
        f"payload.support_plan.{i}.{part}"
        for i in range(PLAN_ITEM_ROWS)
        for part in ("support_type", "description", "provider", "delivery", "start_date")
    ),
    "payload.consent_request",
    "payload.consent_request.how",
    "payload.consent_request.when",
    "payload.consent_request.by_whom",
    "payload.referral_considered",
    "payload.referred_on_to",
    *(
        f"payload.referred_on_to.{i}.{part}"
        for i in range(REFERRAL_ROWS)
        for part in ("destination", "organisation", "note")
    ),
    "payload.exit_date",
    "payload.exit_reason",
)
REVIEW_FIELDS = (
    *ENVELOPE_FIELDS,
    "payload.review_point",
    "payload.review_date",
    *_professional_fields("payload.reviewed_by"),
    "payload.notes",
    "payload.outcome",
    "payload.next_review_date",
    "payload.referred_on_to",
    *(
        f"payload.referred_on_to.{i}.{part}"
        for i in range(REFERRAL_ROWS)
        for part in ("destination", "organisation", "note")
    ),
)
_SECTION_PARTS = ("kind", "title", "marking", "content")
PACK_FIELDS = (
    *ENVELOPE_FIELDS,
    "recipients",
    "access_expires_at",
    "payload.meeting_date",
    *_professional_fields("payload.prepared_by"),
    "payload.sections",
    *(
        f"payload.sections.{i}.{part}"
        for i in range(PARTNER_RETURN_ROW + 1)
        for part in _SECTION_PARTS
    ),
    f"payload.sections.{SUPPORT_PLAN_ROW}.support_plan",
    f"payload.sections.{SUPPORT_PLAN_ROW}.support_plan.consent_request.how",
    f"payload.sections.{SUPPORT_PLAN_ROW}.support_plan.consent_request.when",
    f"payload.sections.{SUPPORT_PLAN_ROW}.support_plan.consent_request.by_whom",
    *(
        f"payload.sections.{SUPPORT_PLAN_ROW}.support_plan.items.{i}.{part}"
        for i in range(PLAN_ITEM_ROWS)
        for part in ("support_type", "description", "provider")
    ),
    f"payload.sections.{PARTNER_RETURN_ROW}.partner_return",
    f"payload.sections.{PARTNER_RETURN_ROW}.partner_return.provided_by",
    f"payload.sections.{PARTNER_RETURN_ROW}.partner_return.provider_node",
    f"payload.sections.{PARTNER_RETURN_ROW}.partner_return.gateway_ids",
    f"payload.sections.{PARTNER_RETURN_ROW}.partner_return.consent_record_ref",
)

STEPS: dict[str, Step] = {
    "consent": Step(
        kind="consent_record",
        template="case_consent.html",
        title="Record consent",
        path="consent/new",
        payload_model=ConsentRecordPayload,
        field_names=CONSENT_FIELDS,
        aliases={
            "consent.subject_age": "consent.subject_age",
            "consent.given_by": "payload.given_by",
            "consent": "payload.outcome",
            "recipients": "",
            "sender": "",
            "kind": "",
        },
        build=_build_consent,
        context_for=_consent_extra,
        missing={"payload.outcome": "Choose the consent outcome"},
    ),
    "outcome": Step(
        kind="panel_outcome",
        template="case_outcome.html",
        title="Record a panel outcome",
        path="outcome/new",
        payload_model=PanelOutcomePayload,
        field_names=OUTCOME_FIELDS,
        aliases={"panel_outcome": "payload.outcome", "recipients": "", "sender": "", "kind": ""},
        build=_build_outcome,
        context_for=_outcome_extra,
        missing={
            "payload.outcome": "Choose the panel's decision",
            "payload.meeting_date": "Enter the date of the panel meeting",
        },
    ),
    "review": Step(
        kind="case_review",
        template="case_review.html",
        title="Record a post-exit review",
        path="review/new",
        payload_model=CaseReviewPayload,
        field_names=REVIEW_FIELDS,
        aliases={
            "review_point": "payload.review_point",
            "recipients": "",
            "sender": "",
            "kind": "",
        },
        build=_build_review,
        context_for=_review_extra,
        missing={"payload.outcome": "Choose the outcome of the review"},
    ),
    "pack": Step(
        kind="case_pack",
        template="case_pack_new.html",
        title="Compose a case pack",
        path="packs/new",
        payload_model=CasePackPayload,
        field_names=PACK_FIELDS,
        aliases={"sender": "", "kind": ""},
        build=_build_pack,
        context_for=_pack_extra,
        missing={"payload.meeting_date": "Enter the date of the panel meeting"},
    ),
}


async def _step_page(
    request: web.Request,
    step: Step,
    case_ref: str,
    view: dict[str, Any],
    messages: list[StoredMessage],
    values: FormValues,
    errors: FormErrors | None,
    status: int = 200,
) -> web.Response:
    services = request.app[SERVICES]
    user = current_session(request).user
    directory = await _directory(services)
    context = _form_context(services, user, step.kind, values, errors, directory)
    members = _members_but_me(services, view)
    roles = {str(m["node"]): str(m["role"]) for m in view.get("members", [])}
    context.update(
        {
            "case_ref": case_ref,
            "view": view,
            "step": step,
            "members": members,
            "member_roles": roles,
            "others": [n for n in sorted(directory) if n not in members and n != services.node_id],
            "provider_options": _node_options(sorted(directory), directory),
            "needs_legal_basis": step.kind in services.registry.settings.legal_basis_required_for,
            **step.context_for(services, view, messages),
        }
    )
    return render(
        request,
        step.template,
        context,
        title=f"{step.title}: {case_ref}",
        marking=highest_marking([m.marking for m in messages]) if messages else "OFFICIAL",
        status=status,
    )


async def _step_start(request: web.Request, step: Step) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    case_ref = request.match_info["case_ref"]
    view = _case_or_404(await _case_view(services, case_ref))
    messages = _case_messages(services, case_ref)
    opening = _opening(messages)
    consent = _latest_consent(messages) if step.kind != "consent_record" else None
    basis = None
    if step.kind == "case_pack":
        packs = [m for m in messages if m.kind == "case_pack" and m.direction == "out"]
        earlier = packs[-1] if packs else opening
        basis = None if earlier is None else earlier.envelope_document.get("legal_basis")
    values = _start_values(
        services,
        user,
        step.kind,
        subject_ref=opening.subject_ref if opening is not None else None,
        consent=consent,
        legal_basis=basis,
    )
    organisation = await _organisation(services)
    if step.kind == "consent_record":
        values.setdefault(
            "consent.subject_age",
            str((_latest_consent(messages) or {}).get("subject_age", "ADULT")),
        )
        _professional(values, "payload.sought_by", user, organisation)
    elif step.kind == "case_review":
        _professional(values, "payload.reviewed_by", user, organisation)
    elif step.kind == "case_pack":
        _professional(values, "payload.prepared_by", user, organisation)
        expiry = channel.default_expiry(services.now(), request.app[SETTINGS].case_pack_access_days)
        values.set("access_expires_at", f"{expiry:%Y-%m-%dT%H:%M}")
        for i in range(PARTNER_RETURN_ROW + 1):
            values.set(f"payload.sections.{i}.marking", SECTION_MARKINGS[0])
    return await _step_page(request, step, case_ref, view, messages, values, None)


@requires(*CHAIR_ROLES)
async def consent_form(request: web.Request) -> web.StreamResponse:
    return await _step_start(request, STEPS["consent"])


@requires(*CHAIR_ROLES)
async def outcome_form(request: web.Request) -> web.StreamResponse:
    return await _step_start(request, STEPS["outcome"])


@requires(*CHAIR_ROLES)
async def review_form(request: web.Request) -> web.StreamResponse:
    return await _step_start(request, STEPS["review"])


@requires(*CHAIR_ROLES)
async def pack_form(request: web.Request) -> web.StreamResponse:
    return await _step_start(request, STEPS["pack"])


async def _step_submit(request: web.Request, step: Step) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    case_ref = request.match_info["case_ref"]
    view = _case_or_404(await _case_view(services, case_ref))
    messages = _case_messages(services, case_ref)
    pairs = await _posted(request)
    values = FormValues(pairs)
    posted = channel.split_post(unflatten(pairs))
    draft = Draft(posted.envelope, posted.payload)
    chosen = step.build(draft, values, view)
    rows: dict[str, list[int]] = draft.envelope.pop("_rows", {})
    author, _ = _author(user, values)
    recipients = chosen if chosen is not None else _members_but_me(services, view)
    _envelope_common(draft, kind=step.kind, author=author, recipients=recipients, case_ref=case_ref)
    message_id, errors = await _check_and_send(
        request,
        draft,
        step.payload_model,
        case_view=view,
        aliases=step.aliases,
        field_names=step.field_names,
        author_missing=author is None,
        rows={f"payload.{key}": numbers for key, numbers in rows.items()},
        missing=step.missing,
    )
    if message_id is None:
        return await _step_page(request, step, case_ref, view, messages, values, errors, 400)
    raise web.HTTPSeeOther(location=f"/cases/{case_ref}/sent/{message_id}")


@requires(*CHAIR_ROLES)
async def consent_submit(request: web.Request) -> web.StreamResponse:
    return await _step_submit(request, STEPS["consent"])


@requires(*CHAIR_ROLES)
async def outcome_submit(request: web.Request) -> web.StreamResponse:
    return await _step_submit(request, STEPS["outcome"])


@requires(*CHAIR_ROLES)
async def review_submit(request: web.Request) -> web.StreamResponse:
    return await _step_submit(request, STEPS["review"])


@requires(*CHAIR_ROLES)
async def pack_submit(request: web.Request) -> web.StreamResponse:
    return await _step_submit(request, STEPS["pack"])

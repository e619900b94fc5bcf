"""A new information request: to whom, about whom, what, why and on what basis.

The form's field names are draft paths (:mod:`agency_adapters.node.console.forms`), so a
post builds the same envelope fields and :class:`InformationRequestPayload` that ``hub
node submit`` reads, through the same models, and the node's pre-flight judges it before
anything is sent (the machinery of :mod:`agency_adapters.node.console.views.cases`).
Every broken rule is shown beside the field it concerns.

- The gateway picker comes from the registry (``gateways.yaml``): the gateways the
  recipient's agency type may rely on as the discloser (an ``information_request`` asks
  its recipients to disclose, ``hub/policy/lawful_basis.py``), each with what it is for
  and what it needs (an appropriate policy document reference, GW-14; the statutory
  function an implied power rests on, GW-15; a Schedule 1 condition, GW-04).
- The scope builder offers the data categories the recipient's agency type holds
  (``data_categories.yaml``; SCOPE-04). Each row is a category, its period and the
  justification; the justification travels in the encrypted payload, the envelope says
  only that it is there (``justification_present``). "Add another category" is a submit
  button (``action=add-row``) that shows the form again with one more empty row and
  sends nothing, so it works without JavaScript.
- Who may author a request is local policy: ``roles.yaml`` restricts referring, deciding
  and releasing, not asking, so the roles are those the navigation offers the page to
  (:data:`REQUEST_ROLES`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from agency_adapters.node.console import channel
from agency_adapters.node.console.forms import FormErrors, unflatten
from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.rendering import NAVIGATION, render
from agency_adapters.node.console.security import current_session, requires
from agency_adapters.node.console.services import NodeServices
from agency_adapters.node.console.views.cases import (
    ENVELOPE_FIELDS,
    Draft,
    FormValues,
    _check_and_send,
    _directory,
    _envelope_common,
    _form_context,
    _node_options,
    _organisation,
    _posted,
    _professional,
    sent_message_page,
)
from agency_adapters.node.users import ROLE_LABELS, User
from hub.model.messages import DirectoryEntry
from hub.model.payloads import InformationRequestPayload
from hub.policy.registry import Gateway, Registry

__all__ = ["REQUEST_ROLES", "request_new_form", "request_new_submit", "request_sent"]

log = logging.getLogger("seh.console")

KIND = "information_request"
# Local policy (roles.yaml has no grant for asking): the roles the navigation offers
# "New request" to.
REQUEST_ROLES: tuple[str, ...] = tuple(
    sorted(next(item.roles for item in NAVIGATION if item.href == "/requests/new"))
)
# Rows the scope builder starts with; "Add another category" adds one at a time, up to
# the registry's maximum number of categories (SCOPE-02).
START_ROWS = 1
ROW_COUNT = "_rows"
ADD_ROW = "add-row"
CHOOSE_RECIPIENT = "choose-recipient"
URGENCIES = (("routine", "Routine"), ("urgent", "Urgent"))
# The gateway picker's groups, in the order of the layered test (REFERENCE.md 2.1):
# (field, legend, several may be ticked).
GATEWAY_GROUPS: tuple[tuple[str, str, bool], ...] = (
    ("powers", "Power to share (L1)", True),
    ("confidentiality", "How the duty of confidence is met (L2)", True),
    ("art6", "UK GDPR Article 6 lawful basis (L3)", False),
    ("art9", "UK GDPR Article 9 condition (special category data)", False),
    ("sch1", "DPA 2018 Schedule 1 condition (with Article 9(2)(g))", False),
    ("art10", "Article 10 condition (criminal offence data)", False),
    ("exemptions", "DPA 2018 Schedule 2 exemptions (never a lawful basis on their own)", True),
)
# GW-14 is judged on the disclosure itself (hub/policy/lawful_basis.py checks it on a
# release, not on a request): the form says what the discloser will need.
_APD_NEEDS = {
    "needed": (
        "Needs the discloser's appropriate policy document: the organisation gives its "
        "reference when it releases (GW-14)."
    ),
    "needed_unless_to_competent_authority": (
        "Needs the discloser's appropriate policy document, unless the disclosure is to a "
        "competent authority such as the police: the organisation gives its reference when "
        "it releases (GW-14)."
    ),
}
_SCOPE_PARTS = ("category", "period_from", "period_to", "justification", "extension_reason")
PAYLOAD_FIELDS = (
    "payload.requester",
    "payload.requester.name",
    "payload.requester.role",
    "payload.requester.organisation",
    "payload.requester.email",
    "payload.subject",
    "payload.subject.forenames",
    "payload.subject.surname",
    "payload.subject.date_of_birth",
    "payload.subject.nhs_number",
    "payload.purpose",
    "payload.expected_outcome",
    "payload.legal_basis_statement",
    "payload.consent_not_sought_reason",
    "payload.public_interest_statement",
    "payload.urgency_justification",
)


def gateway_needs(gateway: Gateway) -> list[str]:
    """What relying on ``gateway`` needs besides citing it, in plain English."""
    needs: list[str] = []
    if gateway.appropriate_policy_document in _APD_NEEDS:
        needs.append(_APD_NEEDS[gateway.appropriate_policy_document])
    if gateway.needs_named_function:
        needs.append("Needs the statutory function it rests on, named below (GW-15).")
    if gateway.needs_sch1:
        needs.append("Needs a DPA 2018 Schedule 1 condition as well (GW-04).")
    if gateway.consent_required:
        needs.append("Needs the person's consent.")
    if gateway.overrides_refusal:
        needs.append("May be relied on against a refusal of consent (CS-05).")
    if gateway.best_interests:
        needs.append("Covers a person who lacks capacity, in their best interests (CS-03).")
    if gateway.family == "exemption":
        needs.append("Never a lawful basis on its own: cite the gateways above too (GW-EX).")
    return needs


def _gateway_groups(
    registry: Registry, agency_types: Iterable[str], requester_type: str
) -> list[dict[str, Any]]:
    """The picker's groups: each gateway the disclosers may rely on towards the requester
    (GW-08, GW-09), once, in registry order."""
    chosen: dict[str, list[Gateway]] = {}
    for agency_type in agency_types:
        for key, found in channel.gateway_choices(registry, agency_type).items():
            known = chosen.setdefault(key, [])
            towards = [g for g in found if {"ANY", requester_type} & set(g.to_whom)]
            known.extend(g for g in towards if g not in known)
    return [
        {
            "field": f"legal_basis.{key}",
            "legend": legend,
            "multiple": multiple,
            "gateways": [
                {"gateway": g, "needs": gateway_needs(g)}
                for g in sorted(chosen.get(key, []), key=registry.gateways.index)
            ],
        }
        for key, legend, multiple in GATEWAY_GROUPS
    ]


def _recipient_types(
    services: NodeServices, values: FormValues, directory: Mapping[str, DirectoryEntry]
) -> list[str]:
    """The agency type of the chosen recipient, or of every node that could be asked."""
    chosen = directory.get(values.get("recipients"))
    if chosen is not None:
        return [chosen.agency_type]
    return sorted({e.agency_type for n, e in directory.items() if n != services.node_id})


def _agency_name(registry: Registry, agency_type: str) -> str:
    entry = registry.agency(agency_type)
    return entry.name if entry is not None else agency_type


def _category_options(registry: Registry, agency_types: Sequence[str]) -> list[tuple[str, str]]:
    options = []
    for category in registry.data_categories:
        if not set(category.held_by) & set(agency_types):
            continue
        text = category.name
        if category.max_period_days is not None:
            text += f" (period needed, up to {category.max_period_days} days)"
        elif category.needs_period:
            text += " (period needed)"
        options.append((category.id, text))
    return options


def _row_count(values: FormValues, registry: Registry) -> int:
    text = values.get(ROW_COUNT)
    count = int(text) if text.isdigit() else START_ROWS
    return max(START_ROWS, min(count, registry.settings.max_scope_categories))


def _field_names(rows: int) -> tuple[str, ...]:
    return (
        *ENVELOPE_FIELDS,
        "recipients",
        "urgency",
        "legal_basis.exemptions",
        "legal_basis.appropriate_policy_document",
        "legal_basis.statutory_function",
        "legal_basis.agreement",
        "legal_basis.public_task_statement",
        "scope",
        *(f"scope.{i}.{part}" for i in range(rows) for part in _SCOPE_PARTS),
        *PAYLOAD_FIELDS,
    )


def _aliases(rows: int) -> dict[str, str]:
    """Paths the form fills from other fields, by the form's row numbers."""
    # The first alias that prefixes a path wins: a row's own before the whole list's.
    out = {"sender": "", "kind": "", "in_reply_to": ""}
    for i in range(rows):
        out[f"scope.{i}.justification_present"] = f"scope.{i}.justification"
        out[f"scope.{i}.extension_reason_present"] = f"scope.{i}.extension_reason"
        out[f"payload.requested.{i}.justification"] = f"scope.{i}.justification"
        out[f"payload.requested.{i}.extension_reason"] = f"scope.{i}.extension_reason"
        out[f"payload.requested.{i}"] = f"scope.{i}.category"
    out["payload.requested"] = "scope"
    return out


async def _page(
    request: web.Request, values: FormValues, errors: FormErrors | None, status: int = 200
) -> web.Response:
    services = request.app[SERVICES]
    user = current_session(request).user
    registry = services.registry
    directory = await _directory(services)
    context = _form_context(services, user, KIND, values, errors, directory)
    types = _recipient_types(services, values, directory)
    purpose = registry.purpose(values.get("purpose"))
    rows = _row_count(values, registry)
    context.update(
        {
            "acting_choices": [
                (role, ROLE_LABELS.get(role, role)) for role in REQUEST_ROLES if role in user.roles
            ],
            "recipient_options": _node_options(
                [n for n in sorted(directory) if n != services.node_id], directory
            ),
            "recipient_types": [_agency_name(registry, t) for t in types],
            "gateway_groups": _gateway_groups(registry, types, services.profile.agency_type),
            "statutory_functions": [
                (g.id, f"{g.title} ({g.id})") for g in registry.gateways if g.statutory_function
            ],
            "agreements": [(a.id, f"{a.title} ({a.id})") for a in registry.agreements],
            "category_options": _category_options(registry, types),
            "scope_rows": range(rows),
            "row_count": rows,
            "can_add_row": rows < registry.settings.max_scope_categories,
            "urgencies": URGENCIES,
            "deadlines": purpose.deadlines if purpose is not None else None,
        }
    )
    return render(
        request,
        "request_new.html",
        context,
        title="New information request",
        marking="OFFICIAL-SENSITIVE" if values.get("marking.sensitive") == "true" else "OFFICIAL",
        status=status,
    )


async def _start_values(services: NodeServices, user: User) -> FormValues:
    values = FormValues()
    purposes = channel.purposes_for(services.registry, KIND)
    if purposes:
        values.set("purpose", purposes[0][0])
    values.set("marking.sensitive", "true")
    values.set("marking.descriptors", "PERSONAL_DATA")
    values.set("urgency", "routine")
    # The consent position starts unstated: the requester must say it (CS-01, CS-06).
    values.set("consent.state", "UNKNOWN")
    values.set("consent.subject_age", "UNKNOWN")
    values.set(ROW_COUNT, str(START_ROWS))
    held = [role for role in REQUEST_ROLES if role in user.roles]
    if held:
        values.set("_acting_as", held[0])
        values.set("payload.requester.role", ROLE_LABELS.get(held[0], held[0]))
    _professional(values, "payload.requester", user, await _organisation(services))
    return values


def build_request(draft: Draft) -> list[int]:
    """Split the scope rows into the envelope's scope and the payload's requested items.

    The envelope carries each category, its period and whether a justification (and an
    extension reason) is given; the texts go in the encrypted payload (REFERENCE.md 3.1
    RQ-05, ScopeItem). Returns the form's row number of each scope item.
    """
    env = draft.envelope
    rows, numbers = channel.compact_rows(env.pop("scope", None))
    scope: list[dict[str, Any]] = []
    requested: list[dict[str, Any]] = []
    for row in rows:
        justification = row.pop("justification", None)
        extension = row.pop("extension_reason", None)
        item = {**row, "justification_present": justification is not None}
        if extension is not None:
            item["extension_reason_present"] = True
        scope.append(item)
        asked: dict[str, Any] = {"category": row.get("category")}
        if justification is not None:
            asked["justification"] = justification
        if extension is not None:
            asked["extension_reason"] = extension
        requested.append(asked)
    if scope:
        env["scope"] = scope
        draft.payload["requested"] = requested
    else:
        draft.errors.add("scope", "Name at least one data category, its period and why")
    return numbers


@requires(*REQUEST_ROLES)
async def request_new_form(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    values = await _start_values(services, user)
    chosen = request.query.get("to", "")
    if chosen:
        values.set("recipients", chosen)
    return await _page(request, values, None)


@requires(*REQUEST_ROLES)
async def request_new_submit(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    pairs = await _posted(request)
    values = FormValues(pairs)
    rows = _row_count(values, services.registry)
    action = values.get("action")
    if action in (ADD_ROW, CHOOSE_RECIPIENT):
        # Show the form again, nothing sent: one more scope row, or the choices for the
        # recipient chosen.
        if action == ADD_ROW:
            rows = min(rows + 1, services.registry.settings.max_scope_categories)
        values.set(ROW_COUNT, str(rows))
        return await _page(request, values, None)
    posted = channel.split_post(unflatten([(n, v) for n, v in pairs if n != "action"]))
    draft = Draft(posted.envelope, posted.payload)
    numbers = build_request(draft)
    recipients = draft.envelope.pop("recipients", None)
    chosen = [str(node) for node in recipients] if isinstance(recipients, list) else []
    if not chosen:
        draft.errors.add("recipients", "Choose the organisation you are asking")
    author, _ = channel.author_for(REQUEST_ROLES, values.get("_acting_as") or None, user)
    _envelope_common(
        draft,
        kind=KIND,
        author=None if author is None else author.model_dump(mode="json"),
        recipients=chosen,
        case_ref=None,
    )
    message_id, errors = await _check_and_send(
        request,
        draft,
        InformationRequestPayload,
        case_view=None,
        aliases=_aliases(rows),
        field_names=_field_names(rows),
        author_missing=author is None,
        rows={"scope": numbers, "payload.requested": numbers},
    )
    if message_id is None:
        return await _page(request, values, errors, status=400)
    raise web.HTTPSeeOther(location=f"/requests/sent/{message_id}")


@requires(*REQUEST_ROLES)
async def request_sent(request: web.Request) -> web.StreamResponse:
    return await sent_message_page(request, KIND, "request_sent.html", "Information request sent")

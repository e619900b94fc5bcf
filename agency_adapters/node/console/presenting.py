"""What a message says, in words people read: the message page's view of each kind.

The console opens a payload on view (nothing decrypted at rest) and hands the page
plain rows and tables built here from the same pydantic models as the wire
(``hub/model/payloads.py``) and the policy registry's names and explanations, so a
caseworker reads "Crime and Disorder Act 1998 s115: a power to share ..." rather than
``CDA1998-s115``, and the National Prevent Referral Form reads as the form, section by
section, in the order and under the headings of seed 004 Appendix 3 (and Appendix 6 for
its second page).

Everything here is pure: models and registry in, rows out. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from agency_adapters.health.mapping import category_tags
from hub.model import EnvelopeFields, ReleaseManifest, ScopeItem
from hub.model.payload_checks import payload_model_for
from hub.model.payloads import (
    REQUEST_CHECKLIST,
    TODAY_CONTEXT_KEY,
    VAF_FACTORS,
    DecisionPayload,
    InformationRequestPayload,
    NationalPreventReferralForm,
)
from hub.policy.registry import Registry

__all__ = [
    "REQUEST_STATES",
    "STATE_LABELS",
    "STORED_STATES_FOR",
    "GatewayRow",
    "ResourceTable",
    "Row",
    "ScopeRow",
    "Section",
    "approved_scope_rows",
    "category_label",
    "code_words",
    "decision_payload_sections",
    "delivery_state",
    "fhir_tables",
    "gateway_rows",
    "manifest_rows",
    "model_sections",
    "parse_payload",
    "referral_sections",
    "scope_rows",
    "vaf_label",
]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a summary list: a label and its value as text (or several lines)."""

    key: str
    value: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    """A heading and its summary list."""

    heading: str
    rows: tuple[Row, ...]
    note: str | None = None


# -- values as words ---------------------------------------------------------------------

_CODE_WORDS = {
    "NFA": "No further action",
    "APPROVED_FULL": "Approved in full",
    "APPROVED_PARTIAL": "Approved in part",
    "RETURNED_INCOMPLETE": "Returned as incomplete",
    "ESCALATED": "Escalated",
    "NOT_ADOPTED_NFA": "Not adopted: no further action",
    "NOT_ADOPTED_REFERRED_ON": "Not adopted: referred on",
    "POLICE_LED": "Police-led",
    "CHANNEL": "Channel",
    "IN_PERSON_WRITTEN": "In person, in writing",
    "IN_PERSON_VERBAL": "In person, spoken",
    "6_MONTHS": "6 months after exit",
    "12_MONTHS": "12 months after exit",
    "UNDER_16": "Under 16",
    "AGED_16_17": "Aged 16 or 17",
    "CALDICOTT_GUARDIAN": "Caldicott Guardian",
    "IG_LEAD": "Information governance lead",
    "DPO": "Data protection officer",
    "PAF": "Prevent Assessment Framework (PAF)",
    "VAF": "Vulnerability Assessment Framework (VAF)",
}


def code_words(code: str) -> str:
    """A registry or model code as words: ``NOT_SOUGHT`` -> "Not sought"."""
    if code in _CODE_WORDS:
        return _CODE_WORDS[code]
    if code.startswith("RQ-") and code in REQUEST_CHECKLIST:
        return f"{code}: {REQUEST_CHECKLIST[code]}"  # type: ignore[index]  # checked above
    return code.replace("_", " ").strip().capitalize()


def _when(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return f"{value:%-d %b %Y %H:%M} UTC" if value.utcoffset() is not None else str(value)
    return f"{value:%-d %b %Y}"


def _text(value: Any) -> str:
    if value is None:
        return "Not given"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, date | datetime):
        return _when(value)
    if isinstance(value, str):
        if value.isupper() and " " not in value and len(value) > 2:
            return code_words(value)
        return value
    return str(value)


# -- a model as summary-list sections ----------------------------------------------------

# Labels for fields whose name alone reads badly; the form's own labels come from each
# field's ``description`` (the referral form's models carry them).
_LABELS = {
    "nhs_number": "NHS number",
    "date_of_birth": "Date of birth",
    "approx_age": "Approximate age",
    "forenames": "Forename(s)",
    "postcode": "Postcode",
    "telephone": "Telephone",
    "email": "Email",
    "proforma_id": "Request form (proforma)",
    "np07": "NP-07 considerations",
    "decided_at": "Decided at",
    "consent_to": "Consent to",
    "ae_attendance": "A&E attendance",
}
# A description longer than this is a prompt, not a label: the field name reads better.
_LABEL_MAX = 60


def _label(model: type[BaseModel], name: str) -> str:
    if name in _LABELS:
        return _LABELS[name]
    info = model.model_fields.get(name)
    description = info.description if info is not None else None
    if description and len(description) <= _LABEL_MAX:
        return description
    return name.replace("_", " ").capitalize()


def _is_model(value: Any) -> bool:
    return isinstance(value, BaseModel)


def _scalar_rows(model: BaseModel, skip: Iterable[str] = ()) -> list[Row]:
    rows: list[Row] = []
    skipped = set(skip)
    for name in type(model).model_fields:
        if name in skipped:
            continue
        value = getattr(model, name)
        if value is None or value == ():
            continue
        label = _label(type(model), name)
        if _is_model(value):
            rows.extend(
                Row(f"{label}: {row.key}", row.value, row.lines) for row in _scalar_rows(value)
            )
        elif isinstance(value, tuple):
            if value and all(_is_model(item) for item in value):
                lines = tuple(_one_line(item) for item in value)
                rows.append(Row(label, "", lines))
            else:
                rows.append(Row(label, "", tuple(_text(item) for item in value)))
        else:
            rows.append(Row(label, _text(value)))
    return rows


def _one_line(model: BaseModel) -> str:
    """A small nested model (an address, an onward referral) on one line."""
    parts = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is None or value == () or value is False:
            continue
        if isinstance(value, tuple):
            parts.append(", ".join(_text(v) for v in value if not _is_model(v)))
        elif _is_model(value):
            parts.append(_one_line(value))
        elif value is True:
            parts.append(_label(type(model), name).lower())
        else:
            parts.append(_text(value))
    return "; ".join(part for part in parts if part)


def model_sections(
    model: BaseModel, heading: str, *, skip: Iterable[str] = (), own_sections: Iterable[str] = ()
) -> list[Section]:
    """``model`` as one section of rows, with the fields in ``own_sections`` (nested models
    or tuples of them) each under a heading of their own."""
    separate = set(own_sections)
    sections = [Section(heading, tuple(_scalar_rows(model, {*skip, *separate})))]
    for name in type(model).model_fields:
        if name not in separate:
            continue
        value = getattr(model, name)
        label = _label(type(model), name)
        if _is_model(value):
            sections.append(Section(label, tuple(_scalar_rows(value))))
        elif isinstance(value, tuple):
            for index, item in enumerate(value, start=1):
                if _is_model(item):
                    title = label if len(value) == 1 else f"{label} {index}"
                    sections.append(Section(title, tuple(_scalar_rows(item))))
    return [section for section in sections if section.rows]


# -- the National Prevent Referral Form --------------------------------------------------

# The form's sections, in its order, with its headings (seed 004 Appendix 3 and the
# second page reproduced in Appendix 6; REFERENCE.md 4.6).
REFERRAL_FORM_SECTIONS: tuple[tuple[str, str, str | None], ...] = (
    ("individual", "Individual's biographical and contact details", None),
    ("concerns", "Describe concerns", None),
    ("complex_needs", "Complex needs", None),
    ("further_information", "Further information", None),
    ("person_who_first_identified_concern", "Person who first identified the concerns", None),
    (
        "person_making_referral",
        "Person making this referral (if different from above)",
        "The same person who first identified the concerns.",
    ),
    (
        "organisational_prevent_contact",
        "Referrer's organisational Prevent contact (if different from above)",
        "Not different from above.",
    ),
    ("relevant_dates", "Relevant dates", None),
    ("safeguarding_considerations", "Safeguarding considerations", None),
    ("employment_education", "Individual's employment / education details", None),
    (
        "consent_not_sought_statement",
        "Basis for sharing without consent",
        None,
    ),
)

_SAFEGUARDING_QUESTIONS = {
    "disabilities_or_mental_health": (
        "Does the individual have any stated or diagnosed disabilities, disorders or "
        "mental health issues?"
    ),
    "discussed_with_safeguarding_lead": (
        "Have you discussed this individual with your organisation's Safeguarding / Prevent lead?"
    ),
    "informed_individual": "Have you informed the individual that you are making this referral?",
    "direct_action_taken": (
        "Have you taken any direct action with the individual since receiving this information?"
    ),
    "discussed_with_other_agencies": (
        "Have you discussed your concerns around the individual with any other agencies?"
    ),
    "risks_to_staff": "Risks to staff who visit or meet the individual",
}


def referral_sections(form: NationalPreventReferralForm) -> list[Section]:
    """Every section of the form, in its order, under its heading; an empty optional
    section says so rather than disappearing, so the reader sees the whole form."""
    sections: list[Section] = []
    for name, heading, when_absent in REFERRAL_FORM_SECTIONS:
        value = getattr(form, name)
        if name == "consent_not_sought_statement":
            if value is not None:
                sections.append(Section(heading, (Row("Statement", value),)))
            continue
        if value is None:
            sections.append(Section(heading, (), note=when_absent or "Not completed."))
        elif name == "safeguarding_considerations":
            sections.append(Section(heading, tuple(_safeguarding_rows(value))))
        elif name == "individual":
            rows = _scalar_rows(value, skip=("addresses",))
            addresses = tuple(
                _one_line(a) + (" (current residence)" if a.current_residence else "")
                for a in value.addresses
            )
            if addresses:
                rows.insert(6, Row("Known address(es)", "", addresses))
            sections.append(Section(heading, tuple(rows)))
        elif name == "complex_needs":
            rows = []
            if value.description is not None:
                rows.append(Row("Description", value.description))
            if value.indicators:
                rows.append(
                    Row("Indicators", "", tuple(code_words(code) for code in value.indicators))
                )
            sections.append(Section(heading, tuple(rows)))
        else:
            sections.append(Section(heading, tuple(_scalar_rows(value))))
    return sections


def _safeguarding_rows(value: BaseModel) -> list[Row]:
    rows: list[Row] = []
    for name, question in _SAFEGUARDING_QUESTIONS.items():
        answer = getattr(value, name)
        if answer is None:
            continue
        if isinstance(answer, str):
            rows.append(Row(question, answer))
            continue
        yes = answer.informed if name == "informed_individual" else answer.answer
        lines = [f"{key.key}: {key.value}" for key in _scalar_rows(answer, skip=("answer",))]
        if name == "informed_individual":
            lines = [f"{row.key}: {row.value}" for row in _scalar_rows(answer, skip=("informed",))]
        rows.append(Row(question, "Yes" if yes else "No", tuple(lines)))
    return rows


# -- gateways and scope ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayRow:
    layer: str
    gateway_id: str
    title: str
    summary: str
    citation: str


_LAYERS = (
    ("powers", "Power to share"),
    ("art6", "UK GDPR Article 6 lawful basis"),
    ("art9", "UK GDPR Article 9 condition"),
    ("sch1", "DPA 2018 Schedule 1 condition"),
    ("art10", "Article 10 (criminal offence data)"),
    ("confidentiality", "Common law duty of confidentiality: exception"),
    ("exemptions", "DPA 2018 Schedule 2 exemption"),
    ("agreement", "Data sharing agreement"),
    ("statutory_function", "Statutory function the power rests on"),
    ("appropriate_policy_document", "Appropriate policy document"),
)


def gateway_rows(legal_basis: BaseModel | None, registry: Registry) -> list[GatewayRow]:
    """Every gateway the envelope cites, layer by layer, with the registry's name and
    plain-English explanation (an id the registry does not know is shown as given)."""
    if legal_basis is None:
        return []
    rows: list[GatewayRow] = []
    for attribute, layer in _LAYERS:
        value = getattr(legal_basis, attribute, None)
        ids: Sequence[str] = value if isinstance(value, tuple) else ([value] if value else [])
        for gateway_id in ids:
            if attribute == "agreement":
                agreement = registry.agreement(gateway_id)
                title = agreement.title if agreement is not None else gateway_id
                rows.append(GatewayRow(layer, gateway_id, title, "", ""))
                continue
            gateway = registry.gateway(gateway_id)
            if gateway is None:
                rows.append(
                    GatewayRow(layer, gateway_id, gateway_id, "Not in this node's registry.", "")
                )
            else:
                rows.append(
                    GatewayRow(layer, gateway_id, gateway.title, gateway.summary, gateway.citation)
                )
    if getattr(legal_basis, "public_task_statement", False):
        rows.append(
            GatewayRow(
                "Requester's statement",
                "public_task_statement",
                "The requester needs the data for its public task",
                "UK GDPR Art 6(1)(e): the requester states it needs the data for a task in "
                "the public interest.",
                "",
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class ScopeRow:
    category: str
    label: str
    period: str
    justification: str
    extension_reason: str = ""
    approved: str = ""


def _period(item_from: date | None, item_to: date | None) -> str:
    if item_from is None and item_to is None:
        return "No period set"
    start = _when(item_from) if item_from else "the start of the record"
    end = _when(item_to) if item_to else "now"
    return f"{start} to {end}"


def category_label(category: str, registry: Registry) -> str:
    """A data category's registry name, or its id when the registry does not know it."""
    entry = registry.category(category)
    return entry.name if entry is not None else category


def scope_rows(
    scope: Sequence[ScopeItem],
    registry: Registry,
    payload: InformationRequestPayload | None = None,
) -> list[ScopeRow]:
    """The envelope's scope with the justification text from the (opened) payload."""
    texts = {item.category: item for item in payload.requested} if payload is not None else {}
    rows = []
    for item in scope:
        requested = texts.get(item.category)
        justification = (
            requested.justification
            if requested is not None and requested.justification
            else ("Given (in the request)" if item.justification_present else "None given")
        )
        extension = requested.extension_reason if requested and requested.extension_reason else ""
        rows.append(
            ScopeRow(
                category=item.category,
                label=category_label(item.category, registry),
                period=_period(item.period_from, item.period_to),
                justification=justification,
                extension_reason=extension,
            )
        )
    return rows


def approved_scope_rows(
    requested: Sequence[ScopeItem], approved: Sequence[ScopeItem], registry: Registry
) -> list[ScopeRow]:
    """Per category: what was asked for and what the decision approved."""
    by_category = {item.category: item for item in approved}
    rows = []
    seen = set()
    for item in requested:
        seen.add(item.category)
        granted = by_category.get(item.category)
        rows.append(
            ScopeRow(
                category=item.category,
                label=category_label(item.category, registry),
                period=_period(item.period_from, item.period_to),
                justification="",
                approved=(
                    _period(granted.period_from, granted.period_to)
                    if granted is not None
                    else "Not approved"
                ),
            )
        )
    for item in approved:
        if item.category not in seen:
            rows.append(
                ScopeRow(
                    category=item.category,
                    label=category_label(item.category, registry),
                    period="(request not readable here)",
                    justification="",
                    approved=_period(item.period_from, item.period_to),
                )
            )
    return rows


def manifest_rows(manifest: ReleaseManifest, registry: Registry) -> list[ScopeRow]:
    """What a release's signed manifest says it holds, category by category."""
    return [
        ScopeRow(
            category=item.category,
            label=category_label(item.category, registry),
            period=_period(item.period_from, item.period_to),
            justification=", ".join(f"{count} {kind}" for kind, count in item.resources.items()),
        )
        for item in manifest.categories
    ]


# -- FHIR resources in a release ---------------------------------------------------------


@dataclass
class ResourceTable:
    resource_type: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)


def _concept_text(value: Any) -> str:
    if isinstance(value, Mapping):
        if isinstance(value.get("text"), str):
            return str(value["text"])
        for coding in value.get("coding") or ():
            if isinstance(coding, Mapping):
                shown = coding.get("display") or coding.get("code")
                if isinstance(shown, str):
                    return shown
    if isinstance(value, list) and value:
        return "; ".join(_concept_text(item) for item in value)
    return ""


def _fhir_date(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        if "T" in value:
            return _when(datetime.fromisoformat(value.replace("Z", "+00:00")))
        return _when(date.fromisoformat(value))
    except ValueError:
        return value


def _period_text(resource: Mapping[str, Any], key: str) -> str:
    period = resource.get(key)
    if not isinstance(period, Mapping):
        return ""
    start, end = _fhir_date(period.get("start")), _fhir_date(period.get("end"))
    return f"{start} to {end}" if end else (f"from {start}" if start else "")


def _name(resource: Mapping[str, Any]) -> str:
    names = resource.get("name") or []
    if isinstance(names, list) and names and isinstance(names[0], Mapping):
        first = names[0]
        given = " ".join(str(g) for g in first.get("given") or ())
        return f"{given} {first.get('family', '')}".strip()
    return ""


def _identifiers(resource: Mapping[str, Any]) -> str:
    return ", ".join(
        str(i.get("value"))
        for i in resource.get("identifier") or ()
        if isinstance(i, Mapping) and i.get("value")
    )


def _addresses(resource: Mapping[str, Any]) -> str:
    out = []
    for address in resource.get("address") or ():
        if isinstance(address, Mapping):
            parts = [*(address.get("line") or ()), address.get("city"), address.get("postalCode")]
            text = ", ".join(str(p) for p in parts if p)
            if address.get("use"):
                text += f" ({address['use']})"
            out.append(text)
    return "; ".join(out)


def _effective(resource: Mapping[str, Any]) -> str:
    return _fhir_date(resource.get("effectiveDateTime")) or _period_text(
        resource, "effectivePeriod"
    )


_COLUMNS: dict[str, tuple[tuple[str, Any], ...]] = {
    "Patient": (
        ("Name", _name),
        ("Born", lambda r: _fhir_date(r.get("birthDate"))),
        ("Gender", lambda r: str(r.get("gender", ""))),
        ("Identifiers", _identifiers),
        ("Addresses", _addresses),
    ),
    "Condition": (
        ("Condition", lambda r: _concept_text(r.get("code"))),
        ("Clinical status", lambda r: _concept_text(r.get("clinicalStatus"))),
        ("Onset", lambda r: _fhir_date(r.get("onsetDateTime")) or _period_text(r, "onsetPeriod")),
        ("Recorded", lambda r: _fhir_date(r.get("recordedDate"))),
    ),
    "MedicationStatement": (
        ("Medication", lambda r: _concept_text(r.get("medicationCodeableConcept"))),
        ("Status", lambda r: str(r.get("status", ""))),
        ("Taken", _effective),
    ),
    "MedicationRequest": (
        ("Medication", lambda r: _concept_text(r.get("medicationCodeableConcept"))),
        ("Status", lambda r: str(r.get("status", ""))),
        ("Intent", lambda r: str(r.get("intent", ""))),
        ("Prescribed", lambda r: _fhir_date(r.get("authoredOn"))),
    ),
    "Encounter": (
        (
            "Class",
            lambda r: (
                str(r.get("class", {}).get("code", ""))
                if isinstance(r.get("class"), Mapping)
                else ""
            ),
        ),
        ("Service", lambda r: _concept_text(r.get("serviceType"))),
        ("Status", lambda r: str(r.get("status", ""))),
        ("When", lambda r: _period_text(r, "period")),
    ),
    "Appointment": (
        ("Status", lambda r: str(r.get("status", ""))),
        ("Start", lambda r: _fhir_date(r.get("start"))),
        ("Specialty", lambda r: _concept_text(r.get("specialty"))),
    ),
    "Flag": (
        ("Flag", lambda r: _concept_text(r.get("code"))),
        ("Category", lambda r: _concept_text(r.get("category"))),
        ("Status", lambda r: str(r.get("status", ""))),
        ("Period", lambda r: _period_text(r, "period")),
    ),
    "Organization": (
        ("Name", lambda r: str(r.get("name", ""))),
        ("Identifiers", _identifiers),
    ),
}
_OTHER_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("Status", lambda r: str(r.get("status", ""))),
    ("Code", lambda r: _concept_text(r.get("code"))),
)


def fhir_tables(bundle: Mapping[str, Any], registry: Registry) -> list[ResourceTable]:
    """The released resources, one table per resource type, with their key elements and
    the categories each was released under (its ``meta.tag``)."""
    tables: dict[str, ResourceTable] = {}
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            continue
        kind = str(resource.get("resourceType", "Unknown"))
        columns = _COLUMNS.get(kind, _OTHER_COLUMNS)
        table = tables.get(kind)
        if table is None:
            table = ResourceTable(kind, (*(c for c, _ in columns), "Released under"))
            tables[kind] = table
        cells = [str(extract(resource)) or "—" for _, extract in columns]
        tags = category_tags(resource)
        cells.append(", ".join(category_label(t, registry) for t in tags) or "—")
        table.rows.append(tuple(cells))
    return list(tables.values())


# -- opening a payload -------------------------------------------------------------------


def parse_payload(
    fields: EnvelopeFields, raw: bytes, today: date
) -> tuple[BaseModel | None, str | None]:
    """The payload as its kind's model, or (None, why) when it does not fit the model.

    A free-form payload (a note, a withdrawal) has no model: (None, None).
    """
    model = payload_model_for(fields)
    if model is None:
        return None, None
    try:
        return model.model_validate_json(raw, context={TODAY_CONTEXT_KEY: today}), None
    except ValidationError as exc:
        return None, (
            f"The content does not match the {model.__name__} form "
            f"({exc.error_count()} problem(s)); it is shown as it arrived."
        )


def vaf_label(factor: str) -> str:
    known = VAF_FACTORS.get(factor)
    return f"{factor}: {known[1]}" if known else factor


def decision_payload_sections(payload: DecisionPayload) -> list[Section]:
    return model_sections(
        payload,
        "Decision",
        skip=("outcome", "rationale", "subject_informed", "consultations", "missing_items"),
        own_sections=("decided_by", "np07"),
    )


# -- states ------------------------------------------------------------------------------

# What a list shows for a stored state, and the filter's choices (value, label).
STATE_LABELS = {
    "sent": "Sent",
    "pending": "Waiting for delivery",
    "delivered": "Delivered",
    "acknowledged": "Acknowledged",
    "rejected": "Rejected",
    "decided": "Decided",
    "overdue": "Overdue",
}
# The stored states each filter choice keeps ("decided" and "overdue" are the hub's
# request states, looked up once per page).
STORED_STATES_FOR = {
    "sent": ("sent", "pending"),
    "delivered": ("delivered",),
    "acknowledged": ("acknowledged",),
    "rejected": ("rejected",),
}
REQUEST_STATES = ("decided", "overdue")


def delivery_state(recipients: Sequence[Any]) -> tuple[str, tuple[str, ...]]:
    """One state for a sent message from the hub's per-recipient status: rejected if any
    recipient rejected it, acknowledged once all have, delivered once all have it."""
    states = [r.state for r in recipients]
    rules = tuple(sorted({rule for r in recipients for rule in r.rejection_rules}))
    if not states:
        return "sent", ()
    if "rejected" in states:
        return "rejected", rules
    if all(state == "acknowledged" for state in states):
        return "acknowledged", ()
    if all(state in ("delivered", "acknowledged") for state in states):
        return "delivered", ()
    return "pending", ()

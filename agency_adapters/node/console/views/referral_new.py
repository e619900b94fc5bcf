"""A new Prevent referral: the National Prevent Referral Form, section by section.

The form is the one in seed 004 Appendix 3 (its second page is reproduced in Appendix 6;
REFERENCE.md 4.6), in its order and under its headings, the same sections the message
page reads a received referral back in (:data:`presenting.REFERRAL_FORM_SECTIONS`). Its
field names are draft paths (:mod:`agency_adapters.node.console.forms`) into the
envelope and :class:`NationalPreventReferralForm`, so a post builds what ``hub node
submit`` reads, through the same models, and the node's pre-flight judges it before
anything is sent (the machinery of :mod:`agency_adapters.node.console.views.cases`).

- Who may refer comes from the registry (``roles.yaml`` ROLE-01: a health Prevent
  referral only by the safeguarding lead, REFER-HEALTH-PREVENT): the page offers the
  acting roles the grant allows this agency, and refuses a user who holds none.
- The recipients: "By sending this form you consent for it to arrive with both your
  dedicated Local Authority safeguarding team & Prevent policing team for a joint
  assessment" (seed 004 Appendix 3). The hub directory has no areas, so the route from
  the subject's area to those nodes is local policy, ``[referral_routes]`` in the node
  folder's ``console.toml``; without a route every local authority and police node in
  the directory is offered, ticked. The ticks stay editable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from aiohttp import web

from agency_adapters.node.console import channel
from agency_adapters.node.console.forms import FormErrors, unflatten
from agency_adapters.node.console.keys import SERVICES, SETTINGS
from agency_adapters.node.console.presenting import (
    _SAFEGUARDING_QUESTIONS,
    REFERRAL_FORM_SECTIONS,
    code_words,
)
from agency_adapters.node.console.rendering import NAVIGATION, render
from agency_adapters.node.console.security import RoleRequired, current_session, requires
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
    sent_message_page,
)
from agency_adapters.node.console.views.request_new import URGENCIES
from agency_adapters.node.users import ROLE_LABELS, User
from hub.model.messages import DirectoryEntry
from hub.model.payloads import (
    ComplexNeedIndicator,
    DescribeConcerns,
    EmploymentStatus,
    NationalPreventReferralForm,
)
from hub.policy.roles import allowed_roles

__all__ = ["REFERRAL_ROLES", "referral_new_form", "referral_new_submit", "referral_sent"]

log = logging.getLogger("seh.console")

KIND = "referral"
PURPOSE = "PREVENT_REFERRAL"
# The roles any grant lets refer (roles.yaml), as the navigation offers the page; the
# grant for this agency and purpose narrows them on the page itself.
REFERRAL_ROLES: tuple[str, ...] = tuple(
    sorted(next(item.roles for item in NAVIGATION if item.href == "/referrals/new"))
)
AREA = "_area"
CHOOSE_AREA = "choose-area"
# Where the form goes (seed 004 Appendix 3): the LA safeguarding team and the police
# Prevent team together. The fallback when console.toml has no route.
ASSESSING_AGENCY_TYPES = ("local_authority", "police")
YES_NO = (("true", "Yes"), ("false", "No"))


@dataclass(frozen=True, slots=True)
class Question:
    """One answer on the form: its draft path, label, widget and choices."""

    name: str
    label: str
    widget: str = "input"  # input, textarea, radios, checkboxes, checkbox, select, group
    hint: str | None = None
    options: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True, slots=True)
class FormSection:
    key: str
    heading: str
    hint: str | None
    questions: tuple[Question, ...]

    @property
    def name(self) -> str:
        return f"payload.{self.key}"


def _p(*parts: str) -> str:
    return "payload." + ".".join(parts)


DATE_HINT = "Year, month and day, for example 1990-01-31."


def _contact(key: str, *, anonymous: bool = False) -> tuple[Question, ...]:
    questions: tuple[Question, ...] = (
        Question(_p(key, "forenames"), "Forename(s)"),
        Question(_p(key, "surname"), "Surname"),
        Question(_p(key, "professional_role"), "Professional role"),
        Question(_p(key, "organisation"), "Organisation"),
        Question(_p(key, "relationship_to_individual"), "Relationship to the individual"),
        Question(_p(key, "telephone"), "Contact telephone number"),
        Question(_p(key, "email"), "Email address", hint="A telephone number or an email."),
    )
    if anonymous:
        questions += (
            Question(
                _p(key, "wishes_to_remain_anonymous"),
                "Do they wish to remain anonymous?",
                "radios",
                options=YES_NO,
            ),
        )
    return questions


def _answer(key: str, *, diagnosed: bool = False) -> tuple[Question, ...]:
    base = ("safeguarding_considerations", key)
    questions: tuple[Question, ...] = (
        Question(_p(*base, "answer"), _SAFEGUARDING_QUESTIONS[key], "radios", options=YES_NO),
        Question(_p(*base, "detail"), "If yes, give details", "textarea"),
    )
    if diagnosed:
        questions += (
            Question(_p(*base, "diagnosed"), "If yes, is it diagnosed?", "radios", options=YES_NO),
        )
    return questions


def _concern(name: str) -> Question:
    description = DescribeConcerns.model_fields[name].description or code_words(name)
    return Question(_p("concerns", name), description, "textarea")


_QUESTIONS: dict[str, tuple[Question, ...]] = {
    "individual": (
        Question(_p("individual", "forenames"), "Forename(s)"),
        Question(_p("individual", "surname"), "Surname"),
        Question(_p("individual", "date_of_birth"), "Date of birth", hint=DATE_HINT),
        Question(_p("individual", "approx_age"), "Approx. age (if date of birth unknown)"),
        Question(_p("individual", "gender"), "Gender", hint="As the individual describes it."),
        Question(_p("individual", "addresses", "0"), "Known address", "group"),
        Question(
            _p("individual", "addresses", "0", "lines"),
            "Address",
            "textarea",
            hint="One line of the address on each line of the box.",
        ),
        Question(_p("individual", "addresses", "0", "town"), "Town"),
        Question(_p("individual", "addresses", "0", "postcode"), "Postcode"),
        Question(
            _p("individual", "addresses", "0", "current_residence"),
            "This is the individual's current residence",
            "checkbox",
        ),
        Question(_p("individual", "nationality_citizenship"), "Nationality / citizenship"),
        Question(
            _p("individual", "citizenship_documentation"),
            "Stated nationality / citizenship documentation (if any)",
        ),
        Question(
            _p("individual", "immigration_asylum_status"),
            "Immigration / asylum status",
            "textarea",
            hint="Immigration status? Refugee status? Asylum claimant? Please describe.",
        ),
        Question(_p("individual", "primary_language"), "Primary language", "group"),
        Question(_p("individual", "primary_language", "first_language"), "First language"),
        Question(
            _p("individual", "primary_language", "speaks_understands_english"),
            "Does the individual speak and understand English?",
            "radios",
            options=YES_NO,
        ),
        Question(
            _p("individual", "primary_language", "interpreter_needed"),
            "Is an interpreter needed?",
            "radios",
            options=YES_NO,
        ),
        Question(_p("individual", "contact_numbers"), "Contact number"),
        Question(_p("individual", "email_addresses"), "Email address"),
        Question(
            _p("individual", "other_family_details"),
            "Any other family details",
            "textarea",
            hint="Family makeup? Who lives with the individual? Anything relevant.",
        ),
        Question(_p("individual", "nhs_number"), "NHS number (if known)"),
    ),
    "concerns": (
        Question(
            _p("concerns", "description"),
            "In as much detail as possible, please describe the specific concern(s) "
            "relevant to Prevent",
            "textarea",
        ),
        *(_concern(name) for name in DescribeConcerns.model_fields if name not in ("description",)),
    ),
    "complex_needs": (
        Question(
            _p("complex_needs", "description"),
            "Is there anything in the individual's life that you think might be affecting "
            "their wellbeing or that might be making them vulnerable in any sense?",
            "textarea",
        ),
        Question(
            _p("complex_needs", "indicators"),
            "Which of these apply?",
            "checkboxes",
            options=tuple((code, code_words(code)) for code in get_args(ComplexNeedIndicator)),
        ),
    ),
    "further_information": (
        Question(_p("further_information", "social_media_details"), "Social media details"),
        Question(
            _p("further_information", "military_service_number"),
            "Military service number (if any)",
        ),
        Question(
            _p("further_information", "other_agencies_or_professionals"),
            "Other agencies or professionals involved",
            "textarea",
        ),
        Question(_p("further_information", "other"), "Anything else", "textarea"),
    ),
    "person_who_first_identified_concern": _contact(
        "person_who_first_identified_concern", anonymous=True
    ),
    "person_making_referral": _contact("person_making_referral"),
    "organisational_prevent_contact": _contact("organisational_prevent_contact"),
    "relevant_dates": (
        Question(
            _p("relevant_dates", "concern_first_came_to_light"),
            "Date the concern first came to light",
            hint=DATE_HINT,
        ),
        Question(
            _p("relevant_dates", "referral_made_to_prevent"),
            "Date the referral was made to Prevent",
            hint=DATE_HINT,
        ),
    ),
    "safeguarding_considerations": (
        *_answer("disabilities_or_mental_health", diagnosed=True),
        *_answer("discussed_with_safeguarding_lead"),
        Question(
            _p("safeguarding_considerations", "informed_individual", "informed"),
            _SAFEGUARDING_QUESTIONS["informed_individual"],
            "radios",
            options=YES_NO,
        ),
        Question(
            _p("safeguarding_considerations", "informed_individual", "response"),
            "If yes, what was their response?",
            "textarea",
        ),
        Question(
            _p("safeguarding_considerations", "informed_individual", "reason_not_informed"),
            "If no, why not?",
            "textarea",
        ),
        *_answer("direct_action_taken"),
        *_answer("discussed_with_other_agencies"),
        Question(
            _p("safeguarding_considerations", "risks_to_staff"),
            _SAFEGUARDING_QUESTIONS["risks_to_staff"],
            "textarea",
        ),
    ),
    "employment_education": (
        Question(
            _p("employment_education", "employment_status"),
            "Employment status",
            "select",
            options=tuple((code, code_words(code)) for code in get_args(EmploymentStatus)),
        ),
        *(
            Question(_p("employment_education", f"{when}_occupations", "0", part), label)
            for when in ("current", "previous")
            for part, label in (
                ("occupation", f"{when.capitalize()} occupation"),
                ("employer", f"{when.capitalize()} employer"),
            )
        ),
        Question(_p("employment_education", "current_education"), "Current education"),
        Question(_p("employment_education", "previous_education"), "Previous education"),
    ),
    "consent_not_sought_statement": (
        Question(
            _p("consent_not_sought_statement"),
            "If consent was not sought: the basis for sharing without it",
            "textarea",
            hint="In your words; the gateways you rely on are chosen under Lawful basis.",
        ),
    ),
}
_HINTS = {
    "person_making_referral": "Leave blank if you are the person above.",
    "organisational_prevent_contact": "Leave blank if not different from above.",
}
# Every section of the form, in its order and under its heading (seed 004 Appendix 3).
SECTIONS: tuple[FormSection, ...] = tuple(
    FormSection(key, heading, _HINTS.get(key), _QUESTIONS[key])
    for key, heading, _ in REFERRAL_FORM_SECTIONS
)
# Sections the form cannot go without: an empty one is posted as empty, so the missing
# answers are named at their fields rather than at the section.
_REQUIRED_SECTIONS = tuple(
    name for name, info in NationalPreventReferralForm.model_fields.items() if info.is_required()
)
FIELD_NAMES: tuple[str, ...] = (
    *ENVELOPE_FIELDS,
    "recipients",
    "urgency",
    "legal_basis.agreement",
    *(s.name for s in SECTIONS),
    *(q.name for s in SECTIONS for q in s.questions),
    _p("safeguarding_considerations", "informed_individual"),
    *(_p("safeguarding_considerations", key) for key in _SAFEGUARDING_QUESTIONS),
    _p("individual", "addresses"),
    _p("employment_education", "current_occupations", "0"),
    _p("employment_education", "previous_occupations", "0"),
)
ALIASES = {"sender": "", "kind": "", "in_reply_to": ""}


# --- who may refer, and to whom ------------------------------------------------------


def acting_roles(services: NodeServices, user: User) -> list[str]:
    """The roles of ``user`` the registry lets refer for Prevent at this agency (ROLE-01)."""
    found = allowed_roles(services.registry, "refer", services.profile.agency_type, PURPOSE)
    permitted = found[0] if found is not None else frozenset(REFERRAL_ROLES)
    return [role for role in REFERRAL_ROLES if role in permitted and role in user.roles]


def _guard(services: NodeServices, user: User) -> list[str]:
    held = acting_roles(services, user)
    if not held:
        found = allowed_roles(services.registry, "refer", services.profile.agency_type, PURPOSE)
        raise RoleRequired(tuple(sorted(found[0])) if found is not None else REFERRAL_ROLES)
    return held


def routes_of(request: web.Request) -> Mapping[str, tuple[str, ...]]:
    return request.app[SETTINGS].referral_routes or {}


def fallback_recipients(
    services: NodeServices, directory: Mapping[str, DirectoryEntry]
) -> list[str]:
    """Every local authority and police node in the directory (no route configured)."""
    return [
        node
        for node, entry in sorted(directory.items())
        if entry.agency_type in ASSESSING_AGENCY_TYPES and node != services.node_id
    ]


def _route_for(
    routes: Mapping[str, tuple[str, ...]], area: str, fallback: Sequence[str]
) -> list[str]:
    if not routes:
        return list(fallback)
    return list(routes.get(area, ()))


# --- the page ------------------------------------------------------------------------


async def _page(
    request: web.Request, values: FormValues, errors: FormErrors | None, status: int = 200
) -> web.Response:
    services = request.app[SERVICES]
    user = current_session(request).user
    directory = await _directory(services)
    routes = routes_of(request)
    context = _form_context(services, user, KIND, values, errors, directory)
    others = [n for n in sorted(directory) if n != services.node_id]
    unknown = sorted({n for nodes in routes.values() for n in nodes} - set(directory))
    context.update(
        {
            "acting_choices": [
                (role, ROLE_LABELS.get(role, role)) for role in acting_roles(services, user)
            ],
            "sections": SECTIONS,
            "areas": [(area, area) for area in routes],
            "routes": routes,
            "unknown_route_nodes": unknown,
            "recipient_options": _node_options(others, directory),
            "urgencies": URGENCIES,
            "agreements": [(a.id, f"{a.title} ({a.id})") for a in services.registry.agreements],
        }
    )
    return render(
        request,
        "referral_new.html",
        context,
        title="New Prevent referral",
        marking="OFFICIAL-SENSITIVE" if values.get("marking.sensitive") == "true" else "OFFICIAL",
        status=status,
    )


async def _start_values(
    services: NodeServices, user: User, held: Sequence[str], recipients: Sequence[str]
) -> FormValues:
    values = FormValues()
    values.set("purpose", PURPOSE)
    # "It should be protectively [marked] at OFFICIAL SENSITIVE when complete" (seed 004
    # Appendix 3).
    values.set("marking.sensitive", "true")
    values.set("marking.descriptors", "PERSONAL_DATA")
    values.set("urgency", "routine")
    # The consent position starts unstated: the referrer must say it (CS-01, CS-06).
    values.set("consent.state", "UNKNOWN")
    values.set("consent.subject_age", "UNKNOWN")
    values.set("_acting_as", held[0])
    values.set("recipients", *recipients)
    values.set(_p("relevant_dates", "referral_made_to_prevent"), services.now().date().isoformat())
    # The person making the referral is the signed-in user, unless they say otherwise.
    forenames, _, surname = user.display_name.rpartition(" ")
    making = "person_making_referral"
    values.set(_p(making, "forenames"), forenames or user.display_name)
    values.set(_p(making, "surname"), surname)
    values.set(_p(making, "professional_role"), ROLE_LABELS.get(held[0], held[0]))
    values.set(_p(making, "organisation"), await _organisation(services))
    return values


def build_referral(draft: Draft) -> list[str]:
    """The post as the envelope and the form's payload; returns the recipients chosen."""
    payload = draft.payload
    for key in _REQUIRED_SECTIONS:
        payload.setdefault(key, {})
    safeguarding = payload.get("safeguarding_considerations")
    if isinstance(safeguarding, dict):
        safeguarding.setdefault("informed_individual", {})
    individual = payload.get("individual")
    if isinstance(individual, dict):
        age = individual.get("approx_age")
        if isinstance(age, str) and age.isdigit():
            individual["approx_age"] = int(age)
        addresses = individual.get("addresses")
        for address in addresses if isinstance(addresses, list) else []:
            lines = address.get("lines") if isinstance(address, dict) else None
            if isinstance(lines, list):
                address["lines"] = [
                    line.strip()
                    for text in lines
                    for line in str(text).splitlines()
                    if line.strip()
                ]
    recipients = draft.envelope.pop("recipients", None)
    chosen = [str(node) for node in recipients] if isinstance(recipients, list) else []
    if not chosen:
        draft.errors.add(
            "recipients",
            "Choose who the referral goes to: the local authority and the police Prevent team",
        )
    return chosen


@requires(*REFERRAL_ROLES)
async def referral_new_form(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    held = _guard(services, user)
    routes = routes_of(request)
    area = request.query.get("area", "")
    directory = await _directory(services)
    recipients = _route_for(routes, area, fallback_recipients(services, directory))
    values = await _start_values(services, user, held, recipients)
    if area in routes:
        values.set(AREA, area)
    return await _page(request, values, None)


@requires(*REFERRAL_ROLES)
async def referral_new_submit(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = current_session(request).user
    _guard(services, user)
    pairs = await _posted(request)
    values = FormValues(pairs)
    if values.get("action") == CHOOSE_AREA:
        # Show the form again with the area's route ticked; nothing is sent.
        routes = routes_of(request)
        area = values.get(AREA)
        if area in routes:
            values.set("recipients", *routes[area])
        return await _page(request, values, None)
    posted = channel.split_post(unflatten([(n, v) for n, v in pairs if n != "action"]))
    draft = Draft(posted.envelope, posted.payload)
    chosen = build_referral(draft)
    author, _ = channel.author_for(
        acting_roles(services, user), values.get("_acting_as") or None, user
    )
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
        NationalPreventReferralForm,
        case_view=None,
        aliases=ALIASES,
        field_names=FIELD_NAMES,
        author_missing=author is None,
        rows={},
    )
    if message_id is None:
        return await _page(request, values, errors, status=400)
    raise web.HTTPSeeOther(location=f"/referrals/sent/{message_id}")


@requires(*REFERRAL_ROLES)
async def referral_sent(request: web.Request) -> web.StreamResponse:
    return await sent_message_page(request, KIND, "referral_sent.html", "Prevent referral sent")

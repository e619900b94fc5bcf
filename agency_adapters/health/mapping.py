"""Which FHIR resources each data category releases: the contract IG staff review.

A health release carries only resources that belong to an approved data category
(``schemas/registry/data_categories.yaml``) and, for a category that is a history of
events, only those whose date falls inside the approved period. This module is the one
place that decides which category a resource belongs to and which date counts; the
release builder (sending node) and the release check (receiving node) both use it, so
they cannot disagree.

Category -> resources released -> when selected, and the date the period filter uses:

identity
    Patient: identifier, active, name, gender, birthDate only. Undated. No other
    resource is ever released for identity.
gp_registration
    Patient.generalPractitioner, and the Organization, Practitioner or PractitionerRole
    it references. Undated.
physical_health_diagnoses
    Condition coded in ICD-10 or SNOMED CT that is neither a mental health nor a
    substance misuse code. Date: onsetDateTime, else onsetPeriod.start, else recordedDate.
mental_health_diagnoses
    Condition with an ICD-10 chapter V code (F00-F99) other than F10-F19, or a SNOMED CT
    code in ``MENTAL_HEALTH_DISORDERS``. Date as for physical diagnoses.
substance_misuse
    Condition with ICD-10 F10-F19, or a SNOMED CT code in ``SUBSTANCE_MISUSE_DISORDERS``.
    Date as for physical diagnoses.
mental_health_services
    Encounter whose serviceType or type, or Appointment whose serviceType or specialty,
    is a mental health specialty (``MENTAL_HEALTH_SERVICES``). Date:
    Encounter.period.start, Appointment.start.
ae_attendance
    Encounter of class EMER (v3 ActCode), not at a mental health service. Date:
    period.start.
appointments_non_attendance
    Appointment with status booked, arrived, checked-in, fulfilled, cancelled or noshow,
    and Encounter of class AMB, VR or HH; neither at a mental health service. Date:
    Appointment.start, Encounter.period.start.
medication
    MedicationStatement and MedicationRequest, and the Medication they reference. Date:
    effectiveDateTime, else effectivePeriod.start, else dateAsserted; for a
    MedicationRequest, authoredOn.
safeguarding_flags
    Flag. Date: period.start.

Rules that hold for every category:

* A resource belongs to at most one event category. Where codes point two ways the more
  specific, more sensitive reading wins: substance misuse, then mental health, then
  physical health; a mental health service, then A&E, then ordinary attendance.
* A Condition with no ICD-10 or SNOMED CT coding cannot be classified and is never
  released; nor is anything marked entered-in-error, a refuted Condition, a resource
  with a modifier extension or implicit rules, or one that is not about the patient.
* Dates are calendar dates as recorded (a dateTime counts on the date written in it,
  whatever its offset). A partial date counts only if its whole span lies inside the
  period: "2024-03" is inside 1 March to 31 March 2024, not inside 10 March to 31 March.
  Period bounds are inclusive; an open bound is unbounded. A resource of a dated
  category with no date is never released.
* Long-running medication counts from its start: a prescription begun before the
  approved period is not released unless the period reaches back to its start.

What every released resource looks like:

* Free text and anything that could carry information outside the category is removed
  (``DROPPED_ELEMENTS``: narrative, contained resources, extensions, notes, comments,
  patient instructions), and the source system's ``meta`` is replaced.
* Every reference to the patient becomes ``Patient/subject`` with no display, so the
  record id, and a name in a reference's display, never leave with another category.
* ``meta.security`` carries the marking (system ``urn:seh:marking``, code and display the
  rendered marking string) and the v3 confidentiality code R; ``meta.tag`` names the
  category it was released under (system ``urn:seh:category``). The Patient can carry two
  tags (identity and gp_registration).
* The Bundle is a ``collection`` whose ``identifier`` (system ``urn:seh:subject-ref``) is
  the envelope's subject reference, so the receiver can match it to the envelope.

Categories health holds that are not in this table (contact_address_history, household,
ethnicity, religion_belief, prevent_channel_history) are not released from the FHIR
record; the builder refuses a scope that names them rather than send nothing silently.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, Final, Literal

from hub.model import Marking, ScopeItem

__all__ = [
    "CATEGORY_RESOURCES",
    "CATEGORY_SYSTEM",
    "CONFIDENTIALITY_SYSTEM",
    "DATE_ELEMENTS",
    "DROPPED_ELEMENTS",
    "EVENT_CATEGORIES",
    "ICD10_SYSTEMS",
    "LINKED_RESOURCES",
    "MARKING_SYSTEM",
    "MENTAL_HEALTH_DISORDERS",
    "MENTAL_HEALTH_SERVICES",
    "PATIENT_ELEMENTS",
    "RELEASED_CONFIDENTIALITY",
    "RELEASE_PATIENT_ID",
    "RELEASE_PATIENT_REFERENCE",
    "SNOMED_SYSTEM",
    "SUBJECT_ELEMENTS",
    "SUBJECT_REF_SYSTEM",
    "SUBSTANCE_MISUSE_DISORDERS",
    "EventDate",
    "LinkedResource",
    "ResourceRule",
    "category_tags",
    "classify",
    "event_date",
    "excluded_by_status",
    "in_approved_period",
    "marking_labels",
    "references_at",
    "values_at",
]

# --- Code systems and label systems -------------------------------------------------

# Project code systems (REFERENCE.md 6.2: there is no standard FHIR code system for
# GSCP markings, so the marking string travels as the code of a project system).
MARKING_SYSTEM: Final = "urn:seh:marking"
CATEGORY_SYSTEM: Final = "urn:seh:category"
SUBJECT_REF_SYSTEM: Final = "urn:seh:subject-ref"
# HL7 v3 Confidentiality (OID 2.16.840.1.113883.5.25). Every health category is special
# category data, so a release is R (restricted: "privileged health information") whatever
# the -SENSITIVE caveat; REFERENCE.md 6.2's OFFICIAL -> N default is for non-health data.
CONFIDENTIALITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RELEASED_CONFIDENTIALITY: Final = "R"

SNOMED_SYSTEM: Final = "http://snomed.info/sct"
# ICD-10 (WHO) as FHIR names it, plus the -CM variant some systems send.
ICD10_SYSTEMS: Final = frozenset(
    {"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm"}
)
_ENCOUNTER_CLASS_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# The patient's own record id never leaves the node (it is an identifier, and only the
# identity category releases identifiers): every reference to the patient is rewritten
# to this one.
RELEASE_PATIENT_ID: Final = "subject"
RELEASE_PATIENT_REFERENCE: Final = f"Patient/{RELEASE_PATIENT_ID}"

# --- Value sets (curated; changes go through IG review) -------------------------------

# SNOMED CT disorders read as mental health diagnoses. ICD-10 F-chapter codes need no
# list. A SNOMED CT code not listed here or below is read as a physical condition, so a
# mental health code missing from this list would be released as physical: extend it.
MENTAL_HEALTH_DISORDERS: Final = frozenset(
    {
        "74732009",  # Mental disorder
        "35489007",  # Depressive disorder
        "370143000",  # Major depressive disorder
        "197480006",  # Anxiety disorder
        "21897009",  # Generalized anxiety disorder
        "191736004",  # Obsessive-compulsive disorder
        "47505003",  # Posttraumatic stress disorder
        "69322001",  # Psychotic disorder
        "58214004",  # Schizophrenia
        "13746004",  # Bipolar disorder
        "20010003",  # Borderline personality disorder
        "72366004",  # Eating disorder
        "56882008",  # Anorexia nervosa
        "406506008",  # Attention deficit hyperactivity disorder
        "35919005",  # Pervasive developmental disorder
        "408856003",  # Autistic disorder
    }
)
# SNOMED CT disorders read as substance misuse (ICD-10 F10-F19 likewise).
SUBSTANCE_MISUSE_DISORDERS: Final = frozenset(
    {
        "66214007",  # Substance abuse
        "26416006",  # Drug abuse
        "191816009",  # Drug dependence
        "75544000",  # Opioid dependence
        "7200002",  # Alcoholism
        "66590003",  # Alcohol dependence
        "15167005",  # Alcohol abuse
    }
)
# SNOMED CT specialties (the HL7 practice setting codes) read as mental health services.
MENTAL_HEALTH_SERVICES: Final = frozenset(
    {
        "394587001",  # Psychiatry
        "394588006",  # Child and adolescent psychiatry
        "394913002",  # Psychotherapy
    }
)
_ICD10_SUBSTANCE = re.compile(r"F1[0-9]")
_ATTENDANCE_CLASSES: Final = frozenset({"AMB", "VR", "HH"})
_APPOINTMENT_STATUSES: Final = frozenset(
    {"booked", "arrived", "checked-in", "fulfilled", "cancelled", "noshow"}
)

# --- Where the date and the patient are, per resource type ----------------------------

# Dotted element paths, first present wins.
DATE_ELEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Condition": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
        "Encounter": ("period.start",),
        "Appointment": ("start",),
        "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
        "MedicationRequest": ("authoredOn",),
        "Flag": ("period.start",),
    }
)
# The references that say whom an event resource is about.
SUBJECT_ELEMENTS: Mapping[str, str] = MappingProxyType(
    {
        "Condition": "subject",
        "Encounter": "subject",
        "Appointment": "participant.actor",
        "MedicationStatement": "subject",
        "MedicationRequest": "subject",
        "Flag": "subject",
    }
)
# Removed from every released resource: free text and containers that can carry
# information outside the approved category (Caldicott principle 3, minimum necessary).
DROPPED_ELEMENTS: Final = (
    "text",
    "contained",
    "extension",
    "note",
    "comment",
    "patientInstruction",
)
# Patient elements each category releases (the resource type and id are always kept).
PATIENT_ELEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "identity": ("identifier", "active", "name", "gender", "birthDate"),
        "gp_registration": ("generalPractitioner",),
    }
)


@dataclass(frozen=True, slots=True)
class LinkedResource:
    """Resources released because a released resource of the category points at them."""

    category: str
    resource_types: frozenset[str]
    # (resource type, element path) of the references that pull them in.
    referenced_from: tuple[tuple[str, str], ...]


LINKED_RESOURCES: tuple[LinkedResource, ...] = (
    LinkedResource(
        category="gp_registration",
        resource_types=frozenset({"Organization", "Practitioner", "PractitionerRole"}),
        referenced_from=(("Patient", "generalPractitioner"),),
    ),
    LinkedResource(
        category="medication",
        resource_types=frozenset({"Medication"}),
        referenced_from=(
            ("MedicationStatement", "medicationReference"),
            ("MedicationRequest", "medicationReference"),
        ),
    ),
)

# --- Reading elements -----------------------------------------------------------------

FhirResource = Mapping[str, Any]


def values_at(node: Any, path: str) -> list[Any]:
    """Every value at a dotted element path, stepping through repeating elements."""
    current: list[Any] = [node]
    for step in path.split("."):
        found: list[Any] = []
        for item in current:
            value = item.get(step) if isinstance(item, Mapping) else None
            if isinstance(value, list):
                found.extend(value)
            elif value is not None:
                found.append(value)
        current = found
    return current


def references_at(resource: FhirResource, path: str) -> list[str]:
    """The literal reference strings of the Reference elements at ``path``."""
    return [
        ref["reference"]
        for ref in values_at(resource, path)
        if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str)
    ]


def _codings(resource: FhirResource, *paths: str) -> Iterator[tuple[str, str]]:
    """(system, code) of every Coding in the CodeableConcepts at ``paths``."""
    for path in paths:
        for concept in values_at(resource, path):
            for coding in values_at(concept, "coding"):
                system, code = coding.get("system"), coding.get("code")
                if isinstance(system, str) and isinstance(code, str):
                    yield system, code.strip().upper()


# --- Classification -------------------------------------------------------------------


def excluded_by_status(resource: FhirResource) -> bool:
    """Records that must never be released whatever their category.

    Entered-in-error records are wrong by definition, a refuted diagnosis was never
    true, and a modifier extension or implicit rules change the meaning of a resource in
    ways a receiver cannot see (FHIR R4 "Extensibility": modifierExtension).
    """
    if resource.get("modifierExtension") or resource.get("implicitRules"):
        return True
    if resource.get("status") == "entered-in-error":
        return True
    # Any system: a refuted or erroneous flag is heeded however it was coded.
    verification = {
        coding.get("code")
        for concept in values_at(resource, "verificationStatus")
        for coding in values_at(concept, "coding")
    }
    return bool(verification & {"entered-in-error", "refuted"})


def _condition_category(resource: FhirResource) -> str | None:
    codes = [
        (system, code)
        for system, code in _codings(resource, "code")
        if system in ICD10_SYSTEMS or system == SNOMED_SYSTEM
    ]
    if not codes:
        return None

    substance = any(
        (system in ICD10_SYSTEMS and _ICD10_SUBSTANCE.match(code) is not None)
        or (system == SNOMED_SYSTEM and code in SUBSTANCE_MISUSE_DISORDERS)
        for system, code in codes
    )
    if substance:
        return "substance_misuse"
    mental = any(
        (system in ICD10_SYSTEMS and code.startswith("F"))
        or (system == SNOMED_SYSTEM and code in MENTAL_HEALTH_DISORDERS)
        for system, code in codes
    )
    return "mental_health_diagnoses" if mental else "physical_health_diagnoses"


def _at_mental_health_service(resource: FhirResource, *paths: str) -> bool:
    return any(
        system == SNOMED_SYSTEM and code in MENTAL_HEALTH_SERVICES
        for system, code in _codings(resource, *paths)
    )


def _encounter_category(resource: FhirResource) -> str | None:
    if _at_mental_health_service(resource, "serviceType", "type"):
        return "mental_health_services"
    encounter_class = resource.get("class")
    if not isinstance(encounter_class, Mapping):
        return None
    if encounter_class.get("system") != _ENCOUNTER_CLASS_SYSTEM:
        return None
    code = encounter_class.get("code")
    if code == "EMER":
        return "ae_attendance"
    if code in _ATTENDANCE_CLASSES:
        return "appointments_non_attendance"
    return None


def _appointment_category(resource: FhirResource) -> str | None:
    if resource.get("status") not in _APPOINTMENT_STATUSES:
        return None
    if _at_mental_health_service(resource, "serviceType", "specialty"):
        return "mental_health_services"
    return "appointments_non_attendance"


_CLASSIFIERS: Mapping[str, Callable[[FhirResource], str | None]] = MappingProxyType(
    {
        "Condition": _condition_category,
        "Encounter": _encounter_category,
        "Appointment": _appointment_category,
        "MedicationStatement": lambda _: "medication",
        "MedicationRequest": lambda _: "medication",
        "Flag": lambda _: "safeguarding_flags",
    }
)


def classify(resource: FhirResource) -> str | None:
    """The one event category a resource belongs to, or None if it belongs to none.

    Covers the dated resource types; the Patient and the resources it links to are
    handled through ``PATIENT_ELEMENTS`` and ``LINKED_RESOURCES``.
    """
    classifier = _CLASSIFIERS.get(str(resource.get("resourceType")))
    if classifier is None or excluded_by_status(resource):
        return None
    return classifier(resource)


# --- The mapping, for people and for the docs -----------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceRule:
    """One resource type a category releases, and how it is selected."""

    resource_type: str
    role: Literal["subject", "event", "linked"]
    selects: str


CATEGORY_RESOURCES: Mapping[str, tuple[ResourceRule, ...]] = MappingProxyType(
    {
        "identity": (
            ResourceRule("Patient", "subject", "identifier, active, name, gender, birthDate"),
        ),
        "gp_registration": (
            ResourceRule("Patient", "subject", "generalPractitioner"),
            ResourceRule("Organization", "linked", "referenced by Patient.generalPractitioner"),
            ResourceRule("Practitioner", "linked", "referenced by Patient.generalPractitioner"),
            ResourceRule("PractitionerRole", "linked", "referenced by Patient.generalPractitioner"),
        ),
        "physical_health_diagnoses": (
            ResourceRule("Condition", "event", "ICD-10 or SNOMED CT, not mental or substance"),
        ),
        "mental_health_diagnoses": (
            ResourceRule("Condition", "event", "ICD-10 F (not F10-F19) or listed SNOMED CT"),
        ),
        "substance_misuse": (
            ResourceRule("Condition", "event", "ICD-10 F10-F19 or listed SNOMED CT"),
        ),
        "mental_health_services": (
            ResourceRule("Encounter", "event", "serviceType/type is a mental health specialty"),
            ResourceRule("Appointment", "event", "serviceType/specialty is mental health"),
        ),
        "ae_attendance": (ResourceRule("Encounter", "event", "class EMER"),),
        "appointments_non_attendance": (
            ResourceRule("Appointment", "event", "booked to noshow statuses"),
            ResourceRule("Encounter", "event", "class AMB, VR or HH"),
        ),
        "medication": (
            ResourceRule("MedicationStatement", "event", "all"),
            ResourceRule("MedicationRequest", "event", "all"),
            ResourceRule("Medication", "linked", "referenced as medicationReference"),
        ),
        "safeguarding_flags": (ResourceRule("Flag", "event", "all"),),
    }
)
# Categories whose resources carry a date and are filtered by the approved period.
EVENT_CATEGORIES: Final = frozenset(
    category
    for category, rules in CATEGORY_RESOURCES.items()
    if any(rule.role == "event" for rule in rules)
)

# --- Dates ----------------------------------------------------------------------------

_FHIR_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T.*)?)?)?")


@dataclass(frozen=True, slots=True)
class EventDate:
    """The date a resource is filtered on, as the span of days it may mean."""

    element: str
    value: str
    first_day: date
    last_day: date

    def within(self, period_from: date | None, period_to: date | None) -> bool:
        """Inclusive on both ends; the whole span must be inside."""
        return (period_from is None or period_from <= self.first_day) and (
            period_to is None or self.last_day <= period_to
        )


def _date_span(value: str) -> tuple[date, date] | None:
    match = _FHIR_DATE.fullmatch(value)
    if match is None:
        return None
    year_text, month_text, day_text = match.groups()
    try:
        year = int(year_text)
        if month_text is None:
            return date(year, 1, 1), date(year, 12, 31)
        month = int(month_text)
        if day_text is None:
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        day = date(year, month, int(day_text))
    except ValueError:
        return None
    return day, day


def event_date(resource: FhirResource) -> EventDate | None:
    """The date the period filter uses (``DATE_ELEMENTS``), or None if undated."""
    resource_type = str(resource.get("resourceType"))
    for path in DATE_ELEMENTS.get(resource_type, ()):
        for value in values_at(resource, path):
            if isinstance(value, str):
                span = _date_span(value)
                if span is not None:
                    return EventDate(f"{resource_type}.{path}", value, *span)
    return None


def in_approved_period(when: EventDate, items: Sequence[ScopeItem]) -> bool:
    """True if any of the category's approved scope items covers the date."""
    return any(when.within(item.period_from, item.period_to) for item in items)


# --- Labels ---------------------------------------------------------------------------


def marking_labels(marking: Marking) -> list[dict[str, str]]:
    """The ``meta.security`` codings every released resource carries."""
    rendered = marking.render()
    return [
        {"system": MARKING_SYSTEM, "code": rendered, "display": rendered},
        {"system": CONFIDENTIALITY_SYSTEM, "code": RELEASED_CONFIDENTIALITY},
    ]


def category_tags(resource: FhirResource) -> list[str]:
    """The categories a released resource says it was released under (``meta.tag``)."""
    return [
        coding["code"]
        for coding in values_at(resource, "meta.tag")
        if isinstance(coding, Mapping)
        and coding.get("system") == CATEGORY_SYSTEM
        and isinstance(coding.get("code"), str)
    ]

"""Which FHIR resources and elements each data category releases: the contract IG reviews.

A health release is **closed by default**. A resource leaves the node only if it belongs
to an approved data category (``schemas/registry/data_categories.yaml``) by a positive
rule below, and, for a category that is a history of events, only if its date or period
meets the approved period. Of a released resource only the elements on its type's
allow-list (``ALLOWED_ELEMENTS``) leave; everything else is dropped. This module is the
one place that decides all of that; the release builder (sending node) and the release
check (receiving node) both use it, so they cannot disagree: the check recomputes the
released form of every resource it receives and rejects anything more.

Category -> resources -> when selected -> the date the period rule uses:

identity
    Patient: identifier, active, name, gender, birthDate. Undated.
gp_registration
    Patient.generalPractitioner, and the Organization, Practitioner or PractitionerRole
    it references (only references that resolve in the record). Undated.
contact_address_history
    Patient.address and Patient.telecom: each entry whose own ``period`` overlaps the
    approved period (the National Prevent Referral Form asks for known addresses,
    telephone numbers and email addresses). An entry with no period is withheld.
physical_health_diagnoses
    Condition whose every ICD-10 / SNOMED CT coding is *positively* physical: an ICD-10
    code in ``ICD10_PHYSICAL_RANGES`` (and not in ``ICD10_NOT_PHYSICAL``), or a SNOMED CT
    code in ``PHYSICAL_HEALTH_DISORDERS``.
mental_health_diagnoses
    Condition with an ICD-10 chapter V code (F00-F99) other than F10-F19, or a SNOMED CT
    code in ``MENTAL_HEALTH_DISORDERS``.
substance_misuse
    Condition with ICD-10 F10-F19, or a SNOMED CT code in ``SUBSTANCE_MISUSE_DISORDERS``.
    Date for the three diagnosis categories: onsetDateTime, else onsetPeriod.start,
    else recordedDate.
mental_health_services
    Encounter whose serviceType or type, or Appointment whose serviceType or specialty,
    is a mental health specialty (``MENTAL_HEALTH_SERVICES``). Date: Encounter
    period.start, Appointment start.
ae_attendance
    Encounter of class EMER (v3 ActCode), not at a mental health service.
appointments_non_attendance
    Appointment with status booked, arrived, checked-in, fulfilled, cancelled or noshow,
    and Encounter of class AMB, VR or HH; neither at a mental health service.
medication
    MedicationStatement and MedicationRequest, and the Medication they reference.
    Selected when the period the medication was current **overlaps** the approved
    period (``medication_span``), so a long-term prescription begun before the period
    and still current is released.
safeguarding_flags
    Flag. Date: period.start.

A Condition is withheld as *unclassified*, never released under another category, when
any of its ICD-10 or SNOMED CT codings is on none of the lists, or when it has no such
coding. Anything that could be mental health but is not positively classified is
therefore withheld; the builder reports it with its reason. ``Condition.category`` is not
used: neither FHIR R4 nor UK Core has a category that tells mental from physical health.

Dates: a date counts on the calendar day written in it, whatever its offset; period
bounds are inclusive and an open bound is unbounded. An imprecise date must certainly
meet the period: a point ("2024-03") must lie wholly inside it; a span must have its
latest possible start on or before the period's end and its earliest possible end on or
after the period's start. A dated category's resource with no usable date is withheld.
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
    "ALLOWED_ELEMENTS",
    "CATEGORY_RESOURCES",
    "CATEGORY_SYSTEM",
    "CONDITION_CATEGORIES",
    "CONFIDENTIALITY_SYSTEM",
    "DATE_ELEMENTS",
    "EVENT_CATEGORIES",
    "ICD10_NOT_PHYSICAL",
    "ICD10_PHYSICAL_RANGES",
    "ICD10_SYSTEMS",
    "INTERNAL_REFERENCES",
    "LINKED_RESOURCES",
    "MARKING_SYSTEM",
    "MENTAL_HEALTH_DISORDERS",
    "MENTAL_HEALTH_SERVICES",
    "PATIENT_ELEMENTS",
    "PHYSICAL_HEALTH_DISORDERS",
    "RELEASED_CONFIDENTIALITY",
    "RELEASE_PATIENT_ID",
    "RELEASE_PATIENT_REFERENCE",
    "SNOMED_SYSTEM",
    "SUBJECT_ELEMENTS",
    "SUBJECT_REF_SYSTEM",
    "SUBSTANCE_MISUSE_DISORDERS",
    "Classification",
    "EventDate",
    "LinkedResource",
    "ResourceRule",
    "Shape",
    "category_tags",
    "classification",
    "classify",
    "coding_category",
    "contact_entry_span",
    "event_date",
    "excluded_by_status",
    "extra_paths",
    "in_approved_period",
    "marking_labels",
    "medication_span",
    "prune",
    "references_at",
    "released_form",
    "released_patient",
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

# The three diagnosis categories, most sensitive first: where a Condition's codes point
# two ways, the first one named here wins.
CONDITION_CATEGORIES: Final = (
    "substance_misuse",
    "mental_health_diagnoses",
    "physical_health_diagnoses",
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
# SNOMED CT disorders read as mental health diagnoses. ICD-10 F-chapter codes need no
# list. A SNOMED CT code on none of the three lists is withheld as unclassified, so a
# missing code here costs a withheld record, never a mislabelled release.
MENTAL_HEALTH_DISORDERS: Final = frozenset(
    {
        "74732009",  # Mental disorder
        "35489007",  # Depressive disorder
        "370143000",  # Major depressive disorder
        "36923009",  # Major depression, single episode
        "66344007",  # Recurrent major depression
        "310495003",  # Mild depression
        "310496002",  # Moderate depression
        "310497006",  # Severe depression
        "197480006",  # Anxiety disorder
        "21897009",  # Generalized anxiety disorder
        "371631005",  # Panic disorder
        "231504006",  # Mixed anxiety and depressive disorder
        "17226007",  # Adjustment disorder
        "191736004",  # Obsessive-compulsive disorder
        "47505003",  # Posttraumatic stress disorder
        "69322001",  # Psychotic disorder
        "58214004",  # Schizophrenia
        "68890003",  # Schizoaffective disorder
        "13746004",  # Bipolar disorder
        "33449004",  # Personality disorder
        "20010003",  # Borderline personality disorder
        "72366004",  # Eating disorder
        "56882008",  # Anorexia nervosa
        "78004001",  # Bulimia nervosa
        "406506008",  # Attention deficit hyperactivity disorder
        "35919005",  # Pervasive developmental disorder
        "408856003",  # Autistic disorder
        "110359009",  # Intellectual disability (ICD-10 F70-F79)
        "52448006",  # Dementia (ICD-10 F00-F03)
        "26929004",  # Alzheimer's disease (dementia; withheld from physical)
        "248062006",  # Self-injurious behavior
        "6471006",  # Suicidal thoughts
        "82313006",  # Suicide attempt
    }
)
# SNOMED CT disorders read as physical diagnoses: a positive list, not "anything else".
PHYSICAL_HEALTH_DISORDERS: Final = frozenset(
    {
        "195967001",  # Asthma
        "13645005",  # Chronic obstructive lung disease
        "73211009",  # Diabetes mellitus
        "46635009",  # Diabetes mellitus type 1
        "44054006",  # Diabetes mellitus type 2
        "38341003",  # Hypertensive disorder
        "22298006",  # Myocardial infarction
        "42343007",  # Congestive heart failure
        "49436004",  # Atrial fibrillation
        "53741008",  # Coronary arteriosclerosis
        "230690007",  # Cerebrovascular accident
        "84757009",  # Epilepsy
        "37796009",  # Migraine
        "24700007",  # Multiple sclerosis
        "69896004",  # Rheumatoid arthritis
        "396275006",  # Osteoarthritis
        "40930008",  # Hypothyroidism
        "414916001",  # Obesity
        "709044004",  # Chronic kidney disease
        "271737000",  # Anemia
        "235595009",  # Gastroesophageal reflux disease
        "34000006",  # Crohn's disease
        "64766004",  # Ulcerative colitis
        "9014002",  # Psoriasis
        "24079001",  # Atopic dermatitis
        "125605004",  # Fracture of bone
    }
)
# ICD-10 (WHO) three-character ranges read as physical diagnoses, inclusive. Left out on
# purpose, so withheld as unclassified: chapter V (F, mental and behavioural), R40-R46
# (cognition, perception, emotional state, behaviour), R78 (drugs found in blood), T36-T65
# (poisoning and toxic effects: overdose, self-poisoning, alcohol), V01-Y98 (external
# causes, including X60-X84 intentional self-harm), Z (factors influencing health
# status, including histories of mental disorder and self-harm) and U.
ICD10_PHYSICAL_RANGES: Final = (
    ("A00", "B99"),
    ("C00", "D89"),
    ("E00", "E90"),
    ("G00", "G99"),
    ("H00", "H95"),
    ("I00", "I99"),
    ("J00", "J99"),
    ("K00", "K93"),
    ("L00", "L99"),
    ("M00", "M99"),
    ("N00", "N99"),
    ("O00", "O99"),
    ("P00", "P96"),
    ("Q00", "Q99"),
    ("R00", "R39"),
    ("R47", "R77"),
    ("R79", "R99"),
    ("S00", "T35"),
    ("T66", "T98"),
)
# Codes inside those ranges that reveal a mental disorder or substance misuse, so they
# are withheld rather than released as physical (prefixes, without the dot).
ICD10_NOT_PHYSICAL: Final = (
    "G30",  # Alzheimer's disease (dementia, F00)
    "G31",  # Other degenerative diseases of the nervous system (incl. G31.2 alcoholic)
    "G32",
    "O993",  # Mental disorders and diseases of the nervous system complicating pregnancy
    "E244",  # Alcohol-induced pseudo-Cushing's syndrome
    "G621",  # Alcoholic polyneuropathy
    "G721",  # Alcoholic myopathy
    "I426",  # Alcoholic cardiomyopathy
    "K292",  # Alcoholic gastritis
    "K70",  # Alcoholic liver disease
    "K852",  # Alcohol-induced acute pancreatitis
    "K860",  # Alcohol-induced chronic pancreatitis
    "O354",  # Maternal care for damage to fetus from alcohol
    "P043",  # Fetus and newborn affected by maternal use of alcohol
    "Q860",  # Fetal alcohol syndrome
)
# SNOMED CT specialties (the HL7 practice setting codes) read as mental health services.
MENTAL_HEALTH_SERVICES: Final = frozenset(
    {
        "394587001",  # Psychiatry
        "394588006",  # Child and adolescent psychiatry
        "394913002",  # Psychotherapy
    }
)
_ICD10_CODE = re.compile(r"([A-Z][0-9]{2})([0-9A-Z]{0,4})")
_ATTENDANCE_CLASSES: Final = frozenset({"AMB", "VR", "HH"})
_APPOINTMENT_STATUSES: Final = frozenset(
    {"booked", "arrived", "checked-in", "fulfilled", "cancelled", "noshow"}
)
# Statuses under which a medication with no recorded end is still being taken.
_ONGOING_MEDICATION: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "MedicationStatement": frozenset({"active", "intended", "on-hold"}),
        "MedicationRequest": frozenset({"active", "on-hold"}),
    }
)

# --- Where the date and the patient are, per resource type ----------------------------

# Dotted element paths, first present wins. Medication uses ``medication_span`` instead.
DATE_ELEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Condition": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
        "Encounter": ("period.start",),
        "Appointment": ("start",),
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
# Top-level elements holding references to other resources of the record. A reference
# is kept only if its target is itself in the release; anything else is dropped, so a
# medication never points at a withheld diagnosis (reasonReference) and a name in a
# reference's display never leaves.
INTERNAL_REFERENCES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "MedicationStatement": ("medicationReference", "reasonReference"),
        "MedicationRequest": ("medicationReference", "reasonReference"),
        "Patient": ("generalPractitioner",),
        "PractitionerRole": ("practitioner", "organization"),
    }
)

# --- The allow-list -------------------------------------------------------------------

# An element's shape: for a complex element, the child elements allowed (each with its
# own shape); ``None`` for a primitive, which is kept only if it is a string, number or
# boolean (or a list of them). Whatever is not named is dropped.
Shape = Mapping[str, "Shape | None"]

_CODING: Shape = {"system": None, "version": None, "code": None, "display": None}
# A CodeableConcept without its free text: the codes say what is recorded; text may say
# more (a diagnosis behind a drug, a clinician's aside).
_CODED: Shape = {"coding": _CODING}
# Where the text is the very thing released (a drug's name, a flag's wording).
_CODED_WITH_TEXT: Shape = {"coding": _CODING, "text": None}
# Only the literal reference: never display (names) or identifier (record numbers).
_REFERENCE: Shape = {"reference": None}
_PERIOD: Shape = {"start": None, "end": None}
_QUANTITY: Shape = {"value": None, "unit": None, "system": None, "code": None}
_META: Shape = {"security": _CODING, "tag": _CODING}
# Dosage without text, patientInstruction, additionalInstruction, asNeededCodeableConcept
# (the reason it is taken), site or method: any of them can name the condition treated.
_DOSAGE: Shape = {
    "sequence": None,
    "timing": {
        "repeat": {
            "boundsPeriod": _PERIOD,
            "count": None,
            "duration": None,
            "durationUnit": None,
            "frequency": None,
            "period": None,
            "periodUnit": None,
            "dayOfWeek": None,
            "timeOfDay": None,
            "when": None,
        }
    },
    "asNeededBoolean": None,
    "route": _CODED,
    "doseAndRate": {"doseQuantity": _QUANTITY, "rateQuantity": _QUANTITY},
}
_BASE: dict[str, Shape | None] = {"resourceType": None, "id": None, "meta": _META}

ALLOWED_ELEMENTS: Mapping[str, Shape] = MappingProxyType(
    {
        # code keeps only the codings of the category released (``released_form``);
        # no code.text, note, evidence, encounter, recorder, asserter, bodySite, stage.
        "Condition": _BASE
        | {
            "clinicalStatus": _CODED,
            "verificationStatus": _CODED,
            "code": _CODED,
            "subject": _REFERENCE,
            "onsetDateTime": None,
            "onsetPeriod": _PERIOD,
            "abatementDateTime": None,
            "abatementPeriod": _PERIOD,
            "recordedDate": None,
        },
        # type and serviceType only for mental_health_services, and only the specialty
        # codings; no reasonCode, diagnosis, participant, location or serviceProvider.
        "Encounter": _BASE
        | {
            "status": None,
            "class": _CODING,
            "type": _CODED,
            "serviceType": _CODED,
            "subject": _REFERENCE,
            "period": _PERIOD,
        },
        # participant keeps only the patient; no reasonCode, description, comment,
        # patientInstruction or cancelationReason.
        "Appointment": _BASE
        | {
            "status": None,
            "serviceType": _CODED,
            "specialty": _CODED,
            "start": None,
            "end": None,
            "minutesDuration": None,
            "participant": {"actor": _REFERENCE, "status": None, "required": None},
        },
        # No reasonCode, note, informationSource or derivedFrom; reasonReference only to
        # a Condition that is itself released.
        "MedicationStatement": _BASE
        | {
            "status": None,
            "medicationCodeableConcept": _CODED_WITH_TEXT,
            "medicationReference": _REFERENCE,
            "subject": _REFERENCE,
            "effectiveDateTime": None,
            "effectivePeriod": _PERIOD,
            "dateAsserted": None,
            "reasonReference": _REFERENCE,
            "dosage": _DOSAGE,
        },
        "MedicationRequest": _BASE
        | {
            "status": None,
            "intent": None,
            "medicationCodeableConcept": _CODED_WITH_TEXT,
            "medicationReference": _REFERENCE,
            "subject": _REFERENCE,
            "authoredOn": None,
            "reasonReference": _REFERENCE,
            "dosageInstruction": _DOSAGE,
            "dispenseRequest": {
                "validityPeriod": _PERIOD,
                "numberOfRepeatsAllowed": None,
                "quantity": _QUANTITY,
                "expectedSupplyDuration": _QUANTITY,
            },
        },
        "Medication": _BASE | {"status": None, "code": _CODED_WITH_TEXT, "form": _CODED},
        # A flag's wording is the flag: code.text is what the category releases.
        "Flag": _BASE
        | {
            "status": None,
            "category": _CODED,
            "code": _CODED_WITH_TEXT,
            "subject": _REFERENCE,
            "period": _PERIOD,
        },
        "Organization": _BASE
        | {
            "identifier": {"system": None, "value": None},
            "active": None,
            "name": None,
            "telecom": {"system": None, "value": None, "use": None},
            "address": {
                "line": None,
                "city": None,
                "district": None,
                "postalCode": None,
                "country": None,
            },
        },
        "Practitioner": _BASE
        | {
            "identifier": {"system": None, "value": None},
            "name": {"use": None, "family": None, "given": None, "prefix": None},
        },
        "PractitionerRole": _BASE
        | {"practitioner": _REFERENCE, "organization": _REFERENCE, "code": _CODED},
    }
)

# Patient elements each category releases, with their shapes (resourceType, id and meta
# are always kept). No extension (ethnicity, religion), contact (other people), link,
# maritalStatus, communication, photo or managingOrganization under any category.
PATIENT_ELEMENTS: Mapping[str, Shape] = MappingProxyType(
    {
        "identity": {
            "identifier": {"use": None, "system": None, "value": None},
            "active": None,
            "name": {
                "use": None,
                "family": None,
                "given": None,
                "prefix": None,
                "suffix": None,
                "period": _PERIOD,
            },
            "gender": None,
            "birthDate": None,
        },
        "gp_registration": {"generalPractitioner": _REFERENCE},
        "contact_address_history": {
            "address": {
                "use": None,
                "type": None,
                "line": None,
                "city": None,
                "district": None,
                "state": None,
                "postalCode": None,
                "country": None,
                "period": _PERIOD,
            },
            "telecom": {"system": None, "value": None, "use": None, "period": _PERIOD},
        },
    }
)
# Patient elements whose entries each carry a period and are filtered by it.
_CONTACT_ELEMENTS: Final = ("address", "telecom")


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


# --- Pruning to the allow-list --------------------------------------------------------

_PRIMITIVES = (str, int, float, bool)


def prune(value: Any, shape: Shape | None) -> Any:
    """``value`` with only what ``shape`` allows; None if nothing allowed is left."""
    if isinstance(value, list):
        kept = [item for item in (prune(element, shape) for element in value) if item is not None]
        return kept or None
    if shape is None:
        return value if isinstance(value, _PRIMITIVES) else None
    if not isinstance(value, Mapping):
        return None
    pruned = {}
    for key, child in value.items():
        if key in shape:
            kept_child = prune(child, shape[key])
            if kept_child is not None:
                pruned[key] = kept_child
    return pruned or None


def extra_paths(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Element paths in ``actual`` that ``expected`` (its released form) does not hold."""
    if actual == expected:
        return []
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        found: list[str] = []
        for key, value in actual.items():
            child = f"{path}.{key}" if path else key
            found.extend(
                [child] if key not in expected else extra_paths(value, expected[key], child)
            )
        return found
    if isinstance(actual, list) and isinstance(expected, list):
        if len(actual) == len(expected):
            return [
                extra
                for index, (mine, theirs) in enumerate(zip(actual, expected, strict=True))
                for extra in extra_paths(mine, theirs, f"{path}[{index}]")
            ]
        return [f"{path}[{index}]" for index, item in enumerate(actual) if item not in expected]
    return [path or "(the resource)"]


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


def _icd10_category(code: str) -> str | None:
    match = _ICD10_CODE.fullmatch(code.replace(".", ""))
    if match is None:
        return None
    block, whole = match.group(1), match.group(0)
    if "F10" <= block <= "F19":
        return "substance_misuse"
    if block.startswith("F"):
        return "mental_health_diagnoses"
    if any(whole.startswith(prefix) for prefix in ICD10_NOT_PHYSICAL):
        return None
    if any(low <= block <= high for low, high in ICD10_PHYSICAL_RANGES):
        return "physical_health_diagnoses"
    return None


def coding_category(system: str, code: str) -> str | None:
    """The diagnosis category one ICD-10 or SNOMED CT code positively belongs to, if any."""
    code = code.strip().upper()
    if system in ICD10_SYSTEMS:
        return _icd10_category(code)
    if system == SNOMED_SYSTEM:
        if code in SUBSTANCE_MISUSE_DISORDERS:
            return "substance_misuse"
        if code in MENTAL_HEALTH_DISORDERS:
            return "mental_health_diagnoses"
        if code in PHYSICAL_HEALTH_DISORDERS:
            return "physical_health_diagnoses"
    return None


@dataclass(frozen=True, slots=True)
class Classification:
    """The one category a resource belongs to, or why it belongs to none."""

    category: str | None
    reason: str = ""


def _condition_category(resource: FhirResource) -> Classification:
    codes = [
        (system, code)
        for system, code in _codings(resource, "code")
        if system in ICD10_SYSTEMS or system == SNOMED_SYSTEM
    ]
    if not codes:
        return Classification(None, "unclassified: no ICD-10 or SNOMED CT code")
    found = {(system, code): coding_category(system, code) for system, code in codes}
    unknown = sorted(code for (_, code), category in found.items() if category is None)
    if unknown:
        return Classification(
            None,
            f"unclassified: code {', '.join(unknown)} is on no category's list, so it "
            "could be a mental health or substance misuse diagnosis",
        )
    return Classification(next(c for c in CONDITION_CATEGORIES if c in found.values()))


def _at_mental_health_service(resource: FhirResource, *paths: str) -> bool:
    return any(
        system == SNOMED_SYSTEM and code in MENTAL_HEALTH_SERVICES
        for system, code in _codings(resource, *paths)
    )


def _encounter_category(resource: FhirResource) -> Classification:
    if _at_mental_health_service(resource, "serviceType", "type"):
        return Classification("mental_health_services")
    encounter_class = resource.get("class")
    if isinstance(encounter_class, Mapping) and (
        encounter_class.get("system") == _ENCOUNTER_CLASS_SYSTEM
    ):
        code = encounter_class.get("code")
        if code == "EMER":
            return Classification("ae_attendance")
        if code in _ATTENDANCE_CLASSES:
            return Classification("appointments_non_attendance")
    return Classification(None, "an Encounter class no category releases (e.g. inpatient)")


def _appointment_category(resource: FhirResource) -> Classification:
    if resource.get("status") not in _APPOINTMENT_STATUSES:
        return Classification(None, f"an Appointment with status {resource.get('status')!r}")
    if _at_mental_health_service(resource, "serviceType", "specialty"):
        return Classification("mental_health_services")
    return Classification("appointments_non_attendance")


_CLASSIFIERS: Mapping[str, Callable[[FhirResource], Classification]] = MappingProxyType(
    {
        "Condition": _condition_category,
        "Encounter": _encounter_category,
        "Appointment": _appointment_category,
        "MedicationStatement": lambda _: Classification("medication"),
        "MedicationRequest": lambda _: Classification("medication"),
        "Flag": lambda _: Classification("safeguarding_flags"),
    }
)


def classification(resource: FhirResource) -> Classification:
    """The one event category a resource belongs to, or the reason it belongs to none."""
    classifier = _CLASSIFIERS.get(str(resource.get("resourceType")))
    if classifier is None:
        return Classification(None, "a resource type no event category releases")
    if excluded_by_status(resource):
        return Classification(
            None, "entered in error, refuted, or carries a modifier extension or implicit rules"
        )
    return classifier(resource)


def classify(resource: FhirResource) -> str | None:
    """The one event category a resource belongs to, or None if it belongs to none.

    Covers the dated resource types; the Patient and the resources it links to are
    handled through ``PATIENT_ELEMENTS`` and ``LINKED_RESOURCES``.
    """
    return classification(resource).category


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
        "contact_address_history": (
            ResourceRule("Patient", "subject", "address, telecom whose period overlaps"),
        ),
        "physical_health_diagnoses": (
            ResourceRule("Condition", "event", "every code on a physical list"),
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
            ResourceRule("MedicationStatement", "event", "period overlaps"),
            ResourceRule("MedicationRequest", "event", "period overlaps"),
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
    """When a resource happened, as the days it may mean.

    ``first_day`` and ``last_day`` bound its start (one day for a full date, a month or
    a year for a partial one). ``earliest_end`` is the first day it may have ended: the
    same as ``first_day`` for a single event, None while it is still going on.
    """

    element: str
    value: str
    first_day: date
    last_day: date
    earliest_end: date | None

    def within(self, period_from: date | None, period_to: date | None) -> bool:
        """Certainly meets the inclusive period: started by its end, not ended before it."""
        if period_to is not None and self.last_day > period_to:
            return False
        return period_from is None or self.earliest_end is None or self.earliest_end >= period_from


def _date_span(value: Any) -> tuple[date, date] | None:
    if not isinstance(value, str):
        return None
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


def _point(element: str, value: str) -> EventDate | None:
    span = _date_span(value)
    if span is None:
        return None
    return EventDate(element, value, span[0], span[1], span[0])


def _span(element: str, start: Any, end: Any, *, ongoing: bool) -> EventDate | None:
    """A period from its start and end values; None if it cannot be placed in time.

    No start: the end stands for it. No end: still going on if ``ongoing``, else the
    start is the only day known. An end before the start is not a period.
    """
    end_span = _date_span(end)
    start_span = _date_span(start) or end_span
    if start_span is None:
        return None
    if end_span is None:
        earliest_end = None if ongoing else start_span[0]
        shown = f"{start or end} to {'ongoing' if ongoing else '(no end)'}"
    else:
        if end_span[1] < start_span[0]:
            return None
        earliest_end = end_span[0]
        shown = f"{start or '(no start)'} to {end}"
    return EventDate(element, shown, start_span[0], start_span[1], earliest_end)


def _first(resource: FhirResource, path: str) -> Any:
    values = values_at(resource, path)
    return values[0] if values else None


def medication_span(resource: FhirResource) -> EventDate | None:
    """When a medication was current; the medication rule is that this overlaps the period.

    MedicationStatement: effectiveDateTime (that day), else effectivePeriod, else
    dateAsserted (that day). MedicationRequest: from authoredOn (else
    dispenseRequest.validityPeriod.start, else the dosage's timing boundsPeriod.start) to
    dispenseRequest.validityPeriod.end (else boundsPeriod.end). With no end, a
    medication whose status says it is still taken (statement: active, intended,
    on-hold; request: active, on-hold) is ongoing; any other is placed on its start.
    """
    resource_type = str(resource.get("resourceType"))
    ongoing = resource.get("status") in _ONGOING_MEDICATION.get(resource_type, frozenset())
    if resource_type == "MedicationStatement":
        if "effectiveDateTime" in resource:
            return _point(f"{resource_type}.effectiveDateTime", resource["effectiveDateTime"])
        if isinstance(resource.get("effectivePeriod"), Mapping):
            period = resource["effectivePeriod"]
            return _span(
                f"{resource_type}.effectivePeriod",
                period.get("start"),
                period.get("end"),
                ongoing=ongoing,
            )
        if "dateAsserted" in resource:
            return _point(f"{resource_type}.dateAsserted", resource["dateAsserted"])
        return None
    if resource_type == "MedicationRequest":
        bounds = "dosageInstruction.timing.repeat.boundsPeriod"
        start = (
            resource.get("authoredOn")
            or _first(resource, "dispenseRequest.validityPeriod.start")
            or _first(resource, f"{bounds}.start")
        )
        end = _first(resource, "dispenseRequest.validityPeriod.end") or _first(
            resource, f"{bounds}.end"
        )
        return _span(f"{resource_type} (authoredOn to end)", start, end, ongoing=ongoing)
    return None


def event_date(resource: FhirResource) -> EventDate | None:
    """The date or period the period rule uses, or None if it cannot be placed in time."""
    resource_type = str(resource.get("resourceType"))
    if resource_type in _ONGOING_MEDICATION:
        return medication_span(resource)
    for path in DATE_ELEMENTS.get(resource_type, ()):
        for value in values_at(resource, path):
            if isinstance(value, str):
                when = _point(f"{resource_type}.{path}", value)
                if when is not None:
                    return when
    return None


def in_approved_period(when: EventDate, items: Sequence[ScopeItem]) -> bool:
    """True if any of the category's approved scope items covers the date or period."""
    return any(when.within(item.period_from, item.period_to) for item in items)


def contact_entry_span(element: str, entry: Mapping[str, Any]) -> EventDate | None:
    """When a Patient address or telecom entry applied, from its own ``period``.

    No period at all: withheld (it cannot be placed in the approved period). No end: it
    still applies, unless its ``use`` is ``old``, when only its start is known.
    """
    period = entry.get("period")
    if not isinstance(period, Mapping):
        return None
    return _span(
        f"Patient.{element}.period",
        period.get("start"),
        period.get("end"),
        ongoing=entry.get("use") != "old",
    )


# --- Released forms -------------------------------------------------------------------


def _keep_references(value: Any, released: frozenset[str]) -> Any:
    """Only the references whose target is in the release; None if none are."""
    items = value if isinstance(value, list) else [value]
    kept = [
        item for item in items if isinstance(item, Mapping) and item.get("reference") in released
    ]
    if not kept:
        return None
    return kept if isinstance(value, list) else kept[0]


def _only_codings(value: Any, keep: Callable[[str, str], bool]) -> Any:
    """CodeableConcept(s) with only the codings ``keep`` accepts; None if none are left."""
    concepts = value if isinstance(value, list) else [value]
    kept = []
    for concept in concepts:
        if not isinstance(concept, Mapping):
            continue
        codings = [
            coding
            for coding in values_at(concept, "coding")
            if isinstance(coding, Mapping)
            and isinstance(coding.get("system"), str)
            and isinstance(coding.get("code"), str)
            and keep(coding["system"], coding["code"])
        ]
        if codings:
            kept.append({**concept, "coding": codings})
    if not kept:
        return None
    return kept if isinstance(value, list) else kept[0]


_SERVICE_ELEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"Encounter": ("type", "serviceType"), "Appointment": ("serviceType", "specialty")}
)


def released_form(
    resource: FhirResource, category: str, released: frozenset[str]
) -> dict[str, Any]:
    """What of ``resource`` leaves under ``category``, without its ``meta``.

    ``resource`` already has every reference to the patient as ``Patient/subject``;
    ``released`` holds the ``Type/id`` of every resource in the release. The result is
    the allow-list applied after the element rules: a Condition keeps only the codings
    of the category released; an Encounter or Appointment keeps service codings only
    for mental_health_services, and only the specialty codings; an Appointment keeps
    only the patient among its participants; references are kept only to resources in
    the release. Applying it twice changes nothing, so the receiver can recompute it.
    """
    resource_type = str(resource.get("resourceType"))
    working = {key: value for key, value in resource.items() if key != "meta"}
    if resource_type == "Condition" and "code" in working:
        working["code"] = _only_codings(
            working["code"], lambda system, code: coding_category(system, code) == category
        )
    for element in _SERVICE_ELEMENTS.get(resource_type, ()):
        if element in working:
            working[element] = (
                _only_codings(
                    working[element],
                    lambda system, code: (
                        system == SNOMED_SYSTEM and code.strip().upper() in MENTAL_HEALTH_SERVICES
                    ),
                )
                if category == "mental_health_services"
                else None
            )
    if resource_type == "Appointment":
        working["participant"] = [
            participant
            for participant in values_at(working, "participant")
            if isinstance(participant, Mapping)
            and references_at(participant, "actor") == [RELEASE_PATIENT_REFERENCE]
        ]
    for element in INTERNAL_REFERENCES.get(resource_type, ()):
        if element in working:
            working[element] = _keep_references(working[element], released)
    shape = ALLOWED_ELEMENTS.get(resource_type, {"resourceType": None})
    return prune({k: v for k, v in working.items() if v is not None}, shape) or {}


def released_patient(
    patient: FhirResource,
    tags: Sequence[str],
    scope: Mapping[str, Sequence[ScopeItem]],
    released: frozenset[str],
) -> dict[str, Any]:
    """The Patient's released form under ``tags``, without ``meta``.

    Each category's elements (``PATIENT_ELEMENTS``); address and telecom entries only
    where their period overlaps the approved period for contact_address_history;
    generalPractitioner only to resources in the release.
    """
    working: dict[str, Any] = {"resourceType": "Patient", "id": RELEASE_PATIENT_ID}
    for tag in tags:
        for element in PATIENT_ELEMENTS.get(tag, {}):
            if element in patient:
                working[element] = patient[element]
    if "contact_address_history" in tags:
        items = scope.get("contact_address_history", ())
        for element in _CONTACT_ELEMENTS:
            if element in working:
                working[element] = [
                    entry
                    for entry in values_at(working, element)
                    if isinstance(entry, Mapping)
                    and (when := contact_entry_span(element, entry)) is not None
                    and in_approved_period(when, items)
                ]
    for element in INTERNAL_REFERENCES["Patient"]:
        if element in working:
            working[element] = _keep_references(working[element], released)
    shape: dict[str, Shape | None] = {"resourceType": None, "id": None}
    for tag in tags:
        shape.update(PATIENT_ELEMENTS.get(tag, {}))
    return prune({k: v for k, v in working.items() if v is not None}, shape) or {}


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

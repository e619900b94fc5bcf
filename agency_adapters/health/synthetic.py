"""Synthetic patient records for tests and the demo. Never real data.

Every record is plainly fake: the family name is "Synthetic", the NHS number is from the
999 test range with a valid Modulus 11 check digit (REFERENCE.md 6.1), addresses and
web addresses use the reserved ``.invalid`` domain (RFC 2606), and the practice code is
not an issued ODS code. The same seed and ``today`` always give the same record.
"""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta
from typing import Any, Final

from hub.model.payloads import is_valid_nhs_number, nhs_check_digit

__all__ = [
    "NHS_NUMBER_SYSTEM",
    "nhs_number_valid",
    "synthetic_nhs_number",
    "synthetic_patient_bundle",
]

# UK Core identifier system for the NHS number (REFERENCE.md 6.1).
NHS_NUMBER_SYSTEM: Final = "https://fhir.nhs.uk/Id/nhs-number"
_ODS_SYSTEM: Final = "https://fhir.nhs.uk/Id/ods-organization-code"
_SNOMED: Final = "http://snomed.info/sct"
_ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLINICAL_STATUS: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_BASE_URL: Final = "https://synthetic-gp.invalid/fhir"

_GIVEN_NAMES: Final = ("Alex", "Sam", "Jordan", "Robin", "Charlie", "Morgan", "Jamie", "Riley")


def nhs_number_valid(value: str) -> bool:
    """True if ``value`` is a valid NHS number (Modulus 11; the one check, in hub.model)."""
    return is_valid_nhs_number(value)


def synthetic_nhs_number(rng: random.Random) -> str:
    """A valid NHS number from the 999 test range."""
    while True:
        first_nine = f"999{rng.randrange(1_000_000):06d}"
        check = nhs_check_digit(first_nine)
        if check is not None:
            return f"{first_nine}{check}"


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def synthetic_patient_bundle(seed: int = 0, *, today: date) -> dict[str, Any]:
    """A deterministic synthetic GP record (a FHIR R4 ``collection`` Bundle).

    A Patient with a GP practice, and about twenty resources across the health
    categories over the three years before ``today``: mental and physical health and
    substance misuse Conditions, medication, GP, A&E and mental health Encounters,
    Appointments including missed ones, and a safeguarding Flag.
    """
    # Seeded pseudo-random choices make varied but reproducible fake records; nothing
    # here is a secret, so the standard generator is the right tool.
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not a secret

    def days_ago(low: int, high: int) -> str:
        return (today - timedelta(days=rng.randint(low, high))).isoformat()

    patient_id = f"synthetic-patient-{seed}"
    subject = {"reference": f"Patient/{patient_id}", "display": "Synthetic Patient"}
    age_days = rng.randint(16 * 365, 45 * 365)
    moved_in = days_ago(400, 600)

    practice = {
        "resourceType": "Organization",
        "id": "gp-practice",
        "identifier": [{"system": _ODS_SYSTEM, "value": "Y99999"}],
        "name": "Synthetic Surgery (test data)",
        "address": [{"line": ["1 Synthetic Street"], "city": "Testtown", "postalCode": "ZZ99 9ZZ"}],
    }
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "extension": [
            {
                "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
                "valueCodeableConcept": {"text": "Not stated"},
            }
        ],
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": synthetic_nhs_number(rng)}],
        "active": True,
        "name": [{"use": "official", "family": "Synthetic", "given": [rng.choice(_GIVEN_NAMES)]}],
        "telecom": [
            {
                "system": "email",
                "value": f"patient{seed}@synthetic.invalid",
                "period": {"start": days_ago(900, 1000)},
            }
        ],
        "gender": rng.choice(("female", "male", "other", "unknown")),
        "birthDate": (today - timedelta(days=age_days)).isoformat(),
        "address": [
            {
                "use": "home",
                "line": [f"{seed + 2} Synthetic Road"],
                "city": "Testtown",
                "period": {"start": moved_in},
            },
            {
                "use": "old",
                "line": [f"{seed + 40} Former Street"],
                "city": "Testtown",
                "period": {"start": days_ago(1500, 2000), "end": moved_in},
            },
        ],
        "generalPractitioner": [{"reference": "Organization/gp-practice"}],
    }

    def condition(ident: str, code: dict[str, Any], onset: str) -> dict[str, Any]:
        return {
            "resourceType": "Condition",
            "id": ident,
            "clinicalStatus": _concept(_CLINICAL_STATUS, "active", "Active"),
            "code": code,
            "subject": subject,
            "onsetDateTime": onset,
            "recordedDate": onset,
            "note": [{"text": "Synthetic free-text note; never released."}],
        }

    def encounter(ident: str, klass: str, start: str, **extra: Any) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": ident,
            "status": "finished",
            "class": {"system": _ACT_CODE, "code": klass},
            "subject": subject,
            "period": {"start": f"{start}T10:30:00+00:00", "end": f"{start}T11:15:00+00:00"},
            **extra,
        }

    def appointment(ident: str, status: str, start: str, **extra: Any) -> dict[str, Any]:
        return {
            "resourceType": "Appointment",
            "id": ident,
            "status": status,
            "start": f"{start}T09:00:00Z",
            "end": f"{start}T09:15:00Z",
            "participant": [{"actor": subject, "status": "accepted"}],
            "comment": "Synthetic booking comment; never released.",
            **extra,
        }

    psychiatry = [_concept(_SNOMED, "394587001", "Psychiatry")]
    fracture_day = days_ago(60, 120)
    resources: list[dict[str, Any]] = [
        practice,
        patient,
        condition(
            "cond-depression",
            _concept(_ICD10, "F32.1", "Moderate depressive episode"),
            days_ago(150, 250),
        ),
        condition(
            "cond-anxiety", _concept(_SNOMED, "197480006", "Anxiety disorder"), days_ago(600, 700)
        ),
        condition("cond-asthma", _concept(_SNOMED, "195967001", "Asthma"), days_ago(850, 1000)),
        condition(
            "cond-fracture",
            _concept(_ICD10, "S52.5", "Fracture of lower end of radius"),
            fracture_day,
        ),
        condition(
            "cond-alcohol", _concept(_SNOMED, "15167005", "Alcohol abuse"), days_ago(380, 450)
        ),
        {
            "resourceType": "MedicationStatement",
            "id": "med-sertraline",
            "status": "active",
            "medicationCodeableConcept": {"text": "Sertraline 50mg tablets"},
            "subject": subject,
            "effectiveDateTime": days_ago(140, 149),
            # What the release must not let slip when only medication is approved.
            "reasonCode": [{"text": "Moderate depressive episode"}],
            "reasonReference": [{"reference": "Condition/cond-depression"}],
            "dosage": [
                {
                    "text": "One tablet daily for depression",
                    "patientInstruction": "Take in the morning; for low mood",
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                }
            ],
        },
        {
            "resourceType": "MedicationStatement",
            "id": "med-salbutamol",
            "status": "active",
            "medicationCodeableConcept": {"text": "Salbutamol 100micrograms/dose inhaler"},
            "subject": subject,
            "effectivePeriod": {"start": days_ago(800, 840)},
        },
        {
            "resourceType": "MedicationRequest",
            "id": "med-codeine",
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Co-codamol 8mg/500mg tablets"},
            "subject": subject,
            "authoredOn": fracture_day,
        },
        encounter("enc-ae-fracture", "EMER", fracture_day),
        encounter("enc-ae-earlier", "EMER", days_ago(480, 560)),
        encounter("enc-gp-1", "AMB", days_ago(200, 260)),
        encounter("enc-gp-2", "AMB", days_ago(30, 50)),
        encounter("enc-mh-assessment", "AMB", days_ago(130, 139), serviceType=psychiatry[0]),
        appointment("appt-noshow-1", "noshow", days_ago(90, 110)),
        appointment("appt-noshow-2", "noshow", days_ago(300, 340)),
        appointment("appt-fulfilled", "fulfilled", days_ago(30, 50)),
        appointment("appt-cancelled", "cancelled", days_ago(700, 900)),
        appointment("appt-mh-followup", "noshow", days_ago(100, 120), specialty=psychiatry),
        {
            "resourceType": "Flag",
            "id": "flag-adult-at-risk",
            "status": "active",
            "category": [
                _concept("http://terminology.hl7.org/CodeSystem/flag-category", "safety", "Safety")
            ],
            "code": {"text": "Adult at risk (synthetic)"},
            "subject": subject,
            "period": {"start": days_ago(250, 330)},
        },
    ]
    bundle = {
        "resourceType": "Bundle",
        "id": f"synthetic-record-{seed}",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{_BASE_URL}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }
    # Resources share the subject reference above; hand out a tree with no shared parts.
    return copy.deepcopy(bundle)

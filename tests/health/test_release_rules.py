"""Issue 8: the health release builder must not over-release.

Each test here names one way the builder used to say more than was approved: a mental
health code missing from a list released as physical, an ongoing prescription missed
because it began before the period, a medication-only release that named the diagnosis,
elements no category asks for, and contact details never released when approved. All
records are synthetic ("Synthetic" patient, 999 test-range NHS number).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from agency_adapters.health import ReleaseResult, build_release
from agency_adapters.health.mapping import ALLOWED_ELEMENTS, classification, prune
from agency_adapters.node import check_release
from hub.model import Author, EnvelopeFields, Marking, ScopeItem

SUBJECT_REF = "subj-7f3a9c"
MARKING = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))
NHS_NUMBER = "9990000018"  # test range, valid Modulus 11 check digit
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
YEAR_2024 = (date(2024, 1, 1), date(2024, 12, 31))


def item(category: str, period: tuple[date, date] | None = YEAR_2024) -> ScopeItem:
    start, end = period if period else (None, None)
    return ScopeItem(
        category=category, period_from=start, period_to=end, justification_present=True
    )


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}],
        "name": [{"family": "Synthetic", "given": ["Testperson"]}],
        "gender": "unknown",
        "birthDate": "2001-02-03",
        **extra,
    }


def condition(ident: str, *codes: tuple[str, str], onset: str = "2024-05-01") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": ident,
        "code": {
            "coding": [{"system": system, "code": code} for system, code in codes],
            "text": f"free text of {ident}",
        },
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": onset,
    }


def record(*resources: dict[str, Any], who: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (who or patient(), *resources)],
    }


def build(source: dict[str, Any], scope: list[ScopeItem]) -> ReleaseResult:
    return build_release(source, scope, marking=MARKING, subject_ref=SUBJECT_REF)


def released(result: ReleaseResult) -> dict[str, dict[str, Any]]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
        for e in json.loads(result.bundle_json).get("entry", [])
    }


def passes_the_receivers_check(result: ReleaseResult, scope: list[ScopeItem]) -> bool:
    envelope = EnvelopeFields(
        kind="release",
        author=Author(user_ref="user-0001", role="CALDICOTT_GUARDIAN", vetting="BPSS"),
        recipients=("police.ctp-sw",),
        marking=MARKING,
        subject_ref=SUBJECT_REF,
        purpose="PREVENT_TRIAGE",
        scope=tuple(scope),
        in_reply_to="01a1fca0-7fb0-756c-a2a0-f908835c17ee",
    )
    problems = check_release(envelope, result.bundle_json)
    assert problems == []
    return True


# --- 1. Codes not on a list are withheld, never released under another category -------


@pytest.mark.parametrize(
    "code",
    [
        (SNOMED, "191526005"),  # a schizophrenic disorder missing from the SNOMED list
        (SNOMED, "1234567000"),  # any SNOMED CT code on no list
        (ICD10, "X60"),  # intentional self-poisoning (external cause)
        (ICD10, "Z91.5"),  # personal history of self-harm
        (ICD10, "R45.8"),  # symptoms involving emotional state
        (ICD10, "T42.4"),  # poisoning by benzodiazepines
        (ICD10, "K70.3"),  # alcoholic cirrhosis of liver
        (ICD10, "G30.9"),  # Alzheimer's disease
    ],
    ids=lambda code: code[1],
)
def test_an_unlisted_code_is_withheld_not_released_as_physical(code: tuple[str, str]) -> None:
    source = record(condition("c1", code))
    scope = [
        item("physical_health_diagnoses"),
        item("mental_health_diagnoses"),
        item("substance_misuse"),
    ]

    result = build(source, scope)

    assert result.resource_count == 0
    [withheld] = result.withheld
    assert withheld.resource == "Condition/c1"
    assert withheld.reason.startswith("unclassified")
    assert code[1] in withheld.reason


def test_one_unlisted_code_beside_a_physical_one_withholds_the_condition() -> None:
    mixed = condition("c1", (ICD10, "J45.9"), (SNOMED, "191526005"))

    result = build(record(mixed), [item("physical_health_diagnoses")])

    assert result.resource_count == 0
    assert [w.resource for w in result.withheld] == ["Condition/c1"]


def test_physical_codes_are_released_only_from_the_positive_lists() -> None:
    source = record(
        condition("c-icd", (ICD10, "J45.9")),
        condition("c-snomed", (SNOMED, "195967001")),
        condition("c-both", (ICD10, "E11.9"), (SNOMED, "44054006")),
    )

    result = build(source, [item("physical_health_diagnoses")])

    assert set(released(result)) == {"Condition/c-icd", "Condition/c-snomed", "Condition/c-both"}
    assert result.withheld == ()


def test_a_code_in_another_system_is_dropped_and_never_classifies() -> None:
    read_only = condition("c-read", ("http://read.info/readv2", "Eu20."))
    with_snomed = condition("c-snomed", (SNOMED, "195967001"), ("http://read.info/readv2", "H33"))

    result = build(record(read_only, with_snomed), [item("physical_health_diagnoses")])

    assert set(released(result)) == {"Condition/c-snomed"}
    assert released(result)["Condition/c-snomed"]["code"] == {
        "coding": [{"system": SNOMED, "code": "195967001"}]
    }
    assert classification(read_only).reason == "unclassified: no ICD-10 or SNOMED CT code"


def test_a_condition_released_as_mental_health_keeps_only_its_mental_health_codes() -> None:
    both = condition("c1", (ICD10, "F41.1"), (SNOMED, "195967001"))
    scope = [item("mental_health_diagnoses")]

    result = build(record(both), scope)

    assert released(result)["Condition/c1"]["code"] == {
        "coding": [{"system": ICD10, "code": "F41.1"}]
    }
    assert passes_the_receivers_check(result, scope)


# --- 2. Medication is selected by period overlap ----------------------------------------


def statement(ident: str, status: str, **dates: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": ident,
        "status": status,
        "medicationCodeableConcept": {"text": "Synthetic drug 10mg tablets"},
        "subject": {"reference": "Patient/p1"},
        **dates,
    }


def request(ident: str, status: str, authored: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": "Synthetic drug 10mg tablets"},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": authored,
        **extra,
    }


def test_an_ongoing_prescription_begun_before_the_period_is_released() -> None:
    source = record(
        statement("ms-ongoing", "active", effectivePeriod={"start": "2021-03-01"}),
        request("mr-ongoing", "active", "2022-07-01"),
        request(
            "mr-repeat",
            "completed",
            "2023-10-01",
            dispenseRequest={"validityPeriod": {"start": "2023-10-01", "end": "2024-03-31"}},
        ),
        statement(
            "ms-stopped-2024",
            "stopped",
            effectivePeriod={"start": "2020-01-01", "end": "2024-01-15"},
        ),
    )
    scope = [item("medication")]

    result = build(source, scope)

    assert set(released(result)) == {
        "MedicationStatement/ms-ongoing",
        "MedicationRequest/mr-ongoing",
        "MedicationRequest/mr-repeat",
        "MedicationStatement/ms-stopped-2024",
    }
    assert passes_the_receivers_check(result, scope)


@pytest.mark.parametrize(
    "medication",
    [
        statement("m", "stopped", effectivePeriod={"start": "2021-03-01", "end": "2023-12-31"}),
        statement("m", "completed", effectivePeriod={"start": "2021-03-01"}),
        statement("m", "active", effectivePeriod={"start": "2025-01-01"}),
        statement("m", "active", effectiveDateTime="2023-06-01"),
        request("m", "completed", "2022-07-01"),
        request("m", "active", "2025-02-01"),
        request(
            "m", "stopped", "2021-01-01", dispenseRequest={"validityPeriod": {"end": "2023-12"}}
        ),
    ],
    ids=[
        "ended-before",
        "finished-no-end",
        "starts-after",
        "single-day-before",
        "completed-request",
        "request-after",
        "validity-ended-before",
    ],
)
def test_medication_that_does_not_meet_the_period_is_not_released(
    medication: dict[str, Any],
) -> None:
    assert build(record(medication), [item("medication")]).resource_count == 0


def test_a_medication_period_ending_before_it_starts_is_withheld_and_reported() -> None:
    backwards = statement(
        "m", "active", effectivePeriod={"start": "2024-05-01", "end": "2024-01-01"}
    )

    result = build(record(backwards), [item("medication")])

    assert result.resource_count == 0
    assert [w.resource for w in result.withheld] == ["MedicationStatement/m"]


def test_a_statement_whose_medication_is_not_in_the_record_is_withheld_and_reported() -> None:
    dangling = statement("ms-1", "active", effectiveDateTime="2024-05-01")
    del dangling["medicationCodeableConcept"]
    dangling["medicationReference"] = {"reference": "Medication/absent", "display": "Drug"}
    kept = statement("ms-2", "active", effectiveDateTime="2024-05-01")
    scope = [item("medication")]

    result = build(record(dangling, kept), scope)

    assert set(released(result)) == {"MedicationStatement/ms-2"}
    [withheld] = result.withheld
    assert withheld.resource == "MedicationStatement/ms-1"
    assert "not valid FHIR" in withheld.reason
    assert passes_the_receivers_check(result, scope)


# --- 3. A medication-only release says nothing of the diagnosis ------------------------


def schizophrenia_record() -> dict[str, Any]:
    diagnosis = condition("c-scz", (SNOMED, "58214004"))
    diagnosis["code"]["coding"][0]["display"] = "Schizophrenia"
    medicine = {"resourceType": "Medication", "id": "med-1", "code": {"text": "Olanzapine 10mg"}}
    olanzapine = statement(
        "ms-1",
        "active",
        effectivePeriod={"start": "2023-01-01"},
        medicationReference={"reference": "Medication/med-1", "display": "Olanzapine"},
        reasonCode=[{"coding": [{"system": SNOMED, "code": "58214004"}], "text": "Schizophrenia"}],
        reasonReference=[{"reference": "Condition/c-scz", "display": "Schizophrenia"}],
        note=[{"text": "Reviewed by the Schizophrenia clinic"}],
        dosage=[
            {
                "text": "10mg at night for schizophrenia",
                "patientInstruction": "for your schizophrenia",
                "additionalInstruction": [{"text": "Schizophrenia: monitor weight"}],
                "asNeededCodeableConcept": {"text": "Schizophrenia relapse"},
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            }
        ],
    )
    del olanzapine["medicationCodeableConcept"]
    prescription = request(
        "mr-1",
        "active",
        "2023-01-01",
        medicationCodeableConcept={"text": "Olanzapine 10mg tablets"},
        reasonCode=[{"text": "Schizophrenia"}],
        dosageInstruction=[{"text": "for schizophrenia"}],
        requester={"reference": "Practitioner/x", "display": "Dr Schizophrenia Clinic"},
    )
    return record(diagnosis, medicine, olanzapine, prescription)


def test_a_medication_only_release_does_not_name_the_diagnosis() -> None:
    scope = [item("medication")]

    result = build(schizophrenia_record(), scope)

    assert set(released(result)) == {
        "MedicationStatement/ms-1",
        "MedicationRequest/mr-1",
        "Medication/med-1",
    }
    text = result.bundle_json.decode().lower()
    assert "schizophrenia" not in text
    assert "58214004" not in text
    assert "c-scz" not in text
    assert released(result)["MedicationStatement/ms-1"]["dosage"] == [
        {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}
    ]
    assert released(result)["MedicationStatement/ms-1"]["medicationReference"] == {
        "reference": "Medication/med-1"
    }
    assert passes_the_receivers_check(result, scope)


def test_the_reason_reference_stays_when_the_diagnosis_is_released_too() -> None:
    scope = [item("medication"), item("mental_health_diagnoses")]

    result = build(schizophrenia_record(), scope)

    assert "Condition/c-scz" in released(result)
    assert released(result)["MedicationStatement/ms-1"]["reasonReference"] == [
        {"reference": "Condition/c-scz"}
    ]
    assert "reasonCode" not in released(result)["MedicationStatement/ms-1"]
    assert passes_the_receivers_check(result, scope)


# --- 4. Closed by default: only allow-listed elements leave -----------------------------


def test_only_allow_listed_elements_of_an_encounter_and_appointment_leave() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "identifier": [{"system": "https://gp-system.invalid/enc", "value": "E-42"}],
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB"},
        "type": [{"coding": [{"system": SNOMED, "code": "185349003"}], "text": "Review"}],
        "subject": {"reference": "Patient/p1", "display": "Testperson Synthetic"},
        "participant": [{"individual": {"reference": "Practitioner/x", "display": "Dr X"}}],
        "period": {"start": "2024-05-01T10:00:00Z"},
        "reasonCode": [{"text": "Low mood"}],
        "diagnosis": [{"condition": {"reference": "Condition/c1"}}],
        "location": [{"location": {"display": "Synthetic Mental Health Unit"}}],
    }
    appointment = {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "noshow",
        "description": "Follow-up for low mood",
        "reasonCode": [{"text": "Low mood"}],
        "start": "2024-05-02T09:00:00Z",
        "end": "2024-05-02T09:15:00Z",
        "participant": [
            {"actor": {"reference": "Patient/p1", "display": "Testperson"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/x", "display": "Dr X"}, "status": "accepted"},
        ],
    }
    scope = [item("appointments_non_attendance")]

    result = build(record(encounter, appointment), scope)

    assert released(result)["Encounter/e1"] | {"meta": None} == {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": None,
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB"},
        "subject": {"reference": "Patient/subject"},
        "period": {"start": "2024-05-01T10:00:00Z"},
    }
    assert released(result)["Appointment/a1"]["participant"] == [
        {"actor": {"reference": "Patient/subject"}, "status": "accepted"}
    ]
    text = result.bundle_json.decode()
    for absent in ("Low mood", "Dr X", "E-42", "Mental Health Unit", "Testperson"):
        assert absent not in text
    assert passes_the_receivers_check(result, scope)


def test_a_mental_health_service_keeps_only_its_specialty_coding() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB"},
        "serviceType": {
            "coding": [
                {"system": SNOMED, "code": "394587001", "display": "Psychiatry"},
                {"system": "https://local.invalid/clinic", "code": "EIP", "display": "Psychosis"},
            ],
            "text": "Early intervention in psychosis",
        },
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-05-01"},
    }
    scope = [item("mental_health_services")]

    result = build(record(encounter), scope)

    assert released(result)["Encounter/e1"]["serviceType"] == {
        "coding": [{"system": SNOMED, "code": "394587001", "display": "Psychiatry"}]
    }
    assert "sychosis" not in result.bundle_json.decode()
    assert passes_the_receivers_check(result, scope)


def test_every_released_resource_is_its_own_allow_listed_form() -> None:
    scope = [item("medication"), item("mental_health_diagnoses")]

    result = build(schizophrenia_record(), scope)

    for resource in released(result).values():
        shape = ALLOWED_ELEMENTS[resource["resourceType"]]
        assert prune(resource, shape) == resource


# --- 5. Contact details come from the Patient when approved -----------------------------


def with_contacts() -> dict[str, Any]:
    return patient(
        address=[
            {
                "use": "home",
                "line": ["2 Synthetic Road"],
                "city": "Testtown",
                "text": "2 Synthetic Road, Testtown (key safe 1234)",
                "period": {"start": "2023-09-01"},
            },
            {
                "use": "old",
                "line": ["9 Former Street"],
                "city": "Testtown",
                "period": {"start": "2019-01-01", "end": "2023-08-31"},
            },
            {"use": "temp", "line": ["Undated Hostel"], "city": "Testtown"},
        ],
        telecom=[
            {"system": "phone", "value": "01632 960001", "period": {"start": "2022-01-01"}},
            {
                "system": "email",
                "value": "old@synthetic.invalid",
                "period": {"start": "2018-01-01", "end": "2021-12-31"},
            },
        ],
        contact=[{"name": {"family": "Relative"}, "telecom": [{"value": "01632 960002"}]}],
        extension=[{"url": "https://example.invalid/ethnicity", "valueString": "Z"}],
    )


def test_contact_details_in_the_period_are_released_when_approved() -> None:
    scope = [item("contact_address_history")]

    result = build(record(who=with_contacts()), scope)

    released_patient = released(result)["Patient/subject"]
    assert set(released_patient) == {"resourceType", "id", "meta", "address", "telecom"}
    assert released_patient["address"] == [
        {
            "use": "home",
            "line": ["2 Synthetic Road"],
            "city": "Testtown",
            "period": {"start": "2023-09-01"},
        }
    ]
    assert [t["value"] for t in released_patient["telecom"]] == ["01632 960001"]
    assert [w.resource for w in result.withheld] == ["Patient.address[2]"]
    assert result.categories == frozenset({"contact_address_history"})
    text = result.bundle_json.decode()
    for absent in ("Former Street", "Undated Hostel", "key safe", "Relative", NHS_NUMBER):
        assert absent not in text
    assert passes_the_receivers_check(result, scope)


def test_a_wider_period_releases_the_former_address() -> None:
    scope = [item("contact_address_history", (date(2023, 1, 1), date(2024, 12, 31)))]

    result = build(record(who=with_contacts()), scope)

    lines = [a["line"] for a in released(result)["Patient/subject"]["address"]]
    assert lines == [["2 Synthetic Road"], ["9 Former Street"]]
    assert passes_the_receivers_check(result, scope)


def test_contact_details_never_leave_without_the_category() -> None:
    result = build(record(who=with_contacts()), [item("identity", None)])

    assert "address" not in released(result)["Patient/subject"]
    assert "01632" not in result.bundle_json.decode()


def test_identity_and_contact_details_share_one_patient() -> None:
    scope = [item("identity", None), item("contact_address_history")]

    result = build(record(who=with_contacts()), scope)

    [released_patient] = released(result).values()
    assert [tag["code"] for tag in released_patient["meta"]["tag"]] == [
        "identity",
        "contact_address_history",
    ]
    assert {"name", "identifier", "address", "telecom"} <= set(released_patient)
    assert passes_the_receivers_check(result, scope)

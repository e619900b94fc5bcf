"""The health release builder: only approved categories and periods, labelled, minimal.

Every record here is synthetic: hand-built resources around a "Synthetic" patient with
an NHS number from the 999 test range, or ``synthetic_patient_bundle``.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from agency_adapters.health import (
    InvalidRecord,
    ReleaseResult,
    UnsupportedScope,
    build_release,
    synthetic_patient_bundle,
)
from agency_adapters.health.mapping import (
    CATEGORY_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    MARKING_SYSTEM,
    RELEASE_PATIENT_REFERENCE,
    SUBJECT_REF_SYSTEM,
    classify,
)
from hub.model import Marking, ScopeItem

TODAY = date(2025, 6, 1)
SUBJECT_REF = "subj-7f3a9c"
MARKING = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))
NHS_NUMBER = "9990000018"  # test range, valid Modulus 11 check digit
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ALL_EVENT_CATEGORIES = (
    "physical_health_diagnoses",
    "mental_health_diagnoses",
    "substance_misuse",
    "mental_health_services",
    "ae_attendance",
    "appointments_non_attendance",
    "medication",
    "safeguarding_flags",
)


def item(category: str, start: date | None = None, end: date | None = None) -> ScopeItem:
    return ScopeItem(
        category=category, period_from=start, period_to=end, justification_present=True
    )


def wide(*categories: str) -> list[ScopeItem]:
    """Every category named, over the whole synthetic history."""
    return [item(c, date(2020, 1, 1), TODAY) for c in categories]


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "extension": [{"url": "https://example.invalid/ethnicity", "valueString": "Z"}],
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}],
        "name": [{"family": "Synthetic", "given": ["Testperson"]}],
        "telecom": [{"system": "phone", "value": "01632 960000"}],
        "gender": "unknown",
        "birthDate": "2001-02-03",
        "address": [{"line": ["1 Synthetic Road"], "city": "Testtown"}],
        "generalPractitioner": [{"reference": "Organization/gp"}],
        **extra,
    }


def condition(ident: str, system: str, code: str, onset: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": ident,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1", "display": "Testperson Synthetic"},
        "onsetDateTime": onset,
        **extra,
    }


def record(*resources: dict[str, Any], with_patient: bool = True) -> dict[str, Any]:
    practice = {"resourceType": "Organization", "id": "gp", "name": "Synthetic Surgery"}
    entries = [practice, *resources]
    if with_patient:
        entries.insert(0, patient())
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in entries],
    }


def build(source: dict[str, Any] | Bundle, scope: list[ScopeItem]) -> ReleaseResult:
    return build_release(source, scope, marking=MARKING, subject_ref=SUBJECT_REF)


def released(result: ReleaseResult) -> list[dict[str, Any]]:
    bundle = json.loads(result.bundle_json)
    return [entry["resource"] for entry in bundle.get("entry", [])]


def ids(result: ReleaseResult) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for r in released(result)}


@pytest.fixture
def synthetic() -> dict[str, Any]:
    return synthetic_patient_bundle(7, today=TODAY)


# --- only approved categories --------------------------------------------------------


def test_only_the_approved_category_is_released(synthetic: dict[str, Any]) -> None:
    result = build(synthetic, wide("mental_health_diagnoses"))

    assert ids(result) == {"Condition/cond-depression", "Condition/cond-anxiety"}
    assert result.categories == frozenset({"mental_health_diagnoses"})
    assert result.resource_count == 2
    assert result.excluded_count == len(synthetic["entry"]) - 2


def test_unapproved_categories_are_excluded_even_when_present(
    synthetic: dict[str, Any],
) -> None:
    result = build(synthetic, wide("medication", "ae_attendance"))

    types = {r["resourceType"] for r in released(result)}
    assert types == {"MedicationStatement", "MedicationRequest", "Encounter"}
    assert all(r["class"]["code"] == "EMER" for r in released(result) if "class" in r)
    # Nothing of the record's diagnoses, flags or the patient's identity goes with them.
    text = result.bundle_json.decode()
    for absent in ("F32.1", "Alcohol abuse", "Adult at risk", NHS_NUMBER, "Synthetic"):
        assert absent not in text


def test_substance_misuse_is_not_released_as_a_mental_health_diagnosis() -> None:
    source = record(
        condition("c-alcohol", ICD10, "F10.2", "2024-05-01"),
        condition("c-depression", ICD10, "F32.1", "2024-05-01"),
        condition("c-opioid", SNOMED, "75544000", "2024-05-01"),
    )

    mental = build(source, wide("mental_health_diagnoses"))
    substance = build(source, wide("substance_misuse"))

    assert ids(mental) == {"Condition/c-depression"}
    assert ids(substance) == {"Condition/c-alcohol", "Condition/c-opioid"}


def test_a_mental_health_code_beats_a_physical_one_on_the_same_condition() -> None:
    both = condition("c1", ICD10, "F41.1", "2024-05-01")
    both["code"]["coding"].append({"system": SNOMED, "code": "195967001"})

    assert ids(build(record(both), wide("physical_health_diagnoses"))) == set()
    assert ids(build(record(both), wide("mental_health_diagnoses"))) == {"Condition/c1"}


def test_an_uncoded_condition_is_never_released() -> None:
    uncoded = condition("c1", ICD10, "F32.1", "2024-05-01")
    uncoded["code"] = {"text": "low mood"}

    result = build(record(uncoded), wide(*ALL_EVENT_CATEGORIES))

    assert result.resource_count == 0
    assert classify(uncoded) is None


@pytest.mark.parametrize(
    "change",
    [
        {"verificationStatus": {"coding": [{"code": "refuted"}]}},
        {"verificationStatus": {"coding": [{"code": "entered-in-error"}]}},
        {"modifierExtension": [{"url": "https://example.invalid/x", "valueBoolean": True}]},
        {"subject": {"reference": "Patient/someone-else"}},
    ],
    ids=["refuted", "entered-in-error", "modifier-extension", "another-patient"],
)
def test_records_that_must_not_go_are_excluded(change: dict[str, Any]) -> None:
    bad = condition("c1", ICD10, "J45.9", "2024-05-01") | change

    assert build(record(bad), wide("physical_health_diagnoses")).resource_count == 0


def test_encounters_are_split_between_ae_services_and_attendances() -> None:
    def encounter(ident: str, klass: str, **extra: Any) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": ident,
            "status": "finished",
            "class": {"system": ACT_CODE, "code": klass},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2024-05-01T10:00:00Z"},
            **extra,
        }

    psychiatry = {"coding": [{"system": SNOMED, "code": "394587001"}]}
    source = record(
        encounter("e-ae", "EMER"),
        encounter("e-gp", "AMB"),
        encounter("e-inpatient", "IMP"),
        encounter("e-mh", "AMB", serviceType=psychiatry),
        encounter("e-mh-ae", "EMER", serviceType=psychiatry),
    )

    assert ids(build(source, wide("ae_attendance"))) == {"Encounter/e-ae"}
    assert ids(build(source, wide("appointments_non_attendance"))) == {"Encounter/e-gp"}
    assert ids(build(source, wide("mental_health_services"))) == {
        "Encounter/e-mh",
        "Encounter/e-mh-ae",
    }


def test_unsupported_categories_are_refused_not_silently_empty(
    synthetic: dict[str, Any],
) -> None:
    with pytest.raises(UnsupportedScope, match="ethnicity"):
        build(synthetic, [item("ethnicity"), *wide("medication")])


def test_a_marking_above_official_is_refused(synthetic: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedScope, match="MK-09"):
        build_release(
            synthetic,
            wide("medication"),
            marking=Marking(tier="SECRET"),
            subject_ref=SUBJECT_REF,
        )


# --- periods ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "included"),
    [
        (date(2024, 3, 1), date(2024, 3, 1), True),  # both bounds inclusive
        (date(2024, 3, 1), None, True),
        (None, date(2024, 3, 1), True),
        (date(2024, 3, 2), date(2024, 12, 31), False),
        (date(2023, 1, 1), date(2024, 2, 29), False),
    ],
)
def test_period_bounds_are_inclusive(start: date | None, end: date | None, included: bool) -> None:
    source = record(condition("c1", ICD10, "J45.9", "2024-03-01"))

    result = build(source, [item("physical_health_diagnoses", start, end)])

    assert (ids(result) == {"Condition/c1"}) is included


def test_a_datetime_counts_on_the_date_written_in_it() -> None:
    late = condition("c1", ICD10, "J45.9", "2024-03-01T23:30:00+01:00")
    scope = [item("physical_health_diagnoses", date(2024, 3, 1), date(2024, 3, 1))]

    assert ids(build(record(late), scope)) == {"Condition/c1"}


@pytest.mark.parametrize(
    ("start", "included"), [(date(2024, 3, 1), True), (date(2024, 3, 10), False)]
)
def test_a_partial_date_must_lie_wholly_inside(start: date, included: bool) -> None:
    month_only = condition("c1", ICD10, "J45.9", "2024-03")
    scope = [item("physical_health_diagnoses", start, date(2024, 3, 31))]

    assert (build(record(month_only), scope).resource_count == 1) is included


def test_the_date_element_falls_back_in_order() -> None:
    recorded_only = condition("c1", ICD10, "J45.9", "2024-03-01")
    del recorded_only["onsetDateTime"]
    recorded_only["recordedDate"] = "2022-07-01"
    scope = [item("physical_health_diagnoses", date(2022, 7, 1), date(2022, 7, 1))]

    assert ids(build(record(recorded_only), scope)) == {"Condition/c1"}


def test_undated_resources_of_a_dated_category_are_excluded() -> None:
    undated = condition("c1", ICD10, "J45.9", "2024-03-01")
    del undated["onsetDateTime"]

    assert build(record(undated), [item("physical_health_diagnoses")]).resource_count == 0


def test_two_periods_for_one_category_release_both() -> None:
    source = record(
        condition("c-2022", ICD10, "J45.9", "2022-05-01"),
        condition("c-2023", ICD10, "J45.9", "2023-05-01"),
        condition("c-2024", ICD10, "J45.9", "2024-05-01"),
    )
    scope = [
        item("physical_health_diagnoses", date(2022, 1, 1), date(2022, 12, 31)),
        item("physical_health_diagnoses", date(2024, 1, 1), date(2024, 12, 31)),
    ]

    assert ids(build(source, scope)) == {"Condition/c-2022", "Condition/c-2024"}


# --- labels and shape ------------------------------------------------------------------


def test_every_resource_and_the_bundle_carry_the_marking(synthetic: dict[str, Any]) -> None:
    result = build(synthetic, [item("identity"), *wide(*ALL_EVENT_CATEGORIES)])
    bundle = json.loads(result.bundle_json)
    expected = [
        {"system": MARKING_SYSTEM, "code": MARKING.render(), "display": MARKING.render()},
        {"system": CONFIDENTIALITY_SYSTEM, "code": "R"},
    ]

    assert bundle["meta"]["security"] == expected
    assert result.resource_count > 10
    for resource in released(result):
        assert resource["meta"]["security"] == expected
        tags = resource["meta"]["tag"]
        assert tags
        assert all(tag["system"] == CATEGORY_SYSTEM for tag in tags)
        assert {tag["code"] for tag in tags} <= result.categories


def test_output_validates_and_names_the_subject(synthetic: dict[str, Any]) -> None:
    result = build(synthetic, wide(*ALL_EVENT_CATEGORIES))

    model = Bundle.model_validate(json.loads(result.bundle_json))
    assert model.type == "collection"
    assert model.identifier is not None
    assert (model.identifier.system, model.identifier.value) == (SUBJECT_REF_SYSTEM, SUBJECT_REF)
    assert result.resource_count == len(model.entry or [])


def test_the_same_input_gives_the_same_bytes(synthetic: dict[str, Any]) -> None:
    scope = wide(*ALL_EVENT_CATEGORIES)

    assert build(synthetic, scope).bundle_json == build(copy.deepcopy(synthetic), scope).bundle_json


def test_free_text_and_source_metadata_are_removed(synthetic: dict[str, Any]) -> None:
    synthetic["entry"][2]["resource"]["meta"] = {"source": "https://gp-system.invalid/x"}
    result = build(synthetic, wide(*ALL_EVENT_CATEGORIES))
    text = result.bundle_json.decode()

    assert "never released" not in text
    assert "gp-system.invalid" not in text
    for resource in released(result):
        assert not {"text", "note", "comment", "contained", "extension"} & set(resource)


def test_the_input_is_never_changed(synthetic: dict[str, Any]) -> None:
    before = copy.deepcopy(synthetic)
    model = Bundle.model_validate(copy.deepcopy(synthetic))
    model_before = model.model_dump(mode="json")

    build(synthetic, [item("identity"), item("gp_registration"), *wide(*ALL_EVENT_CATEGORIES)])
    build(model, [item("identity"), item("gp_registration"), *wide(*ALL_EVENT_CATEGORIES)])

    assert synthetic == before
    assert model.model_dump(mode="json") == model_before


def test_a_fhir_model_and_its_dict_give_the_same_release(synthetic: dict[str, Any]) -> None:
    scope = [item("identity"), *wide(*ALL_EVENT_CATEGORIES)]

    from_model = build(Bundle.model_validate(copy.deepcopy(synthetic)), scope)

    assert from_model.bundle_json == build(synthetic, scope).bundle_json


# --- identity ----------------------------------------------------------------------------


def test_identity_releases_demographics_only() -> None:
    result = build(record(condition("c1", ICD10, "J45.9", "2024-05-01")), [item("identity")])

    [released_patient] = released(result)
    assert set(released_patient) == {
        "resourceType",
        "id",
        "meta",
        "identifier",
        "name",
        "gender",
        "birthDate",
    }
    assert released_patient["id"] == "subject"
    assert released_patient["identifier"][0]["value"] == NHS_NUMBER
    # identity never brings another resource with it
    assert result.categories == frozenset({"identity"})


def test_without_identity_nothing_identifies_the_patient(synthetic: dict[str, Any]) -> None:
    result = build(synthetic, wide(*ALL_EVENT_CATEGORIES))
    text = result.bundle_json.decode()
    patient_id = synthetic["entry"][1]["resource"]["id"]

    assert "Patient" not in {r["resourceType"] for r in released(result)}
    nhs_number = synthetic["entry"][1]["resource"]["identifier"][0]["value"]
    for absent in (nhs_number, "Synthetic Patient", patient_id, "Synthetic Road"):
        assert absent not in text
    for resource in released(result):
        if "subject" in resource:
            assert resource["subject"] == {"reference": RELEASE_PATIENT_REFERENCE}


def test_a_reference_to_the_patient_by_nhs_number_is_rewritten() -> None:
    logical = condition("c1", ICD10, "J45.9", "2024-05-01")
    logical["subject"] = {
        "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}
    }

    result = build(record(logical), wide("physical_health_diagnoses"))

    assert released(result)[0]["subject"] == {"reference": RELEASE_PATIENT_REFERENCE}
    assert NHS_NUMBER not in result.bundle_json.decode()


def test_gp_registration_releases_the_practice_but_no_demographics() -> None:
    result = build(record(), [item("gp_registration")])

    by_type = {r["resourceType"]: r for r in released(result)}
    assert set(by_type) == {"Patient", "Organization"}
    assert set(by_type["Patient"]) == {"resourceType", "id", "meta", "generalPractitioner"}
    assert by_type["Organization"]["name"] == "Synthetic Surgery"
    assert result.excluded_count == 0


def test_identity_and_gp_registration_share_one_patient() -> None:
    result = build(record(), [item("identity"), item("gp_registration")])

    [released_patient] = [r for r in released(result) if r["resourceType"] == "Patient"]
    tags = [tag["code"] for tag in released_patient["meta"]["tag"]]
    assert tags == ["identity", "gp_registration"]
    assert released(result)[0]["resourceType"] == "Patient"  # the Patient comes first


def test_a_referenced_medication_is_released_with_its_statement() -> None:
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "Sertraline"}}
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "medicationReference": {"reference": "Medication/m1"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01",
    }
    unrelated = {"resourceType": "Medication", "id": "m2", "code": {"text": "Other"}}

    result = build(record(statement, medication, unrelated), wide("medication"))

    assert ids(result) == {"MedicationStatement/ms1", "Medication/m1"}


# --- refused input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"resourceType": "Patient"}, "not a FHIR Bundle"),
        ({"resourceType": "Bundle", "type": "collection", "entry": "x"}, "not a valid"),
        (
            record(condition("c1", ICD10, "J45.9", "2024-13-45")),
            "not a valid FHIR R4 Bundle",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "NotAResource"}}],
            },
            "unknown FHIR resource type",
        ),
        (record(with_patient=False), "exactly one Patient"),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": patient()}, {"resource": patient(id="p2")}],
            },
            "exactly one Patient",
        ),
    ],
    ids=["not-a-bundle", "bad-entry", "bad-date", "unknown-type", "no-patient", "two-patients"],
)
def test_invalid_records_are_refused(source: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        build(source, wide("physical_health_diagnoses"))

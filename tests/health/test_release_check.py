"""The receiving node's check that a decrypted release matches its envelope.

A release built by the health node passes; each way a bundle can say more than, or
something other than, its envelope is rejected with a problem that names it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from agency_adapters.health import build_release, synthetic_patient_bundle
from agency_adapters.node import ReleaseMismatch, check_release, require_release_matches
from hub.model import Author, EnvelopeFields, Marking, ScopeItem

TODAY = date(2025, 6, 1)
SUBJECT_REF = "subj-7f3a9c"
MARKING = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))
YEAR = (date(2024, 6, 1), TODAY)
JUSTIFIED: dict[str, Any] = {"justification_present": True}
CATEGORIES = (
    "mental_health_diagnoses",
    "medication",
    "ae_attendance",
    "appointments_non_attendance",
    "safeguarding_flags",
)


def scope(*, identity: bool = True) -> tuple[ScopeItem, ...]:
    items = [
        ScopeItem(category=c, period_from=YEAR[0], period_to=YEAR[1], justification_present=True)
        for c in CATEGORIES
    ]
    if identity:
        items.append(ScopeItem(category="identity", justification_present=True))
    return tuple(items)


def envelope(**changes: Any) -> EnvelopeFields:
    fields: dict[str, Any] = {
        "kind": "release",
        "author": Author(user_ref="user-0001", role="CALDICOTT_GUARDIAN", vetting="BPSS"),
        "recipients": ("police.ctp-sw",),
        "marking": MARKING,
        "subject_ref": SUBJECT_REF,
        "purpose": "PREVENT_TRIAGE",
        "scope": scope(),
        "in_reply_to": "01a1fca0-7fb0-756c-a2a0-f908835c17ee",
    }
    return EnvelopeFields(**(fields | changes))


@pytest.fixture(scope="module")
def release() -> bytes:
    record = synthetic_patient_bundle(3, today=TODAY)
    return build_release(record, scope(), marking=MARKING, subject_ref=SUBJECT_REF).bundle_json


def tampered(release: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    bundle = json.loads(release)
    change(bundle)
    return json.dumps(bundle).encode()


def resource_of(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    )


def one_problem(problems: list[str], *fragments: str) -> str:
    """The problem list holds exactly one problem, and it says all of ``fragments``."""
    assert len(problems) == 1, problems
    for fragment in fragments:
        assert fragment in problems[0]
    return problems[0]


def test_a_built_release_passes(release: bytes) -> None:
    assert check_release(envelope(), release) == []
    require_release_matches(envelope(), release)


def test_a_release_without_identity_passes_too() -> None:
    record = synthetic_patient_bundle(4, today=TODAY)
    bundle_json = build_release(
        record, scope(identity=False), marking=MARKING, subject_ref=SUBJECT_REF
    ).bundle_json

    assert check_release(envelope(scope=scope(identity=False)), bundle_json) == []


def test_an_extra_resource_of_an_unapproved_category_is_rejected(release: bytes) -> None:
    def add_physical(bundle: dict[str, Any]) -> None:
        extra = copy.deepcopy(resource_of(bundle, "Condition"))
        extra["id"] = "smuggled"
        extra["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45.9"}]}
        extra["meta"]["tag"] = [{"system": "urn:seh:category", "code": "physical_health_diagnoses"}]
        bundle["entry"].append({"resource": extra})

    one_problem(
        check_release(envelope(), tampered(release, add_physical)),
        "Condition/smuggled",
        "physical_health_diagnoses",
        "scope does not name",
    )


def test_a_resource_tagged_against_its_content_is_rejected(release: bytes) -> None:
    def mislabel(bundle: dict[str, Any]) -> None:
        condition = resource_of(bundle, "Condition")
        condition["meta"]["tag"] = [{"system": "urn:seh:category", "code": "medication"}]

    one_problem(
        check_release(envelope(), tampered(release, mislabel)),
        "tagged medication",
        "belongs to mental_health_diagnoses",
    )


def test_a_release_about_another_subject_is_rejected(release: bytes) -> None:
    one_problem(
        check_release(envelope(subject_ref="subj-someone-else"), release),
        "Bundle.identifier names subject 'subj-7f3a9c'",
        "subj-someone-else",
    )


def test_a_resource_about_someone_else_is_rejected(release: bytes) -> None:
    def other_subject(bundle: dict[str, Any]) -> None:
        resource_of(bundle, "Flag")["subject"] = {"reference": "Patient/another"}

    one_problem(
        check_release(envelope(), tampered(release, other_subject)),
        "Flag/flag-adult-at-risk",
        "not about the release subject",
    )


def test_an_out_of_period_date_is_rejected(release: bytes) -> None:
    def backdate(bundle: dict[str, Any]) -> None:
        resource_of(bundle, "Flag")["period"]["start"] = "2024-05-31"

    one_problem(
        check_release(envelope(), tampered(release, backdate)),
        "Flag/flag-adult-at-risk",
        "dated 2024-05-31 (Flag.period.start)",
        "outside the approved period for safeguarding_flags (2024-06-01 to 2025-06-01)",
    )


def test_an_undated_event_is_rejected(release: bytes) -> None:
    def undate(bundle: dict[str, Any]) -> None:
        del resource_of(bundle, "Flag")["period"]

    one_problem(check_release(envelope(), tampered(release, undate)), "has no date")


def test_a_missing_marking_label_is_rejected(release: bytes) -> None:
    def unlabel(bundle: dict[str, Any]) -> None:
        security = resource_of(bundle, "Encounter")["meta"]["security"]
        security[:] = [c for c in security if c["system"] != "urn:seh:marking"]

    one_problem(
        check_release(envelope(), tampered(release, unlabel)),
        "Encounter/",
        "not labelled with the envelope marking",
        "(none)",
    )


def test_a_different_marking_is_rejected(release: bytes) -> None:
    problems = check_release(envelope(marking=Marking(tier="OFFICIAL")), release)

    assert problems
    assert all("not labelled with the envelope marking 'OFFICIAL'" in p for p in problems)


def test_a_missing_confidentiality_label_is_rejected(release: bytes) -> None:
    def drop_r(bundle: dict[str, Any]) -> None:
        security = resource_of(bundle, "Condition")["meta"]["security"]
        security[:] = [c for c in security if c["code"] != "R"]

    one_problem(check_release(envelope(), tampered(release, drop_r)), "confidentiality R")


def test_a_patient_with_more_than_identity_is_rejected(release: bytes) -> None:
    def add_address(bundle: dict[str, Any]) -> None:
        resource_of(bundle, "Patient")["address"] = [{"city": "Testtown"}]

    one_problem(
        check_release(envelope(), tampered(release, add_address)),
        "Patient/subject",
        "carries address",
    )


def test_free_text_is_rejected(release: bytes) -> None:
    def add_note(bundle: dict[str, Any]) -> None:
        resource_of(bundle, "Condition")["note"] = [{"text": "more than was approved"}]

    one_problem(check_release(envelope(), tampered(release, add_note)), "carries note")


def test_a_missing_subject_identifier_is_rejected(release: bytes) -> None:
    def drop(bundle: dict[str, Any]) -> None:
        del bundle["identifier"]

    one_problem(check_release(envelope(), tampered(release, drop)), "Bundle.identifier")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b'{"resourceType": "Bundle", "resourceType": "Bundle"}', "duplicate key"),
        (b"[]", "not a JSON object"),
        (b'{"resourceType": "Patient"}', "not a valid FHIR R4 Bundle"),
        (b'{"resourceType": "Bundle", "type": "collection", "bogus": 1}', "not a valid FHIR"),
    ],
)
def test_a_payload_that_is_not_a_bundle_is_rejected(payload: bytes, fragment: str) -> None:
    one_problem(check_release(envelope(), payload), fragment)


def test_the_envelope_must_be_a_release(release: bytes) -> None:
    one_problem(
        check_release(envelope(kind="note"), release), "the envelope is a note, not a release"
    )


def test_require_release_matches_raises_with_the_problems(release: bytes) -> None:
    with pytest.raises(ReleaseMismatch) as caught:
        require_release_matches(envelope(subject_ref="subj-someone-else"), release)

    assert len(caught.value.problems) == 1
    assert "subj-someone-else" in str(caught.value)


# --- issue 8: the check shares the builder's allow-list and period rules ----------------


def medication_statement(bundle: dict[str, Any], ident: str) -> dict[str, Any]:
    return next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement" and e["resource"]["id"] == ident
    )


def test_an_ongoing_medication_begun_before_the_period_passes(release: bytes) -> None:
    salbutamol = medication_statement(json.loads(release), "med-salbutamol")

    assert salbutamol["effectivePeriod"]["start"] < YEAR[0].isoformat()
    assert "end" not in salbutamol["effectivePeriod"]
    assert check_release(envelope(), release) == []


def test_a_medication_that_ended_before_the_period_is_rejected(release: bytes) -> None:
    def end_it(bundle: dict[str, Any]) -> None:
        medication_statement(bundle, "med-salbutamol")["effectivePeriod"]["end"] = "2024-05-31"

    one_problem(
        check_release(envelope(), tampered(release, end_it)),
        "MedicationStatement/med-salbutamol",
        "outside the approved period for medication",
    )


def test_a_reason_code_on_a_medication_is_rejected(release: bytes) -> None:
    def add_reason(bundle: dict[str, Any]) -> None:
        medication_statement(bundle, "med-sertraline")["reasonCode"] = [{"text": "Depression"}]

    one_problem(
        check_release(envelope(), tampered(release, add_reason)),
        "MedicationStatement/med-sertraline",
        "carries reasonCode",
    )


def test_dosage_text_is_rejected(release: bytes) -> None:
    def add_text(bundle: dict[str, Any]) -> None:
        dosage = medication_statement(bundle, "med-sertraline")["dosage"][0]
        dosage["patientInstruction"] = "for low mood"

    one_problem(
        check_release(envelope(), tampered(release, add_text)),
        "carries dosage[0].patientInstruction",
    )


def test_a_reason_reference_to_a_resource_not_released_is_rejected() -> None:
    record = synthetic_patient_bundle(3, today=TODAY)
    medication_only = (
        ScopeItem(category="medication", period_from=YEAR[0], period_to=YEAR[1], **JUSTIFIED),
    )
    bundle_json = build_release(
        record, medication_only, marking=MARKING, subject_ref=SUBJECT_REF
    ).bundle_json

    def point_at_diagnosis(bundle: dict[str, Any]) -> None:
        medication_statement(bundle, "med-sertraline")["reasonReference"] = [
            {"reference": "Condition/cond-depression"}
        ]

    assert check_release(envelope(scope=medication_only), bundle_json) == []
    one_problem(
        check_release(envelope(scope=medication_only), tampered(bundle_json, point_at_diagnosis)),
        "carries reasonReference",
    )


def test_a_coding_of_another_category_is_rejected(release: bytes) -> None:
    def add_physical_code(bundle: dict[str, Any]) -> None:
        condition = resource_of(bundle, "Condition")
        condition["code"]["coding"].append(
            {"system": "http://snomed.info/sct", "code": "195967001"}
        )

    one_problem(
        check_release(envelope(), tampered(release, add_physical_code)), "carries code.coding[1]"
    )


def test_a_condition_with_an_unclassified_code_is_rejected(release: bytes) -> None:
    def add_unknown_code(bundle: dict[str, Any]) -> None:
        condition = resource_of(bundle, "Condition")
        condition["code"]["coding"].append(
            {"system": "http://snomed.info/sct", "code": "191526005"}
        )

    one_problem(
        check_release(envelope(), tampered(release, add_unknown_code)),
        "belongs to no releasable category",
    )


def test_contact_details_outside_the_approved_period_are_rejected() -> None:
    record = synthetic_patient_bundle(3, today=TODAY)
    contact = (
        ScopeItem(
            category="contact_address_history",
            period_from=YEAR[0],
            period_to=YEAR[1],
            **JUSTIFIED,
        ),
    )
    bundle_json = build_release(
        record, contact, marking=MARKING, subject_ref=SUBJECT_REF
    ).bundle_json

    def add_old_address(bundle: dict[str, Any]) -> None:
        resource_of(bundle, "Patient")["address"].append(
            {"line": ["9 Former Street"], "period": {"start": "2019-01-01", "end": "2020-01-01"}}
        )

    assert "address" in resource_of(json.loads(bundle_json), "Patient")
    assert check_release(envelope(scope=contact), bundle_json) == []
    one_problem(
        check_release(envelope(scope=contact), tampered(bundle_json, add_old_address)),
        "Patient/subject",
        "carries address[1]",
    )

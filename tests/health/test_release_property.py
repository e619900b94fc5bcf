"""Property: whatever the record and the approval, the release holds no more than approved.

Hypothesis draws synthetic FHIR records (Conditions coded physical, mental health,
substance misuse, unknown or in another system; medication with random periods and
statuses; Encounters, Appointments and Flags; a Patient with dated and undated
addresses and telecoms) and random approvals (a random set of categories, each with a
random period). For every pair the builder's output must hold only approved categories,
in their periods, only allow-listed elements, none of the free text planted in the
record, and must pass the receiver's ``check_release``. The expected classification of
each Condition comes from the generator (which pool its codes were drawn from), not
from the mapping under test.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agency_adapters.health import build_release
from agency_adapters.health.mapping import (
    ALLOWED_ELEMENTS,
    CATEGORY_SYSTEM,
    PATIENT_ELEMENTS,
    Shape,
    category_tags,
)
from agency_adapters.node import check_release
from hub.model import Author, EnvelopeFields, Marking, ScopeItem

SUBJECT_REF = "subj-prop-0001"
MARKING = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
READ = "http://read.info/readv2"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PSYCHIATRY = {"coding": [{"system": SNOMED, "code": "394587001"}]}
# Planted in elements no category releases; it must never appear in a release.
LEAK = "LEAKED-TEXT"

# Code pools, by what the code is (the oracle for the Condition rule).
CODES: dict[str, list[tuple[str, str]]] = {
    "physical": [
        (ICD10, "J45.9"),
        (ICD10, "I10"),
        (ICD10, "S52.5"),
        (SNOMED, "195967001"),
        (SNOMED, "44054006"),
    ],
    "mental": [(ICD10, "F32.1"), (ICD10, "F20.0"), (SNOMED, "58214004"), (SNOMED, "35489007")],
    "substance": [(ICD10, "F10.2"), (ICD10, "F11.2"), (SNOMED, "7200002")],
    "unknown": [
        (SNOMED, "191526005"),
        (SNOMED, "1234567000"),
        (ICD10, "X60"),
        (ICD10, "Z91.5"),
        (ICD10, "R45.8"),
        (ICD10, "K70.3"),
    ],
    "other-system": [(READ, "Eu20."), (READ, "H33..")],
}
WEIGHTED_POOLS = ("physical",) * 3 + ("mental",) * 2 + ("substance", "unknown", "other-system")
CATEGORY_OF_POOL = {
    "physical": "physical_health_diagnoses",
    "mental": "mental_health_diagnoses",
    "substance": "substance_misuse",
}
CATEGORIES = (
    "identity",
    "gp_registration",
    "contact_address_history",
    "physical_health_diagnoses",
    "mental_health_diagnoses",
    "substance_misuse",
    "mental_health_services",
    "ae_attendance",
    "appointments_non_attendance",
    "medication",
    "safeguarding_flags",
)
FIRST_DAY = date(2019, 1, 1)

days = st.integers(min_value=0, max_value=6 * 365).map(lambda n: FIRST_DAY + timedelta(days=n))
subjects = st.sampled_from(
    [{"reference": "Patient/p1", "display": f"{LEAK} name"}] * 4
    + [{"reference": "Patient/someone-else"}]
)


@st.composite
def periods(draw: st.DrawFn) -> tuple[date | None, date | None]:
    start = draw(st.none() | days)
    end = draw(st.none() | days)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return start, end


@st.composite
def conditions(draw: st.DrawFn, ident: str) -> dict[str, Any]:
    # Mostly one coding from a classified pool, so every category is released often.
    size = draw(st.sampled_from([1, 1, 1, 2, 3]))
    pools = [draw(st.sampled_from(WEIGHTED_POOLS)) for _ in range(size)]
    codings = [
        {"system": system, "code": code, "display": f"display of {code}"}
        for system, code in (draw(st.sampled_from(CODES[pool])) for pool in pools)
    ]
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": ident,
        "code": {"coding": codings, "text": f"{LEAK} diagnosis text"},
        "subject": draw(subjects),
        "onsetDateTime": draw(days).isoformat(),
        "note": [{"text": f"{LEAK} note"}],
        "evidence": [{"detail": [{"display": f"{LEAK} evidence"}]}],
    }
    if draw(st.booleans()):
        resource["verificationStatus"] = {
            "coding": [{"code": draw(st.sampled_from(["confirmed", "refuted"]))}]
        }
    return resource


@st.composite
def medications(draw: st.DrawFn, ident: str, condition_ids: list[str]) -> dict[str, Any]:
    start = draw(days)
    end = draw(
        st.none() | st.integers(min_value=0, max_value=900).map(lambda n: start + timedelta(days=n))
    )
    resource: dict[str, Any] = {
        "id": ident,
        "medicationCodeableConcept": {"text": "Synthetic drug 10mg tablets"},
        "subject": draw(subjects),
        "reasonCode": [{"text": f"{LEAK} reason"}],
        "note": [{"text": f"{LEAK} note"}],
    }
    if condition_ids and draw(st.booleans()):
        target = draw(st.sampled_from(condition_ids))
        resource["reasonReference"] = [{"reference": f"Condition/{target}", "display": LEAK}]
    dosage = {"text": f"{LEAK} dosage", "patientInstruction": f"{LEAK} instruction"}
    if draw(st.booleans()):
        resource |= {
            "resourceType": "MedicationStatement",
            "status": draw(st.sampled_from(["active", "completed", "stopped", "intended"])),
            "dosage": [dosage],
        }
        form = draw(st.sampled_from(["dateTime", "period", "period", "asserted"]))
        if form == "dateTime":
            resource["effectiveDateTime"] = start.isoformat()
        elif form == "period":
            resource["effectivePeriod"] = {"start": start.isoformat()} | (
                {"end": end.isoformat()} if end else {}
            )
        else:
            resource["dateAsserted"] = start.isoformat()
    else:
        resource |= {
            "resourceType": "MedicationRequest",
            "status": draw(st.sampled_from(["active", "completed", "stopped", "on-hold"])),
            "intent": "order",
            "authoredOn": start.isoformat(),
            "dosageInstruction": [dosage],
            "requester": {"display": f"{LEAK} prescriber"},
        }
        if end is not None:
            resource["dispenseRequest"] = {"validityPeriod": {"end": end.isoformat()}}
    return resource


@st.composite
def encounters(draw: st.DrawFn, ident: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": ident,
        "status": "finished",
        "class": {"system": ACT_CODE, "code": draw(st.sampled_from(["EMER", "AMB", "IMP", "VR"]))},
        "subject": draw(subjects),
        "period": {"start": f"{draw(days).isoformat()}T10:00:00Z"},
        "reasonCode": [{"text": f"{LEAK} reason"}],
        "participant": [{"individual": {"display": f"{LEAK} clinician"}}],
    }
    if draw(st.booleans()):
        resource["serviceType"] = PSYCHIATRY | {"text": f"{LEAK} service"}
    return resource


@st.composite
def appointments(draw: st.DrawFn, ident: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": ident,
        "status": draw(st.sampled_from(["booked", "noshow", "fulfilled", "proposed"])),
        "start": f"{draw(days).isoformat()}T09:00:00Z",
        "end": "2030-01-01T09:15:00Z",
        "participant": [
            {"actor": draw(subjects), "status": "accepted"},
            {"actor": {"reference": "Practitioner/x", "display": LEAK}, "status": "accepted"},
        ],
        "comment": f"{LEAK} comment",
        "description": f"{LEAK} description",
    }
    if draw(st.booleans()):
        resource["specialty"] = [PSYCHIATRY]
    return resource


@st.composite
def flags(draw: st.DrawFn, ident: str) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "id": ident,
        "status": "active",
        "code": {"text": "Synthetic safeguarding flag"},
        "subject": draw(subjects),
        "period": {"start": draw(days).isoformat()},
        "author": {"display": f"{LEAK} author"},
    }


@st.composite
def contact_entries(draw: st.DrawFn, kind: str) -> list[dict[str, Any]]:
    entries = []
    for number in range(draw(st.integers(min_value=0, max_value=3))):
        entry: dict[str, Any] = (
            {"line": [f"{number} Synthetic Road"], "city": "Testtown", "text": LEAK}
            if kind == "address"
            else {"system": "phone", "value": f"01632 96000{number}"}
        )
        start, end = draw(periods())
        if start is not None or end is not None:
            entry["period"] = {
                key: value.isoformat()
                for key, value in (("start", start), ("end", end))
                if value is not None
            }
        entry["use"] = draw(st.sampled_from(["home", "old", "temp"]))
        entries.append(entry)
    return entries


def bundle_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": resource} for resource in resources],
    }


def synthetic_patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
        "name": [{"family": "Synthetic", "given": ["Testperson"]}],
        "gender": "unknown",
        "birthDate": "2001-02-03",
    }


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    patient: dict[str, Any] = synthetic_patient() | {
        "generalPractitioner": [{"reference": "Organization/gp", "display": LEAK}],
        "extension": [{"url": "https://example.invalid/ethnicity", "valueString": LEAK}],
        "contact": [{"name": {"family": LEAK}}],
    }
    for kind in ("address", "telecom"):
        entries = draw(contact_entries(kind))
        if entries:
            patient[kind] = entries
    condition_ids = [f"c{n}" for n in range(draw(st.integers(min_value=0, max_value=5)))]
    resources: list[dict[str, Any]] = [
        patient,
        {"resourceType": "Organization", "id": "gp", "name": "Synthetic Surgery"},
        {"resourceType": "Medication", "id": "med", "code": {"text": "Synthetic drug"}},
    ]
    resources += [draw(conditions(ident)) for ident in condition_ids]
    for number in range(draw(st.integers(min_value=0, max_value=4))):
        medication = draw(medications(f"m{number}", condition_ids))
        if draw(st.booleans()):
            del medication["medicationCodeableConcept"]
            medication["medicationReference"] = {"reference": "Medication/med", "display": LEAK}
        resources.append(medication)
    resources += [draw(encounters(f"e{n}")) for n in range(draw(st.integers(0, 3)))]
    resources += [draw(appointments(f"a{n}")) for n in range(draw(st.integers(0, 3)))]
    resources += [draw(flags(f"f{n}")) for n in range(draw(st.integers(0, 2)))]
    return bundle_of(resources)


@st.composite
def medication_records(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=6))
    return bundle_of([synthetic_patient()] + [draw(medications(f"m{n}", [])) for n in range(count)])


@st.composite
def bounded_periods(draw: st.DrawFn) -> tuple[date, date | None]:
    """A period with a start, so a medication can begin before it."""
    start = draw(days)
    end = draw(st.none() | st.integers(min_value=0, max_value=700))
    return start, None if end is None else start + timedelta(days=end)


@st.composite
def approvals(draw: st.DrawFn) -> list[ScopeItem]:
    chosen = draw(st.sets(st.sampled_from(CATEGORIES), min_size=1))
    items = []
    for category in sorted(chosen):
        start, end = draw(periods())
        items.append(
            ScopeItem(
                category=category, period_from=start, period_to=end, justification_present=True
            )
        )
    return items


def outside_shape(value: Any, shape: Shape | None, path: str) -> list[str]:
    """Every element path in ``value`` its shape does not allow (independent of prune)."""
    if isinstance(value, list):
        return [p for item in value for p in outside_shape(item, shape, path)]
    if shape is None:
        return [] if isinstance(value, str | int | float | bool) else [path]
    if not isinstance(value, dict):
        return [path]
    return [
        p
        for key, child in value.items()
        for p in (
            [f"{path}.{key}"]
            if key not in shape
            else outside_shape(child, shape[key], f"{path}.{key}")
        )
    ]


def in_period(start: date, end: date | None, item: ScopeItem) -> bool:
    """Full dates only: [start, end or ongoing] meets the item's inclusive period."""
    return (item.period_to is None or start <= item.period_to) and (
        item.period_from is None or end is None or end >= item.period_from
    )


def medication_span(original: dict[str, Any]) -> tuple[date, date | None]:
    """The generator's own reading of when a drawn medication was current."""
    ongoing = original["status"] in {"active", "intended", "on-hold"}
    if original["resourceType"] == "MedicationStatement":
        if "effectivePeriod" in original:
            start = date.fromisoformat(original["effectivePeriod"]["start"])
            end = original["effectivePeriod"].get("end")
            if end:
                return start, date.fromisoformat(end)
            return start, None if ongoing else start
        day = date.fromisoformat(original.get("effectiveDateTime") or original["dateAsserted"])
        return day, day
    start = date.fromisoformat(original["authoredOn"])
    end = original.get("dispenseRequest", {}).get("validityPeriod", {}).get("end")
    if end:
        return start, date.fromisoformat(end)
    return start, None if original["status"] in {"active", "on-hold"} else start


def envelope_for(scope: list[ScopeItem]) -> EnvelopeFields:
    return EnvelopeFields(
        kind="release",
        author=Author(user_ref="user-0001", role="CALDICOTT_GUARDIAN", vetting="BPSS"),
        recipients=("police.ctp-sw",),
        marking=MARKING,
        subject_ref=SUBJECT_REF,
        purpose="PREVENT_TRIAGE",
        scope=tuple(scope),
        in_reply_to="01a1fca0-7fb0-756c-a2a0-f908835c17ee",
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records(), scope=approvals())
def test_a_release_never_holds_more_than_was_approved(
    record: dict[str, Any], scope: list[ScopeItem]
) -> None:
    result = build_release(record, scope, marking=MARKING, subject_ref=SUBJECT_REF)
    bundle = json.loads(result.bundle_json)
    approved = {item.category: [i for i in scope if i.category == item.category] for item in scope}
    originals = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
        for e in record["entry"]
    }

    assert LEAK not in result.bundle_json.decode()
    assert check_release(envelope_for(scope), result.bundle_json) == []
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        key = f"{resource['resourceType']}/{resource['id']}"
        tags = category_tags(resource)
        assert tags
        assert set(tags) <= set(approved), (key, tags)
        assert all(t["system"] == CATEGORY_SYSTEM for t in resource["meta"]["tag"])
        if resource["resourceType"] == "Patient":
            shape: dict[str, Shape | None] = {"resourceType": None, "id": None, "meta": None}
            for tag in tags:
                shape.update(PATIENT_ELEMENTS[tag])
            body = {k: v for k, v in resource.items() if k != "meta"}
            assert outside_shape(body, shape, "Patient") == []
            for kind in ("address", "telecom"):
                for contact in resource.get(kind, []):
                    period = contact["period"]
                    start = date.fromisoformat(period.get("start") or period["end"])
                    end = period.get("end")
                    finish = (
                        date.fromisoformat(end)
                        if end
                        else (None if contact["use"] != "old" else start)
                    )
                    assert any(
                        in_period(start, finish, item)
                        for item in approved["contact_address_history"]
                    )
            continue
        assert outside_shape(resource, ALLOWED_ELEMENTS[resource["resourceType"]], key) == []
        original = originals[key]
        [tag] = tags
        if resource["resourceType"] == "Condition":
            pools = {
                pool
                for coding in original["code"]["coding"]
                for pool, codes in CODES.items()
                if (coding["system"], coding["code"]) in codes
            } - {"other-system"}
            assert "unknown" not in pools, (key, pools)
            most_sensitive = next(p for p in ("substance", "mental", "physical") if p in pools)
            assert tag == CATEGORY_OF_POOL[most_sensitive]
            for coding in resource["code"]["coding"]:
                assert (coding["system"], coding["code"]) in CODES[most_sensitive]
            onset = date.fromisoformat(original["onsetDateTime"])
            assert any(in_period(onset, onset, item) for item in approved[tag])
        elif resource["resourceType"] in {"MedicationStatement", "MedicationRequest"}:
            start, end = medication_span(original)
            assert any(in_period(start, end, item) for item in approved["medication"])
            for reason in resource.get("reasonReference", []):
                assert reason["reference"] in {
                    f"{e['resource']['resourceType']}/{e['resource']['id']}"
                    for e in bundle["entry"]
                }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=medication_records(), period=bounded_periods())
def test_current_medication_is_released_when_medication_is_approved(
    record: dict[str, Any], period: tuple[date, date | None]
) -> None:
    """Completeness for the defect: a current prescription begun before the period goes."""
    item = ScopeItem(
        category="medication",
        period_from=period[0],
        period_to=period[1],
        justification_present=True,
    )

    result = build_release(record, [item], marking=MARKING, subject_ref=SUBJECT_REF)

    released = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in json.loads(result.bundle_json).get("entry", [])
    }
    for entry in record["entry"]:
        original = entry["resource"]
        if original["resourceType"] not in {"MedicationStatement", "MedicationRequest"}:
            continue
        if original["subject"]["reference"] != "Patient/p1":
            continue
        start, end = medication_span(original)
        key = f"{original['resourceType']}/{original['id']}"
        assert (key in released) is in_period(start, end, item), key

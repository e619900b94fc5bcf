"""Synthetic patient records: deterministic, valid FHIR, plainly fake."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from agency_adapters.health import nhs_number_valid, synthetic_patient_bundle
from agency_adapters.health.mapping import classify, event_date
from agency_adapters.health.synthetic import NHS_NUMBER_SYSTEM, synthetic_nhs_number

TODAY = date(2025, 6, 1)


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def the_patient(bundle: dict[str, Any]) -> dict[str, Any]:
    [patient] = [r for r in resources(bundle) if r["resourceType"] == "Patient"]
    return patient


def test_the_same_seed_gives_the_same_record() -> None:
    assert synthetic_patient_bundle(5, today=TODAY) == synthetic_patient_bundle(5, today=TODAY)


def test_different_seeds_give_different_records() -> None:
    assert synthetic_patient_bundle(1, today=TODAY) != synthetic_patient_bundle(2, today=TODAY)


@pytest.mark.parametrize("seed", range(5))
def test_the_record_validates_as_fhir_r4(seed: int) -> None:
    bundle = Bundle.model_validate(synthetic_patient_bundle(seed, today=TODAY))

    assert bundle.type == "collection"


def test_the_patient_is_plainly_synthetic() -> None:
    patient = the_patient(synthetic_patient_bundle(0, today=TODAY))

    assert "Synthetic" in patient["name"][0]["family"]
    for entry in synthetic_patient_bundle(0, today=TODAY)["entry"]:
        assert ".invalid/" in entry["fullUrl"]


@pytest.mark.parametrize("seed", range(50))
def test_nhs_numbers_are_valid_test_numbers(seed: int) -> None:
    [identifier] = the_patient(synthetic_patient_bundle(seed, today=TODAY))["identifier"]

    assert identifier["system"] == NHS_NUMBER_SYSTEM
    assert identifier["value"].startswith("999")
    assert nhs_number_valid(identifier["value"])


def test_the_generator_skips_numbers_whose_check_digit_would_be_ten() -> None:
    numbers = {synthetic_nhs_number(random.Random(seed)) for seed in range(500)}

    assert all(nhs_number_valid(n) and n.startswith("999") for n in numbers)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("943 476 5919", True),  # REFERENCE.md 6.1 worked example
        ("9434765919", True),
        ("943 476 5918", False),
        ("999 123 4560", False),  # check digit 10: never issued
        ("94347659", False),
        ("943476591X", False),
        (
            "\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19",
            False,
        ),  # full-width digits
    ],
)
def test_nhs_number_check_digit(number: str, valid: bool) -> None:
    assert nhs_number_valid(number) is valid


def test_the_record_covers_the_health_categories_over_three_years() -> None:
    bundle = synthetic_patient_bundle(9, today=TODAY)
    events = [r for r in resources(bundle) if classify(r) is not None]
    categories = {classify(r) for r in events}

    assert 18 <= len(resources(bundle)) <= 24
    assert categories == {
        "physical_health_diagnoses",
        "mental_health_diagnoses",
        "substance_misuse",
        "mental_health_services",
        "ae_attendance",
        "appointments_non_attendance",
        "medication",
        "safeguarding_flags",
    }
    statuses = {r.get("status") for r in events if r["resourceType"] == "Appointment"}
    assert "noshow" in statuses
    for resource in events:
        when = event_date(resource)
        assert when is not None
        assert TODAY - timedelta(days=3 * 366) <= when.first_day <= TODAY

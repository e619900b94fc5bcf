"""Data sharing agreements (REFERENCE.md 5.2): DSA-01..DSA-06."""

from __future__ import annotations

from typing import Any

import pytest

from hub.model import EnvelopeFields
from hub.policy.agreements import check_agreement
from tests.policy.registry_fixture import (
    CHARITY,
    HEALTH,
    LA,
    LAWFUL_BASIS,
    POLICE,
    SCHOOL,
    envelope,
    facts,
    item,
    located,
    rules_of,
    synthetic_registry,
)

REGISTRY = synthetic_registry()

UNDER_SW: dict[str, Any] = {**LAWFUL_BASIS, "agreement": "DSA-SW-PREVENT-2025"}


def check(fields: EnvelopeFields, sender: str = POLICE) -> set[str]:
    return rules_of(check_agreement(fields, facts(fields, sender), REGISTRY))


CASES: list[tuple[str, EnvelopeFields, str, set[str]]] = [
    (
        "police ask health for safeguarding concerns under the South West Prevent "
        "agreement: lawful",
        envelope(legal_basis=UNDER_SW),
        POLICE,
        set(),
    ),
    (
        "police ask health citing no agreement: nothing to check",
        envelope(),
        POLICE,
        set(),
    ),
    (
        "police ask health under an agreement the registry does not hold → DSA-01",
        envelope(legal_basis={**LAWFUL_BASIS, "agreement": "DSA-NOWHERE-2020"}),
        POLICE,
        {"DSA-01"},
    ),
    (
        "police ask for a Channel assessment under an agreement that expired in 2022 → DSA-06",
        envelope(
            recipients=[HEALTH],
            purpose="CHANNEL_ASSESSMENT",
            legal_basis={
                "powers": ["CTSA2015-s38"],
                "art6": "UKGDPR-A6-1e",
                "agreement": "DSA-WILTS-CHANNEL-2019",
            },
        ),
        LA,
        {"DSA-06"},
    ),
    (
        "a school shares with the local authority under an agreement not in force until "
        "September → DSA-06",
        envelope(
            "release",
            recipients=[LA],
            purpose="ADULT_SAFEGUARDING_S42",
            legal_basis={"art6": "UKGDPR-A6-1e", "agreement": "DSA-SCHOOLS-2026"},
            scope=[item("school_attendance")],
        ),
        SCHOOL,
        {"DSA-06"},
    ),
    (
        "police ask health for adult safeguarding, a purpose the agreement does not cover → DSA-02",
        envelope(purpose="ADULT_SAFEGUARDING_S42", legal_basis=UNDER_SW),
        POLICE,
        {"DSA-02"},
    ),
    (
        "police ask health and a school, which is not a party → DSA-03",
        envelope(recipients=[HEALTH, SCHOOL], legal_basis=UNDER_SW),
        POLICE,
        {"DSA-03"},
    ),
    (
        "a youth charity, not a party, asks health under the agreement → DSA-03",
        envelope(legal_basis=UNDER_SW),
        CHARITY,
        {"DSA-03"},
    ),
    (
        "police ask health for GP consultations, a category the agreement does not cover → DSA-04",
        envelope(legal_basis=UNDER_SW, scope=[item("gp_consultations")]),
        POLICE,
        {"DSA-04"},
    ),
    (
        "police ask health for a category the registry does not know: left to SCOPE-03",
        envelope(legal_basis=UNDER_SW, scope=[item("favourite_music")]),
        POLICE,
        set(),
    ),
    (
        "police ask health relying on the public-interest exception, which the agreement "
        "does not list → DSA-05",
        envelope(legal_basis={**UNDER_SW, "confidentiality": ["CLDC-PUBINT"]}),
        POLICE,
        {"DSA-05"},
    ),
    (
        "police ask health citing a gateway the registry does not know: left to GW-06",
        envelope(legal_basis={**UNDER_SW, "powers": ["CDA1998-s115", "MADE-UP-s1"]}),
        POLICE,
        set(),
    ),
    (
        "a youth charity asks health and a school under the expired Channel agreement for "
        "GP consultations, relying on the public-interest exception → every violation, not "
        "the first",
        envelope(
            recipients=[HEALTH, SCHOOL],
            legal_basis={
                **LAWFUL_BASIS,
                "confidentiality": ["CLDC-PUBINT"],
                "agreement": "DSA-WILTS-CHANNEL-2019",
            },
            scope=[item("gp_consultations")],
        ),
        CHARITY,
        {"DSA-02", "DSA-03", "DSA-04", "DSA-05", "DSA-06"},
    ),
]


@pytest.mark.parametrize(
    ("fields", "sender", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_agreement(fields: EnvelopeFields, sender: str, expected: set[str]) -> None:
    assert check(fields, sender) == expected


def test_parties_outside_the_agreement_are_named_where_they_appear() -> None:
    fields = envelope(recipients=[HEALTH, SCHOOL], legal_basis=UNDER_SW)
    violations = check_agreement(fields, facts(fields, CHARITY), REGISTRY)
    assert located(violations) == {("DSA-03", "$.recipients[1]"), ("DSA-03", "$.sender")}


def test_the_approved_scope_of_a_decision_falls_within_the_agreement() -> None:
    fields = envelope(
        "decision",
        recipients=[POLICE],
        legal_basis={"agreement": "DSA-SW-PREVENT-2025"},
        consent=None,
        scope=[],
        decision={
            "outcome": "APPROVED_PARTIAL",
            "approved_scope": [item("safeguarding_concerns"), item("gp_consultations")],
            "reason_code": "MINIMUM_NECESSARY",
        },
    )
    violations = check_agreement(fields, facts(fields, HEALTH), REGISTRY)
    assert located(violations) == {("DSA-04", "$.decision.approved_scope[1].category")}


def test_an_agreement_is_in_force_on_its_last_day() -> None:
    fields = envelope(legal_basis=UNDER_SW)
    last_day = REGISTRY.agreement("DSA-SW-PREVENT-2025")
    assert last_day is not None
    assert last_day.valid_to is not None
    assert check_agreement(fields, facts(fields, today=last_day.valid_to), REGISTRY) == []


def test_a_recipient_the_hub_does_not_know_is_left_to_routing() -> None:
    fields = envelope(recipients=[HEALTH, "la.nowhere"], legal_basis=UNDER_SW)
    assert check_agreement(fields, facts(fields), REGISTRY) == []

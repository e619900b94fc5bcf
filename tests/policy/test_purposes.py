"""Purpose codes (REFERENCE.md 6A): PUR-01, PUR-02."""

from __future__ import annotations

import pytest

from hub.model import EnvelopeFields
from hub.policy.purposes import check_purpose
from tests.policy.registry_fixture import (
    HEALTH,
    LA,
    POLICE,
    envelope,
    facts,
    located,
    rules_of,
    synthetic_registry,
)

REGISTRY = synthetic_registry()

CASES: list[tuple[str, EnvelopeFields, str, set[str]]] = [
    ("police ask health for Prevent triage: lawful", envelope(), POLICE, set()),
    (
        "health refers to police for a Prevent referral: lawful",
        envelope("referral", recipients=[POLICE], purpose="PREVENT_REFERRAL", scope=[]),
        HEALTH,
        set(),
    ),
    (
        "police ask health for a purpose the registry does not define → PUR-01",
        envelope(purpose="PREVENT_EVERYTHING"),
        POLICE,
        {"PUR-01"},
    ),
    (
        "police send an information request under the Prevent referral purpose → PUR-02",
        envelope(purpose="PREVENT_REFERRAL"),
        POLICE,
        {"PUR-02"},
    ),
    (
        "the local authority opens a Channel case for Prevent triage → PUR-02",
        envelope("case_open", recipients=[POLICE], scope=[]),
        LA,
        {"PUR-02"},
    ),
]


@pytest.mark.parametrize(
    ("fields", "sender", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_purpose(fields: EnvelopeFields, sender: str, expected: set[str]) -> None:
    assert rules_of(check_purpose(fields, facts(fields, sender), REGISTRY)) == expected


def test_purpose_violations_point_at_the_purpose() -> None:
    fields = envelope(purpose="PREVENT_REFERRAL")
    assert located(check_purpose(fields, facts(fields), REGISTRY)) == {("PUR-02", "$.purpose")}

"""Specific, minimal scope (REFERENCE.md 3.1 RQ-05, 3.5): SCOPE-01..SCOPE-09."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.model import EnvelopeFields, ScopeItem
from hub.policy.scope import check_scope, scope_within
from tests.policy.registry_fixture import (
    HEALTH,
    LA,
    POLICE,
    SCHOOL,
    TODAY,
    envelope,
    facts,
    item,
    located,
    rules_of,
    synthetic_registry,
)

REGISTRY = synthetic_registry()


def check(fields: EnvelopeFields, sender: str = POLICE) -> set[str]:
    return rules_of(check_scope(fields, facts(fields, sender), REGISTRY))


def where(fields: EnvelopeFields, sender: str = POLICE) -> set[tuple[str, str]]:
    return located(check_scope(fields, facts(fields, sender), REGISTRY))


FIVE = [
    item("safeguarding_concerns"),
    item("contact_details", None, None),
    item("mental_health_diagnoses"),
    item("gp_consultations"),
    item("prevent_vulnerability_assessment", None, None),
]

CASES: list[tuple[str, EnvelopeFields, str, set[str]]] = [
    (
        "police ask health for a year of safeguarding concerns, justified: lawful",
        envelope(),
        POLICE,
        set(),
    ),
    (
        "police ask health and the local authority for four justified categories: lawful",
        envelope(recipients=[HEALTH, LA], scope=FIVE[:4]),
        POLICE,
        set(),
    ),
    (
        "police ask health without naming any data → SCOPE-01",
        envelope(scope=[]),
        POLICE,
        {"SCOPE-01"},
    ),
    (
        "health releases to police without naming what it releases → SCOPE-01",
        envelope("release", recipients=[POLICE], scope=[]),
        HEALTH,
        {"SCOPE-01"},
    ),
    (
        "health refers to police without a scope: a referral need not name one",
        envelope("referral", recipients=[POLICE], purpose="PREVENT_REFERRAL", scope=[]),
        HEALTH,
        set(),
    ),
    (
        "police ask health and the local authority for five categories, above the limit of "
        "four → SCOPE-02",
        envelope(recipients=[HEALTH, LA], scope=FIVE),
        POLICE,
        {"SCOPE-02"},
    ),
    (
        "police ask health for the whole record → SCOPE-03",
        envelope(scope=[item("whole_record", None, None)]),
        POLICE,
        {"SCOPE-03"},
    ),
    (
        "police ask health for a category the registry does not know → SCOPE-03",
        envelope(scope=[item("favourite_music")]),
        POLICE,
        {"SCOPE-03"},
    ),
    (
        "police ask health for school attendance, which health does not hold → SCOPE-04",
        envelope(scope=[item("school_attendance")]),
        POLICE,
        {"SCOPE-04"},
    ),
    (
        "police ask health and a school for school attendance; the school holds it: lawful",
        envelope(recipients=[HEALTH, SCHOOL], scope=[item("school_attendance")]),
        POLICE,
        set(),
    ),
    (
        "health releases criminal convictions, which health does not hold → SCOPE-04",
        envelope(
            "release",
            recipients=[POLICE],
            scope=[item("criminal_convictions", None, None)],
        ),
        HEALTH,
        {"SCOPE-04"},
    ),
    (
        "police ask health for mental health diagnoses with no end date → SCOPE-05",
        envelope(scope=[item("mental_health_diagnoses", "2025-01-01", None)]),
        POLICE,
        {"SCOPE-05"},
    ),
    (
        "police ask health for contact details with no period: none needed, lawful",
        envelope(scope=[item("contact_details", None, None)]),
        POLICE,
        set(),
    ),
    (
        "police ask health for two years of GP consultations, over the one-year limit → SCOPE-06",
        envelope(scope=[item("gp_consultations", "2024-01-01", "2025-12-31")]),
        POLICE,
        {"SCOPE-06"},
    ),
    (
        "police ask health for two years of GP consultations with an extension reason: lawful",
        envelope(scope=[item("gp_consultations", "2024-01-01", "2025-12-31", extension=True)]),
        POLICE,
        set(),
    ),
    (
        "police ask health for exactly 365 days of GP consultations: within the limit",
        envelope(scope=[item("gp_consultations", "2025-01-01", "2025-12-31")]),
        POLICE,
        set(),
    ),
    (
        "police ask health for 366 days of GP consultations → SCOPE-06",
        envelope(scope=[item("gp_consultations", "2024-12-31", "2025-12-31")]),
        POLICE,
        {"SCOPE-06"},
    ),
    (
        "police ask health for a period that ends before it starts → SCOPE-07",
        envelope(scope=[item("safeguarding_concerns", "2025-12-31", "2025-01-01")]),
        POLICE,
        {"SCOPE-07"},
    ),
    (
        "police ask health for a period ending in the future → SCOPE-07",
        envelope(scope=[item("safeguarding_concerns", "2025-06-01", "2026-06-01")]),
        POLICE,
        {"SCOPE-07"},
    ),
    (
        "police ask health for contact details from a future date → SCOPE-07",
        envelope(scope=[item("contact_details", "2026-06-01", None)]),
        POLICE,
        {"SCOPE-07"},
    ),
    (
        "police ask health for safeguarding concerns without a justification → SCOPE-08",
        envelope(scope=[item("safeguarding_concerns", justified=False)]),
        POLICE,
        {"SCOPE-08"},
    ),
    (
        "police ask health for safeguarding concerns twice → SCOPE-09",
        envelope(
            scope=[
                item("safeguarding_concerns", "2024-01-01", "2024-12-31"),
                item("safeguarding_concerns"),
            ]
        ),
        POLICE,
        {"SCOPE-09"},
    ),
    (
        "police send health a note naming an unknown category: a scope carried is checked "
        "even where none is required → SCOPE-03",
        envelope("note", scope=[item("favourite_music")]),
        POLICE,
        {"SCOPE-03"},
    ),
    (
        "police ask health for the whole record, school attendance with no period, three "
        "years of GP consultations ending in the future without justification, and "
        "safeguarding concerns twice → every violation, not the first",
        envelope(
            scope=[
                item("whole_record", None, None),
                item("school_attendance", None, None),
                item("gp_consultations", "2023-06-01", "2026-06-01", justified=False),
                item("safeguarding_concerns"),
                item("safeguarding_concerns"),
            ]
        ),
        POLICE,
        {
            "SCOPE-02",
            "SCOPE-03",
            "SCOPE-04",
            "SCOPE-05",
            "SCOPE-06",
            "SCOPE-07",
            "SCOPE-08",
            "SCOPE-09",
        },
    ),
]


@pytest.mark.parametrize(
    ("fields", "sender", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_scope(fields: EnvelopeFields, sender: str, expected: set[str]) -> None:
    assert check(fields, sender) == expected


def test_violations_name_the_item_and_field() -> None:
    fields = envelope(
        scope=[
            item("safeguarding_concerns"),
            item("contact_details", None, None),
            item("safeguarding_concerns", "2025-06-01", "2026-06-01", justified=False),
        ]
    )
    assert where(fields) == {
        ("SCOPE-07", "$.scope[2].period_to"),
        ("SCOPE-08", "$.scope[2].justification_present"),
        ("SCOPE-09", "$.scope[2].category"),
    }


def test_a_category_needing_a_period_with_none_points_at_both_ends() -> None:
    fields = envelope(scope=[item("mental_health_diagnoses", None, None)])
    assert where(fields) == {
        ("SCOPE-05", "$.scope[0].period_from"),
        ("SCOPE-05", "$.scope[0].period_to"),
    }


def test_an_open_ended_period_runs_to_today_for_the_length_limit() -> None:
    # GP consultations may cover 365 days; from 1 Jan 2025 to today (1 Mar 2026) is longer.
    assert TODAY.isoformat() == "2026-03-01"
    fields = envelope(scope=[item("gp_consultations", "2025-01-01", None)])
    assert rules_of(check_scope(fields, facts(fields), REGISTRY)) == {"SCOPE-05", "SCOPE-06"}


def test_the_violations_come_in_path_then_rule_order() -> None:
    fields = envelope(
        scope=[item("whole_record", None, None), item("gp_consultations", justified=False)]
    )
    violations = check_scope(fields, facts(fields), REGISTRY)
    assert [(v.path, v.rule) for v in violations] == [
        ("$.scope[0].category", "SCOPE-03"),
        ("$.scope[1].justification_present", "SCOPE-08"),
    ]


def scope(*items: dict[str, Any]) -> tuple[ScopeItem, ...]:
    return tuple(ScopeItem.model_validate_json(json.dumps(value)) for value in items)


REQUESTED = scope(
    item("safeguarding_concerns", "2025-01-01", "2025-12-31"),
    item("contact_details", None, None),
    item("mental_health_diagnoses", "2025-01-01", None),
)

WITHIN: list[tuple[str, tuple[ScopeItem, ...], list[int]]] = [
    ("the same items", REQUESTED, []),
    (
        "a shorter period of a requested category",
        scope(item("safeguarding_concerns", "2025-03-01", "2025-06-30")),
        [],
    ),
    ("the requested period exactly, ends included", scope(item("safeguarding_concerns")), []),
    ("a category not requested", scope(item("gp_consultations")), [0]),
    (
        "a period starting before the requested one",
        scope(item("safeguarding_concerns", "2024-12-31", "2025-06-30")),
        [0],
    ),
    (
        "a period ending after the requested one",
        scope(item("safeguarding_concerns", "2025-06-01", "2026-01-01")),
        [0],
    ),
    (
        "an open start where the request has a start",
        scope(item("safeguarding_concerns", None, "2025-06-30")),
        [0],
    ),
    (
        "any period of a category requested without one",
        scope(item("contact_details", "2010-01-01", "2026-01-01")),
        [],
    ),
    (
        "an open end where the request is open-ended too",
        scope(item("mental_health_diagnoses", "2025-06-01", None)),
        [],
    ),
    (
        "the second of two items outside",
        scope(item("contact_details", None, None), item("gp_consultations")),
        [1],
    ),
]


@pytest.mark.parametrize(
    ("inner", "outside"), [case[1:] for case in WITHIN], ids=[case[0] for case in WITHIN]
)
def test_scope_within(inner: tuple[ScopeItem, ...], outside: list[int]) -> None:
    assert scope_within(inner, REQUESTED) == outside


def test_nothing_is_within_an_empty_scope() -> None:
    assert scope_within(REQUESTED, ()) == [0, 1, 2]
    assert scope_within((), REQUESTED) == []

"""A release's content manifest against its envelope and its approval: MAN-01..MAN-03.

What leaves a node must be exactly what was approved (DESIGN.md section 1: "releases stay
inside what was approved"; REFERENCE.md 3.6). The hub cannot read a release, so it checks
the signed manifest: a release that says it holds more than its scope or its approval is
refused before anything is stored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.model import EnvelopeFields, ReleaseManifest, ScopeItem
from hub.policy.engine import evaluate
from hub.policy.manifest import check_manifest, manifest_span
from tests.policy.registry_fixture import (
    HEALTH,
    POLICE,
    envelope,
    facts,
    item,
    rules_of,
    synthetic_registry,
)

REGISTRY = synthetic_registry()
DECISION_ID = "01a1fca0-7fb0-756c-a2a0-f908835c17ee"
SHA = "ab" * 32
MEDICATION = item("medication", "2025-06-01", "2025-12-31")
DIAGNOSES = item("mental_health_diagnoses", "2025-06-01", "2025-12-31")

APPROVAL = envelope(
    "decision",
    recipients=[POLICE],
    legal_basis=None,
    consent=None,
    scope=[],
    decision={
        "outcome": "APPROVED_PARTIAL",
        "approved_scope": [MEDICATION],
        "reason_code": "MINIMUM_NECESSARY",
    },
)


def manifest(*categories: tuple[str, str | None, str | None, dict[str, int]]) -> dict[str, Any]:
    return {
        "content_sha256": SHA,
        "content_size": 1024,
        "resource_count": sum(sum(c[3].values()) for c in categories),
        "categories": [
            {"category": name, "period_from": start, "period_to": end, "resources": resources}
            for name, start, end, resources in categories
        ],
    }


MEDS_ONLY = manifest(("medication", "2025-06-01", "2025-12-31", {"MedicationStatement": 3}))
WHOLE_RECORD = manifest(
    ("medication", "2025-06-01", "2025-12-31", {"MedicationStatement": 3}),
    ("mental_health_diagnoses", None, None, {"Condition": 4}),
    ("physical_health", None, None, {"Condition": 6, "Encounter": 8}),
)


def release(scope: list[dict[str, Any]], body: dict[str, Any] | None) -> EnvelopeFields:
    fields = envelope("release", recipients=[POLICE], scope=scope, in_reply_to=DECISION_ID)
    return with_manifest(fields, body)


def with_manifest(fields: EnvelopeFields, body: dict[str, Any] | None) -> EnvelopeFields:
    """The fields with a manifest, through the strict model validation."""
    document = fields.model_dump(mode="json", exclude_none=True)
    if body is not None:
        document["manifest"] = body
    return EnvelopeFields.model_validate_json(json.dumps(document))


def checked(fields: EnvelopeFields, answers: EnvelopeFields | None = APPROVAL) -> set[str]:
    return rules_of(
        check_manifest(
            fields, facts(fields, HEALTH, answers=answers, answers_sender=HEALTH), REGISTRY
        )
    )


CASES: list[tuple[str, EnvelopeFields, set[str]]] = [
    (
        "medication released under a medication approval: lawful",
        release([MEDICATION], MEDS_ONLY),
        set(),
    ),
    (
        "a release without a manifest: refused, nothing says what it holds",
        release([MEDICATION], None),
        {"MAN-01"},
    ),
    (
        "the whole record declared under a medication scope and approval: refused twice",
        release([MEDICATION], WHOLE_RECORD),
        {"MAN-02", "MAN-03"},
    ),
    (
        "the scope widened to match the whole record, the approval still medication only",
        release(
            [
                MEDICATION,
                item("mental_health_diagnoses", None, None),
                item("physical_health", None, None),
            ],
            WHOLE_RECORD,
        ),
        {"MAN-03"},
    ),
    (
        "medication for a longer period than approved: refused",
        release(
            [MEDICATION],
            manifest(("medication", "2024-01-01", "2025-12-31", {"MedicationStatement": 3})),
        ),
        {"MAN-02", "MAN-03"},
    ),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_manifest_rules(fields: EnvelopeFields, expected: set[str]) -> None:
    assert checked(fields) == expected


def test_only_a_release_carries_a_manifest() -> None:
    """A manifest on a referral says nothing the hub can check; it is refused (MAN-01)."""
    referral = with_manifest(envelope("note", recipients=[POLICE]), MEDS_ONLY)
    assert checked(referral, answers=None) == {"MAN-01"}


def test_the_engine_runs_the_manifest_rules() -> None:
    """The hub, pre-flight and ``hub policy check`` run one engine; MAN-* are in it."""
    fields = release([MEDICATION], WHOLE_RECORD)
    found = evaluate(
        fields, facts(fields, HEALTH, answers=APPROVAL, answers_sender=HEALTH), REGISTRY
    )
    assert {"MAN-02", "MAN-03"} <= rules_of(found)


def test_manifest_span_joins_periods_and_keeps_open_bounds() -> None:
    items = [
        item("medication", "2025-01-01", "2025-03-31"),
        item("medication", "2025-06-01", "2025-12-31"),
        item("contact_details", None, None),
    ]
    spans = manifest_span([ScopeItem.model_validate_json(json.dumps(i)) for i in items])
    assert {s.category: (str(s.period_from), str(s.period_to)) for s in spans} == {
        "medication": ("2025-01-01", "2025-12-31"),
        "contact_details": ("None", "None"),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"categories": [MEDS_ONLY["categories"][0], MEDS_ONLY["categories"][0]]},
            "names each category once",
        ),
        ({"resource_count": 1}, "counts more resources"),
        (
            {"categories": [{**MEDS_ONLY["categories"][0], "resources": {}}]},
            "at least 1 item",
        ),
        (
            {"categories": [{**MEDS_ONLY["categories"][0], "resources": {"x": 1}}]},
            "should match pattern",
        ),
    ],
)
def test_a_malformed_manifest_is_refused_by_the_model(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReleaseManifest.model_validate_json(json.dumps({**MEDS_ONLY, **change}))

"""Release decisions and releases (REFERENCE.md 3.6): DEC-01..DEC-05, REL-01, REL-02."""

from __future__ import annotations

from typing import Any

import pytest

from hub.model import EnvelopeFields
from hub.policy.decisions import check_decision, check_release
from hub.policy.registry import load_registry
from tests.policy.registry_fixture import (
    HEALTH,
    LA,
    POLICE,
    envelope,
    facts,
    item,
    located,
    rules_of,
    synthetic_registry,
)

REGISTRY = synthetic_registry()
REQUEST_ID = "01a1fca0-7fb0-756c-a2a0-f908835c17ed"
DECISION_ID = "01a1fca0-7fb0-756c-a2a0-f908835c17ee"

SPECIAL = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p10",
}
# Police ask health for a year of safeguarding concerns and diagnoses, and contact details.
REQUESTED = [
    item("safeguarding_concerns"),
    item("mental_health_diagnoses"),
    item("contact_details", None, None),
]
REQUEST = envelope(legal_basis=SPECIAL, scope=REQUESTED)


def decision(
    outcome: str,
    approved: list[dict[str, Any]] | None = None,
    reason: str | None = None,
) -> EnvelopeFields:
    """Health's decision on the police request."""
    record: dict[str, Any] = {"outcome": outcome}
    if approved is not None:
        record["approved_scope"] = approved
    if reason is not None:
        record["reason_code"] = reason
    return envelope(
        "decision",
        recipients=[POLICE],
        legal_basis=None,
        consent=None,
        scope=[],
        decision=record,
        in_reply_to=REQUEST_ID,
    )


def decide(
    fields: EnvelopeFields,
    answers: EnvelopeFields | None = REQUEST,
    sender: str = HEALTH,
) -> set[str]:
    return rules_of(
        check_decision(
            fields, facts(fields, sender, answers=answers, answers_sender=POLICE), REGISTRY
        )
    )


PARTIAL = [item("safeguarding_concerns", "2025-06-01", "2025-12-31")]

DECISIONS: list[tuple[str, EnvelopeFields, set[str]]] = [
    (
        "health approves exactly what police asked for: lawful",
        decision("APPROVED_FULL", REQUESTED),
        set(),
    ),
    (
        "health approves exactly what was asked, listed in another order: lawful",
        decision("APPROVED_FULL", list(reversed(REQUESTED))),
        set(),
    ),
    (
        "health approves half a year of safeguarding concerns, with a reason: lawful",
        decision("APPROVED_PARTIAL", PARTIAL, "MINIMUM_NECESSARY"),
        set(),
    ),
    (
        "health approves contact details for a period, which was asked without one: lawful",
        decision(
            "APPROVED_PARTIAL",
            [item("contact_details", "2024-01-01", "2025-12-31")],
            "MINIMUM_NECESSARY",
        ),
        set(),
    ),
    ("health refuses, with a reason: lawful", decision("REFUSED", reason="NOT_NECESSARY"), set()),
    (
        "health escalates to its Caldicott Guardian without a reason code: lawful",
        decision("ESCALATED"),
        set(),
    ),
    (
        "health sends a decision without a decision record → DEC-03",
        envelope(
            "decision",
            recipients=[POLICE],
            legal_basis=None,
            consent=None,
            scope=[],
            in_reply_to=REQUEST_ID,
        ),
        {"DEC-03"},
    ),
    (
        "health approves in full but names no approved scope → DEC-03",
        decision("APPROVED_FULL"),
        {"DEC-03"},
    ),
    (
        "health refuses, with a reason, yet lists an approved scope → DEC-03",
        decision("REFUSED", PARTIAL, "NOT_NECESSARY"),
        {"DEC-03"},
    ),
    (
        "health approves GP consultations, which police did not ask for → DEC-01",
        decision("APPROVED_PARTIAL", [item("gp_consultations")], "MINIMUM_NECESSARY"),
        {"DEC-01"},
    ),
    (
        "health approves a longer period of safeguarding concerns than asked → DEC-01",
        decision(
            "APPROVED_PARTIAL",
            [item("safeguarding_concerns", "2024-06-01", "2025-12-31")],
            "MINIMUM_NECESSARY",
        ),
        {"DEC-01"},
    ),
    (
        "health 'approves in full' more than was asked → DEC-01, DEC-04",
        decision("APPROVED_FULL", [*REQUESTED, item("gp_consultations")]),
        {"DEC-01", "DEC-04"},
    ),
    (
        "health 'approves in full' only part of what was asked → DEC-04",
        decision("APPROVED_FULL", PARTIAL),
        {"DEC-04"},
    ),
    ("health refuses without a reason → DEC-02", decision("REFUSED"), {"DEC-02"}),
    (
        "health approves part without a reason → DEC-02",
        decision("APPROVED_PARTIAL", PARTIAL),
        {"DEC-02"},
    ),
    (
        "health returns the request as incomplete without a reason → DEC-02",
        decision("RETURNED_INCOMPLETE"),
        {"DEC-02"},
    ),
    (
        "health approves part with one item carrying no justification → SCOPE-08",
        decision(
            "APPROVED_PARTIAL",
            [item("safeguarding_concerns", justified=False)],
            "MINIMUM_NECESSARY",
        ),
        {"SCOPE-08"},
    ),
    (
        "health approves part, naming the whole record → SCOPE-03, DEC-01",
        decision("APPROVED_PARTIAL", [item("whole_record", None, None)], "MINIMUM_NECESSARY"),
        {"SCOPE-03", "DEC-01"},
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [case[1:] for case in DECISIONS], ids=[case[0] for case in DECISIONS]
)
def test_decision(fields: EnvelopeFields, expected: set[str]) -> None:
    assert decide(fields) == expected


def test_a_decision_that_answers_nothing_the_hub_holds() -> None:
    """health decides without the request being found → DEC-05"""
    assert decide(decision("APPROVED_FULL", REQUESTED), answers=None) == {"DEC-05"}


def test_a_decision_that_answers_a_referral() -> None:
    """health 'decides' a referral rather than an information request → DEC-05"""
    referral = envelope(
        "referral", recipients=[HEALTH], purpose="PREVENT_REFERRAL", legal_basis=SPECIAL
    )
    assert decide(decision("REFUSED", reason="NOT_NECESSARY"), answers=referral) == {"DEC-05"}


def test_a_decision_by_a_node_the_request_was_not_sent_to() -> None:
    """the local authority decides a request police sent to health → DEC-05"""
    fields = decision("APPROVED_PARTIAL", PARTIAL, "MINIMUM_NECESSARY")
    assert decide(fields, sender=LA) == {"DEC-05"}


def test_a_decision_with_nothing_right_reports_everything() -> None:
    """a refusal without a reason, answering nothing, with an approved scope → every violation"""
    assert decide(decision("REFUSED", PARTIAL), answers=None) == {"DEC-02", "DEC-03", "DEC-05"}


def test_an_unrequested_approval_points_at_the_item() -> None:
    fields = decision(
        "APPROVED_PARTIAL", [PARTIAL[0], item("gp_consultations")], "MINIMUM_NECESSARY"
    )
    violations = check_decision(
        fields, facts(fields, HEALTH, answers=REQUEST, answers_sender=POLICE), REGISTRY
    )
    assert located(violations) == {("DEC-01", "$.decision.approved_scope[1]")}


def test_the_approved_scope_is_checked_under_its_own_path() -> None:
    fields = decision(
        "APPROVED_PARTIAL", [item("safeguarding_concerns", justified=False)], "X_REASON"
    )
    violations = check_decision(
        fields, facts(fields, HEALTH, answers=REQUEST, answers_sender=POLICE), REGISTRY
    )
    assert located(violations) == {
        ("SCOPE-08", "$.decision.approved_scope[0].justification_present")
    }


def test_other_kinds_are_not_decisions_or_releases() -> None:
    fields = envelope()
    assert check_decision(fields, facts(fields), REGISTRY) == []
    assert check_release(fields, facts(fields), REGISTRY) == []


# --- Releases -------------------------------------------------------------------------

APPROVAL = decision(
    "APPROVED_PARTIAL", [*PARTIAL, item("contact_details", None, None)], "MINIMUM_NECESSARY"
)


def release(scope: list[dict[str, Any]]) -> EnvelopeFields:
    """Health releases to police under its approval."""
    return envelope(
        "release", recipients=[POLICE], legal_basis=SPECIAL, scope=scope, in_reply_to=DECISION_ID
    )


def released(fields: EnvelopeFields, answers: EnvelopeFields | None = APPROVAL) -> set[str]:
    return rules_of(
        check_release(
            fields, facts(fields, HEALTH, answers=answers, answers_sender=HEALTH), REGISTRY
        )
    )


RELEASES: list[tuple[str, EnvelopeFields, EnvelopeFields | None, set[str]]] = [
    (
        "health releases what it approved: lawful",
        release([*PARTIAL, item("contact_details", None, None)]),
        APPROVAL,
        set(),
    ),
    (
        "health releases less than it approved: lawful",
        release([item("safeguarding_concerns", "2025-09-01", "2025-12-31")]),
        APPROVAL,
        set(),
    ),
    (
        "health releases diagnoses it did not approve → REL-01",
        release([*PARTIAL, item("mental_health_diagnoses")]),
        APPROVAL,
        {"REL-01"},
    ),
    (
        "health releases safeguarding concerns for longer than it approved → REL-01",
        release([item("safeguarding_concerns")]),
        APPROVAL,
        {"REL-01"},
    ),
    (
        "health releases after refusing → REL-02",
        release(PARTIAL),
        decision("REFUSED", reason="NOT_NECESSARY"),
        {"REL-02"},
    ),
    (
        "health releases while the decision is escalated → REL-02",
        release(PARTIAL),
        decision("ESCALATED"),
        {"REL-02"},
    ),
    (
        "health releases without a decision the hub holds → REL-02",
        release(PARTIAL),
        None,
        {"REL-02"},
    ),
    (
        "health releases in reply to the request itself, not a decision → REL-02",
        release(PARTIAL),
        REQUEST,
        {"REL-02"},
    ),
]


@pytest.mark.parametrize(
    ("fields", "answers", "expected"),
    [case[1:] for case in RELEASES],
    ids=[case[0] for case in RELEASES],
)
def test_release(
    fields: EnvelopeFields, answers: EnvelopeFields | None, expected: set[str]
) -> None:
    assert released(fields, answers) == expected


def test_an_unapproved_release_item_points_at_the_item() -> None:
    fields = release([*PARTIAL, item("mental_health_diagnoses")])
    violations = check_release(
        fields, facts(fields, HEALTH, answers=APPROVAL, answers_sender=HEALTH), REGISTRY
    )
    assert located(violations) == {("REL-01", "$.scope[1]")}


def test_a_reason_code_is_one_the_registry_gives_for_the_outcome() -> None:
    """DEC-06: decision_reasons.yaml names the codes each outcome may give (local policy)."""
    shipped = load_registry()

    def rules(fields: EnvelopeFields) -> set[str]:
        found = facts(fields, HEALTH, answers=REQUEST, answers_sender=POLICE)
        return rules_of(check_decision(fields, found, shipped))

    assert "DEC-06" not in rules(decision("REFUSED", reason="NOT_PROPORTIONATE"))
    # A code for another outcome, and a code the registry does not know.
    assert "DEC-06" in rules(decision("REFUSED", reason="MINIMUM_NECESSARY"))
    assert "DEC-06" in rules(decision("APPROVED_PARTIAL", PARTIAL, "TOO_BUSY"))
    assert "DEC-06" not in rules(decision("APPROVED_PARTIAL", PARTIAL, "MINIMUM_NECESSARY"))
    # An outcome the registry gives no codes for is not restricted, nor is a registry
    # without decision_reasons.yaml.
    assert "DEC-06" not in rules(decision("RETURNED_INCOMPLETE", reason="ANY_WORDS"))
    assert not shipped.decision_reasons_for("RETURNED_INCOMPLETE")
    assert "DEC-06" not in decide(decision("REFUSED", reason="MINIMUM_NECESSARY"))

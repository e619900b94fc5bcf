"""Wire fields for who acts, decisions' records, panel outcomes and text markings.

The envelope carries only what the hub must check, never who a person is: the roles
consulted (SEED 004 para 69), whether the decision was entered in the patient record
(para 62), the panel outcome (para 31; REFERENCE.md 4.2) and a marking's original text
(REFERENCE.md 1.9). The payload holds the detail, and a node checks that the two agree
(PAYLOAD-05).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from hub.model import Draft, EnvelopeFields
from hub.model.examples import synthetic_decision, synthetic_panel_outcome
from hub.model.payload_checks import check_payload

MH = {"category": "mental_health_diagnoses", "justification_present": True}


def decision_envelope(**record: Any) -> dict[str, Any]:
    return {
        "kind": "decision",
        "author": {"user_ref": "u-0001", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
        "recipients": ["police.ctp-sw"],
        "marking": {"tier": "OFFICIAL", "sensitive": True},
        "purpose": "PREVENT_TRIAGE",
        "decision": {"outcome": "APPROVED_PARTIAL", "approved_scope": [MH], **record},
    }


def parse(document: dict[str, Any]) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(json.dumps(document))


def test_the_decision_record_names_consulted_roles_never_people() -> None:
    fields = parse(decision_envelope(consulted=["CALDICOTT_GUARDIAN", "IG_LEAD"]))
    assert fields.decision is not None
    assert fields.decision.consulted == ("CALDICOTT_GUARDIAN", "IG_LEAD")
    assert fields.decision.recorded_in_subject_record is False
    with pytest.raises(ValidationError, match="Input should be 'CALDICOTT_GUARDIAN'"):
        parse(decision_envelope(consulted=["Dr A. Person"]))
    with pytest.raises(ValidationError, match="must not repeat"):
        parse(decision_envelope(consulted=["IG_LEAD", "IG_LEAD"]))


def test_payload_and_envelope_agree_on_consultations_and_the_record_entry() -> None:
    """A node checks its decision payload against the signed envelope (PAYLOAD-05)."""
    payload = synthetic_decision(1, consulted=("CALDICOTT_GUARDIAN",)).model_dump_json().encode()
    today = date(2026, 11, 21)
    agreed = parse(
        decision_envelope(consulted=["CALDICOTT_GUARDIAN"], recorded_in_subject_record=True)
    )
    assert check_payload(agreed, payload, today=today) == []
    unnamed = parse(decision_envelope(recorded_in_subject_record=True))
    problems = check_payload(unnamed, payload, today=today)
    assert [v.rule for v in problems] == ["PAYLOAD-05"]
    assert "consultations" in problems[0].message
    unrecorded = synthetic_decision(1, outcome="ESCALATED").model_dump_json().encode()
    claims = parse(
        {
            **decision_envelope(recorded_in_subject_record=True),
            "decision": {"outcome": "ESCALATED", "recorded_in_subject_record": True},
        }
    )
    assert [v.message for v in check_payload(claims, unrecorded, today=today)] == [
        "the envelope says the decision was recorded in the subject's record; the payload "
        "does not ('recorded_in_subject_record')"
    ]


@pytest.mark.parametrize(
    "outcome", ["ADOPTED", "NOT_ADOPTED_NFA", "NOT_ADOPTED_REFERRED_ON", "EXITED"]
)
def test_every_panel_outcome_travels_in_the_envelope(outcome: str) -> None:
    """SEED 004 para 31 ("no further action will be required" in many cases) and REFERENCE
    4.2 stages 6-9; the payload names the same outcome (PAYLOAD-05)."""
    fields = parse(
        {
            "kind": "panel_outcome",
            "author": {"user_ref": "u-0004", "role": "CHANNEL_CHAIR", "vetting": "BPSS"},
            "recipients": ["police.ctp-sw"],
            "marking": {"tier": "OFFICIAL", "sensitive": True},
            "case_ref": "case-0001",
            "purpose": "CHANNEL_ASSESSMENT",
            "panel_outcome": outcome,
        }
    )
    payload = synthetic_panel_outcome(outcome=outcome).model_dump_json().encode()  # type: ignore[arg-type]
    assert check_payload(fields, payload, today=date(2026, 11, 21)) == []


def draft_document(marking: Any, **envelope: Any) -> dict[str, Any]:
    return {
        "envelope": {
            "kind": "note",
            "author": {"user_ref": "u-0001", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
            "recipients": ["police.ctp-sw"],
            "marking": marking,
            "purpose": "PREVENT_TRIAGE",
            **envelope,
        },
        "payload": {"content": {"synthetic": True}},
    }


def test_a_draft_may_give_its_marking_as_text() -> None:
    """Agencies' documents carry markings as text; the draft keeps it for the parser."""
    draft = Draft.model_validate_json(json.dumps(draft_document("Official Sensitive")))
    assert draft.envelope.text_marking() == "Official Sensitive"
    structured = Draft.model_validate_json(
        json.dumps(draft_document({"tier": "OFFICIAL", "sensitive": True}))
    )
    assert structured.envelope.text_marking() is None


@pytest.mark.parametrize("marking", ["", "x" * 2001])
def test_a_text_marking_is_bounded(marking: str) -> None:
    with pytest.raises(ValidationError):
        Draft.model_validate_json(json.dumps(draft_document(marking)))


def test_an_envelope_keeps_marking_text_beside_the_structured_marking() -> None:
    """REFERENCE 1.9: the original marking is stored verbatim."""
    fields = parse(
        {
            **draft_document({"tier": "OFFICIAL"}, marking_text="RESTRICTED")["envelope"],
        }
    )
    assert fields.marking_text == "RESTRICTED"
    with pytest.raises(ValidationError):
        parse({**draft_document("OFFICIAL")["envelope"]})  # an envelope needs the structure

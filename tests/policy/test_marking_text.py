"""A marking written as text: drafts read it, envelopes keep it, nothing is lowered (MK-14).

REFERENCE.md 1.7 (input normalisation: "OFFICIAL SENSITIVE", "Official-Sensitive", ...),
1.8 HR-01 (only the creator changes a marking) and 1.9 (legacy GPMS markings: the hub
"stores the original marking verbatim, never auto-downgrades"; CONFIDENTIAL is refused
pending the creator's reclassification). The legacy treatments are the registry's
(schemas/registry/markings.yaml).
"""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any

import pytest

from hub.model import Draft, EnvelopeFields, Marking
from hub.policy.engine import evaluate
from hub.policy.facts import Party, PolicyFacts
from hub.policy.marking_text import check_marking_text, resolve_draft_marking
from hub.policy.registry import Registry, load_registry

HEALTH = Party("health.bsw-icb", "health", "OFFICIAL-SENSITIVE")
LA = Party("la.wiltshire", "local_authority", "OFFICIAL-SENSITIVE")
POLICE = Party("police.ctp-sw", "police", "OFFICIAL-SENSITIVE")
OS = Marking(tier="OFFICIAL", sensitive=True)
OS_PERSONAL = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))


@functools.cache
def registry() -> Registry:
    return load_registry()


def draft(marking: Any, **envelope: Any) -> Draft:
    document = {
        "envelope": {
            "kind": "referral",
            "author": {"user_ref": "u-0001", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
            "recipients": [LA.node_id, POLICE.node_id],
            "marking": marking,
            "subject_ref": "subj-000123",
            "purpose": "PREVENT_REFERRAL",
            "legal_basis": {
                "powers": ["CDA1998-s115"],
                "art6": "UKGDPR-A6-1e",
                "art9": "UKGDPR-A9-2g",
                "sch1": "DPA2018-S1P2p18",
                "confidentiality": ["CLDC-PUBINT"],
            },
            "consent": {
                "state": "NOT_SOUGHT",
                "reason_code": "WOULD_PREJUDICE_OUTCOME",
                "subject_age": "ADULT",
            },
            **envelope,
        },
        "payload": {"content": {"synthetic": True}},
    }
    return Draft.model_validate_json(json.dumps(document))


def facts() -> PolicyFacts:
    return PolicyFacts(
        sender=HEALTH,
        recipients={LA.node_id: LA, POLICE.node_id: POLICE},
        today=date(2026, 11, 21),
    )


def as_fields(document: Draft) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(
        document.envelope.model_dump_json(exclude={"id", "sender", "created_at"})
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Official Sensitive", OS),
        ("OFFICIAL-SENSITIVE PERSONAL DATA", OS_PERSONAL),
        ("official-sensitive - personal data", OS_PERSONAL),
        ("OFFICIAL SENSTIVE", OS),  # the typo in seed 004 Appendix 4a
    ],
)
def test_a_draft_may_carry_its_marking_as_text(text: str, expected: Marking) -> None:
    """REFERENCE 1.7 input normalisation; 1.9 the original text is kept verbatim."""
    resolution = resolve_draft_marking(draft(text).envelope, registry())
    assert resolution.violations == ()
    assert resolution.envelope is not None
    assert resolution.envelope.marking == expected
    assert resolution.envelope.marking_text == text
    assert resolution.notes, "what was normalised is reported to the user"
    fields = as_fields(Draft(envelope=resolution.envelope, payload=draft(text).payload))
    assert fields.marking_text == text
    assert check_marking_text(fields, facts(), registry()) == []


def test_the_canonical_string_needs_no_note() -> None:
    resolution = resolve_draft_marking(draft("OFFICIAL-SENSITIVE").envelope, registry())
    assert resolution.envelope is not None
    assert resolution.notes == ()


def test_a_structured_marking_passes_through_unchanged() -> None:
    document = draft(json.loads(OS_PERSONAL.model_dump_json()))
    resolution = resolve_draft_marking(document.envelope, registry())
    assert resolution.envelope is document.envelope
    assert resolution.envelope.marking_text is None


def test_legacy_restricted_is_mapped_as_the_registry_says_and_kept_verbatim() -> None:
    """REFERENCE 1.9: RESTRICTED is usually handled as OFFICIAL (markings.yaml: "routed as
    OFFICIAL for routing only; the original marking is kept"). Re-marking it
    OFFICIAL-SENSITIVE is its creator's decision (HR-01), so a referral marked only
    RESTRICTED is still refused by MK-10, not silently raised or lowered."""
    resolution = resolve_draft_marking(draft("RESTRICTED").envelope, registry())
    assert resolution.envelope is not None
    assert resolution.envelope.marking == Marking(tier="OFFICIAL")
    assert resolution.envelope.marking_text == "RESTRICTED"
    assert any("RESTRICTED" in note for note in resolution.notes)
    fields = as_fields(Draft(envelope=resolution.envelope, payload=draft("RESTRICTED").payload))
    assert {v.rule for v in evaluate(fields, facts(), registry())} == {"MK-10"}


@pytest.mark.parametrize(
    ("text", "rule"),
    [("CONFIDENTIAL", "MK-13"), ("Top Secret-ish draft notes", "MK-01"), ("PRIVATE", "MK-01")],
)
def test_text_the_hub_cannot_use_is_an_error_naming_the_text(text: str, rule: str) -> None:
    """REFERENCE 1.9: CONFIDENTIAL is refused until its creator reclassifies it (MK-13);
    text that is not a marking is never guessed at (MK-01)."""
    resolution = resolve_draft_marking(draft(text).envelope, registry())
    assert resolution.envelope is None
    assert rule in {v.rule for v in resolution.violations}
    for violation in resolution.violations:
        assert violation.path == "$.envelope.marking"
        assert repr(text) in violation.message


def test_a_draft_cannot_give_both_a_text_marking_and_marking_text() -> None:
    with pytest.raises(ValueError, match="not both"):
        draft("OFFICIAL-SENSITIVE", marking_text="OFFICIAL SENSITIVE")


def _envelope(marking: Marking, text: str) -> EnvelopeFields:
    document = draft(json.loads(marking.model_dump_json()), marking_text=text)
    return as_fields(document)


def test_an_envelope_marked_lower_than_its_text_is_refused() -> None:
    """HR-01 / REFERENCE 1.9: the hub never downgrades; a node that did is refused (MK-14)."""
    fields = _envelope(Marking(tier="OFFICIAL"), "OFFICIAL-SENSITIVE")
    violations = check_marking_text(fields, facts(), registry())
    assert [(v.rule, v.path) for v in violations] == [("MK-14", "$.marking")]
    assert "'OFFICIAL-SENSITIVE'" in violations[0].message


def test_dropping_a_descriptor_or_handling_instruction_is_refused() -> None:
    """Losing PERSONAL DATA or RECIPIENTS ONLY lowers the controls the creator set."""
    dropped = _envelope(OS, "OFFICIAL-SENSITIVE - PERSONAL DATA")
    assert {v.rule for v in check_marking_text(dropped, facts(), registry())} == {"MK-14"}
    handling = _envelope(OS_PERSONAL, "OFFICIAL-SENSITIVE - RECIPIENTS ONLY - PERSONAL DATA")
    assert {v.rule for v in check_marking_text(handling, facts(), registry())} == {"MK-14"}


def test_the_creator_may_raise_a_legacy_marking() -> None:
    """HR-01: the creator re-marks RESTRICTED material OFFICIAL-SENSITIVE (markings.yaml);
    keeping the original text beside a higher marking is lawful and accepted."""
    fields = _envelope(OS_PERSONAL, "RESTRICTED")
    assert check_marking_text(fields, facts(), registry()) == []
    assert "MK-14" not in {v.rule for v in evaluate(fields, facts(), registry())}


def test_an_unreadable_marking_text_on_an_envelope_is_refused() -> None:
    fields = _envelope(OS, "CONFIDENTIAL")
    violations = check_marking_text(fields, facts(), registry())
    assert [(v.rule, v.path) for v in violations] == [("MK-13", "$.marking_text")]

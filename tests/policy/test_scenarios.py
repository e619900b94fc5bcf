"""Named scenarios from the source documents, each with the exact rule ids expected.

Built from the situations in ../shared/domain/sources (seed 004's request checklist and
referral form, seeds 001 and 003 on gateways and consent) and REFERENCE.md. An empty set
means the message is lawful and is accepted.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from hub.model import EnvelopeFields
from hub.policy.engine import evaluate
from hub.policy.facts import Party, PolicyFacts
from hub.policy.registry import Registry, load_registry

TODAY_ISO = "2026-11-21"

PARTIES = {
    "police.ctp-sw": Party("police.ctp-sw", "police", "OFFICIAL-SENSITIVE"),
    "health.bsw-icb": Party("health.bsw-icb", "health", "OFFICIAL-SENSITIVE"),
    "la.wiltshire": Party("la.wiltshire", "local_authority", "OFFICIAL-SENSITIVE"),
    "la.lowcred": Party("la.lowcred", "local_authority", "OFFICIAL"),
    "probation.sw": Party("probation.sw", "probation", "OFFICIAL-SENSITIVE"),
    "voluntary.mentors": Party("voluntary.mentors", "voluntary", "OFFICIAL-SENSITIVE"),
    "education.college": Party("education.college", "education", "OFFICIAL-SENSITIVE"),
}

AUTHOR = {"user_ref": "u-0001", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"}
OS_PERSONAL = {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]}
# Health refers without consent, so it names its exception to the common law duty of
# confidentiality (GW-13): seed 004 Appendix 4a section 4, "explain which public
# interest/best interest considerations have been applied to set aside their rights under
# the CLDC", and section 5, "The CLDC is an additional legal requirement for health".
REFERRAL_BASIS = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p18",
    "confidentiality": ["CLDC-PUBINT"],
}
NO_CLDC = {k: v for k, v in REFERRAL_BASIS.items() if k != "confidentiality"}
NOT_SOUGHT = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}

# Health's referral to the local authority and police together (seed 004, appendix 3).
REFERRAL = {
    "kind": "referral",
    "author": AUTHOR,
    "recipients": ["la.wiltshire", "police.ctp-sw"],
    "marking": OS_PERSONAL,
    "subject_ref": "subj-000123",
    "purpose": "PREVENT_REFERRAL",
    "legal_basis": REFERRAL_BASIS,
    "consent": NOT_SOUGHT,
}
# Police asking health for a year of mental health diagnoses (seed 004, appendix 4a).
MH = "mental_health_diagnoses"
REQUEST = {
    "kind": "information_request",
    "author": {"user_ref": "u-0002", "role": "PREVENT_POLICE_OFFICER", "vetting": "BPSS"},
    "recipients": ["health.bsw-icb"],
    "marking": OS_PERSONAL,
    "subject_ref": "subj-000123",
    "purpose": "PREVENT_TRIAGE",
    "legal_basis": {
        "powers": ["CDA1998-s115"],
        "art6": "UKGDPR-A6-1e",
        "art9": "UKGDPR-A9-2g",
        "sch1": "DPA2018-S1P2p10",
    },
    "consent": NOT_SOUGHT,
    "scope": [
        {
            "category": MH,
            "period_from": "2025-11-01",
            "period_to": "2026-10-31",
            "justification_present": True,
        }
    ],
}
DECISION = {
    "kind": "decision",
    "author": {"user_ref": "u-0003", "role": "CALDICOTT_GUARDIAN", "vetting": "BPSS"},
    "recipients": ["police.ctp-sw"],
    "marking": OS_PERSONAL,
    "subject_ref": "subj-000123",
    "purpose": "PREVENT_TRIAGE",
    "in_reply_to": "01a1fca0-7fb0-756c-a2a0-f908835c17ed",
    "decision": {
        "outcome": "APPROVED_FULL",
        "approved_scope": REQUEST["scope"],
        # A health decision is documented in the patient record (ROLE-06; seed 004 p62).
        "recorded_in_subject_record": True,
    },
}
RELEASE = {
    **{k: v for k, v in DECISION.items() if k != "decision"},
    "kind": "release",
    "in_reply_to": "01a1fca0-7fb0-756c-a2a0-f908835c17ee",
    # Health discloses without consent: it names its public-interest exception (GW-13).
    "legal_basis": {**REQUEST["legal_basis"], "confidentiality": ["CLDC-PUBINT"]},
    "consent": NOT_SOUGHT,
    "scope": REQUEST["scope"],
    # What the release holds, signed (MAN-01..03): within its scope and the approval.
    "manifest": {
        "content_sha256": "0" * 64,
        "content_size": 2048,
        "resource_count": 2,
        "categories": [
            {
                "category": item["category"],
                "period_from": item["period_from"],
                "period_to": item["period_to"],
                "resources": {"Condition": 2},
            }
            for item in REQUEST["scope"]
        ],
    },
}


@dataclass(frozen=True)
class Scenario:
    name: str
    base: dict[str, Any]
    sender: str
    expected: frozenset[str]
    changes: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] | None = None
    answers_sender: str | None = None


def s(
    name: str,
    base: dict[str, Any],
    sender: str,
    expected: set[str],
    answers: dict[str, Any] | None = None,
    answers_sender: str | None = None,
    **changes: Any,
) -> Scenario:
    return Scenario(name, base, sender, frozenset(expected), changes, answers, answers_sender)


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(base)
    for dotted, value in changes.items():
        target = document
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        if value is _DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return document


_DELETE = object()
LIFE = {"period_from": "2016-01-01", "period_to": "2026-10-31", "justification_present": True}
ADULT_OBTAINED = {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"}

SCENARIOS = [
    # --- Referrals (seed 004 appendix 3, REFERENCE 3.2-3.4) ---
    s("lawful health referral to LA and police without consent", REFERRAL, "health.bsw-icb", set()),
    s(
        "referral with consent obtained from an adult",
        REFERRAL,
        "health.bsw-icb",
        set(),
        consent=ADULT_OBTAINED,
    ),
    s(
        "referral marked plain OFFICIAL",
        REFERRAL,
        "health.bsw-icb",
        {"MK-10"},
        marking={"tier": "OFFICIAL"},
    ),
    s("referral marked SECRET", REFERRAL, "health.bsw-icb", {"MK-09"}, marking={"tier": "SECRET"}),
    s(
        "referral with a national caveat",
        REFERRAL,
        "health.bsw-icb",
        {"MK-06", "MK-09"},
        marking={**OS_PERSONAL, "national_caveats": ["UK EYES ONLY"]},
    ),
    s(
        "referral marked FOR PUBLIC RELEASE at OFFICIAL-SENSITIVE",
        REFERRAL,
        "health.bsw-icb",
        {"MK-03"},
        marking={**OS_PERSONAL, "handling": "FOR_PUBLIC_RELEASE"},
    ),
    s(
        "referral to a node accredited for OFFICIAL only",
        REFERRAL,
        "health.bsw-icb",
        {"MK-11"},
        recipients=["la.lowcred", "police.ctp-sw"],
    ),
    s(
        "referral citing no lawful basis",
        REFERRAL,
        "health.bsw-icb",
        {"GW-12"},
        legal_basis=_DELETE,
    ),
    s("referral with no consent position", REFERRAL, "health.bsw-icb", {"CS-01"}, consent=_DELETE),
    s(
        "referral with consent not yet considered",
        REFERRAL,
        "health.bsw-icb",
        {"CS-06"},
        consent={"state": "UNKNOWN", "subject_age": "ADULT"},
    ),
    # Was also GW-10 (the exemption "needed" a competent-authority recipient). Seed 004
    # Appendix 4 puts that restriction on disclosure for the prevention and detection of
    # crime (Part 3), and Appendix 4a cites this exemption in a referral to the local
    # authority: the test follows the purpose (GW-10 on CRIME_PREVENTION), not the
    # exemption. Without consent health must also name its CLDC exception (GW-13).
    s(
        "referral citing only the Sch 2 crime exemption",
        REFERRAL,
        "health.bsw-icb",
        {"GW-01", "GW-02", "GW-03", "GW-13", "GW-EX"},
        legal_basis={"exemptions": ["DPA2018-S2P1p2"]},
    ),
    s(
        "referral relying on Art 9(2)(g) without a Sch 1 condition",
        REFERRAL,
        "health.bsw-icb",
        {"GW-04"},
        legal_basis={k: v for k, v in REFERRAL_BASIS.items() if k != "sch1"},
    ),
    # Against a refusal health names no exception to confidentiality either (GW-13, seed
    # 004 Appendix 4a section 5).
    s(
        "referral against the person's refusal with only CDA s115",
        REFERRAL,
        "health.bsw-icb",
        {"CS-05", "GW-13"},
        consent={"state": "REFUSED", "given_by": "SUBJECT", "subject_age": "ADULT"},
        legal_basis=NO_CLDC,
    ),
    s(
        "referral against refusal in the public interest",
        REFERRAL,
        "health.bsw-icb",
        set(),
        consent={"state": "REFUSED", "given_by": "SUBJECT", "subject_age": "ADULT"},
        legal_basis={**REFERRAL_BASIS, "confidentiality": ["CLDC-PUBINT"]},
    ),
    s(
        "referral for an adult lacking capacity, best interests decided",
        REFERRAL,
        "health.bsw-icb",
        set(),
        consent={"state": "LACKS_CAPACITY", "best_interests": True, "subject_age": "ADULT"},
        legal_basis={
            **REFERRAL_BASIS,
            "powers": ["CDA1998-s115", "MCA2005-s4"],
            "confidentiality": ["CLDC-BESTINT"],
        },
    ),
    s(
        "referral for an adult lacking capacity, no best-interests decision",
        REFERRAL,
        "health.bsw-icb",
        {"CS-03"},
        consent={"state": "LACKS_CAPACITY", "subject_age": "ADULT"},
    ),
    s(
        "referral of a 14-year-old with a parent's consent",
        REFERRAL,
        "health.bsw-icb",
        set(),
        consent={
            "state": "CHILD_PARENT_CONSENT",
            "given_by": "PARENT_OR_GUARDIAN",
            "subject_age": "UNDER_16",
        },
    ),
    s(
        "adult recorded as giving 'child's own consent'",
        REFERRAL,
        "health.bsw-icb",
        {"CS-07"},
        consent={"state": "CHILD_OWN_CONSENT", "given_by": "SUBJECT", "subject_age": "ADULT"},
    ),
    s(
        "consent not sought with no reason recorded",
        REFERRAL,
        "health.bsw-icb",
        {"CS-02"},
        consent={"state": "NOT_SOUGHT", "subject_age": "ADULT"},
    ),
    s(
        "terrorism planning: police told, subject not told",
        REFERRAL,
        "health.bsw-icb",
        set(),
        recipients=["police.ctp-sw"],
        purpose="TERRORISM_DISCLOSURE_S38B",
        consent={
            "state": "NOT_SOUGHT",
            "reason_code": "TERRORISM_RISK",
            "subject_not_to_be_told": True,
            "subject_age": "ADULT",
        },
        legal_basis={**REFERRAL_BASIS, "powers": ["TA2000-s38B"]},
    ),
    s(
        "purpose code the registry does not know",
        REFERRAL,
        "health.bsw-icb",
        {"PUR-01"},
        purpose="PREVENT_EVERYTHING",
    ),
    # --- Information requests (seed 004 appendix 4a, REFERENCE 3.1) ---
    s(
        "police ask health for a year of mental health diagnoses, lawfully",
        REQUEST,
        "police.ctp-sw",
        set(),
    ),
    s(
        "police ask health for mental health information without consent and without a reason",
        REQUEST,
        "police.ctp-sw",
        {"CS-02"},
        consent={"state": "NOT_SOUGHT", "subject_age": "ADULT"},
    ),
    s(
        "police request citing only the Sch 2 crime exemption",
        REQUEST,
        "police.ctp-sw",
        {"GW-01", "GW-02", "GW-03", "GW-EX"},
        legal_basis={"exemptions": ["DPA2018-S2P1p2"]},
    ),
    s(
        "request for the whole record",
        REQUEST,
        "police.ctp-sw",
        {"SCOPE-03"},
        scope=[{"category": "whole_record", "justification_present": True}],
    ),
    s("request naming no data at all", REQUEST, "police.ctp-sw", {"SCOPE-01"}, scope=[]),
    s(
        "request for medication with no period",
        REQUEST,
        "police.ctp-sw",
        {"SCOPE-05"},
        scope=[{"category": "medication", "justification_present": True}],
    ),
    s(
        "request for ten years of diagnoses without an extension reason",
        REQUEST,
        "police.ctp-sw",
        {"SCOPE-06"},
        scope=[{"category": MH, **LIFE}],
    ),
    s(
        "request for ten years of diagnoses with an extension reason",
        REQUEST,
        "police.ctp-sw",
        set(),
        scope=[{"category": MH, **LIFE, "extension_reason_present": True}],
    ),
    s(
        "request for a period ending in the future",
        REQUEST,
        "police.ctp-sw",
        {"SCOPE-07"},
        scope=[
            {
                "category": MH,
                "period_from": "2026-01-01",
                "period_to": "2027-01-01",
                "justification_present": True,
            }
        ],
    ),
    s(
        "request with no justification for a category",
        REQUEST,
        "police.ctp-sw",
        {"SCOPE-08"},
        scope=[{**REQUEST["scope"][0], "justification_present": False}],
    ),
    s(
        "request naming the same category twice",
        REQUEST,
        "police.ctp-sw",
        {"SCOPE-09"},
        scope=[REQUEST["scope"][0], REQUEST["scope"][0]],
    ),
    s(
        "police ask health for convictions health does not hold",
        REQUEST,
        "police.ctp-sw",
        {"SCOPE-04", "GW-05"},
        scope=[
            {
                "category": "criminal_convictions",
                "period_from": "2024-01-01",
                "period_to": "2026-10-31",
                "justification_present": True,
            }
        ],
    ),
    # Was GW-10. A Prevent triage request is a safeguarding purpose, UK GDPR processing a
    # local authority may make and receive; s115 reaches local authorities expressly (seed
    # 003 Annex 1, seed 004 Appendix 4). The competent-authority test binds a law
    # enforcement purpose (seed 004 Appendix 4), as the next scenario shows.
    s(
        "LA asks health for Prevent triage citing Sch 1 para 10: a safeguarding purpose",
        REQUEST,
        "la.wiltshire",
        set(),
    ),
    s(
        "LA asks health for the prevention or detection of crime (needs a competent authority)",
        REQUEST,
        "la.wiltshire",
        {"GW-10"},
        purpose="CRIME_PREVENTION",
    ),
    s(
        "LA relies on legitimate interests",
        REFERRAL,
        "la.wiltshire",
        {"GW-11"},
        recipients=["police.ctp-sw"],
        legal_basis={**REFERRAL_BASIS, "art6": "UKGDPR-A6-1f"},
    ),
    s(
        "request citing a gateway id that does not exist",
        REQUEST,
        "police.ctp-sw",
        {"GW-06"},
        legal_basis={**REQUEST["legal_basis"], "powers": ["CDA1998-s115", "MADE-UP-s1"]},
    ),
    s(
        "Sch 1 condition given as the Art 6 basis",
        REQUEST,
        "police.ctp-sw",
        {"GW-02", "GW-07"},
        legal_basis={**REQUEST["legal_basis"], "art6": "DPA2018-S1P2p10"},
    ),
    s(
        "health relying on a probation power",
        REFERRAL,
        "health.bsw-icb",
        {"GW-01", "GW-08"},
        legal_basis={**REFERRAL_BASIS, "powers": ["OMA2007-s14"]},
    ),
    s(
        "request under a data sharing agreement for a category it does not cover",
        REQUEST,
        "police.ctp-sw",
        {"DSA-04"},
        legal_basis={**REQUEST["legal_basis"], "agreement": "DSA-WILTS-PREVENT-2026"},
        scope=[
            {
                "category": "education_attendance_exclusions",
                "period_from": "2025-11-01",
                "period_to": "2026-10-31",
                "justification_present": True,
            }
        ],
        recipients=["la.wiltshire"],
    ),
    s(
        "request citing an agreement that does not exist",
        REQUEST,
        "police.ctp-sw",
        {"DSA-01"},
        legal_basis={**REQUEST["legal_basis"], "agreement": "DSA-NOWHERE-2020"},
    ),
    s(
        "a 16-year-old's own consent to Channel support",
        {
            **REFERRAL,
            "kind": "consent_record",
            "purpose": "CHANNEL_SUPPORT",
            "recipients": ["police.ctp-sw"],
        },
        "la.wiltshire",
        {"CS-04"},
        consent={"state": "CHILD_OWN_CONSENT", "given_by": "SUBJECT", "subject_age": "AGED_16_17"},
    ),
    s(
        "Channel support for someone who must not be told",
        {
            **REFERRAL,
            "kind": "consent_record",
            "purpose": "CHANNEL_SUPPORT",
            "recipients": ["police.ctp-sw"],
        },
        "la.wiltshire",
        {"DC-TERR-1"},
        consent={**ADULT_OBTAINED, "subject_not_to_be_told": True},
    ),
    # --- Decisions and releases (REFERENCE 3.6, DESIGN 1) ---
    s(
        "health approves exactly what was asked",
        DECISION,
        "health.bsw-icb",
        set(),
        answers=REQUEST,
        answers_sender="police.ctp-sw",
    ),
    s(
        "health approves part, with a reason",
        DECISION,
        "health.bsw-icb",
        set(),
        answers=REQUEST,
        answers_sender="police.ctp-sw",
        decision={
            "outcome": "APPROVED_PARTIAL",
            "reason_code": "MINIMUM_NECESSARY",
            "recorded_in_subject_record": True,
            "approved_scope": [
                {
                    "category": MH,
                    "period_from": "2026-05-01",
                    "period_to": "2026-10-31",
                    "justification_present": True,
                }
            ],
        },
    ),
    s(
        "health 'approves' more than was asked",
        DECISION,
        "health.bsw-icb",
        {"DEC-01", "DEC-04"},
        answers=REQUEST,
        answers_sender="police.ctp-sw",
        decision__approved_scope=[
            REQUEST["scope"][0],
            {
                "category": "medication",
                "period_from": "2025-11-01",
                "period_to": "2026-10-31",
                "justification_present": True,
            },
        ],
    ),
    s(
        "approval for a longer period than requested",
        DECISION,
        "health.bsw-icb",
        {"DEC-01", "DEC-04"},
        answers=REQUEST,
        answers_sender="police.ctp-sw",
        decision__approved_scope=[{**REQUEST["scope"][0], "period_from": "2024-11-01"}],
    ),
    s(
        "partial approval with no reason",
        DECISION,
        "health.bsw-icb",
        {"DEC-02"},
        answers=REQUEST,
        answers_sender="police.ctp-sw",
        decision={
            "outcome": "APPROVED_PARTIAL",
            "recorded_in_subject_record": True,
            "approved_scope": [
                {
                    "category": MH,
                    "period_from": "2026-05-01",
                    "period_to": "2026-10-31",
                    "justification_present": True,
                }
            ],
        },
    ),
    s(
        "refusal with no reason",
        DECISION,
        "health.bsw-icb",
        {"DEC-02"},
        answers=REQUEST,
        answers_sender="police.ctp-sw",
        decision={"outcome": "REFUSED", "recorded_in_subject_record": True},
    ),
    s("decision that answers no request", DECISION, "health.bsw-icb", {"DEC-05"}),
    s(
        "release within the approval",
        RELEASE,
        "health.bsw-icb",
        set(),
        answers=DECISION,
        answers_sender="health.bsw-icb",
    ),
    s(
        "release wider than its approval",
        RELEASE,
        "health.bsw-icb",
        {"REL-01"},
        answers=DECISION,
        answers_sender="health.bsw-icb",
        scope=[
            REQUEST["scope"][0],
            {
                "category": "medication",
                "period_from": "2025-11-01",
                "period_to": "2026-10-31",
                "justification_present": True,
            },
        ],
    ),
    s(
        "release after a refusal",
        RELEASE,
        "health.bsw-icb",
        {"REL-02"},
        answers={
            **DECISION,
            "decision": {
                "outcome": "REFUSED",
                "reason_code": "NOT_NECESSARY",
                "recorded_in_subject_record": True,
            },
        },
        answers_sender="health.bsw-icb",
    ),
    # Only the originator of a marking may lower it (HR-01): police marked the request.
    s(
        "decision marked lower than the request it answers",
        DECISION,
        "health.bsw-icb",
        {"MK-10", "MK-12"},
        answers=REQUEST,
        answers_sender="police.ctp-sw",
        marking={"tier": "OFFICIAL"},
    ),
]


@functools.cache
def registry() -> Registry:
    return load_registry()


def _fields(document: dict[str, Any]) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(json.dumps(document))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[sc.name for sc in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    fields = _fields(_apply(scenario.base, scenario.changes))
    facts = PolicyFacts(
        sender=PARTIES[scenario.sender],
        recipients={r: PARTIES[r] for r in fields.recipients},
        today=date.fromisoformat(TODAY_ISO),
        answers=_fields(scenario.answers) if scenario.answers is not None else None,
        answers_sender=scenario.answers_sender,
    )
    violations = evaluate(fields, facts, registry())
    got = frozenset(v.rule for v in violations)
    assert got == scenario.expected, "\n".join(
        f"{v.rule} {v.path}: {v.message}" for v in violations
    )
    for violation in violations:
        assert violation.path.startswith("$")
        assert violation.message


def test_there_are_at_least_forty_named_scenarios() -> None:
    assert len(SCENARIOS) >= 40
    assert len({sc.name for sc in SCENARIOS}) == len(SCENARIOS)

"""The consent position and the terrorism-planning rule (REFERENCE.md 3.2, 3.3)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.model import EnvelopeFields
from hub.policy.consent import check_consent
from tests.policy.registry_fixture import (
    HEALTH,
    LA,
    LAWFUL_BASIS,
    POLICE,
    envelope,
    facts,
    located,
    rules_of,
    synthetic_registry,
)

REGISTRY = synthetic_registry()

ADULT = {"subject_age": "ADULT"}
OBTAINED = {"state": "OBTAINED", "given_by": "SUBJECT", **ADULT}
REFUSED = {"state": "REFUSED", "given_by": "SUBJECT", **ADULT}
PARENT = {"state": "CHILD_PARENT_CONSENT", "given_by": "PARENT_OR_GUARDIAN"}
CHANNEL_BASIS = {"powers": ["CTSA2015-s36"], "art6": "UKGDPR-A6-1e"}


def check(fields: EnvelopeFields, sender: str = POLICE) -> set[str]:
    return rules_of(check_consent(fields, facts(fields, sender), REGISTRY))


def case_pack(consent: dict[str, Any], **changes: Any) -> EnvelopeFields:
    """The local authority sends a Channel case pack to police and health."""
    values: dict[str, Any] = {
        "recipients": [POLICE, HEALTH],
        "purpose": "CHANNEL_SUPPORT",
        "legal_basis": CHANNEL_BASIS,
        "consent": consent,
        "scope": [],
        **changes,
    }
    return envelope("case_pack", **values)


CASES: list[tuple[str, EnvelopeFields, set[str]]] = [
    (
        "police ask health without consent because asking would prejudice the outcome: lawful",
        envelope(),
        set(),
    ),
    (
        "the local authority sends an adult's Channel case pack with their consent under "
        "CTSA s36: lawful",
        case_pack(OBTAINED),
        set(),
    ),
    (
        "police ask health without stating the consent position → CS-01",
        envelope(consent=None),
        {"CS-01"},
    ),
    (
        "the local authority opens a Channel case without stating the consent position → CS-01",
        envelope("case_open", recipients=[POLICE], legal_basis=None, consent=None, scope=[]),
        {"CS-01"},
    ),
    (
        "police send the local authority a note without a consent position: none needed",
        envelope("note", recipients=[LA], legal_basis=None, consent=None, scope=[]),
        set(),
    ),
    (
        "police ask health before anyone has considered consent → CS-06",
        envelope(consent={"state": "UNKNOWN", **ADULT}),
        {"CS-06"},
    ),
    (
        "police ask health without consent and without saying why → CS-02",
        envelope(consent={"state": "NOT_SOUGHT", **ADULT}),
        {"CS-02"},
    ),
    (
        "police ask health without consent for a reason not on the list → CS-02",
        envelope(consent={"state": "NOT_SOUGHT", "reason_code": "TOO_BUSY", **ADULT}),
        {"CS-02"},
    ),
    # Was GW-00 (s36 "needed" consent). Consent is needed for Channel support, not for the
    # panel's assessment (seed 004 para 43; para 59, "limited and proportionate
    # information prior to seeking informed consent"): the rule follows the purpose.
    (
        "the local authority shares a Channel assessment pack without consent relying only "
        "on CTSA s36: assessment needs no consent, lawful",
        case_pack(
            {"state": "NOT_SOUGHT", "reason_code": "URGENT_NO_TIME", **ADULT},
            purpose="CHANNEL_ASSESSMENT",
        ),
        set(),
    ),
    (
        "the local authority shares a Channel support pack for an adult without consent "
        "under CTSA s36 and CDA s115 → CS-08",
        case_pack(
            {"state": "NOT_SOUGHT", "reason_code": "URGENT_NO_TIME", **ADULT},
            legal_basis={**CHANNEL_BASIS, "powers": ["CTSA2015-s36", "CDA1998-s115"]},
        ),
        {"CS-08"},
    ),
    (
        "a Channel assessment pack, consent not yet sought (to be sought as the support plan "
        "sets out): lawful",
        case_pack(
            {"state": "NOT_SOUGHT", "reason_code": "NOT_YET_SOUGHT_SUPPORT_PLAN", **ADULT},
            purpose="CHANNEL_ASSESSMENT",
        ),
        set(),
    ),
    (
        "police ask health giving 'to be sought as the support plan sets out', which fits "
        "only a Channel assessment → CS-02",
        envelope(
            consent={"state": "NOT_SOUGHT", "reason_code": "NOT_YET_SOUGHT_SUPPORT_PLAN", **ADULT}
        ),
        {"CS-02"},
    ),
    (
        "the local authority shares a Channel assessment pack without consent under CTSA "
        "s36 and CDA s115, which does not need consent: lawful",
        case_pack(
            {"state": "NOT_SOUGHT", "reason_code": "URGENT_NO_TIME", **ADULT},
            purpose="CHANNEL_ASSESSMENT",
            legal_basis={**CHANNEL_BASIS, "powers": ["CTSA2015-s36", "CDA1998-s115"]},
        ),
        set(),
    ),
    (
        "police ask health relying on consent as the Article 6 basis when consent was not "
        "sought → GW-00",
        envelope(legal_basis={**LAWFUL_BASIS, "art6": "UKGDPR-A6-1a"}),
        {"GW-00"},
    ),
    (
        "police ask health against the person's refusal citing only CDA s115 → CS-05",
        envelope(consent=REFUSED),
        {"CS-05"},
    ),
    (
        "police ask health against the person's refusal in the public interest: lawful",
        envelope(consent=REFUSED, legal_basis={**LAWFUL_BASIS, "confidentiality": ["CLDC-PUBINT"]}),
        set(),
    ),
    (
        "health discloses to police after consent was withdrawn, under the TA 2000 s38B "
        "duty: lawful",
        envelope(
            "release",
            recipients=[POLICE],
            consent={"state": "WITHDRAWN", "given_by": "SUBJECT", **ADULT},
            legal_basis={**LAWFUL_BASIS, "powers": ["TA2000-s38B"]},
        ),
        set(),
    ),
    (
        "health refers after consent was withdrawn, citing no legal basis at all → CS-05",
        envelope(
            "referral",
            recipients=[POLICE],
            purpose="PREVENT_REFERRAL",
            legal_basis=None,
            consent={"state": "WITHDRAWN", "given_by": "SUBJECT", **ADULT},
            scope=[],
        ),
        {"CS-05"},
    ),
    (
        "the local authority records a refusal of Channel consent: recording it is lawful",
        envelope(
            "consent_record",
            recipients=[POLICE],
            purpose="CHANNEL_ASSESSMENT",
            legal_basis=None,
            consent=REFUSED,
            scope=[],
        ),
        set(),
    ),
    (
        "health refers an adult lacking capacity without a best-interests decision or "
        "gateway → CS-03",
        envelope(
            "referral",
            recipients=[POLICE],
            purpose="PREVENT_REFERRAL",
            consent={"state": "LACKS_CAPACITY", **ADULT},
            scope=[],
        ),
        {"CS-03"},
    ),
    (
        "health refers an adult lacking capacity in their best interests under the "
        "confidentiality best-interests exception: lawful",
        envelope(
            "referral",
            recipients=[POLICE],
            purpose="PREVENT_REFERRAL",
            consent={"state": "LACKS_CAPACITY", "best_interests": True, **ADULT},
            legal_basis={**LAWFUL_BASIS, "confidentiality": ["CLDC-BESTINT"]},
            scope=[],
        ),
        set(),
    ),
    (
        "a 14-year-old is recorded as lacking capacity under the Mental Capacity Act → CS-07",
        envelope(
            consent={"state": "LACKS_CAPACITY", "best_interests": True, "subject_age": "UNDER_16"},
            legal_basis={**LAWFUL_BASIS, "powers": ["CDA1998-s115", "MCA2005-s4"]},
        ),
        {"CS-07"},
    ),
    (
        "an adult is recorded as giving a parent's consent → CS-07",
        envelope(consent={**PARENT, **ADULT}),
        {"CS-07"},
    ),
    (
        "a child's own consent with the age band not stated → CS-07",
        envelope(consent={"state": "CHILD_OWN_CONSENT", "given_by": "SUBJECT"}),
        {"CS-07"},
    ),
    (
        "police ask health about a 15-year-old with a parent's consent: lawful",
        envelope(consent={**PARENT, "subject_age": "UNDER_16"}),
        set(),
    ),
    (
        "a 15-year-old's Channel support pack with only the child's own consent → CS-04",
        case_pack({"state": "CHILD_OWN_CONSENT", "given_by": "SUBJECT", "subject_age": "UNDER_16"}),
        {"CS-04"},
    ),
    (
        "a 17-year-old's Channel support pack with their own consent recorded as OBTAINED → CS-04",
        case_pack({"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "AGED_16_17"}),
        {"CS-04"},
    ),
    (
        "a Channel support pack whose subject's age is not stated, with the subject's own "
        "consent → CS-04",
        case_pack({"state": "OBTAINED", "given_by": "SUBJECT"}),
        {"CS-04"},
    ),
    (
        "a 15-year-old's Channel support pack with a parent's consent: lawful",
        case_pack({**PARENT, "subject_age": "UNDER_16"}),
        set(),
    ),
    (
        "a 16-year-old's own consent to Channel support recorded on its own → CS-04",
        envelope(
            "consent_record",
            recipients=[POLICE],
            purpose="CHANNEL_SUPPORT",
            legal_basis=None,
            consent={
                "state": "CHILD_OWN_CONSENT",
                "given_by": "SUBJECT",
                "subject_age": "AGED_16_17",
            },
            scope=[],
        ),
        {"CS-04"},
    ),
    (
        "a parent's refusal of Channel support for a 15-year-old is recorded: lawful",
        envelope(
            "consent_record",
            recipients=[POLICE],
            purpose="CHANNEL_SUPPORT",
            legal_basis=None,
            consent={
                "state": "REFUSED",
                "given_by": "PARENT_OR_GUARDIAN",
                "subject_age": "UNDER_16",
            },
            scope=[],
        ),
        set(),
    ),
    (
        "terrorism planning: health refers to police under TA 2000 s38B, consent not sought, "
        "subject not to be told: lawful",
        envelope(
            "referral",
            recipients=[POLICE],
            purpose="PREVENT_REFERRAL",
            legal_basis={**LAWFUL_BASIS, "powers": ["TA2000-s38B"]},
            consent={
                "state": "NOT_SOUGHT",
                "reason_code": "TERRORISM_RISK",
                "subject_not_to_be_told": True,
                **ADULT,
            },
            scope=[],
        ),
        set(),
    ),
    (
        "a Channel support pack for a subject who must not be told, consent not sought → "
        "DC-TERR-1, CS-08",
        case_pack(
            {
                "state": "NOT_SOUGHT",
                "reason_code": "TERRORISM_RISK",
                "subject_not_to_be_told": True,
                **ADULT,
            },
            legal_basis={**CHANNEL_BASIS, "powers": ["CDA1998-s115"]},
        ),
        {"DC-TERR-1", "CS-08"},
    ),
    (
        "police ask health with the subject's consent yet say the subject must not be told "
        "→ DC-TERR-1",
        envelope(consent={**OBTAINED, "subject_not_to_be_told": True}),
        {"DC-TERR-1"},
    ),
    (
        "a Channel assessment pack for a subject who must not be told, consent not sought: "
        "assessment is not consent-based, lawful",
        case_pack(
            {
                "state": "NOT_SOUGHT",
                "reason_code": "TERRORISM_RISK",
                "subject_not_to_be_told": True,
                **ADULT,
            },
            purpose="CHANNEL_ASSESSMENT",
            legal_basis={**CHANNEL_BASIS, "powers": ["CDA1998-s115"]},
        ),
        set(),
    ),
    (
        "a 15-year-old's Channel support pack with only their own consent, who must not be "
        "told, relying on CTSA s36 → CS-04, DC-TERR-1",
        case_pack(
            {
                "state": "CHILD_OWN_CONSENT",
                "given_by": "SUBJECT",
                "subject_age": "UNDER_16",
                "subject_not_to_be_told": True,
            }
        ),
        {"CS-04", "DC-TERR-1"},
    ),
    (
        "police ask health for a child recorded as lacking capacity with no best-interests "
        "decision, relying on consent as the Art 6 basis → every violation, not the first",
        envelope(
            consent={"state": "LACKS_CAPACITY", "subject_age": "UNDER_16"},
            legal_basis={**LAWFUL_BASIS, "art6": "UKGDPR-A6-1a"},
        ),
        {"CS-03", "CS-07", "GW-00"},
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_consent(fields: EnvelopeFields, expected: set[str]) -> None:
    sender = LA if fields.kind in {"case_pack", "case_open", "consent_record"} else POLICE
    if fields.kind in {"referral", "release"}:
        sender = HEALTH
    assert check(fields, sender) == expected


def test_lacking_capacity_points_at_the_flag_and_at_the_missing_gateway() -> None:
    fields = envelope(consent={"state": "LACKS_CAPACITY", **ADULT})
    assert located(check_consent(fields, facts(fields), REGISTRY)) == {
        ("CS-03", "$.consent.best_interests"),
        ("CS-03", "$.legal_basis"),
    }


def test_not_to_be_told_with_consent_in_channel_support_points_at_purpose_and_state() -> None:
    fields = case_pack({**PARENT, "subject_age": "UNDER_16", "subject_not_to_be_told": True})
    assert located(check_consent(fields, facts(fields, LA), REGISTRY)) == {
        ("DC-TERR-1", "$.purpose"),
        ("DC-TERR-1", "$.consent.state"),
    }


def test_gw_00_points_at_the_layer_met_only_with_consent() -> None:
    fields = case_pack(
        {"state": "REFUSED", "given_by": "SUBJECT", **ADULT},
        purpose="CHANNEL_ASSESSMENT",
        legal_basis={
            **CHANNEL_BASIS,
            "art6": "UKGDPR-A6-1a",
            "confidentiality": ["CLDC-PUBINT"],
        },
    )
    assert located(check_consent(fields, facts(fields, LA), REGISTRY)) == {
        ("GW-00", "$.legal_basis.art6")
    }


def test_the_not_sought_reasons_offered_fit_the_purpose() -> None:
    """CS-02 lists the reasons to choose from; "not yet sought: to be sought as the support
    plan sets out" only where it fits, a Channel panel's assessment (REFERENCE 4.2 stage 7)."""
    request = envelope(consent={"state": "NOT_SOUGHT", **ADULT})
    (violation,) = check_consent(request, facts(request), REGISTRY)
    assert "WOULD_PREJUDICE_OUTCOME" in violation.message
    assert "NOT_YET_SOUGHT_SUPPORT_PLAN" not in violation.message
    pack = case_pack({"state": "NOT_SOUGHT", **ADULT}, purpose="CHANNEL_ASSESSMENT")
    (violation,) = check_consent(pack, facts(pack, LA), REGISTRY)
    assert "NOT_YET_SOUGHT_SUPPORT_PLAN" in violation.message

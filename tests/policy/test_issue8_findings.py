"""Issue 8: findings where the rules refused lawful sharing or accepted unlawful sharing.

Each test runs the whole policy engine over the real registry (``schemas/registry/``) and
names, in its docstring, the source passage that decides it. Lawful messages are
accepted (no violation at all); unlawful ones are refused with the rule named.
"""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any

from hub.model import EnvelopeFields
from hub.policy.engine import evaluate
from hub.policy.explain import explain_markdown
from hub.policy.facts import Party, PolicyFacts
from hub.policy.registry import Registry, load_registry

HEALTH = "health.bsw-icb"
POLICE = "police.ctp-sw"
LA = "la.wiltshire"
YOT = "yot.wiltshire"
MENTORS = "voluntary.mentors"

PARTIES = {
    HEALTH: Party(HEALTH, "health", "OFFICIAL-SENSITIVE"),
    POLICE: Party(POLICE, "police", "OFFICIAL-SENSITIVE"),
    LA: Party(LA, "local_authority", "OFFICIAL-SENSITIVE"),
    YOT: Party(YOT, "youth_justice", "OFFICIAL-SENSITIVE"),
    MENTORS: Party(MENTORS, "voluntary", "OFFICIAL-SENSITIVE"),
}

OS_PERSONAL = {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]}
LEAD = {"user_ref": "u-0001", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"}
OFFICER = {"user_ref": "u-0002", "role": "PREVENT_POLICE_OFFICER", "vetting": "BPSS"}
CHAIR = {"user_ref": "u-0004", "role": "CHANNEL_CHAIR", "vetting": "BPSS"}
ADULT_NOT_SOUGHT = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}
ADULT_OBTAINED = {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"}

# Seed 004 Appendix 4a section 4, the referral made without consent: "I am applying the
# legal exemptions (contained in the 'Data Protection Act 2018 - Schedule 2 Part 1 para
# ...') and in accordance with permissible powers contained in Section 115 of the Crime
# and Disorder Act 1998 ... in the wider public interest", with the public task basis,
# Art 9(2)(g) and Sch 1 para 10 for the special category data a referral carries.
APPENDIX_4A_BASIS: dict[str, Any] = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p10",
    "exemptions": ["DPA2018-S2P1p2"],
    "confidentiality": ["CLDC-PUBINT"],
    "appropriate_policy_document": "APD-BSWICB-2026",
}
APPENDIX_4A_REFERRAL: dict[str, Any] = {
    "kind": "referral",
    "author": LEAD,
    "recipients": [LA, POLICE],
    "marking": OS_PERSONAL,
    "subject_ref": "subj-000123",
    "purpose": "PREVENT_REFERRAL",
    "legal_basis": APPENDIX_4A_BASIS,
    "consent": ADULT_NOT_SOUGHT,
}
MH_ITEM = {
    "category": "mental_health_diagnoses",
    "period_from": "2025-11-01",
    "period_to": "2026-10-31",
    "justification_present": True,
}
REQUEST: dict[str, Any] = {
    "kind": "information_request",
    "author": OFFICER,
    "recipients": [HEALTH],
    "marking": OS_PERSONAL,
    "subject_ref": "subj-000123",
    "purpose": "PREVENT_TRIAGE",
    "legal_basis": {
        "powers": ["CDA1998-s115"],
        "art6": "UKGDPR-A6-1e",
        "art9": "UKGDPR-A9-2g",
        "sch1": "DPA2018-S1P2p10",
    },
    "consent": ADULT_NOT_SOUGHT,
    "scope": [MH_ITEM],
}
CHANNEL_BASIS: dict[str, Any] = {
    "powers": ["CTSA2015-s36"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p18",
}
CASE_PACK: dict[str, Any] = {
    "kind": "case_pack",
    "author": CHAIR,
    "recipients": [POLICE, HEALTH],
    "marking": OS_PERSONAL,
    "subject_ref": "subj-000123",
    "case_ref": "case-000042",
    "purpose": "CHANNEL_ASSESSMENT",
    "legal_basis": CHANNEL_BASIS,
    "consent": {
        "state": "NOT_SOUGHT",
        "reason_code": "NOT_YET_SOUGHT_SUPPORT_PLAN",
        "subject_age": "ADULT",
    },
    "access_expires_at": "2026-12-21T00:00:00Z",
}


@functools.cache
def registry() -> Registry:
    return load_registry()


def rules(document: dict[str, Any], sender: str, **changes: Any) -> set[str]:
    """The rule ids the whole engine refuses ``document`` with, sent by ``sender``."""
    fields = EnvelopeFields.model_validate_json(json.dumps({**document, **changes}))
    facts = PolicyFacts(
        sender=PARTIES[sender],
        recipients={r: PARTIES[r] for r in fields.recipients},
        today=date(2026, 11, 21),
    )
    return {v.rule for v in evaluate(fields, facts, registry())}


# --- Finding 1: the competent-authority test follows the purpose, not the citation -------


def test_the_appendix_4a_referral_to_the_local_authority_and_police_is_accepted() -> None:
    """Seed 004 Appendix 4a section 4 words the referral (s115, the Sch 2 Pt 1 para 2
    exemption, the public interest) and sends it "to your SO15 contact and the relevant
    Local Authority Prevent Coordinator". Appendix 4 puts the competent-authority
    restriction on Part 3 processing ("Part 3 of the DPA 2018 allows for the processing of
    personal data by a competent authority"), and s115 reaches local authorities
    expressly (seed 003 Annex 1). A Prevent referral is a safeguarding purpose: no GW-10."""
    assert rules(APPENDIX_4A_REFERRAL, HEALTH) == set()


def test_sch1_para10_to_a_local_authority_needs_an_appropriate_policy_document() -> None:
    """REFERENCE 2.3: Sch 1 para 10 needs an appropriate policy document (DPA 2018 Sch 1
    para 5) except for a disclosure to a competent authority. The local authority is not
    one (agency_types.yaml), so the template referral without its APD reference is
    refused with GW-14 - and only GW-14."""
    basis = {k: v for k, v in APPENDIX_4A_BASIS.items() if k != "appropriate_policy_document"}
    assert rules(APPENDIX_4A_REFERRAL, HEALTH, legal_basis=basis) == {"GW-14"}


def test_sch1_para10_to_the_police_alone_needs_no_appropriate_policy_document() -> None:
    """REFERENCE 2.3 (para 10's APD exception): a disclosure to a competent authority,
    here the police under s38B, needs no appropriate policy document reference."""
    basis = {
        **{k: v for k, v in APPENDIX_4A_BASIS.items() if k != "appropriate_policy_document"},
        "powers": ["TA2000-s38B"],
    }
    terrorism = {
        "state": "NOT_SOUGHT",
        "reason_code": "TERRORISM_RISK",
        "subject_not_to_be_told": True,
        "subject_age": "ADULT",
    }
    assert (
        rules(
            APPENDIX_4A_REFERRAL,
            HEALTH,
            recipients=[POLICE],
            purpose="TERRORISM_DISCLOSURE_S38B",
            legal_basis=basis,
            consent=terrorism,
        )
        == set()
    )


def test_a_local_authority_prevent_request_citing_para_10_is_accepted() -> None:
    """Seed 004 Appendix 4a section 5 expects requests "from external partners i.e. police
    local authority" citing "Section 115 Crime & Disorder and ... Pt1Para2"; s115 names
    local authorities as relevant authorities (seed 003 Annex 1). Prevent triage is a
    safeguarding purpose, UK GDPR processing a local authority may make and receive."""
    assert rules(REQUEST, LA, author=LEAD) == set()


def test_sharing_for_crime_prevention_with_a_local_authority_is_refused_with_gw_10() -> None:
    """Seed 004 Appendix 4: "if the sharing is to any organisation other than the Police,
    if the disclosure is for the purposes of the prevention and detection of crime, that
    receiving organisation must be a competent authority as defined by the DPA 2018
    otherwise the disclosure cannot be made for this purpose/reason". CRIME_PREVENTION is
    a law-enforcement purpose (purposes.yaml): the council asking for it is refused, the
    police asking for it are not."""
    assert rules(REQUEST, LA, author=LEAD, purpose="CRIME_PREVENTION") == {"GW-10"}
    assert rules(REQUEST, POLICE, purpose="CRIME_PREVENTION") == set()


def test_a_law_enforcement_purpose_brings_part_3_and_schedule_8() -> None:
    """Seed 004 Appendix 4: "Part 3 of the DPA 2018 allows for the processing of personal
    data by a competent authority for the purposes of the detection and/or prevention of
    crime ... Part 3 (Schedule 8) allows for the processing of sensitive data to safeguard
    children and adults at risk". Police releasing for CRIME_PREVENTION cite Part 3 with a
    Schedule 8 condition; the UK GDPR Art 9(2)(g) condition under Part 3 is refused with
    GW-16."""
    release = {
        **REQUEST,
        "kind": "release",
        "recipients": [YOT],
        "purpose": "CRIME_PREVENTION",
        "in_reply_to": "01a1fca0-7fb0-756c-a2a0-f908835c17ee",
        "legal_basis": {
            "powers": ["CL-POLICING"],
            "art6": "DPA2018-Pt3",
            "art9": "DPA2018-S8p4",
        },
    }
    assert "GW-16" not in rules(release, POLICE)
    mixed = {**release["legal_basis"], "art9": "UKGDPR-A9-2g", "sch1": "DPA2018-S1P2p10"}
    assert "GW-16" in rules(release, POLICE, legal_basis=mixed)


# --- Finding 2: Channel consent follows the purpose -------------------------------------


def test_a_channel_assessment_pack_needs_no_consent() -> None:
    """Seed 004 para 59: "agencies may share limited and proportionate information prior
    to seeking informed consent"; para 43 ties consent to "participating in the process"
    (support); REFERENCE 4.2 stage 7: consent is sought "as set in the support plan". So a
    panel's assessment pack citing CTSA 2015 s36, consent not yet sought and to be sought
    as the support plan sets out, is accepted (it was refused with GW-00)."""
    assert rules(CASE_PACK, LA) == set()


def test_channel_support_sharing_without_the_adults_consent_is_refused_whatever_is_cited() -> None:
    """Seed 004 para 43: the person "must also consent to participating in the process and
    for their personal sensitive information to be shared with multi-agency partners";
    Appendix 5: Channel "requires the consent of the individual"; CTSA 2015 s36(4).
    Citing s38 and LGA 1972 s111 beside s36 does not make support-stage sharing lawful
    without consent: CS-08 (it was accepted)."""
    basis = {**CHANNEL_BASIS, "powers": ["CTSA2015-s36", "CTSA2015-s38", "LGA1972-s111"]}
    support = {"purpose": "CHANNEL_SUPPORT", "legal_basis": basis}
    assert rules(CASE_PACK, LA, consent=ADULT_NOT_SOUGHT, **support) == {"CS-08"}
    assert rules(CASE_PACK, LA, consent=ADULT_OBTAINED, **support) == set()


def test_channel_support_for_a_child_needs_a_parents_consent() -> None:
    """CTSA 2015 s36(4) (REFERENCE 2.7) and seed 004 Appendix 5: consent of "their parent
    or guardian (if aged under 18 years)"."""
    child_own = {"state": "CHILD_OWN_CONSENT", "given_by": "SUBJECT", "subject_age": "AGED_16_17"}
    parent = {
        "state": "CHILD_PARENT_CONSENT",
        "given_by": "PARENT_OR_GUARDIAN",
        "subject_age": "AGED_16_17",
    }
    assert rules(CASE_PACK, LA, purpose="CHANNEL_SUPPORT", consent=child_own) == {"CS-04"}
    assert rules(CASE_PACK, LA, purpose="CHANNEL_SUPPORT", consent=parent) == set()


def test_not_yet_sought_for_the_support_plan_is_a_reason_only_for_assessment() -> None:
    """REFERENCE 4.2 stage 7 (consent sought as the support plan sets out, after the
    panel's assessment): the reason fits CHANNEL_ASSESSMENT only (CS-02 elsewhere)."""
    reason = {**ADULT_NOT_SOUGHT, "reason_code": "NOT_YET_SOUGHT_SUPPORT_PLAN"}
    assert rules(REQUEST, POLICE, consent=reason) == {"CS-02"}


# --- Finding 3: health names its exception to the common law duty of confidentiality ----


def test_health_disclosing_without_consent_names_its_confidentiality_exception() -> None:
    """Seed 004 Appendix 4a section 5: "The CLDC is an additional legal requirement for
    health and must be satisfied in addition to the DPA 2018/HRA1998"; section 4: "explain
    which public interest/best interest considerations have been applied to set aside
    their rights under the CLDC". Without consent and without an exception: GW-13."""
    basis = {k: v for k, v in APPENDIX_4A_BASIS.items() if k != "confidentiality"}
    assert rules(APPENDIX_4A_REFERRAL, HEALTH, legal_basis=basis) == {"GW-13"}
    # With the person's consent the duty is met; no exception is needed.
    assert rules(APPENDIX_4A_REFERRAL, HEALTH, legal_basis=basis, consent=ADULT_OBTAINED) == set()


def test_health_release_without_consent_or_exception_is_refused_with_gw_13() -> None:
    """Seed 004 Appendix 4a section 6: health shares "under the aforementioned 'Public
    Interest' exemptions or if a Best Interest decision has been taken". A release that
    names neither is refused with GW-13; naming CLDC-PUBINT lifts it."""
    release = {
        **REQUEST,
        "kind": "release",
        "author": {"user_ref": "u-0003", "role": "CALDICOTT_GUARDIAN", "vetting": "BPSS"},
        "recipients": [POLICE],
        "in_reply_to": "01a1fca0-7fb0-756c-a2a0-f908835c17ee",
    }
    assert "GW-13" in rules(release, HEALTH)
    named = {**REQUEST["legal_basis"], "confidentiality": ["CLDC-PUBINT"]}
    assert "GW-13" not in rules(release, HEALTH, legal_basis=named)


def test_health_referral_for_a_person_lacking_capacity_names_best_interests() -> None:
    """Seed 004 para 57 (referral without consent "if it is determined to be in their Best
    Interests") and Appendix 4 (GMC: "Best interest disclosure where the person lacks
    capacity to consent"): CLDC-BESTINT is the exception named."""
    capacity = {"state": "LACKS_CAPACITY", "best_interests": True, "subject_age": "ADULT"}
    basis = {**APPENDIX_4A_BASIS, "confidentiality": ["CLDC-BESTINT"]}
    assert rules(APPENDIX_4A_REFERRAL, HEALTH, legal_basis=basis, consent=capacity) == set()


# --- Finding 4: the implied power to share for a statutory function ---------------------

S42_REFERRAL: dict[str, Any] = {
    **APPENDIX_4A_REFERRAL,
    "recipients": [LA],
    "purpose": "ADULT_SAFEGUARDING_S42",
    "legal_basis": {
        "powers": ["IMPLIED-FUNCTION"],
        "statutory_function": "CareA2014-s42",
        "art6": "UKGDPR-A6-1e",
        "art9": "UKGDPR-A9-2g",
        "sch1": "DPA2018-S1P2p18",
        "confidentiality": ["CLDC-PUBINT"],
    },
}


def test_health_shares_for_an_adult_safeguarding_enquiry_under_an_implied_power() -> None:
    """Seed 001 and seed 003 Annex 1 ("Power to share"): "it will be possible to imply a
    power to share information because it is necessary for the fulfilment of an
    organisation's statutory functions". Health's share with the local authority for its
    Care Act s42 enquiry, naming that function, is accepted (it was refused: GW-01)."""
    assert rules(S42_REFERRAL, HEALTH) == set()


def test_the_implied_power_names_its_function() -> None:
    """Seed 003 Annex 1: "The power to share information arises only as a consequence of
    an organisation having the power to carry out an action which is dependent on the
    sharing" - so the function must be named (GW-15), and it must be the discloser's own
    or the one the purpose serves: s42 is not the function a child in need share serves."""
    basis = {k: v for k, v in S42_REFERRAL["legal_basis"].items() if k != "statutory_function"}
    assert rules(S42_REFERRAL, HEALTH, legal_basis=basis) == {"GW-15"}
    assert rules(S42_REFERRAL, HEALTH, purpose="CHILD_IN_NEED_S17") == {"GW-15"}
    s17 = {**S42_REFERRAL["legal_basis"], "statutory_function": "CA1989-s17"}
    child = {
        "state": "CHILD_PARENT_CONSENT",
        "given_by": "PARENT_OR_GUARDIAN",
        "subject_age": "UNDER_16",
    }
    assert (
        rules(S42_REFERRAL, HEALTH, purpose="CHILD_IN_NEED_S17", legal_basis=s17, consent=child)
        == set()
    )


def test_health_assists_a_child_protection_enquiry_under_s47() -> None:
    """REFERENCE 2.7 (Children Act 1989 s47: NHS bodies "must help with enquiries, in
    particular by giving relevant information"); the disclosure is required by law, the
    exception to confidentiality seed 004 Appendix 4 cites ("Disclosure required or
    permitted by law")."""
    basis = {
        **S42_REFERRAL["legal_basis"],
        "powers": ["CA1989-s47"],
        "confidentiality": ["CLDC-LAW"],
    }
    del basis["statutory_function"]
    assert rules(S42_REFERRAL, HEALTH, purpose="CHILD_SAFEGUARDING_S47", legal_basis=basis) == set()


# --- Finding 5: s115 reaches those acting on behalf of a relevant authority -------------


def test_a_youth_offending_team_may_ask_under_s115() -> None:
    """Seed 003 Annex 1: the "relevant authority" under s115 "includes an individual acting
    on behalf of the relevant authority"; seed 004 Appendix 4: "(or to a person acting on
    behalf of any of these bodies)". A youth offending team acts for the local authority
    (CDA 1998 s39), so its s115 request is accepted (it was refused: GW-09)."""
    assert rules(REQUEST, YOT, author=LEAD) == set()


# --- Finding 6: referral routing (WF-01) ------------------------------------------------


def test_a_prevent_referral_always_reaches_the_local_authority() -> None:
    """Seed 004 Appendix 3: the form arrives "with both your dedicated Local Authority
    safeguarding team & Prevent policing team" (the default), and is emailed "to: [Insert
    name of MASH] and your local authority Prevent Lead"; para 30 and the Appendix 6
    flowchart route an onward referral to the local authority. The local authority alone
    is accepted; the police alone is refused with WF-01."""
    assert rules(APPENDIX_4A_REFERRAL, HEALTH) == set()
    assert rules(APPENDIX_4A_REFERRAL, HEALTH, recipients=[LA]) == set()
    assert rules(APPENDIX_4A_REFERRAL, HEALTH, recipients=[POLICE]) == {"WF-01"}


# --- Finding 7: a gateway is judged per recipient ---------------------------------------


def test_each_panel_member_needs_a_gateway_that_covers_it_not_every_gateway() -> None:
    """REFERENCE 2.7 and 2.9 (who each gateway permits disclosure to): a case pack to the
    police and an intervention provider may rest on s115 for the police and the Localism
    Act 2011 s1 power for the provider. Each member is covered, so it is accepted (it was
    refused because s115 does not reach the provider). A member no gateway covers is
    refused with GW-09, naming that member."""
    both = {**CHANNEL_BASIS, "powers": ["CDA1998-s115", "LocA2011-s1"]}
    assert rules(CASE_PACK, LA, recipients=[POLICE, MENTORS], legal_basis=both) == set()
    s115_only = {**CHANNEL_BASIS, "powers": ["CDA1998-s115"]}
    assert rules(CASE_PACK, LA, recipients=[POLICE, MENTORS], legal_basis=s115_only) == {"GW-09"}


# --- Finding 8: where the sources are silent, the registry says it is local policy ------


def test_every_deadline_is_marked_local_policy_with_its_basis() -> None:
    """No source sets a time limit for answering a request; the Prevent 5 working days is
    a local procedure (REFERENCE 4.2: "partner response SLA configurable (default 5 working
    days, from the Thames Valley example)"). Every deadline says so, and docs/policy.md
    shows it."""
    with_deadlines = [p for p in registry().purposes if p.deadlines is not None]
    assert with_deadlines
    for purpose in with_deadlines:
        assert purpose.deadlines is not None
        assert purpose.deadlines.local_policy, purpose.id
        assert purpose.deadlines.basis.strip(), purpose.id
    document = explain_markdown(registry())
    assert "a local policy choice, not law" in document
    assert "local policy defaults for proportionality, not law" in document


def test_every_purpose_names_its_source() -> None:
    """The principle of issue 8: every rule cites the passage it comes from."""
    for purpose in registry().purposes:
        assert purpose.source.strip(), purpose.id

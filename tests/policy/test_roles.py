"""Who acts (ROLE-01 .. ROLE-06) against the committed roles registry and its sources.

Each test names the passage it follows: SEED 004 is the BSW ICB Prevent Policy in
../shared/domain/sources/004_*.txt; REFERENCE is ../shared/domain/REFERENCE.md. Lawful
messages are accepted (an empty list), unlawful ones refused with the rule named. The
entries the sources do not decide are marked local policy in roles.yaml, and the tests
for them say so.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hub.model import EnvelopeFields
from hub.policy.engine import evaluate
from hub.policy.facts import Party, PolicyFacts
from hub.policy.registry import DEFAULT_REGISTRY_DIR, Registry, RegistryError, load_registry
from hub.policy.roles import allowed_roles, check_roles

HEALTH = Party("health.bsw-icb", "health", "OFFICIAL-SENSITIVE")
POLICE = Party("police.ctp-sw", "police", "OFFICIAL-SENSITIVE")
LA = Party("la.wiltshire", "local_authority", "OFFICIAL-SENSITIVE")
SCHOOL = Party("education.college", "education", "OFFICIAL-SENSITIVE")
OS_PERSONAL = {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]}
NOT_SOUGHT = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}
OBTAINED = {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"}
S115_BASIS = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p10",
}
MH = {
    "category": "mental_health_diagnoses",
    "period_from": "2025-11-01",
    "period_to": "2026-10-31",
    "justification_present": True,
}
MEDICATION = {**MH, "category": "medication"}


@functools.cache
def registry() -> Registry:
    return load_registry()


def author(role: str) -> dict[str, str]:
    return {"user_ref": f"u-{role.lower()[:10]}", "role": role, "vetting": "BPSS"}


def fields(document: dict[str, Any]) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(json.dumps(document))


def facts(sender: Party, answers: dict[str, Any] | None = None) -> PolicyFacts:
    return PolicyFacts(
        sender=sender,
        recipients={p.node_id: p for p in (HEALTH, POLICE, LA) if p is not sender},
        today=date(2026, 11, 21),
        answers=None if answers is None else fields(answers),
        answers_sender=None if answers is None else POLICE.node_id,
    )


def rules(
    document: dict[str, Any], sender: Party, answers: dict[str, Any] | None = None
) -> set[str]:
    return {v.rule for v in check_roles(fields(document), facts(sender, answers), registry())}


def referral(role: str, purpose: str = "PREVENT_REFERRAL") -> dict[str, Any]:
    return {
        "kind": "referral",
        "author": author(role),
        "recipients": [LA.node_id, POLICE.node_id],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-000123",
        "purpose": purpose,
        "legal_basis": {**S115_BASIS, "sch1": "DPA2018-S1P2p18"},
        "consent": NOT_SOUGHT,
    }


def request(
    consent: dict[str, Any] = NOT_SOUGHT, scope: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "kind": "information_request",
        "author": author("PREVENT_POLICE_OFFICER"),
        "recipients": [HEALTH.node_id],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-000123",
        "purpose": "PREVENT_TRIAGE",
        "legal_basis": S115_BASIS,
        "consent": consent,
        "scope": scope if scope is not None else [MH, MEDICATION],
    }


def decision(role: str, outcome: str = "APPROVED_FULL", **record: Any) -> dict[str, Any]:
    approved = [MH, MEDICATION] if outcome == "APPROVED_FULL" else []
    if outcome == "APPROVED_PARTIAL":
        approved = [MEDICATION]
    return {
        "kind": "decision",
        "author": author(role),
        "recipients": [POLICE.node_id],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-000123",
        "purpose": "PREVENT_TRIAGE",
        "in_reply_to": "01a1fca0-7fb0-756c-a2a0-f908835c17ed",
        "decision": {
            "outcome": outcome,
            "approved_scope": approved,
            "recorded_in_subject_record": True,
            **({"reason_code": "MINIMUM_NECESSARY"} if outcome != "APPROVED_FULL" else {}),
            **record,
        },
    }


def release(role: str, scope: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **request(scope=scope),
        "kind": "release",
        "author": author(role),
        "recipients": [POLICE.node_id],
        "in_reply_to": "01a1fca0-7fb0-756c-a2a0-f908835c17ee",
    }


# --- ROLE-01: who refers ---------------------------------------------------------------


def test_a_health_prevent_referral_is_made_by_the_safeguarding_lead() -> None:
    """SEED 004 Appendix 3: the form "is to be used by the BSW ICB Safeguarding Designated
    Nurse only"; the roles table makes the designated nurses (safeguarding locality leads)
    "the gatekeepers for Prevent referrals"."""
    assert rules(referral("SAFEGUARDING_LEAD"), HEALTH) == set()


@pytest.mark.parametrize("role", ["REFERRER", "CALDICOTT_GUARDIAN", "PANEL_MEMBER", "AUDITOR"])
def test_no_one_else_at_a_health_node_makes_a_prevent_referral(role: str) -> None:
    """SEED 004 Appendix 3 ("Designated Nurse only"); paras 29 and 35: a colleague with a
    concern raises it with the safeguarding lead, who refers."""
    violations = check_roles(fields(referral(role)), facts(HEALTH), registry())
    assert [(v.rule, v.path) for v in violations] == [("ROLE-01", "$.author.role")]
    assert "SAFEGUARDING_LEAD" in violations[0].message
    assert "REFER-HEALTH-PREVENT" in violations[0].message


def test_health_referrals_other_than_prevent_follow_local_policy() -> None:
    """Local policy (roles.yaml REFER-HEALTH-OTHER): SEED 004 restricts only the National
    Prevent Referral Form, so a practitioner's adult safeguarding referral is not refused."""
    assert rules(referral("REFERRER", purpose="ADULT_SAFEGUARDING_S42"), HEALTH) == set()


@pytest.mark.parametrize("sender", [LA, SCHOOL, POLICE])
def test_other_agencies_refer_under_local_policy(sender: Party) -> None:
    """Local policy (roles.yaml REFER-ANY): the sources name who refers only for health, so
    a practitioner elsewhere may refer; an auditor may not."""
    assert rules(referral("REFERRER"), sender) == set()
    assert rules(referral("AUDITOR"), sender) == {"ROLE-01"}


def test_every_grant_the_sources_do_not_decide_is_marked_local_policy() -> None:
    """The principle: every rule cites its source; where the sources are silent it is a
    local policy setting and says so."""
    for grant in registry().roles.grants:
        assert grant.source
        if "ANY" in grant.agency_types:
            assert grant.local_policy, grant.id
    by_id = {g.id: g for g in registry().roles.grants}
    assert not by_id["REFER-HEALTH-PREVENT"].local_policy
    assert not by_id["DECIDE-HEALTH"].local_policy
    consultations = {c.id: c for c in registry().roles.consultations}
    assert not consultations["S115-WITHOUT-CONSENT"].local_policy
    assert consultations["MENTAL-HEALTH"].local_policy
    assert consultations["UNDER-18"].local_policy


# --- ROLE-02 / ROLE-03 / ROLE-04: who decides and releases ------------------------------


@pytest.mark.parametrize("role", ["SAFEGUARDING_LEAD", "CALDICOTT_GUARDIAN"])
def test_the_safeguarding_lead_or_caldicott_guardian_decides_for_health(role: str) -> None:
    """SEED 004 roles table (designated nurses gatekeep "Prevent referrals and enquiries");
    para 69 (s115 requests decided with the safeguarding locality lead in consultation with
    the Caldicott Guardian and/or IG officer)."""
    document = decision(role, consulted=["CALDICOTT_GUARDIAN"])
    assert rules(document, HEALTH, request()) == set()


@pytest.mark.parametrize("role", ["REFERRER", "PANEL_MEMBER", "PREVENT_POLICE_OFFICER"])
def test_anyone_else_cannot_approve_a_health_release(role: str) -> None:
    """SEED 004 roles table and para 69: a practitioner cannot approve a mental health
    release; before this rule anyone could."""
    document = decision(role, consulted=["CALDICOTT_GUARDIAN"])
    assert rules(document, HEALTH, request()) == {"ROLE-02", "ROLE-04"}


def test_the_ig_officer_may_decide_but_not_approve_mental_health_notes() -> None:
    """ROLE-02 admits the IG officer (SEED 004 paras 61, 69); ROLE-04 is local policy
    (roles.yaml MENTAL-HEALTH-DECIDE): mental health notes go to the safeguarding lead or
    the Caldicott Guardian. Approving only the medication is the IG officer's to do."""
    assert rules(decision("IG_LEAD"), HEALTH, request()) == {"ROLE-04"}
    partial = decision("IG_LEAD", "APPROVED_PARTIAL")
    assert rules(partial, HEALTH, request(scope=[MEDICATION])) == set()


def test_mental_health_release_names_the_category_that_needs_another_role() -> None:
    """ROLE-03 (SEED 004 roles table) and ROLE-04 (local policy) on a release."""
    assert rules(release("SAFEGUARDING_LEAD", [MH, MEDICATION]), HEALTH) == set()
    violations = check_roles(
        fields(release("IG_LEAD", [MH, MEDICATION])), facts(HEALTH), registry()
    )
    assert [(v.rule, v.path) for v in violations] == [("ROLE-04", "$.scope[0].category")]
    assert rules(release("REFERRER", [MEDICATION]), HEALTH) == {"ROLE-03"}


def test_other_agencies_decide_under_local_policy() -> None:
    """Local policy (roles.yaml DECIDE-ANY): the roles a decision payload may name."""
    police_decision = {**decision("PREVENT_POLICE_OFFICER", "REFUSED"), "recipients": [LA.node_id]}
    assert rules(police_decision, POLICE) == set()
    assert rules({**police_decision, "author": author("REFERRER")}, POLICE) == {"ROLE-02"}


def test_allowed_roles_prefers_the_named_agency_and_purpose() -> None:
    """The most specific grant decides: health Prevent referrals are the designated nurse's
    alone, though REFER-ANY and REFER-HEALTH-OTHER also match a health node."""
    found = allowed_roles(registry(), "refer", "health", "PREVENT_REFERRAL")
    assert found is not None
    assert found[0] == frozenset({"SAFEGUARDING_LEAD"})
    other = allowed_roles(registry(), "refer", "health", "ADULT_SAFEGUARDING_S42")
    assert other is not None
    assert "REFERRER" in other[0]


# --- ROLE-05: consultations ------------------------------------------------------------


def test_an_s115_decision_without_consent_records_the_consultation() -> None:
    """SEED 004 para 69: s115 requests are determined "in consultation with the Caldicott
    Guardian and/or Information Governance Officer"."""
    partial = decision("SAFEGUARDING_LEAD", "APPROVED_PARTIAL")
    violations = check_roles(fields(partial), facts(HEALTH, request()), registry())
    assert [(v.rule, v.path) for v in violations] == [("ROLE-05", "$.decision.consulted")]
    assert "S115-WITHOUT-CONSENT" in violations[0].message
    consulted = decision("SAFEGUARDING_LEAD", "APPROVED_PARTIAL", consulted=["IG_LEAD"])
    assert rules(consulted, HEALTH, request()) == set()


def test_a_refusal_under_s115_is_also_made_in_consultation() -> None:
    """SEED 004 para 69: whether to disclose under s115 is determined case by case in
    consultation; declining to disclose is such a determination."""
    refusal = decision("SAFEGUARDING_LEAD", "REFUSED")
    assert rules(refusal, HEALTH, request(scope=[MEDICATION])) == {"ROLE-05"}


def test_the_caldicott_guardian_deciding_is_the_consultation() -> None:
    """SEED 004 para 69: the Caldicott Guardian deciding is consulted by definition."""
    assert rules(decision("CALDICOTT_GUARDIAN"), HEALTH, request()) == set()


def test_no_consultation_is_needed_with_consent_for_non_mental_health_data() -> None:
    """SEED 004 para 69 applies to s115 without consent; with consent (Appendix 4a s1, "the
    primary condition") the safeguarding lead decides alone. Refusing this would refuse a
    lawful share."""
    partial = decision("SAFEGUARDING_LEAD", "APPROVED_PARTIAL")
    assert rules(partial, HEALTH, request(consent=OBTAINED, scope=[MH, MEDICATION])) == set()


def test_mental_health_approvals_record_a_consultation_by_local_policy() -> None:
    """Local policy (roles.yaml MENTAL-HEALTH; REFERENCE 3.6 ESCALATE_IF mental health
    notes; SEED 004 para 61): even with consent."""
    approval = decision("SAFEGUARDING_LEAD")
    assert rules(approval, HEALTH, request(consent=OBTAINED)) == {"ROLE-05"}
    consulted = decision("SAFEGUARDING_LEAD", consulted=["CALDICOTT_GUARDIAN"])
    assert rules(consulted, HEALTH, request(consent=OBTAINED)) == set()


def test_approvals_about_under_18s_record_a_consultation_by_local_policy() -> None:
    """Local policy (roles.yaml UNDER-18; REFERENCE 3.6 ESCALATE_IF under-16s, widened to
    under-18s, SEED 004 para 55)."""
    child = {
        "state": "CHILD_PARENT_CONSENT",
        "given_by": "PARENT_OR_GUARDIAN",
        "subject_age": "AGED_16_17",
    }
    partial = decision("SAFEGUARDING_LEAD", "APPROVED_PARTIAL")
    assert rules(partial, HEALTH, request(consent=child, scope=[MEDICATION])) == {"ROLE-05"}
    adult = request(consent=OBTAINED, scope=[MEDICATION])
    assert rules(partial, HEALTH, adult) == set()


def test_returns_and_escalations_need_no_consultation() -> None:
    """An escalation is itself the referral to the Caldicott Guardian (REFERENCE 3.6)."""
    escalation = decision("SAFEGUARDING_LEAD", "ESCALATED", recorded_in_subject_record=False)
    assert rules(escalation, HEALTH, request()) == set()


# --- ROLE-06: the patient record --------------------------------------------------------


def test_a_health_decision_is_documented_in_the_patient_record() -> None:
    """SEED 004 para 62: "Any disclosures or discussions on information sharing or consent
    must always be documented in the patient record"; Appendix 4a: "always document your
    decision-making and rationale at the time"."""
    unrecorded = decision("CALDICOTT_GUARDIAN", recorded_in_subject_record=False)
    violations = check_roles(fields(unrecorded), facts(HEALTH, request()), registry())
    assert [(v.rule, v.path) for v in violations] == [
        ("ROLE-06", "$.decision.recorded_in_subject_record")
    ]
    refusal = decision("CALDICOTT_GUARDIAN", "REFUSED", recorded_in_subject_record=False)
    assert rules(refusal, HEALTH, request()) == {"ROLE-06"}


def test_the_patient_record_rule_is_health_policy_only() -> None:
    """SEED 004 is a health body's policy; other agencies are not bound by para 62."""
    police_decision = {
        **decision("PREVENT_POLICE_OFFICER", "REFUSED", recorded_in_subject_record=False),
        "recipients": [LA.node_id],
    }
    assert rules(police_decision, POLICE) == set()


# --- the engine and the registry -------------------------------------------------------


def test_the_engine_runs_the_role_rules() -> None:
    """RULE_CHECKS joins check_roles: the hub, pre-flight and hub policy check all refuse
    a practitioner's Prevent referral from health."""
    document = referral("REFERRER")
    document["legal_basis"] = {**document["legal_basis"], "confidentiality": ["CLDC-PUBINT"]}
    violations = evaluate(fields(document), facts(HEALTH), registry())
    assert "ROLE-01" in {v.rule for v in violations}
    lawful = {**document, "author": author("SAFEGUARDING_LEAD")}
    assert "ROLE-01" not in {v.rule for v in evaluate(fields(lawful), facts(HEALTH), registry())}


def test_role_rule_ids_are_in_the_rules_registry_with_sources() -> None:
    texts = {r.id: r for r in registry().rules}
    for rule_id in ("ROLE-01", "ROLE-02", "ROLE-03", "ROLE-04", "ROLE-05", "ROLE-06"):
        assert texts[rule_id].source, rule_id


def test_a_roles_entry_naming_an_unknown_category_is_refused(tmp_path: Path) -> None:
    """The loader checks roles.yaml's references like every other registry file."""
    shutil.copytree(DEFAULT_REGISTRY_DIR, tmp_path, dirs_exist_ok=True)
    roles = tmp_path / "roles.yaml"
    roles.write_text(
        roles.read_text().replace(
            "categories: [mental_health_diagnoses,", "categories: [nonsense,", 1
        )
    )
    with pytest.raises(
        RegistryError,
        match=re.escape("roles.yaml: MENTAL-HEALTH-RELEASE: unknown data category 'nonsense'"),
    ):
        load_registry(tmp_path)

"""Panel outcomes and who acts, through the real hub as real nodes.

SEED 004 para 31: "In many cases, no further action will be required, or the
vulnerability is assessed as not related to radicalisation and the individual concerned is
signposted to other support"; para 43: the person must know of and "consent to
participating in the process and for their personal sensitive information to be shared
with multi-agency partners". REFERENCE.md 4.2: the panel decides whether to adopt (stage
6), then consent is sought as the support plan sets out (stage 7), then support (stage 8).
Who acts: SEED 004 Appendix 3 and para 69 (schemas/registry/roles.yaml).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.client import NodeClient
from tests.conftest import HubFixture
from tests.workflows.helpers import (
    HEALTH,
    LA,
    MED_ITEM,
    MH_ITEM,
    POLICE,
    author,
    decision_doc,
    refused,
    release_doc,
    request_doc,
    send,
)
from tests.workflows.test_referral_and_case import ADULT_CONSENT, case_doc, referral_doc


def outcome(case_ref: str, panel_outcome: str, **changes: Any) -> dict[str, Any]:
    return case_doc("panel_outcome", case_ref=case_ref, panel_outcome=panel_outcome, **changes)


async def test_not_adopted_with_no_further_action_closes_the_panel_stage(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    """SEED 004 para 31: a panel may record "not adopted, no further action"."""
    la, police = nodes[LA], nodes[POLICE]
    await send(la, case_doc("case_open", case_ref="case-nfa-0001"))
    await send(la, outcome("case-nfa-0001", "NOT_ADOPTED_NFA"))
    state = await police.case_state("case-nfa-0001")
    assert (state["stage"], state["awaiting_consent"]) == ("NOT_ADOPTED_NFA", False)
    assert state["history"][-1]["summary"] == "NOT_ADOPTED_NFA"
    # The panel has finished with it: no further case packs or outcomes (WF-13).
    expires = (hub.clock() + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    pack = case_doc("case_pack", case_ref="case-nfa-0001", access_expires_at=expires)
    assert await refused(la, pack) == {"WF-13"}
    assert await refused(la, outcome("case-nfa-0001", "ADOPTED")) == {"WF-13"}


async def test_not_adopted_and_referred_elsewhere(nodes: dict[str, NodeClient]) -> None:
    """CTSA 2015 s36(6) (REFERENCE 4.2 stage 6): a case not adopted may be referred on."""
    la, health = nodes[LA], nodes[HEALTH]
    await send(la, case_doc("case_open", case_ref="case-on-0001"))
    await send(la, outcome("case-on-0001", "NOT_ADOPTED_REFERRED_ON"))
    assert (await health.case_state("case-on-0001"))["stage"] == "NOT_ADOPTED_REFERRED_ON"


async def test_adoption_waits_for_consent_and_a_refusal_keeps_support_closed(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    """SEED 004 para 43 and REFERENCE 4.2 stages 7-7a: adopted, consent sought; refused, no
    support (sharing for support is refused, WF-14); the panel may then close the case
    with no further action."""
    la, police = nodes[LA], nodes[POLICE]
    ref = "case-refused-0001"
    await send(la, case_doc("case_open", case_ref=ref))
    await send(la, outcome(ref, "ADOPTED", purpose="CHANNEL_SUPPORT"))
    assert (await police.case_state(ref))["stage"] == "CONSENT_SOUGHT"
    await send(
        la,
        case_doc(
            "consent_record",
            case_ref=ref,
            purpose="CHANNEL_SUPPORT",
            consent={**ADULT_CONSENT, "state": "REFUSED"},
        ),
    )
    state = await police.case_state(ref)
    assert (state["stage"], state["consent"]) == ("CONSENT_SOUGHT", "REFUSED")
    expires = (hub.clock() + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    support_pack = case_doc(
        "case_pack", case_ref=ref, purpose="CHANNEL_SUPPORT", access_expires_at=expires
    )
    assert await refused(la, support_pack) == {"WF-14"}
    # Sharing for the panel's own assessment is not sharing for support.
    await send(la, {**support_pack, "purpose": "CHANNEL_ASSESSMENT"})
    await send(la, outcome(ref, "NOT_ADOPTED_NFA"))
    assert (await police.case_state(ref))["stage"] == "NOT_ADOPTED_NFA"


async def test_consent_recorded_before_adoption_goes_straight_to_support(
    nodes: dict[str, NodeClient],
) -> None:
    """REFERENCE 4.2: with consent already given, adoption starts support at once."""
    la, police = nodes[LA], nodes[POLICE]
    ref = "case-consented-0001"
    await send(la, case_doc("case_open", case_ref=ref))
    await send(la, case_doc("consent_record", case_ref=ref, purpose="CHANNEL_SUPPORT"))
    await send(la, outcome(ref, "ADOPTED", purpose="CHANNEL_SUPPORT"))
    state = await police.case_state(ref)
    assert (state["stage"], state["history"][-1]["summary"]) == ("SUPPORT", "ADOPTED")


async def test_only_the_safeguarding_lead_makes_a_health_prevent_referral(
    nodes: dict[str, NodeClient],
) -> None:
    """SEED 004 Appendix 3: the form is "to be used by the BSW ICB Safeguarding Designated
    Nurse only" (ROLE-01); the hub refuses a practitioner's referral and names the rule."""
    health = nodes[HEALTH]
    assert "ROLE-01" in await refused(health, referral_doc(author=author("REFERRER")))
    await send(health, referral_doc())


async def test_an_s115_decision_without_consent_records_its_consultation(
    nodes: dict[str, NodeClient],
) -> None:
    """SEED 004 para 69 (ROLE-05) and para 62 (ROLE-06), enforced by the hub; the release
    of mental health information by a practitioner is refused (ROLE-03/ROLE-04)."""
    health, police = nodes[HEALTH], nodes[POLICE]
    request = await send(police, request_doc())
    lead = author("SAFEGUARDING_LEAD")
    unconsulted = decision_doc(request.message_id, "APPROVED_FULL", [MH_ITEM, MED_ITEM])
    unconsulted["author"] = lead
    assert await refused(health, unconsulted) == {"ROLE-05"}
    unrecorded = {
        **unconsulted,
        "decision": {
            **unconsulted["decision"],
            "consulted": ["CALDICOTT_GUARDIAN"],
            "recorded_in_subject_record": False,
        },
    }
    assert await refused(health, unrecorded) == {"ROLE-06"}
    consulted = {
        **unconsulted,
        "decision": {**unconsulted["decision"], "consulted": ["CALDICOTT_GUARDIAN"]},
    }
    decision = await send(health, consulted)
    practitioner = release_doc(decision.message_id, [MH_ITEM], author=author("REFERRER"))
    assert await refused(health, practitioner) == {"ROLE-03", "ROLE-04"}
    await send(health, release_doc(decision.message_id, [MH_ITEM], author=lead))
    state = await police.request_state(request.message_id)
    assert (state["state"], state["decided_by"]) == ("RELEASED", HEALTH)

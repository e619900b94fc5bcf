"""The referral and the Channel case, through the HTTP API with real crypto."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hub.client import HubProblem, NodeClient
from tests.conftest import REFERRAL_CONSENT, REFERRAL_LEGAL_BASIS, HubFixture
from tests.workflows.helpers import (
    HEALTH,
    LA,
    OS_PERSONAL,
    POLICE,
    STRANGER,
    author,
    refused,
    send,
)


def referral_doc(**changes: Any) -> dict[str, Any]:
    doc = {
        "kind": "referral",
        "author": author("SAFEGUARDING_LEAD"),
        "recipients": [LA, POLICE],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-wf-0002",
        "purpose": "PREVENT_REFERRAL",
        "legal_basis": REFERRAL_LEGAL_BASIS,
        "consent": REFERRAL_CONSENT,
    }
    doc.update(changes)
    return doc


def triage_doc(referral_id: str, **changes: Any) -> dict[str, Any]:
    doc = {
        "kind": "referral_outcome",
        "author": author("PREVENT_POLICE_OFFICER"),
        "recipients": [HEALTH, LA],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-wf-0002",
        "purpose": "PREVENT_TRIAGE",
        "in_reply_to": referral_id,
        "triage_outcome": "CHANNEL",
    }
    doc.update(changes)
    return doc


async def test_referral_goes_to_la_and_police_and_is_triaged_once(
    nodes: dict[str, NodeClient],
) -> None:
    health, police, la = nodes[HEALTH], nodes[POLICE], nodes[LA]
    # The local authority is always a recipient; the police alone are refused, the local
    # authority alone is the flowchart's route (seed 004 Appendix 3, Appendix 6; WF-01).
    assert "WF-01" in await refused(health, referral_doc(recipients=[POLICE]))
    await send(health, referral_doc(recipients=[LA], subject_ref="subj-wf-0003"))
    referral = await send(health, referral_doc())
    assert "WF-02" in await refused(
        la, triage_doc(referral.message_id, recipients=[HEALTH, POLICE])
    )
    await send(police, triage_doc(referral.message_id))
    assert "WF-02" in await refused(police, triage_doc(referral.message_id, triage_outcome="NFA"))
    assert "WF-02" in await refused(police, triage_doc(referral.message_id, recipients=[LA]))


CASE = "case-wilts-0001"
PANEL = {
    "chair": LA,
    "members": [{"node": POLICE, "role": "POLICE_PREVENT"}, {"node": HEALTH, "role": "HEALTH"}],
}
CASE_BASIS = {
    "powers": ["LGA1972-s111"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p18",
}
ADULT_CONSENT = {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"}


def case_doc(kind: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": kind,
        "author": author("CHANNEL_CHAIR"),
        "recipients": [POLICE, HEALTH],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-wf-0002",
        "case_ref": CASE,
        "purpose": "CHANNEL_ASSESSMENT",
        "consent": ADULT_CONSENT,
    }
    if kind == "case_open":
        doc["case"] = PANEL
        doc["consent"] = {
            "state": "NOT_SOUGHT",
            "reason_code": "DECONFLICTION_STAGE",
            "subject_age": "ADULT",
        }
    if kind == "case_pack":
        doc["legal_basis"] = CASE_BASIS
    doc.update(changes)
    return doc


async def test_channel_case_from_opening_to_closure(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    health, police, la, stranger = nodes[HEALTH], nodes[POLICE], nodes[LA], nodes[STRANGER]
    assert "WF-07" in await refused(
        police, case_doc("case_open", case={**PANEL, "chair": POLICE}, recipients=[LA, HEALTH])
    )
    await send(la, case_doc("case_open"))
    assert (await police.case_state(CASE))["stage"] == "OPEN"
    with pytest.raises(HubProblem) as hidden:
        await stranger.case_state(CASE)
    assert hidden.value.problem.status == 404

    # Only the chair changes membership or sends case messages; only to members.
    assert "WF-08" in await refused(police, case_doc("case_open", recipients=[LA, HEALTH]))
    expires = (hub.clock() + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    pack = case_doc("case_pack", access_expires_at=expires)
    assert "WF-08" in await refused(police, {**pack, "recipients": [LA, HEALTH]})
    assert "WF-09" in await refused(la, {**pack, "recipients": [POLICE, STRANGER]})
    past = (hub.clock() - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert "WF-10" in await refused(la, {**pack, "access_expires_at": past})

    # The panel may adopt before consent (seed 004 paras 31, 43; WF-11): consent is then
    # sought as the support plan sets out, and sharing for support waits for it (WF-14).
    sent_pack = await send(la, pack, {"sections": ["SYNTHETIC referral summary"]})
    fetched = await health.fetch(sent_pack.message_id)
    assert await health.open_payload(fetched) is not None
    adopted = case_doc("panel_outcome", panel_outcome="ADOPTED", purpose="CHANNEL_SUPPORT")
    await send(la, adopted)
    pending = await health.case_state(CASE)
    assert (pending["stage"], pending["awaiting_consent"]) == ("CONSENT_SOUGHT", True)
    assert pending["history"][-1]["summary"] == "ADOPTED_CONSENT_PENDING"
    support_pack = {**pack, "purpose": "CHANNEL_SUPPORT"}
    assert await refused(la, support_pack) == {"WF-14"}
    await send(la, case_doc("consent_record", purpose="CHANNEL_SUPPORT"))
    supported = await health.case_state(CASE)
    assert (supported["stage"], supported["awaiting_consent"]) == ("SUPPORT", False)
    await send(la, support_pack, {"sections": ["SYNTHETIC support plan"]})

    # After its access expiry the hub no longer serves the case pack to members.
    hub.clock.advance(8 * 24 * 3600)
    with pytest.raises(HubProblem) as expired:
        await health.fetch(sent_pack.message_id)
    assert expired.value.problem.status == 410

    # Withdrawn consent stops support; reviews follow at 6 then 12 months.
    await send(
        la,
        case_doc(
            "consent_record",
            purpose="CHANNEL_SUPPORT",
            consent={**ADULT_CONSENT, "state": "WITHDRAWN"},
        ),
    )
    assert (await police.case_state(CASE))["stage"] == "EXITED"
    review = case_doc("case_review", purpose="CHANNEL_REVIEW")
    assert "WF-12" in await refused(la, {**review, "review_point": "12_MONTHS"})
    await send(la, {**review, "review_point": "6_MONTHS"})
    await send(la, {**review, "review_point": "12_MONTHS"})
    closed = await la.case_state(CASE)
    assert closed["stage"] == "CLOSED"
    assert [e["kind"] for e in closed["history"]][:5] == [
        "case_open",
        "case_pack",
        "panel_outcome",
        "consent_record",
        "case_pack",
    ]


async def test_a_subject_who_must_not_be_told_cannot_enter_support(
    nodes: dict[str, NodeClient],
) -> None:
    la = nodes[LA]
    await send(la, case_doc("case_open", case_ref="case-wilts-0002"))
    # The terrorism-planning flag arrives with the case (subject must not be told).
    await send(
        la,
        case_doc(
            "consent_record",
            case_ref="case-wilts-0002",
            purpose="CHANNEL_ASSESSMENT",
            consent={
                "state": "NOT_SOUGHT",
                "reason_code": "TERRORISM_RISK",
                "subject_not_to_be_told": True,
                "subject_age": "ADULT",
            },
        ),
    )
    assert (await la.case_state("case-wilts-0002"))["subject_not_to_be_told"] is True
    rules = await refused(
        la,
        case_doc(
            "panel_outcome",
            case_ref="case-wilts-0002",
            panel_outcome="ADOPTED",
            purpose="CHANNEL_SUPPORT",
        ),
    )
    assert "WF-11" in rules

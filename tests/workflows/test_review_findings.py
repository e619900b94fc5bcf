"""Regression tests for defects found in review (each failed before its fix)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from hub.client import NodeClient
from hub.server.reports import load_register
from tests.conftest import HubFixture
from tests.server.helpers import signed_request
from tests.workflows.helpers import (
    HEALTH,
    LA,
    MH_ITEM,
    POLICE,
    STRANGER,
    decision_doc,
    fields,
    refused,
    release_doc,
    request_doc,
    send,
)
from tests.workflows.test_referral_and_case import case_doc


def _expiry(hub: HubFixture, days: int = 7) -> str:
    return (hub.clock() + timedelta(days=days)).isoformat().replace("+00:00", "Z")


async def test_a_node_copied_on_a_decision_cannot_release(nodes: dict[str, NodeClient]) -> None:
    police, health, la = nodes[POLICE], nodes[HEALTH], nodes[LA]
    request = await send(police, request_doc())
    decision = await send(
        health,
        decision_doc(
            request.message_id,
            "APPROVED_FULL",
            [MH_ITEM, request_doc()["scope"][1]],
            recipients=[POLICE, LA],
        ),
    )
    assert "WF-06" in await refused(la, release_doc(decision.message_id, [MH_ITEM]))
    assert (await police.request_state(request.message_id))["releases"] == 0


async def test_a_foreign_case_and_a_missing_case_answer_alike(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    la, stranger = nodes[LA], nodes[STRANGER]
    await send(la, case_doc("case_open"))
    note: dict[str, Any] = {
        "kind": "note",
        "author": {"user_ref": "u-stranger", "role": "REFERRER", "vetting": "BPSS"},
        "recipients": [LA],
        "marking": {"tier": "OFFICIAL", "sensitive": True},
        "purpose": "CHANNEL_ASSESSMENT",
    }
    existing = await refused(stranger, {**note, "case_ref": "case-wilts-0001"})
    missing = await refused(stranger, {**note, "case_ref": "case-nowhere-9999"})
    assert existing == missing == {"WF-09"}


async def test_members_write_only_to_members_and_notes_do_not_move_the_case(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    la, police = nodes[LA], nodes[POLICE]
    await send(la, case_doc("case_open"))
    note = {
        "kind": "note",
        "author": {"user_ref": "u-police", "role": "PREVENT_POLICE_OFFICER", "vetting": "BPSS"},
        "marking": {"tier": "OFFICIAL", "sensitive": True},
        "purpose": "CHANNEL_ASSESSMENT",
        "case_ref": "case-wilts-0001",
        "consent": {
            "state": "NOT_SOUGHT",
            "reason_code": "TERRORISM_RISK",
            "subject_not_to_be_told": True,
            "subject_age": "ADULT",
        },
    }
    assert "WF-09" in await refused(police, {**note, "recipients": [STRANGER]})
    await send(police, {**note, "recipients": [LA]})
    case = await la.case_state("case-wilts-0001")
    assert case["subject_not_to_be_told"] is False
    assert [e["kind"] for e in case["history"]] == ["case_open"]


async def test_a_removed_member_loses_the_case(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    la, health = nodes[LA], nodes[HEALTH]
    await send(la, case_doc("case_open"))
    assert (await health.case_state("case-wilts-0001"))["stage"] == "OPEN"
    smaller = {"chair": LA, "members": [{"node": POLICE, "role": "POLICE_PREVENT"}]}
    await send(la, case_doc("case_open", case=smaller, recipients=[POLICE]))
    from hub.client import HubProblem

    with pytest.raises(HubProblem) as gone:
        await health.case_state("case-wilts-0001")
    assert gone.value.problem.status == 404


async def test_a_closed_case_takes_no_more_packs_or_outcomes(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    la = nodes[LA]
    await send(la, case_doc("case_open"))
    await send(la, case_doc("consent_record", purpose="CHANNEL_SUPPORT"))
    await send(la, case_doc("panel_outcome", panel_outcome="EXITED", purpose="CHANNEL_SUPPORT"))
    review = case_doc("case_review", purpose="CHANNEL_REVIEW")
    await send(la, {**review, "review_point": "6_MONTHS"})
    await send(la, {**review, "review_point": "12_MONTHS"})
    assert (await la.case_state("case-wilts-0001"))["stage"] == "CLOSED"
    assert "WF-13" in await refused(la, case_doc("case_pack", access_expires_at=_expiry(hub)))
    assert "WF-13" in await refused(
        la, case_doc("panel_outcome", panel_outcome="ADOPTED", purpose="CHANNEL_SUPPORT")
    )


async def test_expiry_must_be_utc_and_odd_spellings_do_not_break_fetches(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    la, health = nodes[LA], nodes[HEALTH]
    await send(la, case_doc("case_open"))
    naive = (hub.clock() + timedelta(days=7)).replace(tzinfo=None).isoformat()
    # The same model validates at the hub's edge (422 SCHEMA) and here, before sending.
    with pytest.raises(ValidationError, match="UTC"):
        fields(case_doc("case_pack", access_expires_at=naive))
    lower_z = (hub.clock() + timedelta(days=7)).isoformat().replace("+00:00", "z")
    from hub.model.examples import synthetic_case_pack

    pack = await send(
        la,
        case_doc("case_pack", access_expires_at=lower_z),
        json.loads(synthetic_case_pack(1).model_dump_json()),
    )
    fetched = await health.fetch(pack.message_id)  # once a 500
    assert fetched.envelope.access_expires_at is not None


async def test_the_register_follows_a_subjects_cases(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    la = nodes[LA]
    await send(la, case_doc("case_open"))
    await send(la, case_doc("consent_record", purpose="CHANNEL_SUPPORT"))
    pack = {
        k: v
        for k, v in case_doc("case_pack", access_expires_at=_expiry(hub)).items()
        if k != "subject_ref"
    }
    from hub.model.examples import synthetic_case_pack

    sent = await send(la, pack, json.loads(synthetic_case_pack(1).model_dump_json()))
    register = await load_register(hub.store, "subj-wf-0002", node_id=None)
    assert sent.message_id in [d.message_id for d in register]


async def test_a_repeated_content_digest_header_is_refused(hub: HubFixture) -> None:
    request = signed_request(hub, "GET", "/v1/inbox", node=HEALTH)
    headers = [*request.headers.items(), ("Content-Digest", request.headers["Content-Digest"])]
    async with (
        aiohttp.ClientSession() as session,
        session.get(hub.url + "/v1/inbox", headers=headers) as response,
    ):
        assert response.status == 401

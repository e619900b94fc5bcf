"""Information request → decision → release(s), through the HTTP API with real crypto."""

from __future__ import annotations

from datetime import datetime

import pytest

from hub.client import HubProblem, NodeClient
from tests.conftest import HubFixture
from tests.workflows.helpers import (
    HEALTH,
    LA,
    MED_ITEM,
    MH_ITEM,
    POLICE,
    STRANGER,
    decision_doc,
    refused,
    release_doc,
    request_doc,
    send,
)


async def test_request_decided_once_then_released_in_parts(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    police, health, la = nodes[POLICE], nodes[HEALTH], nodes[LA]
    request = await send(police, request_doc())
    state = await police.request_state(request.message_id)
    assert state["state"] == "SUBMITTED"
    assert state["overdue"] is False
    assert state["due_at"] is not None
    assert (await health.request_state(request.message_id))["requester"] == POLICE
    with pytest.raises(HubProblem) as hidden:
        await la.request_state(request.message_id)
    assert hidden.value.problem.status == 404

    # A node the request was not sent to cannot decide it (it cannot even see it).
    assert "DEC-05" in await refused(
        la, decision_doc(request.message_id, "APPROVED_FULL", [MH_ITEM, MED_ITEM])
    )

    partial = await send(health, decision_doc(request.message_id, "APPROVED_PARTIAL", [MH_ITEM]))
    assert (await police.request_state(request.message_id))["state"] == "APPROVED_PARTIAL"
    # Decided once.
    assert "WF-04" in await refused(health, decision_doc(request.message_id, "REFUSED", []))

    # Only the decider releases, only to the requester, only inside the approval.
    assert "WF-06" in await refused(
        police, release_doc(partial.message_id, [MH_ITEM], recipients=[HEALTH])
    )
    assert "WF-06" in await refused(
        health, release_doc(partial.message_id, [MH_ITEM], recipients=[POLICE, LA])
    )
    assert "REL-01" in await refused(health, release_doc(partial.message_id, [MH_ITEM, MED_ITEM]))

    await send(health, release_doc(partial.message_id, [MH_ITEM]))
    await send(health, release_doc(partial.message_id, [{**MH_ITEM, "period_from": "2026-06-01"}]))
    final = await police.request_state(request.message_id)
    assert final["state"] == "RELEASED"
    assert final["releases"] == 2
    assert [e["kind"] for e in final["history"]] == [
        "information_request",
        "decision",
        "release",
        "release",
    ]
    assert final["history"][1]["summary"] == "APPROVED_PARTIAL"


async def test_nothing_is_released_after_a_refusal(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    police, health = nodes[POLICE], nodes[HEALTH]
    request = await send(police, request_doc())
    refusal = await send(health, decision_doc(request.message_id, "REFUSED", []))
    assert "REL-02" in await refused(health, release_doc(refusal.message_id, [MH_ITEM]))
    assert (await police.request_state(request.message_id))["state"] == "REFUSED"


async def test_an_escalation_is_followed_by_the_decision(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    police, health = nodes[POLICE], nodes[HEALTH]
    request = await send(police, request_doc())
    await send(health, decision_doc(request.message_id, "ESCALATED", []))
    assert (await police.request_state(request.message_id))["state"] == "ESCALATED"
    await send(health, decision_doc(request.message_id, "APPROVED_FULL", [MH_ITEM, MED_ITEM]))
    assert (await police.request_state(request.message_id))["state"] == "APPROVED_FULL"
    assert "WF-04" in await refused(
        health, decision_doc(request.message_id, "APPROVED_FULL", [MH_ITEM, MED_ITEM])
    )


async def test_overdue_requests_are_listed_to_both_parties(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    police, health, stranger = nodes[POLICE], nodes[HEALTH], nodes[STRANGER]
    waiting = await send(police, request_doc(urgency="urgent"))
    answered = await send(police, request_doc())
    await send(health, decision_doc(answered.message_id, "APPROVED_FULL", [MH_ITEM, MED_ITEM]))
    assert await police.requests(overdue=True) == []
    due_hours = (
        datetime.fromisoformat(
            (await police.request_state(waiting.message_id))["due_at"].replace("Z", "+00:00")
        )
        - hub.clock()
    ).total_seconds() / 3600
    hub.clock.advance(due_hours * 3600 + 60)
    for party in (police, health):
        overdue = await party.requests(overdue=True)
        assert [r["request_id"] for r in overdue] == [waiting.message_id]
    assert len(await police.requests()) == 2
    assert await stranger.requests(overdue=True) == []

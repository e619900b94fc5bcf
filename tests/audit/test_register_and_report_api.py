"""The disclosure register and assurance report over the API, after a scripted workflow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from hub.client import HubProblem
from hub.config import HubConfig
from tests.conftest import HubFixture, running_hub
from tests.workflows.helpers import (
    HEALTH,
    LA,
    MED_ITEM,
    MH_ITEM,
    POLICE,
    STRANGER,
    decision_doc,
    release_doc,
    request_doc,
    send,
)

SUBJECT = "subj-wf-0001"


@pytest.fixture
async def audited_hub(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    async with running_hub(replace(make_config(), auditors=(STRANGER,))) as fixture:
        yield fixture


async def test_register_shows_each_disclosure_to_its_parties(audited_hub: HubFixture) -> None:
    hub = audited_hub
    async with (
        hub.client(POLICE) as police,
        hub.client(HEALTH) as health,
        hub.client(LA) as la,
        hub.client(STRANGER) as auditor,
    ):
        request = await send(police, request_doc())
        decision = await send(
            health, decision_doc(request.message_id, "APPROVED_PARTIAL", [MH_ITEM])
        )
        first = await send(health, release_doc(decision.message_id, [MH_ITEM]))
        refused = await send(police, request_doc(scope=[MED_ITEM]))
        await send(health, decision_doc(refused.message_id, "REFUSED", []))

        for party in (police, health):
            rows = await party.disclosures(SUBJECT)
            assert [r["message_id"] for r in rows] == [first.message_id]
            row = rows[0]
            assert row["discloser"] == HEALTH
            assert row["recipients"] == [POLICE]
            assert [c["category"] for c in row["scope"]] == ["mental_health_diagnoses"]
            assert row["request_id"] == request.message_id
            assert row["decision_id"] == decision.message_id
            assert row["decision_outcome"] == "APPROVED_PARTIAL"
            assert "CDA1998-s115" in row["gateways"]
            assert row["consent_state"] == "NOT_SOUGHT"
        assert await la.disclosures(SUBJECT) == []
        assert len(await auditor.disclosures(SUBJECT)) == 1

        with pytest.raises(HubProblem) as not_auditor:
            await police.assurance_report("2026Q4")
        assert not_auditor.value.problem.status == 404
        period = f"{hub.clock().year}Q{(hub.clock().month - 1) // 3 + 1}"
        report = await auditor.assurance_report(period)
        assert report["requests_submitted"] == 2
        assert report["decisions_by_outcome"]["APPROVED_PARTIAL"] == 1
        assert report["decisions_by_outcome"]["REFUSED"] == 1
        assert report["releases"] == 1
        with pytest.raises(HubProblem) as bad_period:
            await auditor.assurance_report("2026Q5")
        assert bad_period.value.problem.status == 400

"""The hub refuses exactly what the node's pre-flight refuses (same engine, both ends).

Every scenario whose parties are enrolled at the test hub is sent twice: once through
the client's pre-flight, and once with pre-flight off (as a modified node would send it)
so that only the hub's enforcement stands between it and the store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.client import HubProblem, PayloadSource, PreflightFailed
from hub.model import EnvelopeFields
from tests.conftest import SYNTHETIC_REFERRAL, HubFixture
from tests.policy.test_scenarios import REQUEST, SCENARIOS, Scenario, _apply

ENROLLED = {"health.bsw-icb", "police.ctp-sw", "la.wiltshire"}


def _parties(scenario: Scenario) -> set[str]:
    document = _apply(scenario.base, scenario.changes)
    parties = {scenario.sender, *document["recipients"]}
    if scenario.answers is not None:
        parties |= {scenario.answers_sender or "", *scenario.answers["recipients"]}
    return parties


# Case messages need an open case at the hub: tests/workflows covers them end to end.
CASE_KINDS = {"case_open", "consent_record", "case_pack", "panel_outcome", "case_review"}
PARITY = [sc for sc in SCENARIOS if _parties(sc) <= ENROLLED and sc.base["kind"] not in CASE_KINDS]


async def _rules_at(hub: HubFixture, scenario: Scenario, *, preflight: bool) -> set[str] | None:
    """Send the scenario; None when accepted, else the rule ids of the refusal."""
    document = _apply(scenario.base, scenario.changes)
    async with hub.client(scenario.sender) as sender:
        if scenario.answers is not None:
            document["in_reply_to"] = await _answered(hub, scenario)
        fields = EnvelopeFields.model_validate_json(json.dumps(document))
        try:
            await sender.send(fields, PayloadSource.json(SYNTHETIC_REFERRAL), preflight=preflight)
        except PreflightFailed as refused:
            return {v.rule for v in refused.violations}
        except HubProblem as refused:
            problem = refused.problem
        else:
            return None
    assert problem.status == 422, problem
    return {v.rule for v in problem.violations}


async def _answered(hub: HubFixture, scenario: Scenario) -> str:
    """Put the answered message at the hub, sent by its own sender, unchecked; its id."""
    assert scenario.answers is not None
    answered: dict[str, Any] = dict(scenario.answers)
    answered_sender = scenario.answers_sender or scenario.sender
    if answered["kind"] == "decision":
        # A decision needs its request at the hub first.
        answered["in_reply_to"] = await _send_raw(hub, "police.ctp-sw", dict(REQUEST))
    return await _send_raw(hub, answered_sender, answered)


async def _send_raw(hub: HubFixture, sender: str, document: dict[str, Any]) -> str:
    document = {
        **document,
        "recipients": [r for r in document["recipients"] if r != sender] or ["health.bsw-icb"],
    }
    async with hub.client(sender) as client:
        receipt = await client.send(
            EnvelopeFields.model_validate_json(json.dumps(document)),
            PayloadSource.json({"synthetic": True}),
        )
    return receipt.message_id


@pytest.mark.parametrize("scenario", PARITY, ids=[sc.name for sc in PARITY])
async def test_hub_and_preflight_agree(hub: HubFixture, scenario: Scenario) -> None:
    at_node = await _rules_at(hub, scenario, preflight=True)
    at_hub = await _rules_at(hub, scenario, preflight=False)
    expected = set(scenario.expected) or None
    assert at_node == expected
    assert at_hub == expected


def test_parity_covers_most_scenarios() -> None:
    assert len(PARITY) >= 30

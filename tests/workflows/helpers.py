"""Building workflow messages and sending them through the real hub as real nodes."""

from __future__ import annotations

import copy
import json
from typing import Any

from hub.client import HubProblem, NodeClient, PayloadSource
from hub.model import EnvelopeFields, Receipt
from tests.conftest import HubFixture

HEALTH, POLICE, LA, STRANGER = (
    "health.bsw-icb",
    "police.ctp-sw",
    "la.wiltshire",
    "education.stranger",
)
OS_PERSONAL = {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]}
NOT_SOUGHT = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}
MH_ITEM = {
    "category": "mental_health_diagnoses",
    "period_from": "2025-11-01",
    "period_to": "2026-10-31",
    "justification_present": True,
}
MED_ITEM = {**MH_ITEM, "category": "medication"}


def author(role: str) -> dict[str, str]:
    return {"user_ref": f"u-{role.lower()[:8]}", "role": role, "vetting": "BPSS"}


def request_doc(**changes: Any) -> dict[str, Any]:
    """Police ask health for mental health diagnoses and medication, without consent."""
    doc = {
        "kind": "information_request",
        "author": author("PREVENT_POLICE_OFFICER"),
        "recipients": [HEALTH],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-wf-0001",
        "purpose": "PREVENT_TRIAGE",
        "legal_basis": {
            "powers": ["CDA1998-s115"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p10",
        },
        "consent": NOT_SOUGHT,
        "scope": [MH_ITEM, MED_ITEM],
    }
    doc.update(changes)
    return doc


def decision_doc(
    request_id: str, outcome: str, approved: list[dict[str, Any]], **changes: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "decision",
        "author": author("CALDICOTT_GUARDIAN"),
        "recipients": [POLICE],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-wf-0001",
        "purpose": "PREVENT_TRIAGE",
        "in_reply_to": request_id,
        # Documented in the patient record (ROLE-06; seed 004 para 62).
        "decision": {
            "outcome": outcome,
            "approved_scope": approved,
            "recorded_in_subject_record": True,
        },
    }
    if outcome not in ("APPROVED_FULL", "ESCALATED"):
        # A reason the registry gives for the outcome (DEC-06, decision_reasons.yaml).
        reason = "NOT_NECESSARY" if outcome == "REFUSED" else "MINIMUM_NECESSARY"
        doc["decision"]["reason_code"] = reason
    doc.update(changes)
    return doc


def release_doc(decision_id: str, scope: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    doc = request_doc(
        kind="release",
        author=author("SAFEGUARDING_LEAD"),
        recipients=[POLICE],
        in_reply_to=decision_id,
        scope=scope,
        manifest=manifest_for(scope),
    )
    # Health discloses without consent: it names the public-interest exception to the
    # common law duty of confidentiality (seed 004 Appendix 4a, GW-13).
    doc["legal_basis"] = {**doc["legal_basis"], "confidentiality": ["CLDC-PUBINT"]}
    doc.update(changes)
    return doc


def manifest_for(scope: list[dict[str, Any]]) -> dict[str, Any]:
    """A content manifest naming one resource per scope item's category and period.

    The hub checks only the manifest against the scope and approval (MAN-01..03); these
    workflow tests send a stand-in payload that no node opens as a release.
    """
    categories = {
        item["category"]: {
            "category": item["category"],
            **{k: item[k] for k in ("period_from", "period_to") if k in item},
            "resources": {"Condition": 1},
        }
        for item in scope
    }
    return {
        "content_sha256": "0" * 64,
        "content_size": 17,
        "resource_count": 1,
        "categories": list(categories.values()),
    }


def fields(doc: dict[str, Any]) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(json.dumps(doc))


async def send(client: NodeClient, doc: dict[str, Any], payload: Any = None) -> Receipt:
    return await client.send(
        fields(copy.deepcopy(doc)),
        PayloadSource.json(payload if payload is not None else {"synthetic": True}),
    )


async def refused(client: NodeClient, doc: dict[str, Any]) -> set[str]:
    """Send with pre-flight off (the hub alone decides); the refused rule ids."""
    try:
        await client.send(
            fields(copy.deepcopy(doc)), PayloadSource.json({"synthetic": True}), preflight=False
        )
    except HubProblem as refusal:
        problem = refusal.problem
    else:
        raise AssertionError("the hub accepted a message it should refuse")
    assert problem.status == 422, problem
    return {v.rule for v in problem.violations}


def clients(hub: HubFixture) -> dict[str, NodeClient]:
    return {node: hub.client(node) for node in (HEALTH, POLICE, LA, STRANGER)}

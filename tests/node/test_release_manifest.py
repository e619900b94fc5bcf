"""What leaves a node is exactly what was approved: releases bound to their manifest.

Through the real hub with real crypto: health releases against a decision that approved
medication only. A release built from the decision is accepted and acknowledged; the
whole record under that approval is refused by the sender's own checks and, declared
honestly, by the hub (MAN-02/03); declared falsely (a manifest that lies about what the
payload holds) it passes the hub, which cannot read it, and the receiving police node
rejects it with a signed rejection at every size, inline or streamed: the sender sees the
rejection in its status and the disclosure register shows it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agency_adapters.health.mapping import CATEGORY_RESOURCES, CATEGORY_SYSTEM
from agency_adapters.health.release_builder import build_release
from agency_adapters.health.synthetic import synthetic_patient_bundle
from agency_adapters.node.checks import (
    MAX_RELEASE_RESOURCES,
    fhir_release_manifest,
    payload_violations,
    rejection_summary,
)
from agency_adapters.node.release import ReleasePlan, ReleasePlanError, plan_release
from agency_adapters.node.store import open_node_store
from hub.cli.node import check_draft_at_node, receive_inbox
from hub.client import HubProblem, NodeClient, PayloadSource, PreflightFailed
from hub.crypto import canonical_json
from hub.model import EnvelopeFields, Receipt, ScopeItem
from hub.model.examples import synthetic_decision
from tests.conftest import HubFixture
from tests.workflows.helpers import (
    MED_ITEM,
    POLICE,
    decision_doc,
    request_doc,
    send,
)

HEALTH = "health.bsw-icb"
FHIR = "application/fhir+json"
SUBJECT = "subj-wf-0001"


async def _medication_approved(nodes: dict[str, NodeClient]) -> Receipt:
    """Police ask for diagnoses and medication; health approves medication only."""
    police, health = nodes[POLICE], nodes[HEALTH]
    request = await send(police, request_doc())
    decision = decision_doc(request.message_id, "APPROVED_PARTIAL", [MED_ITEM])
    return await send(health, decision, json.loads(synthetic_decision(1).model_dump_json()))


def _record() -> dict[str, Any]:
    # MED_ITEM covers 2025-11-01..2026-10-31; a record ending then has medication inside.
    return synthetic_patient_bundle(1, today=date(2026, 11, 1))


def _whole_record_bundle(plan: ReleasePlan) -> dict[str, Any]:
    """Every releasable resource of the record, labelled as a release: far beyond the
    medication-only approval."""
    everything = [
        ScopeItem(category=category, justification_present=True)
        for category in sorted(CATEGORY_RESOURCES)
    ]
    whole = build_release(_record(), everything, marking=plan.fields.marking, subject_ref=SUBJECT)
    document: dict[str, Any] = json.loads(whole.bundle_json)
    return document


def _padded(bundle: dict[str, Any], size: int) -> dict[str, Any]:
    """The bundle with a scanned-letter Binary under the medication tag, to ``size`` bytes."""
    room = size - len(canonical_json(bundle)) - 400
    if room <= 0:
        return bundle
    padded = copy.deepcopy(bundle)
    labels = padded["entry"][0]["resource"]["meta"]["security"]
    padded["entry"].append(
        {
            "resource": {
                "resourceType": "Binary",
                "id": "scanned-letter",
                "meta": {
                    "security": labels,
                    "tag": [{"system": CATEGORY_SYSTEM, "code": "medication"}],
                },
                "contentType": "application/pdf",
                "data": base64.b64encode(os.urandom(room * 3 // 4)).decode(),
            }
        }
    )
    return padded


def _lying(fields: EnvelopeFields, bundle_json: bytes) -> EnvelopeFields:
    """The envelope with a manifest that says the payload is medication only.

    The hash is honest (so the payload is the one named), the categories and counts lie.
    """
    document = fields.model_dump(mode="json", exclude_none=True)
    document["manifest"] = {
        "content_sha256": fhir_release_manifest(bundle_json, fields.scope).content_sha256,
        "content_size": len(bundle_json),
        "resource_count": 3,
        "categories": [
            {
                "category": "medication",
                "period_from": MED_ITEM["period_from"],
                "period_to": MED_ITEM["period_to"],
                "resources": {"MedicationStatement": 3},
            }
        ],
    }
    return EnvelopeFields.model_validate_json(json.dumps(document))


def _honest(fields: EnvelopeFields, bundle_json: bytes) -> EnvelopeFields:
    document = fields.model_dump(mode="json", exclude_none=True)
    manifest = fhir_release_manifest(bundle_json, fields.scope)
    document["manifest"] = manifest.model_dump(mode="json", exclude_none=True)
    return EnvelopeFields.model_validate_json(json.dumps(document))


async def test_a_release_built_from_the_decision_is_accepted_and_acknowledged(
    hub: HubFixture, nodes: dict[str, NodeClient], tmp_path: Path
) -> None:
    health, police = nodes[HEALTH], nodes[POLICE]
    decision = await _medication_approved(nodes)
    plan = await plan_release(health, decision.message_id, _record())

    assert [c.category for c in plan.manifest.categories] == ["medication"]
    assert [item.category for item in plan.fields.scope] == ["medication"]
    assert (
        plan.manifest.content_sha256
        == fhir_release_manifest(plan.bundle_json, plan.fields.scope).content_sha256
    )
    assert await check_draft_at_node(health, plan.fields, plan.payload()) == []

    released = await health.send(plan.fields, plan.payload())
    received = await receive_inbox(police, hub.profile(tmp_path, POLICE), wait=0, limit=50)
    arrived = next(m for m in received if m["message_id"] == released.message_id)
    assert "rejected" not in arrived
    status = await health.status(released.message_id)
    assert [(r.node, r.state) for r in status.recipients] == [(POLICE, "acknowledged")]

    register = await police.disclosures(SUBJECT)
    row = next(d for d in register if d["message_id"] == released.message_id)
    assert row["resource_count"] == plan.manifest.resource_count
    assert [c["category"] for c in row["released"]] == ["medication"]
    assert row["rejected_by"] == []


async def test_only_the_decider_releases_and_only_an_approval(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    decision = await _medication_approved(nodes)
    with pytest.raises(ReleasePlanError, match="only the node that decided"):
        await plan_release(nodes[POLICE], decision.message_id, _record())


async def test_the_whole_record_under_a_medication_approval_is_refused_before_it_leaves(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    """Sender: honest or lying, the whole record fails the node's own checks. Hub: the
    honest manifest exceeds the approval on record and is refused (MAN-02, MAN-03)."""
    health = nodes[HEALTH]
    decision = await _medication_approved(nodes)
    plan = await plan_release(health, decision.message_id, _record())
    whole = canonical_json(_whole_record_bundle(plan))
    payload = PayloadSource(media_type=FHIR, data=whole)
    assert len(json.loads(whole)["entry"]) > plan.manifest.resource_count

    honest = _honest(plan.fields, whole)
    sender = {v.rule for v in await check_draft_at_node(health, honest, payload)}
    assert {"MAN-02", "MAN-03"} <= sender

    lying = _lying(plan.fields, whole)
    assert "MAN-05" in {v.rule for v in await check_draft_at_node(health, lying, payload)}

    with pytest.raises(HubProblem) as refusal:
        await health.send(honest, payload, preflight=False)
    assert refusal.value.problem.status == 422
    assert {"MAN-02", "MAN-03"} <= {v.rule for v in refusal.value.problem.violations}


SIZES = [
    pytest.param(1 << 10, id="1KiB"),
    pytest.param(20 << 20, id="20MiB"),
    pytest.param(200 << 20, id="200MiB", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("size", SIZES)
async def test_a_lying_manifest_is_rejected_by_the_receiver_at_every_size(
    hub: HubFixture, nodes: dict[str, NodeClient], tmp_path: Path, size: int
) -> None:
    health, police = nodes[HEALTH], nodes[POLICE]
    decision = await _medication_approved(nodes)
    plan = await plan_release(health, decision.message_id, _record())
    bundle = _whole_record_bundle(plan)
    if size <= 1 << 10:
        # The smallest lie: the Patient and one other resource, about a kilobyte.
        bundle["entry"] = bundle["entry"][:2]
    else:
        bundle = _padded(bundle, size)
    path = tmp_path / "release.json"
    path.write_bytes(canonical_json(bundle))
    del bundle
    actual = path.stat().st_size
    assert actual < 2 << 10 if size <= 1 << 10 else size * 0.99 < actual <= size
    lying = _lying(plan.fields, path.read_bytes())

    # The hub cannot read the payload; the envelope and manifest are within the approval.
    released = await health.send(lying, PayloadSource.file(path, FHIR), preflight=False)
    path.unlink()

    profile = hub.profile(tmp_path, POLICE)
    received = await receive_inbox(police, profile, wait=0, limit=50)
    arrived = next(m for m in received if m["message_id"] == released.message_id)
    assert any(problem.startswith("MAN-05") for problem in arrived["rejected"])
    assert "payload" not in arrived
    assert "payload_out" not in arrived
    # Kept as the ciphertext it came as, with the rejection; no plaintext anywhere.
    with open_node_store(profile) as store:
        stored = store.get(released.message_id)
    assert stored is not None
    assert (stored.state, "MAN-05" in stored.rejection_rules) == ("rejected", True)
    assert list((profile.root / "state" / "scratch").glob("*")) == []
    assert not (profile.root / "received").exists()

    status = await health.status(released.message_id)
    (recipient,) = status.recipients
    assert recipient.state == "rejected"
    assert "MAN-05" in recipient.rejection_rules
    assert recipient.rejection_reasons

    register = await health.disclosures(SUBJECT)
    row = next(d for d in register if d["message_id"] == released.message_id)
    assert [r["node"] for r in row["rejected_by"]] == [POLICE]
    assert "MAN-05" in row["rejected_by"][0]["rules"]

    # The rejection stands: the receiver cannot later acknowledge what it rejected.
    message = await police.fetch(released.message_id)
    with pytest.raises(HubProblem) as conflict:
        await police.acknowledge(message)
    assert conflict.value.problem.status == 409


def _fields_with(manifest: dict[str, Any]) -> EnvelopeFields:
    document: dict[str, Any] = {
        "kind": "release",
        "author": {"user_ref": "u-lead", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
        "recipients": [POLICE],
        "marking": {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]},
        "subject_ref": SUBJECT,
        "purpose": "PREVENT_TRIAGE",
        "scope": [MED_ITEM],
        "manifest": manifest,
    }
    return EnvelopeFields.model_validate_json(json.dumps(document))


def _claiming(payload: bytes, resources: int = 3) -> EnvelopeFields:
    return _fields_with(
        {
            "content_sha256": hashlib.sha256(payload).hexdigest(),
            "content_size": len(payload),
            "resource_count": resources,
            "categories": [
                {
                    "category": "medication",
                    "period_from": MED_ITEM["period_from"],
                    "period_to": MED_ITEM["period_to"],
                    "resources": {"MedicationStatement": resources},
                }
            ],
        }
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            b'{"resourceType":"Bundle","entry":[' + b",".join([b"{}"] * 200_000) + b"]}",
            id="a-million-tiny-entries",
        ),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, id="nested-too-deeply"),
    ],
)
def test_a_payload_built_to_exhaust_the_receiver_is_refused_unparsed(payload: bytes) -> None:
    found = payload_violations(_claiming(payload), payload, FHIR, today=date(2026, 11, 1))
    assert {v.rule for v in found} == {"MAN-05"}


def test_a_manifest_claiming_too_many_resources_is_refused() -> None:
    payload = b'{"resourceType":"Bundle"}'
    found = payload_violations(
        _claiming(payload, MAX_RELEASE_RESOURCES + 1), payload, FHIR, today=date(2026, 11, 1)
    )
    assert [v.path for v in found] == ["$.manifest.resource_count"]


def test_rejection_reasons_carry_no_payload_text() -> None:
    """What the receiver tells the hub is rule ids and counts, never the payload's words,
    even when the payload puts personal details where a resource type should be."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "JaneDoeHasADiagnosis", "id": "x"}}],
    }
    payload = canonical_json(bundle)
    found = payload_violations(_claiming(payload), payload, FHIR, today=date(2026, 11, 1))
    assert found
    rules, reasons = rejection_summary(found)
    assert "MAN-05" in rules
    assert not any("JaneDoe" in reason for reason in reasons)
    assert all(reason.split(":")[0] in rules for reason in reasons)


async def test_a_record_sent_as_anything_but_a_release_is_refused(
    hub: HubFixture, nodes: dict[str, NodeClient], tmp_path: Path
) -> None:
    """MAN-06: a FHIR record travels only as a release, under an approval and a manifest."""
    health, police = nodes[HEALTH], nodes[POLICE]
    note = EnvelopeFields.model_validate_json(
        json.dumps({**request_doc(), "kind": "note", "recipients": [POLICE], "scope": []})
    )
    record = canonical_json(_record())
    with pytest.raises(HubProblem) as refusal:
        await health.send(note, PayloadSource(media_type=FHIR, data=record), preflight=False)
    assert {v.rule for v in refusal.value.problem.violations} >= {"MAN-06"}
    # The client's own pre-flight runs the same check on the media type.
    with pytest.raises(PreflightFailed) as before:
        await health.send(note, PayloadSource(media_type=FHIR, data=record))
    assert "MAN-06" in {v.rule for v in before.value.violations}

    # Declared as plain JSON, the hub cannot tell; the sender's check and the receiver can.
    as_json = PayloadSource(media_type="application/json", data=record)
    assert "MAN-06" in {
        v.rule
        for v in payload_violations(note, record, as_json.media_type, today=date(2026, 11, 1))
    }
    sent = await health.send(note, as_json, preflight=False)
    received = await receive_inbox(police, hub.profile(tmp_path, POLICE), wait=0, limit=50)
    (arrived,) = [m for m in received if m["message_id"] == sent.message_id]
    assert any(line.startswith("MAN-06") for line in arrived["rejected"])
    assert "payload" not in arrived

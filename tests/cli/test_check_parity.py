"""``hub policy check`` and ``hub node submit`` give the same verdict on every draft.

Both run one check (``agency_adapters.node.checks``): the hub's envelope rules and the
payload rules the hub cannot run. Every scenario of the policy suite whose parties the
demo federation enrols is written as a draft, with a payload its kind's model accepts (a
release: a real FHIR bundle from the release builder and its manifest), and put to both
commands against a real ``hub serve``. They must agree with each other and with the
scenario's expected rules. A decision whose payload does not say whether the subject was
informed is refused by both (PAYLOAD-04), where once only the second refused it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agency_adapters.health.mapping import CATEGORY_RESOURCES
from agency_adapters.health.release_builder import build_release
from agency_adapters.health.synthetic import synthetic_patient_bundle
from agency_adapters.node.checks import fhir_release_manifest
from hub.cli.main import main
from hub.cli.node import client_for, node_profile
from hub.client import PayloadSource
from hub.crypto import canonical_json
from hub.model import EnvelopeFields, Marking, ScopeItem
from hub.model.examples import (
    synthetic_decision,
    synthetic_information_request,
    synthetic_referral_form,
)
from tests.cli.conftest import served_demo
from tests.policy.test_hub_parity import PARITY
from tests.policy.test_scenarios import REQUEST, Scenario, _apply

RELEASE_RECORD_DAY = date(2026, 11, 1)  # the scenarios' periods end 2026-10-31


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo's federation kept on disk, served by a real ``hub serve``."""
    with served_demo(tmp_path_factory.mktemp("parity") / "demo") as root:
        yield root


def _json(model: Any) -> Any:
    return json.loads(model.model_dump_json())


def _decision_payload(document: dict[str, Any]) -> dict[str, Any]:
    record = document.get("decision") or {}
    payload: dict[str, Any] = _json(synthetic_decision(1, outcome=record["outcome"]))
    payload["recorded_in_subject_record"] = record.get("recorded_in_subject_record", False)
    payload["consultations"] = [
        {
            "role": role,
            "consulted_at": "2026-10-30T10:00:00Z",
            "advice": "SYNTHETIC: disclosure is proportionate to the risk.",
        }
        for role in record.get("consulted", [])
    ]
    return payload


def _request_payload(document: dict[str, Any]) -> dict[str, Any]:
    scope = document.get("scope", [])
    # A payload names each category once; an envelope that repeats one cannot agree
    # with any payload (PAYLOAD-05), as the scenario's own rule says it cannot be right.
    firsts = list({item["category"]: item for item in reversed(scope)}.values())[::-1]
    payload: dict[str, Any] = _json(
        synthetic_information_request(1, categories=[item["category"] for item in firsts])
    )
    for requested, item in zip(payload["requested"], firsts, strict=True):
        if not item.get("justification_present", False):
            requested.pop("justification", None)
        if item.get("extension_reason_present", False):
            requested["extension_reason"] = "SYNTHETIC: the concern goes back further."
    return payload


def _release(document: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The envelope with an honest manifest, and the FHIR bundle the builder makes."""
    scope = [
        ScopeItem.model_validate_json(json.dumps(item))
        for item in document["scope"]
        if item["category"] in CATEGORY_RESOURCES
    ]
    result = build_release(
        synthetic_patient_bundle(1, today=RELEASE_RECORD_DAY),
        scope,
        marking=Marking.model_validate_json(json.dumps(document["marking"])),
        subject_ref=document["subject_ref"],
    )
    bundle = canonical_json(json.loads(result.bundle_json))
    manifest = fhir_release_manifest(bundle, scope)
    return {**document, "manifest": _json(manifest)}, bundle


def _draft(document: dict[str, Any], sender: str, folder: Path) -> Path:
    envelope = {**document, "sender": sender}
    kind = document["kind"]
    payload: dict[str, Any]
    if kind == "release":
        envelope, bundle = _release(envelope)
        (folder / "bundle.json").write_bytes(bundle)
        payload = {"media_type": "application/fhir+json", "file": "bundle.json"}
    elif kind == "decision":
        payload = {"content": _decision_payload(document)}
    elif kind == "information_request":
        payload = {"content": _request_payload(document)}
    elif kind == "referral" and document["purpose"] == "PREVENT_REFERRAL":
        payload = {"content": _json(synthetic_referral_form(1))}
    else:
        payload = {"content": {"note": "SYNTHETIC: free-form payload"}}
    path = folder / "draft.json"
    path.write_text(json.dumps({"envelope": envelope, "payload": payload}))
    return path


async def _put_answered(federation: Path, scenario: Scenario) -> str:
    """The message the scenario answers, sent by its own sender; its id."""
    assert scenario.answers is not None
    answered: dict[str, Any] = dict(scenario.answers)
    if answered["kind"] == "decision":
        answered["in_reply_to"] = await _send(federation, "police.ctp-sw", dict(REQUEST))
    return await _send(federation, scenario.answers_sender or scenario.sender, answered)


async def _send(federation: Path, sender: str, document: dict[str, Any]) -> str:
    document = {
        **document,
        "recipients": [r for r in document["recipients"] if r != sender] or ["health.bsw-icb"],
    }
    async with client_for(node_profile(federation / "nodes" / sender)) as client:
        receipt = await client.send(
            EnvelopeFields.model_validate_json(json.dumps(document)),
            PayloadSource.json({"synthetic": True}),
        )
    return receipt.message_id


def _verdict(
    argv: list[str], capsys: pytest.CaptureFixture[str], *, submitted: bool
) -> tuple[int, set[str]]:
    code = main([*argv, "--json"])
    out = json.loads(capsys.readouterr().out)
    if code == 0:
        return code, set() if submitted else {v["rule"] for v in out}
    violations = out["violations"] if submitted else out
    return code, {v["rule"] for v in violations}


@pytest.mark.parametrize("scenario", PARITY, ids=[sc.name for sc in PARITY])
def test_check_and_submit_agree(
    federation: Path, scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _apply(scenario.base, scenario.changes)
    if scenario.answers is not None:
        document["in_reply_to"] = asyncio.run(_put_answered(federation, scenario))
    draft = _draft(document, scenario.sender, tmp_path)
    node = str(federation / "nodes" / scenario.sender)

    checked = _verdict(["policy", "check", "--node", node, str(draft)], capsys, submitted=False)
    submitted = _verdict(["node", "submit", "--node", node, str(draft)], capsys, submitted=True)
    assert checked == submitted
    assert set(scenario.expected) <= checked[1]
    extra = checked[1] - set(scenario.expected)
    if document["kind"] == "release":
        # The bundle is built for the scope, so a release wider than its approval also
        # says so in its honest manifest (MAN-03) beside the scope rule (REL-01).
        assert {r for r in extra if not r.startswith("MAN-")} == set()
    elif len({i["category"] for i in document.get("scope", [])}) < len(document.get("scope", [])):
        assert extra == {"PAYLOAD-05"}
    else:
        assert extra == set()


def test_a_decision_payload_without_subject_informed_fails_both(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approved = next(sc for sc in PARITY if sc.name == "health approves exactly what was asked")
    document = _apply(approved.base, approved.changes)
    document["in_reply_to"] = asyncio.run(_put_answered(federation, approved))
    draft = _draft(document, approved.sender, tmp_path)
    body = json.loads(draft.read_text())
    del body["payload"]["content"]["subject_informed"]
    draft.write_text(json.dumps(body))
    node = str(federation / "nodes" / approved.sender)

    checked = _verdict(["policy", "check", "--node", node, str(draft)], capsys, submitted=False)
    submitted = _verdict(["node", "submit", "--node", node, str(draft)], capsys, submitted=True)
    assert checked == submitted == (1, {"PAYLOAD-04"})


def test_a_hand_written_whole_record_release_fails_both(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release draft whose bundle holds the whole record under a narrower approval."""
    within = next(sc for sc in PARITY if sc.name == "release within the approval")
    document = _apply(within.base, within.changes)
    document["in_reply_to"] = asyncio.run(_put_answered(federation, within))
    draft = _draft(document, within.sender, tmp_path)
    body = json.loads(draft.read_text())
    everything = [
        ScopeItem(category=category, justification_present=True)
        for category in sorted(CATEGORY_RESOURCES)
    ]
    whole = build_release(
        synthetic_patient_bundle(1, today=RELEASE_RECORD_DAY),
        everything,
        marking=Marking.model_validate_json(json.dumps(document["marking"])),
        subject_ref=document["subject_ref"],
    )
    (tmp_path / "bundle.json").write_bytes(canonical_json(json.loads(whole.bundle_json)))
    draft.write_text(json.dumps(body))  # the manifest still says what the approval allows
    node = str(federation / "nodes" / within.sender)

    checked = _verdict(["policy", "check", "--node", node, str(draft)], capsys, submitted=False)
    submitted = _verdict(["node", "submit", "--node", node, str(draft)], capsys, submitted=True)
    assert checked == submitted
    assert checked[0] == 1
    assert {"MAN-04", "MAN-05"} <= checked[1]


def _outputs(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"envelope": {}, "payload": {}}', '{"envelope": {"kind": "referral"}, "x": 1}'],
    ids=["not JSON", "empty", "unknown field"],
)
def test_a_malformed_draft_gets_the_same_precise_problem_from_both(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    draft = tmp_path / "draft.json"
    draft.write_text(text)
    node = str(federation / "nodes" / "health.bsw-icb")
    checked = _outputs(["policy", "check", "--node", node, str(draft)], capsys)
    offline = _outputs(["policy", "check", str(draft)], capsys)
    submitted = _outputs(["node", "submit", "--node", node, str(draft)], capsys)
    assert checked == offline == submitted
    assert checked[0] == 1
    assert checked[1]["detail"]  # what is wrong, not only "The request is malformed"


@pytest.mark.parametrize("where", ["envelope", "payload", "both"])
def test_a_misspelt_category_gets_the_same_rules_from_both(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    document = json.loads(json.dumps(dict(REQUEST)))
    draft = _draft(document, "police.ctp-sw", tmp_path)
    body = json.loads(draft.read_text())
    if where in ("envelope", "both"):
        body["envelope"]["scope"][0]["category"] = "mental_helth_diagnoses"
    if where in ("payload", "both"):
        body["payload"]["content"]["requested"][0]["category"] = "mental_helth_diagnoses"
    draft.write_text(json.dumps(body))
    node = str(federation / "nodes" / "police.ctp-sw")

    checked = _verdict(["policy", "check", "--node", node, str(draft)], capsys, submitted=False)
    offline = _verdict(["policy", "check", str(draft)], capsys, submitted=False)
    submitted = _verdict(["node", "submit", "--node", node, str(draft)], capsys, submitted=True)
    assert checked == offline == submitted
    expected = {"envelope": {"SCOPE-03", "PAYLOAD-05"}, "payload": {"PAYLOAD-05"}}
    assert checked == (1, expected.get(where, {"SCOPE-03"}))

"""``hub node release`` and a rejected release as the people at each node see them.

Real processes against a real ``hub serve`` on the demo's kept federation: health's
safeguarding lead releases against the demo's approved decision (a dry run first, which
sends and logs nothing), the disclosure log gains its entry only once the hub accepts; a
hand-written release whose manifest lies passes the hub (which cannot read it), police's
``hub node inbox`` rejects it, health's ``hub node status`` shows the rejection, and the
hub's disclosure register names it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agency_adapters.health.mapping import CATEGORY_RESOURCES
from agency_adapters.health.release_builder import build_release
from agency_adapters.health.synthetic import synthetic_patient_bundle
from hub.crypto import canonical_json
from hub.model import Marking, ScopeItem
from tests.cli.test_cli import run

HEALTH, POLICE = "health.bsw-icb", "police.ctp-sw"
SUBJECT = "subj-demo-0001"


def _released_decision(demo: Path) -> dict[str, Any]:
    """The demo's request that health approved in part and released against."""
    listed = run("node", "requests", "--json", "--node", demo / "nodes" / POLICE)
    assert listed.returncode == 0, listed.stderr
    (request,) = [r for r in json.loads(listed.stdout) if r["state"] == "RELEASED"]
    assert request["decision_outcome"] == "APPROVED_PARTIAL"
    found: dict[str, Any] = request
    return found


def _log_lines(demo: Path) -> int:
    log = demo / "nodes" / HEALTH / "disclosure-log.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_release_dry_run_then_send_logs_once(kept_demo: Path, tmp_path: Path) -> None:
    health = kept_demo / "nodes" / HEALTH
    decision_id = _released_decision(kept_demo)["decision_id"]
    record = tmp_path / "record.json"
    record.write_text(json.dumps(synthetic_patient_bundle(1, today=datetime.now(UTC).date())))
    before = _log_lines(kept_demo)

    dry = run(
        "node",
        "release",
        "--json",
        "--node",
        health,
        "--decision",
        decision_id,
        "--records",
        record,
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True
    assert plan["recipients"] == [POLICE]
    released = {r["category"] for r in plan["releases"]}
    assert released <= {"medication", "mental_health_diagnoses"}
    assert released
    assert plan["not_released_count"] > 0
    assert "nothing sent" in dry.stderr
    assert _log_lines(kept_demo) == before
    assert _released_decision(kept_demo)["releases"] == 1  # the demo's own; nothing new

    sent = run(
        "node",
        "release",
        "--json",
        "--node",
        health,
        "--decision",
        decision_id,
        "--records",
        record,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    outcome = json.loads(sent.stdout)
    assert outcome["receipt"]["recipients"] == [POLICE]
    assert outcome["disclosure_log"]["line"] == before + 1
    assert _log_lines(kept_demo) == before + 1
    assert _released_decision(kept_demo)["releases"] == 2
    entry = json.loads((health / "disclosure-log.jsonl").read_text().splitlines()[-1])
    assert entry["record"]["release_id"] == outcome["receipt"]["message_id"]
    assert entry["record"]["release_sha256"] == outcome["content_sha256"]


def test_a_decision_not_made_here_or_bad_records_are_clear_errors(
    kept_demo: Path, tmp_path: Path
) -> None:
    decision_id = _released_decision(kept_demo)["decision_id"]
    record = tmp_path / "record.json"
    record.write_text("{not json")
    garbled = run(
        "node",
        "release",
        "--node",
        kept_demo / "nodes" / HEALTH,
        "--decision",
        decision_id,
        "--records",
        record,
    )
    assert garbled.returncode == 2
    assert "not valid JSON" in garbled.stderr

    record.write_text(json.dumps(synthetic_patient_bundle(1, today=datetime.now(UTC).date())))
    not_ours = run(
        "node",
        "release",
        "--node",
        kept_demo / "nodes" / POLICE,
        "--decision",
        decision_id,
        "--records",
        record,
    )
    assert not_ours.returncode == 2
    assert "only the node that decided" in not_ours.stderr


def test_a_lying_release_is_rejected_and_the_sender_sees_it(
    kept_demo: Path, tmp_path: Path
) -> None:
    health, police = kept_demo / "nodes" / HEALTH, kept_demo / "nodes" / POLICE
    request = _released_decision(kept_demo)
    run("node", "inbox", "--node", police, check=True)  # clear what the demo left
    marking = {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]}
    whole = build_release(
        synthetic_patient_bundle(1, today=datetime.now(UTC).date()),
        [ScopeItem(category=c, justification_present=True) for c in sorted(CATEGORY_RESOURCES)],
        marking=Marking.model_validate_json(json.dumps(marking)),
        subject_ref=SUBJECT,
    )
    bundle = canonical_json(json.loads(whole.bundle_json))
    (tmp_path / "bundle.json").write_bytes(bundle)
    record = tmp_path / "record.json"
    record.write_text(json.dumps(synthetic_patient_bundle(1, today=datetime.now(UTC).date())))
    plan = run(
        "node",
        "release",
        "--json",
        "--node",
        health,
        "--decision",
        request["decision_id"],
        "--records",
        record,
        "--dry-run",
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    scope = [
        {
            "category": r["category"],
            "period_from": r["period_from"],
            "period_to": r["period_to"],
            "justification_present": True,
        }
        for r in json.loads(plan.stdout)["releases"]
        if r["category"] == "medication"
    ]
    draft = {
        "envelope": {
            "kind": "release",
            "author": {"user_ref": "usr-demo-0003", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
            "recipients": [POLICE],
            "marking": marking,
            "subject_ref": SUBJECT,
            "purpose": "PREVENT_TRIAGE",
            "in_reply_to": request["decision_id"],
            "legal_basis": {
                "powers": ["CDA1998-s115"],
                "art6": "UKGDPR-A6-1e",
                "art9": "UKGDPR-A9-2g",
                "sch1": "DPA2018-S1P2p10",
                "confidentiality": ["CLDC-PUBINT"],
            },
            "consent": {
                "state": "NOT_SOUGHT",
                "reason_code": "WOULD_PREJUDICE_OUTCOME",
                "subject_age": "ADULT",
            },
            "scope": scope,
            # Says "three medication statements"; the bundle is the whole record.
            "manifest": {
                "content_sha256": hashlib.sha256(bundle).hexdigest(),
                "content_size": len(bundle),
                "resource_count": 3,
                "categories": [
                    {
                        **{k: v for k, v in scope[0].items() if k != "justification_present"},
                        "resources": {"MedicationStatement": 3},
                    }
                ],
            },
        },
        "payload": {"media_type": "application/fhir+json", "file": "bundle.json"},
    }
    path = tmp_path / "lying-release.json"
    path.write_text(json.dumps(draft))

    refused = run("node", "submit", "--json", "--node", health, path)
    assert refused.returncode == 1
    assert "MAN-05" in {v["rule"] for v in json.loads(refused.stdout)["violations"]}
    checked = run("policy", "check", "--json", "--node", health, path)
    assert checked.returncode == 1
    assert {v["rule"] for v in json.loads(checked.stdout)} == {
        v["rule"] for v in json.loads(refused.stdout)["violations"]
    }

    sent = run("node", "submit", "--json", "--no-preflight", "--node", health, path)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    message_id = json.loads(sent.stdout)["message_id"]

    inbox = run("node", "inbox", "--json", "--node", police)
    assert inbox.returncode == 0, inbox.stderr
    (arrived,) = [m for m in json.loads(inbox.stdout) if m["message_id"] == message_id]
    assert any(line.startswith("MAN-05") for line in arrived["rejected"])

    status = run("node", "status", "--json", "--node", health, message_id)
    assert status.returncode == 0, status.stderr
    (recipient,) = json.loads(status.stdout)["recipients"]
    assert recipient["state"] == "rejected"
    assert "MAN-05" in recipient["rejection_rules"]
    assert f"{POLICE} rejected the message: " in status.stderr

    register = run("audit", "disclosures", SUBJECT, "--config", kept_demo / "hub.toml")
    assert register.returncode == 0, register.stderr
    assert f"{POLICE} (MAN-05" in register.stdout

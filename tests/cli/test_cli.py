"""The ``hub`` command as a user runs it: real processes, real files, real exit codes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

HUB = [sys.executable, "-m", "hub.cli.main"]


def run(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*HUB, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"hub {args} failed: {result.stdout}\n{result.stderr}")
    return result


def test_demo_runs_every_step_and_exits_zero() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "[enrol] health.bsw-icb",
        "[enrol] police.ctp-sw",
        "[enrol] la.wiltshire",
        "[health.bsw-icb] Prevent referral (National Prevent Referral Form) -> la.wiltshire",
        "[la.wiltshire] verified and decrypted the referral",
        "[police.ctp-sw] verified and decrypted the referral",
        "[police.ctp-sw] first draft: the whole record",
        "SCOPE-03 $.scope[0].category",
        "GW-EX $.legal_basis.exemptions",
        "[police.ctp-sw] corrected request",
        "[health.bsw-icb] decision APPROVED_PARTIAL",
        "[health.bsw-icb] release builder:",
        "[health.bsw-icb] release with its signed content manifest -> police.ctp-sw",
        "checked the manifest against the approval on record (MAN-01..03)",
        "[police.ctp-sw] decrypted the release and checked it against its manifest and envelope",
        "[police.ctp-sw] triage outcome CHANNEL; the referrer is told only",
        "[la.wiltshire] opened Channel case",
        "[la.wiltshire] recorded the subject's consent",
        "[la.wiltshire] case pack for police.ctp-sw",
        "[la.wiltshire] case pack for health.bsw-icb: proposed_support_plan, referral_summary",
        "[la.wiltshire] panel outcome ADOPTED",
        "stage SUPPORT, consent GIVEN",
        "RELEASED, 1 release(s)",
        "refused with 422: MK-09",
        # Partners on email through the local authority's bridge (docs/email-bridge.md).
        "[enrol] education.uni-bath",
        "[education.uni-bath] emailed a referral, signed with the lead's key",
        "submitted as education.uni-bath, accepted",
        "[la.wiltshire] received the referral from education.uni-bath (by email)",
        "[police.ctp-sw] received the referral from education.uni-bath (by email)",
        "[bridge] mailed the case pack to j.mentor@channel-mentors.example.org.uk",
        "with gpg: good signature by the bridge; case-pack-case-wilts-demo-0002.pdf",
        "[audit] log verified:",
        "[done] demo finished",
    ):
        assert expected in out, f"missing {expected!r} in demo output:\n{out}"


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = run("demo", "--dir", tmp_path)
    assert result.returncode == 2
    assert "not empty" in result.stderr


def _wait_for_port(port: int, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"hub did not start listening on {port}")


def test_kept_demo_serves_and_nodes_submit_and_receive(kept_demo: Path) -> None:
    health = kept_demo / "nodes" / "health.bsw-icb"
    police = kept_demo / "nodes" / "police.ctp-sw"
    submitted = run(
        "node", "submit", "--json", "--node", health, kept_demo / "drafts" / "referral.json"
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    receipt = json.loads(submitted.stdout)
    assert receipt["recipients"] == ["la.wiltshire", "police.ctp-sw"]

    inbox = run("node", "inbox", "--json", "--node", police)
    assert inbox.returncode == 0, inbox.stderr
    messages = json.loads(inbox.stdout)
    ids = [m["message_id"] for m in messages]
    assert receipt["message_id"] in ids
    latest = next(m for m in messages if m["message_id"] == receipt["message_id"])
    assert latest["payload"]["individual"]["surname"]  # the synthetic referral form
    assert latest["marking"] == "OFFICIAL-SENSITIVE - PERSONAL DATA"

    # The cursor moved past what was acknowledged: nothing new the second time.
    again = run("node", "inbox", "--json", "--node", police)
    assert json.loads(again.stdout) == []

    status = run("node", "status", "--json", "--node", health, receipt["message_id"])
    states = {r["node"]: r["state"] for r in json.loads(status.stdout)["recipients"]}
    assert states == {"la.wiltshire": "pending", "police.ctp-sw": "acknowledged"}


def test_submit_prints_problem_json_and_exits_nonzero(kept_demo: Path, tmp_path: Path) -> None:
    health = kept_demo / "nodes" / "health.bsw-icb"
    draft = json.loads((kept_demo / "drafts" / "referral.json").read_text())
    draft["envelope"]["recipients"] = ["la.nowhere"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(draft))

    preflight = run("node", "submit", "--json", "--node", health, bad)
    assert preflight.returncode == 1
    problem = json.loads(preflight.stdout)
    assert problem["type"] == "urn:seh:problem:preflight-refused"
    # The node's pre-flight refuses for the same rules as the hub below.
    assert {v["rule"] for v in problem["violations"]} == {"ROUTE-01", "WF-01"}

    at_hub = run("node", "submit", "--json", "--no-preflight", "--node", health, bad)
    assert at_hub.returncode == 1
    problem = json.loads(at_hub.stdout)
    assert problem["type"] == "urn:seh:problem:message-refused"
    assert problem["instance"] == "/v1/messages"
    assert [v["rule"] for v in problem["violations"]] == ["ROUTE-01", "WF-01"]

    draft["envelope"]["surprise"] = True
    bad.write_text(json.dumps(draft))
    invalid = run("node", "submit", "--json", "--node", health, bad)
    assert invalid.returncode == 1
    assert json.loads(invalid.stdout)["violations"][0]["path"] == "$.envelope.surprise"

    bad.write_text("{not json")
    garbled = run("node", "submit", "--json", "--node", health, bad)
    assert garbled.returncode == 1
    assert json.loads(garbled.stdout)["status"] == 400


def test_submit_reports_an_unreachable_hub(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    run("demo", "--dir", root, "--keep", check=True)  # its hub is stopped again
    result = run(
        "node",
        "submit",
        "--node",
        root / "nodes" / "health.bsw-icb",
        root / "drafts" / "referral.json",
    )
    assert result.returncode == 3
    assert "cannot reach the hub" in result.stderr


def test_keys_generate_writes_0600_and_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "k" / "node.key"
    result = run("keys", "generate", "--json", "--out", key, "--public-out", tmp_path / "pub.json")
    assert result.returncode == 0
    public = json.loads(result.stdout)
    assert set(public) == {"signing_key", "encryption_key"}
    assert json.loads((tmp_path / "pub.json").read_text()) == public
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert public["signing_key"] not in key.read_text()  # only secrets are stored

    again = run("keys", "generate", "--out", key)
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr

    assert json.loads(run("keys", "public", "--json", "--key", key).stdout) == public
    os.chmod(key, 0o644)
    loose = run("keys", "public", "--key", key)
    assert loose.returncode == 2
    assert "chmod 600" in loose.stderr


def test_admin_enrol_suspend_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    run("demo", "--dir", root, "--keep", check=True)
    config = root / "hub.toml"
    pub = tmp_path / "pub.json"
    run("keys", "generate", "--out", tmp_path / "n.key", "--public-out", pub, check=True)

    ok = run(
        "admin",
        "enrol",
        "--config",
        config,
        "--node-id",
        "probation.sw",
        "--agency-type",
        "probation",
        "--public-keys",
        pub,
    )
    assert ok.returncode == 0, ok.stderr
    duplicate = run(
        "admin",
        "enrol",
        "--config",
        config,
        "--node-id",
        "probation.sw",
        "--agency-type",
        "probation",
        "--public-keys",
        pub,
    )
    assert duplicate.returncode == 2
    assert "already enrolled" in duplicate.stderr
    bad_type = run(
        "admin",
        "enrol",
        "--config",
        config,
        "--node-id",
        "x.y",
        "--agency-type",
        "spies",
        "--public-keys",
        pub,
    )
    assert bad_type.returncode == 2
    assert "agency type 'spies'" in bad_type.stderr

    assert run("admin", "suspend", "--config", config, "--node-id", "probation.sw").returncode == 0
    listing = run("admin", "list", "--config", config).stdout
    assert "probation.sw" in listing
    assert "suspended" in listing
    assert run("admin", "revoke", "--config", config, "--node-id", "probation.sw").returncode == 0
    reinstate = run("admin", "reinstate", "--config", config, "--node-id", "probation.sw")
    assert reinstate.returncode == 2
    assert "revoked" in reinstate.stderr
    # Each registry change is in the transparency log, which still verifies.
    import sqlite3

    with sqlite3.connect(root / "hub.sqlite3") as db:
        changes = [
            json.loads(row[0])["outcome"]
            for row in db.execute(
                "SELECT entry_json FROM audit_log WHERE actor = 'probation.sw' ORDER BY idx"
            )
        ]
    assert changes == ["ENROLLED", "SUSPENDED", "REVOKED"]
    assert run("audit", "verify", "--config", config).returncode == 0


def test_serve_names_the_config_problem(tmp_path: Path) -> None:
    missing = run("serve", "--config", tmp_path / "nope.toml")
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    broken = tmp_path / "hub.toml"
    broken.write_text('[hub]\nid = "h"\n[storage]\ndatabase = "x.db"\n')
    result = run("serve", "--config", broken)
    assert result.returncode == 2
    assert "storage.blob_dir is required" in result.stderr


def test_help_lists_the_commands() -> None:
    result = run("--help")
    for command in ("demo", "serve", "keys", "admin", "node"):
        assert command in result.stdout


def test_audit_verify_passes_then_names_a_tampered_entry(tmp_path: Path) -> None:
    import sqlite3

    root = tmp_path / "demo"
    run("demo", "--dir", root, "--keep", check=True)
    ok = run("audit", "verify", "--json", "--config", root / "hub.toml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] is True
    assert report["entries"] > 10
    with sqlite3.connect(root / "hub.sqlite3") as db:
        (entry,) = db.execute("SELECT entry_json FROM audit_log WHERE idx = 5").fetchone()
        db.execute(
            "UPDATE audit_log SET entry_json = ? WHERE idx = 5",
            (entry.replace('"at":"', '"at":"1'),),
        )
    tampered = run("audit", "verify", "--json", "--config", root / "hub.toml")
    assert tampered.returncode == 3
    assert json.loads(tampered.stdout)["first_bad_entry"] == 5


def test_disclosures_and_assurance_report_on_the_demo(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET
    from datetime import UTC, datetime

    root = tmp_path / "demo"
    run("demo", "--dir", root, "--keep", check=True)
    register = run(
        "audit", "disclosures", "subj-demo-0001", "--config", root / "hub.toml", "--json"
    )
    assert register.returncode == 0, register.stderr
    kinds = [d["kind"] for d in json.loads(register.stdout)]
    assert kinds.count("release") == 1
    assert "referral" in kinds
    today = datetime.now(UTC)
    period = f"{today.year}Q{(today.month - 1) // 3 + 1}"
    report = run("report", "assurance", "--json", "--config", root / "hub.toml", "--period", period)
    assert json.loads(report.stdout)["releases"] == 1
    svg = tmp_path / "report.svg"
    written = run(
        "report",
        "assurance",
        "--config",
        root / "hub.toml",
        "--period",
        period,
        "--format",
        "svg",
        "--out",
        svg,
    )
    assert written.returncode == 0
    # Our own generated file, not untrusted input.
    chart = ET.parse(svg).getroot()  # noqa: S314
    assert chart.tag == "{http://www.w3.org/2000/svg}svg"
    assert f"assurance {period}" in svg.read_text()
    bad = run("report", "assurance", "--config", root / "hub.toml", "--period", "soon")
    assert bad.returncode == 2
    assert "--period" in bad.stderr

"""``python -m bench`` end to end in its quickest mode, with tiny sizes (never timed).

What is checked is that every benchmark ran and reported sane figures (positive rates,
ordered percentiles, no errors, every receipt verified, the document intact, the log
verified), or says plainly why it could not run here. How fast anything was is not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "HUB_TEST_POSTGRES_URL"
SUBMIT_ROWS = {
    f"submit.{target}.c{c}" for target in ("trivial", "mesh", "hub") for c in (1, 16, 64)
}
EVERY_ROW = SUBMIT_ROWS | {
    "generator",
    "inbox.list",
    "inbox.fetch_ack",
    "document",
    "audit.verify",
    "audit.inclusion_proof",
    "audit.consistency_proof",
    "postgres.one_process",
    "postgres.two_processes",
}
MESSAGES = 20


def _mesh_installed() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("mesh_sandbox", "mesh_client", "uvicorn")
    )


def _bench(tmp_path: Path, *args: str, env: dict[str, str]) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text())
    report["stdout"] = result.stdout
    return report


def _assert_sane_load(row: dict[str, Any]) -> None:
    assert row["status"] == "ok", row
    assert row["count"] > 0, row
    assert row["rate"] > 0, row
    assert 0 < row["p50_ms"] <= row["p99_ms"], row
    assert row["errors"] == 0, row
    assert row["server_cpu_us"] >= 0, row
    assert row["generator_cpu_us"] > 0, row


@pytest.mark.slow
def test_the_harness_runs_every_benchmark_in_its_quickest_mode(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name != POSTGRES}
    report = _bench(
        tmp_path,
        "--messages", str(MESSAGES), "--size", "1MiB", "--audit-entries", "200",
        "--proofs", "5",
        env=env,
    )  # fmt: skip
    rows = {row["id"]: row for row in report["rows"]}
    assert set(rows) == EVERY_ROW

    mesh = _mesh_installed()
    for row_id in SUBMIT_ROWS:
        row = rows[row_id]
        if row_id.startswith("submit.mesh.") and not mesh:
            assert row["status"] == "skipped"
            assert "not installed" in row["reason"]
            continue
        _assert_sane_load(row)
        assert row["count"] == MESSAGES
    for c in (1, 16, 64):
        hub = rows[f"submit.hub.c{c}"]
        # Every accepted answer, warm-up included, was a receipt the hub signed for it.
        assert hub["extra"]["receipts_verified"] >= MESSAGES
    assert report["meta"]["mesh"]["available"] is mesh
    if mesh:
        # The official client finds in the recipient's inbox every message MESH accepted.
        assert report["meta"]["mesh"]["recipient_inbox"] == report["meta"]["mesh"]["accepted"]
    else:
        assert "MESH anchor MISSING" in report["stdout"]

    generator = rows["generator"]
    assert generator["status"] == "ok"
    assert generator["generator_cpu_us"] > 0
    assert generator["rate"] > 0

    for row_id in ("inbox.list", "inbox.fetch_ack", "audit.inclusion_proof",
                   "audit.consistency_proof"):  # fmt: skip
        _assert_sane_load(rows[row_id])

    document = rows["document"]
    assert document["status"] == "ok"
    assert document["extra"]["intact"] is True
    assert document["extra"]["bytes"] == 1024 * 1024
    assert document["rate"] > 0
    for side in ("sender_peak_rss", "receiver_peak_rss", "hub_peak_rss"):
        assert document["extra"][side] > 0

    verify = rows["audit.verify"]
    assert verify["status"] == "ok"
    assert verify["extra"]["entries"] >= 200
    assert verify["rate"] > 0
    assert verify["extra"]["peak_rss"] > 0

    for row_id in ("postgres.one_process", "postgres.two_processes"):
        assert rows[row_id]["status"] == "skipped"
        assert POSTGRES in rows[row_id]["reason"]

    names = {item["name"] for item in report["ratios"]}
    assert "hub vs trivial aiohttp, 64 concurrent" in names
    assert "hub p99 at 64 concurrent" in names
    # One table on stdout, a line for every row.
    assert report["stdout"].count("submit 1 KiB") >= len(SUBMIT_ROWS)
    assert "Issue 12 Done-when, from this run:" in report["stdout"]


@pytest.mark.slow
def test_the_postgres_benchmark_runs_one_process_then_two(tmp_path: Path) -> None:
    if not os.environ.get(POSTGRES):
        pytest.skip(f"{POSTGRES} is not set: the PostgreSQL benchmark is not run")
    report = _bench(
        tmp_path, "--only", "postgres", "--messages", str(MESSAGES), env=dict(os.environ)
    )
    rows = {row["id"]: row for row in report["rows"]}
    assert set(rows) == {"postgres.one_process", "postgres.two_processes"}
    for row in rows.values():
        _assert_sane_load(row)
        assert row["count"] == MESSAGES
        assert row["extra"]["receipts_verified"] >= MESSAGES
    two = rows["postgres.two_processes"]
    assert two["extra"]["log_verifies"] is True
    assert two["extra"]["ratio_to_one"] > 0

"""``hub admin purge [--dry-run]`` on the demo's kept federation (deploy/retention.md).

The demo leaves a real hub database in which the referral and the release have been
acknowledged by every recipient: what retention.yaml says goes at once.
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from hub.cli.main import build_parser
from tests.cli.test_cli import run


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    run("demo", "--dir", root, "--keep", check=True)
    return root


def _snapshot(root: Path) -> tuple[dict[str, list[tuple[Any, ...]]], list[str]]:
    with closing(sqlite3.connect(root / "hub.sqlite3")) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        tables = {name: sorted(db.execute(f'SELECT * FROM "{name}"')) for name in names}  # noqa: S608 - names from sqlite_master
    files = sorted(str(p.relative_to(root)) for p in (root / "blobs").rglob("*"))
    return tables, files


def _acknowledged_by_all(root: Path) -> dict[str, int]:
    """Messages every recipient acknowledged, by kind, of the kinds retention.yaml purges
    on acknowledgement (all but requests and decisions), read straight from the database."""
    with closing(sqlite3.connect(root / "hub.sqlite3")) as db:
        rows = db.execute(
            "SELECT m.kind, COUNT(*) FROM messages m WHERE m.kind NOT IN "
            "('information_request', 'decision') AND NOT EXISTS (SELECT 1 FROM deliveries d "
            "WHERE d.message_id = m.id AND d.state != 'acknowledged') GROUP BY m.kind"
        ).fetchall()
    return {str(kind): int(count) for kind, count in rows}


def _lines(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(ln["what"], ln["kind"], ln["reason"], ln["count"]) for ln in report["lines"]]


def test_a_dry_run_lists_what_is_due_and_changes_nothing_then_the_purge_does_it(
    demo: Path,
) -> None:
    config = demo / "hub.toml"
    before = _snapshot(demo)

    dry = run("admin", "purge", "--config", config, "--dry-run", "--json", check=True)
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    due = _acknowledged_by_all(demo)
    # The demo's referral and release are among them; a request and a decision never are.
    assert {"referral", "release"} <= set(due)
    assert not {"information_request", "decision"} & set(due)
    assert _lines(report) == [
        ("payload", kind, "ACKNOWLEDGED", count) for kind, count in sorted(due.items())
    ]
    assert all(line["bytes"] > 0 for line in report["lines"])
    total = sum(due.values())
    assert report["log_entries"] == total
    text = run("admin", "purge", "--config", config, "--dry-run", check=True).stdout
    assert text.startswith("would purge (dry run: nothing was changed):")
    assert f"log entries that would be written: {total}" in text
    assert _snapshot(demo) == before

    done = json.loads(run("admin", "purge", "--config", config, "--json", check=True).stdout)
    assert done["dry_run"] is False
    assert done["lines"] == report["lines"]
    assert done["log_entries"] == total
    with closing(sqlite3.connect(demo / "hub.sqlite3")) as db:
        purged = db.execute(
            "SELECT kind, purge_reason, envelope_json FROM messages "
            "WHERE payload_purged_at IS NOT NULL ORDER BY kind"
        ).fetchall()
        actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY idx")]
    assert sorted(kind for kind, _, _ in purged) == sorted(
        kind for kind, count in due.items() for _ in range(count)
    )
    assert {reason for _, reason, _ in purged} == {"ACKNOWLEDGED"}
    assert all("inline" not in json.loads(envelope)["payload"] for _, _, envelope in purged)
    assert actions[-total:] == ["purged"] * total

    verified = run("audit", "verify", "--config", config)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ok: yes" in verified.stdout
    again = run("admin", "purge", "--config", config, "--dry-run", check=True)
    assert "nothing is due" in again.stdout


def test_a_dry_run_needs_no_signing_key_and_a_purge_does(demo: Path) -> None:
    config = demo / "hub.toml"
    (demo / "keys" / "hub.key").rename(demo / "keys" / "hub.key.away")
    assert run("admin", "purge", "--config", config, "--dry-run").returncode == 0
    refused = run("admin", "purge", "--config", config)
    assert refused.returncode == 2
    assert "hub signing key" in refused.stderr
    with closing(sqlite3.connect(demo / "hub.sqlite3")) as db:
        actions = {r[0] for r in db.execute("SELECT action FROM audit_log")}
    assert "purged" not in actions


def test_the_commands_in_deploy_retention_md_parse_as_written() -> None:
    doc = Path(__file__).resolve().parents[2] / "deploy" / "retention.md"
    blocks = re.findall(r"```sh\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL)
    commands = [shlex.split(line) for block in blocks for line in block.splitlines() if line]
    assert commands
    for words in commands:
        assert words[0] == ".venv/bin/hub"
        build_parser().parse_args(words[1:])

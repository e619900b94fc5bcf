"""``hub node show``: one kept message, opened on view, logged, in sections or as JSON.

On a kept demo served by the real ``hub serve``: the health node submits the demo's
referral, the police node fetches its inbox into its store, and ``show`` opens it there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agency_adapters.node.store import NodeStore, node_database_path
from hub.client import load_node_profile
from tests.cli.test_cli import run


@pytest.fixture
def received(kept_demo: Path) -> tuple[Path, str]:
    """The police node folder and the id of the referral it received and kept."""
    health = kept_demo / "nodes" / "health.bsw-icb"
    police = kept_demo / "nodes" / "police.ctp-sw"
    submitted = run(
        "node", "submit", "--json", "--node", health, kept_demo / "drafts" / "referral.json"
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    message_id = json.loads(submitted.stdout)["message_id"]
    inbox = run("node", "inbox", "--json", "--node", police, check=True)
    assert message_id in inbox.stdout
    return police, message_id


def _store(node: Path) -> NodeStore:
    return NodeStore.open(node_database_path(load_node_profile(node)))


def test_show_prints_the_message_in_sections_and_logs_the_view(
    received: tuple[Path, str],
) -> None:
    police, message_id = received
    result = run("node", "show", "--node", police, message_id)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The marking top and bottom, the envelope facts, the gateways in words, the content.
    assert out.startswith("== OFFICIAL-SENSITIVE - PERSONAL DATA ==")
    assert out.rstrip().endswith("== OFFICIAL-SENSITIVE - PERSONAL DATA ==")
    for section in ("\nMessage\n", "\nLegal gateways\n", "\nConsent\n", "\nContent\n"):
        assert section in out
    assert f"id: {message_id}" in out
    assert "purpose_name: Prevent referral" in out
    assert "CDA1998-s115 - Crime and Disorder Act 1998 s115" in out
    assert "reason_code: WOULD_PREJUDICE_OUTCOME" in out
    # The decrypted referral form (the demo's synthetic person).
    assert "forenames: Synthia" in out
    with _store(police) as store:
        entries = store.access_entries(object_id=message_id)
    assert [(e.action, e.object_kind) for e in entries] == [("view", "message")]
    assert entries[0].user_ref.startswith("cli:")


def test_show_json_is_for_scripts(received: tuple[Path, str]) -> None:
    police, message_id = received
    result = run("node", "show", "--json", "--node", police, message_id)
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["message"]["id"] == message_id
    assert view["message"]["direction"] == "received"
    assert view["message"]["kind"] == "referral"
    assert view["message"]["state"] == "acknowledged"
    assert {g["id"] for g in view["gateways"]} >= {"CDA1998-s115", "UKGDPR-A6-1e"}
    assert all(g["title"] for g in view["gateways"])
    assert view["payload"]["individual"]["forenames"] == "Synthia"
    assert "purged" not in view


def test_an_unknown_id_exits_1_saying_so(received: tuple[Path, str]) -> None:
    police, _ = received
    result = run("node", "show", "--node", police, "01900000-0000-7000-8000-000000000000")
    assert result.returncode == 1
    assert "has kept no message 01900000-0000-7000-8000-000000000000" in result.stderr
    assert result.stdout == ""
    with _store(police) as store:
        assert store.access_entries(object_id="01900000-0000-7000-8000-000000000000") == []


def test_a_purged_payload_says_why_and_when(received: tuple[Path, str]) -> None:
    police, message_id = received
    later = datetime.now(UTC) + timedelta(days=800)  # past the default retention (730)
    with _store(police) as store:
        purged = {p.message_id for p in store.purge(later)}
    assert message_id in purged
    text = run("node", "show", "--node", police, message_id)
    assert text.returncode == 0, text.stderr
    assert f"purged at {later.date().isoformat()}" in text.stdout
    assert "past this node's retention period of 730 days" in text.stdout
    assert "forenames" not in text.stdout
    view = json.loads(run("node", "show", "--json", "--node", police, message_id).stdout)
    assert view["payload"] is None
    assert view["purged"]["reason"].startswith("past this node's retention period")
    assert view["purged"]["purged_at"].startswith(later.date().isoformat())
    # The envelope facts stay after the purge.
    assert view["message"]["kind"] == "referral"

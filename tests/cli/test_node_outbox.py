"""``hub node outbox``, and the resends ``hub node submit`` and ``hub node inbox`` make.

A message is left pending the way a real run leaves it: ``submit_draft`` (what ``hub node
submit`` runs) through a proxy that commits at the hub and loses every answer. Then the
real ``hub`` command runs as a separate process against the same in-process hub.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.cli.node import load_draft, submit_draft
from hub.client import NodeClient, Outbox, RetryPolicy, SendUnconfirmed, load_node_profile
from hub.client.profile import write_node_profile
from hub.crypto import write_key_file
from hub.model.examples import synthetic_referral_form
from hub.registry import set_node_status
from tests.client.lossy_proxy import LossyProxy
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    INSECURE_TEST_NODE_KEYS,
    REFERRAL_CONSENT,
    REFERRAL_LEGAL_BASIS,
    HubFixture,
)

HEALTH = "health.bsw-icb"
QUICK = RetryPolicy(attempts=2, first_delay=0.01, max_delay=0.01)


def _node_folder(root: Path, hub_url: str) -> Path:
    folder = root / "health"
    write_key_file(folder / "keys" / "node.key", INSECURE_TEST_NODE_KEYS[HEALTH])
    write_node_profile(
        folder,
        node_id=HEALTH,
        agency_type="health",
        hub_url=hub_url,
        hub_id="hub.test",
        hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing,
    )
    return folder


def _draft(root: Path) -> Path:
    draft = {
        "envelope": {
            "kind": "referral",
            "author": {"user_ref": "u-7f3a91", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
            "recipients": ["la.wiltshire", "police.ctp-sw"],
            "marking": {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]},
            "subject_ref": "subj-000123",
            "purpose": "PREVENT_REFERRAL",
            "legal_basis": REFERRAL_LEGAL_BASIS,
            "consent": REFERRAL_CONSENT,
        },
        "payload": {
            "media_type": "application/json",
            "content": json.loads(synthetic_referral_form(1).model_dump_json()),
        },
    }
    path = root / "referral.json"
    path.write_text(json.dumps(draft))
    return path


@asynccontextmanager
async def _pending(hub: HubFixture, tmp_path: Path) -> AsyncIterator[tuple[Path, Path, str]]:
    """A node folder with one referral committed at the hub whose answers were all lost."""
    folder = _node_folder(tmp_path, hub.url)
    draft_path = _draft(tmp_path)
    profile = load_node_profile(folder)
    async with LossyProxy(hub.url, lambda _: "lose") as proxy:
        client = NodeClient(
            hub_url=proxy.url,
            node_id=HEALTH,
            keys=profile.load_keys(),
            hub_signing_key=profile.hub_signing_key,
            spool_dir=profile.spool_dir,
            clock=hub.clock,
            outbox=Outbox(profile.outbox_dir),
            retry=QUICK,
        )
        async with client:
            draft, payload = load_draft(draft_path)
            with pytest.raises(SendUnconfirmed) as unconfirmed:
                await submit_draft(client, draft, payload, preflight=True)
    assert proxy.answers == [201, 200]
    yield folder, draft_path, unconfirmed.value.message_id


async def _hub_command(*args: str | Path) -> tuple[int, str, str]:
    """Run ``hub ARGS`` as its own process while this event loop keeps serving the hub."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli.main",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _log_actions(hub: HubFixture, message_id: str) -> list[str]:
    async with hub.store.read() as view:
        rows = await view.audit.rows(0, 1 << 40)
    return [r.action for r in rows if json.loads(r.entry_json).get("message_id") == message_id]


async def test_submitting_the_draft_again_resends_the_kept_message(
    hub: HubFixture, tmp_path: Path
) -> None:
    async with _pending(hub, tmp_path) as (folder, draft_path, message_id):
        code, out, err = await _hub_command(
            "node", "submit", "--json", "--node", folder, draft_path
        )
    assert code == 0, err
    receipt: dict[str, Any] = json.loads(out)
    assert receipt["message_id"] == message_id
    assert f"this draft was sent as {message_id} and not confirmed" in err
    async with hub.store.read() as view:
        stored = await view.messages.get(message_id)
    assert stored is not None
    assert json.loads(stored.receipt_json) == receipt
    assert await _log_actions(hub, message_id) == ["submitted"]
    assert list((folder / "outbox").iterdir()) == []


async def test_outbox_lists_resends_and_says_so(hub: HubFixture, tmp_path: Path) -> None:
    async with _pending(hub, tmp_path) as (folder, _, message_id):
        code, out, err = await _hub_command("node", "outbox", "--list", "--json", "--node", folder)
        assert code == 0, err
        (row,) = json.loads(out)
        assert (row["message_id"], row["kind"], row["transport"]) == (
            message_id,
            "referral",
            "inline",
        )
        assert "1 message(s) waiting for a receipt" in err

        code, out, err = await _hub_command("node", "outbox", "--json", "--node", folder)
    assert code == 0, err
    (resent,) = json.loads(out)
    assert resent["outcome"] == "accepted"
    assert resent["receipt"]["message_id"] == message_id
    assert "1 message(s) resent; 0 still waiting" in err
    assert await _log_actions(hub, message_id) == ["submitted"]


async def test_inbox_resends_the_outbox_first(hub: HubFixture, tmp_path: Path) -> None:
    async with _pending(hub, tmp_path) as (folder, _, message_id):
        code, _, err = await _hub_command("node", "inbox", "--node", folder)
    assert code == 0, err
    assert f"outbox: {message_id} (referral): accepted" in err
    assert Outbox(folder / "outbox").pending() == []


async def test_an_unconfirmed_resend_exits_3_and_stays(hub: HubFixture, tmp_path: Path) -> None:
    async with _pending(hub, tmp_path) as (folder, _, message_id):
        await set_node_status(hub.store, HEALTH, "suspended", now=hub.clock())
        code, out, err = await _hub_command("node", "outbox", "--json", "--node", folder)
    assert code == 3, err
    (row,) = json.loads(out)
    assert row["outcome"] == "not confirmed; still in the outbox"
    assert row["problem"]["type"] == "urn:seh:problem:send-unconfirmed"
    assert [p.message_id for p in Outbox(folder / "outbox").pending()] == [message_id]


async def test_discard_forgets_one_message(hub: HubFixture, tmp_path: Path) -> None:
    async with _pending(hub, tmp_path) as (folder, _, message_id):
        unknown = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        code, _, err = await _hub_command("node", "outbox", "--discard", unknown, "--node", folder)
        assert code == 2
        assert f"no message {unknown} is waiting in the outbox" in err
        code, _, err = await _hub_command(
            "node", "outbox", "--discard", message_id, "--node", folder
        )
    assert code == 0, err
    assert f"hub node status {message_id}" in err
    assert Outbox(folder / "outbox").pending() == []

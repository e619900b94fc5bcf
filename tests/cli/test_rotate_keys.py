"""``hub node rotate-keys`` and the compromise commands, as an operator runs them.

On a kept demo served by the real ``hub serve`` (tests/cli/conftest.py): real processes,
real node folders, the real SQLite database. The node's folder switches keys only when
the hub has them; what was kept and sent before stays readable and verifiable.
"""

from __future__ import annotations

import asyncio
import io
import json
import stat
import time
from pathlib import Path
from typing import Any

from agency_adapters.node.store import NodeStore, node_database_path
from hub.client import NodeClient, Outbox, load_node_profile
from hub.crypto import NodeKeys, read_key_file, write_key_file
from tests.cli.test_cli import run

# The served hub reads its node registry at most every limits.node_cache_seconds (1 s):
# a change made by 'hub admin' in another process is seen after that.
_CACHE_SECONDS = 1.2


def _public(node: Path) -> dict[str, str]:
    return read_key_file(node / "keys" / "node.key").public.to_json()


def _submit_referral(root: Path) -> str:
    health = root / "nodes" / "health.bsw-icb"
    submitted = run("node", "submit", "--json", "--node", health, root / "drafts" / "referral.json")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    message_id: str = json.loads(submitted.stdout)["message_id"]
    return message_id


def _inbox(node: Path) -> dict[str, dict[str, Any]]:
    result = run("node", "inbox", "--json", "--node", node)
    assert result.returncode == 0, result.stdout + result.stderr
    return {m["message_id"]: m for m in json.loads(result.stdout)}


def _kept_received(node: Path) -> list[str]:
    with NodeStore.open(node_database_path(load_node_profile(node))) as store:
        return [m.id for m in store.list_messages("in", limit=1000)]


def _folder_snapshot(node: Path) -> dict[str, bytes]:
    keys = node / "keys"
    return {
        str(p.relative_to(keys)): p.read_bytes() for p in sorted(keys.rglob("*")) if p.is_file()
    }


def test_rotate_keys_end_to_end_keeps_old_messages_and_uses_the_new_keys(
    kept_demo: Path,
) -> None:
    la = kept_demo / "nodes" / "la.wiltshire"
    health = kept_demo / "nodes" / "health.bsw-icb"
    config = kept_demo / "hub.toml"
    _inbox(la)  # LA fetches and keeps what the demo sent it, sealed to its first keys
    kept_before = _kept_received(la)
    assert len(kept_before) >= 2
    old_public = _public(la)
    # Sealed to LA's old key and signed with health's old key; fetched only afterwards.
    pending = _submit_referral(kept_demo)

    rotated = run("node", "rotate-keys", "--json", "--node", la)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    result = json.loads(rotated.stdout)
    new_public = _public(la)
    assert new_public != old_public
    assert result["signing_key"] == new_public["signing_key"]
    archived = Path(result["archived"])
    assert archived.parent == la / "keys" / "archive"
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    assert read_key_file(archived).public.to_json() == old_public
    assert not (la / "keys" / "rotating.key").exists()

    # The hub's record: the old key rotated, the new one current, with the printed prints.
    listed = run("admin", "keys", "--json", "--config", config, "--node-id", "la.wiltshire")
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert [k["status"] for k in keys] == ["rotated", "current"]
    assert keys[1]["signing_fingerprint"] == result["signing_fingerprint"]
    assert keys[0]["signing_fingerprint"] == result["previous_signing_fingerprint"]

    assert run("node", "rotate-keys", "--node", health).returncode == 0

    # (a) The message sent before both rotations verifies and decrypts at LA now.
    inbox = _inbox(la)
    assert inbox[pending]["payload"]["individual"]["surname"]
    assert "rejected" not in inbox[pending]
    # What LA kept before rotating still opens, from the archived key.
    profile = load_node_profile(la)
    with NodeStore.open(node_database_path(profile)) as store:
        for message_id in kept_before:
            stored = store.get(message_id)
            assert stored is not None
            if stored.media_type.endswith("json"):
                assert store.open_payload(message_id, profile.load_keys(), profile.node_id)
            else:
                assert store.open_payload_to(
                    message_id, profile.load_keys(), profile.node_id, io.BytesIO()
                )
    shown = run("node", "show", "--json", "--node", la, kept_before[-1])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["payload"], shown.stdout

    # (b) A new message from the rotated health node to the rotated LA node.
    fresh = _submit_referral(kept_demo)
    assert _inbox(la)[fresh]["payload"]["individual"]["surname"]

    verified = run("audit", "verify", "--json", "--config", config)
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["ok"] is True


def test_rotate_keys_changes_nothing_when_the_hub_refuses_or_cannot_be_reached(
    kept_demo: Path,
) -> None:
    police = kept_demo / "nodes" / "police.ctp-sw"
    config = kept_demo / "hub.toml"
    before = _folder_snapshot(police)
    old_public = _public(police)

    # Refused here: a message waiting in the outbox is signed with the current key.
    outbox = Outbox(load_node_profile(police).outbox_dir)
    waiting = outbox.keep("01900000-0000-7000-8000-000000000001", b"{}", draft_digest="0" * 64)
    blocked = run("node", "rotate-keys", "--node", police)
    assert blocked.returncode == 2
    assert "wait for their receipt" in blocked.stderr
    assert _folder_snapshot(police) == before
    outbox.remove(waiting.message_id)

    # Refused: a suspended node's requests get 401.
    run("admin", "suspend", "--config", config, "--node-id", "police.ctp-sw", check=True)
    time.sleep(_CACHE_SECONDS)
    refused = run("node", "rotate-keys", "--json", "--node", police)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert json.loads(refused.stdout)["status"] == 401
    assert "keeps its keys" in refused.stderr
    assert _folder_snapshot(police) == before
    run("admin", "reinstate", "--config", config, "--node-id", "police.ctp-sw", check=True)
    time.sleep(_CACHE_SECONDS)

    # Unreachable: the staged keys wait, the node keeps using its current ones.
    profile_file = police / "node.toml"
    profile_text = profile_file.read_text()
    hub_url = load_node_profile(police).hub_url
    profile_file.write_text(profile_text.replace(hub_url, "http://127.0.0.1:9"))
    lost = run("node", "rotate-keys", "--node", police)
    assert lost.returncode == 3, lost.stdout + lost.stderr
    assert "Run 'hub node rotate-keys' again" in lost.stderr
    staged = police / "keys" / "rotating.key"
    assert stat.S_IMODE(staged.stat().st_mode) == 0o600
    assert (police / "keys" / "node.key").read_bytes() == before["node.key"]
    leftover = read_key_file(staged).public.to_json()
    profile_file.write_text(profile_text)
    assert run("node", "inbox", "--node", police).returncode == 0  # the old keys still work

    # Run again: the hub never saw the staged keys, so the run starts afresh and rotates.
    again = run("node", "rotate-keys", "--json", "--node", police)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["note"] == "rotated"
    # Fresh keys, not the staged ones the hub never saw; the archive holds the old ones.
    assert _public(police) not in (old_public, leftover)
    archived = Path(json.loads(again.stdout)["archived"])
    assert read_key_file(archived).public.to_json() == old_public
    assert not staged.exists()
    assert run("node", "inbox", "--node", police).returncode == 0


def test_rotate_keys_finishes_a_rotation_whose_answer_was_lost(kept_demo: Path) -> None:
    """The hub took the staged keys but the command died before switching."""
    health = kept_demo / "nodes" / "health.bsw-icb"
    profile = load_node_profile(health)
    current = profile.load_keys()
    staged = NodeKeys.generate()
    write_key_file(profile.rotating_key_file, staged)

    async def rotate_at_the_hub() -> None:
        client = NodeClient(
            hub_url=profile.hub_url,
            node_id=profile.node_id,
            keys=current,
            hub_signing_key=profile.hub_signing_key,
        )
        async with client:
            await client.rotate_keys(staged)

    asyncio.run(rotate_at_the_hub())
    # The folder still holds the old key, which the hub now refuses.
    assert run("node", "inbox", "--node", health).returncode == 1
    finished = run("node", "rotate-keys", "--json", "--node", health)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert json.loads(finished.stdout)["note"] == "finished an interrupted rotation"
    assert _public(health) == staged.public.to_json()
    assert run("node", "inbox", "--node", health).returncode == 0


def test_a_compromised_key_is_replaced_by_keys_prepared_at_the_node(kept_demo: Path) -> None:
    police = kept_demo / "nodes" / "police.ctp-sw"
    config = kept_demo / "hub.toml"
    before = _public(police)

    prepared = run("node", "prepare-keys", "--json", "--node", police)
    assert prepared.returncode == 0, prepared.stderr
    offer = json.loads(prepared.stdout)
    assert stat.S_IMODE((police / "keys" / "pending.key").stat().st_mode) == 0o600
    # Routine rotation is refused while replacement keys wait to be adopted.
    blocked = run("node", "rotate-keys", "--node", police)
    assert blocked.returncode == 2
    assert "prepare-keys" in blocked.stderr

    # Not installed yet: nothing changes.
    early = run("node", "adopt-keys", "--node", police)
    assert early.returncode == 3
    assert "does not list the prepared keys" in early.stderr
    assert _public(police) == before

    listed = json.loads(
        run("admin", "keys", "--json", "--config", config, "--node-id", "police.ctp-sw").stdout
    )
    current = listed[-1]["signing_fingerprint"]
    without = run(
        "admin",
        "compromise-key",
        "--config",
        config,
        "--node-id",
        "police.ctp-sw",
        "--key",
        current,
    )
    assert without.returncode == 2
    assert "--new-public-keys" in without.stderr

    marked = run(
        "admin",
        "compromise-key",
        "--config",
        config,
        "--node-id",
        "police.ctp-sw",
        "--key",
        current,
        "--new-public-keys",
        police / "node.pending.pub.json",
    )
    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert offer["signing_fingerprint"] in marked.stdout
    time.sleep(_CACHE_SECONDS)
    # The compromised key is refused at once.
    assert run("node", "inbox", "--node", police).returncode == 1

    adopted = run("node", "adopt-keys", "--json", "--node", police)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert json.loads(adopted.stdout)["signing_fingerprint"] == offer["signing_fingerprint"]
    assert not (police / "keys" / "pending.key").exists()
    assert run("node", "inbox", "--node", police).returncode == 0
    keys = json.loads(
        run("admin", "keys", "--json", "--config", config, "--node-id", "police.ctp-sw").stdout
    )
    assert [k["status"] for k in keys] == ["compromised", "current"]
    assert keys[0]["compromised_from"] is not None

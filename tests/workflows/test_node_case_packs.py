"""A member node keeps a case pack only until its access expiry, then purges it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from agency_adapters.node.store import PayloadPurged, open_node_store
from hub.cli.node import receive_inbox
from hub.model.examples import synthetic_case_pack
from tests.conftest import HubFixture
from tests.workflows.helpers import HEALTH, LA, POLICE, send
from tests.workflows.test_referral_and_case import case_doc


async def test_case_pack_is_kept_until_expiry_then_purged(hub: HubFixture, tmp_path: Path) -> None:
    async with hub.client(LA) as la, hub.client(HEALTH) as health, hub.client(POLICE) as police:
        await send(la, case_doc("case_open"))
        await send(la, case_doc("consent_record", purpose="CHANNEL_SUPPORT"))
        expires = hub.clock() + timedelta(days=7)
        pack = case_doc("case_pack", access_expires_at=expires.isoformat().replace("+00:00", "Z"))
        await send(la, pack, json.loads(synthetic_case_pack(1).model_dump_json()))

        health_profile = hub.profile(tmp_path, HEALTH)
        received = await receive_inbox(health, health_profile, wait=0, limit=50, now=hub.clock())
        kept = [m for m in received if m["kind"] == "case_pack"]
        assert len(kept) == 1
        assert kept[0]["kept_until"] == expires.isoformat()
        pack_id = kept[0]["message_id"]
        with open_node_store(health_profile) as store:
            assert store.open_payload(pack_id, health.keys, HEALTH)
            assert store.purge(hub.clock()) == []

            hub.clock.advance(8 * 24 * 3600)
            (purged,) = store.purge(hub.clock())
            assert (purged.message_id, purged.kind) == (pack_id, "case_pack")
            assert purged.reason.startswith("case pack access expired at")
            with pytest.raises(PayloadPurged, match="case pack access expired"):
                store.open_payload(pack_id, health.keys, HEALTH)
            stored = store.get(pack_id)
            assert stored is not None
            assert stored.purge_reason == purged.reason
            assert "inline" not in stored.envelope_document["payload"]

        # Police never fetched it: after expiry the inbox reports it and moves on.
        police_profile = hub.profile(tmp_path, POLICE)
        late = await receive_inbox(police, police_profile, wait=0, limit=50, now=hub.clock())
        assert {"message_id": kept[0]["message_id"], "kind": "case_pack", "expired": True} in late
        assert await receive_inbox(police, police_profile, wait=0, limit=50, now=hub.clock()) == []


async def test_a_payload_that_fails_its_kind_is_rejected_not_acknowledged(
    hub: HubFixture, tmp_path: Path
) -> None:
    async with hub.client(LA) as la, hub.client(HEALTH) as health:
        await send(la, case_doc("case_open"))
        expires = hub.clock() + timedelta(days=7)
        pack = case_doc("case_pack", access_expires_at=expires.isoformat().replace("+00:00", "Z"))
        bogus = await send(la, pack, {"sections": ["not a case pack"]})
        received = await receive_inbox(health, hub.profile(tmp_path, HEALTH), wait=0, limit=50)
        rejected = next(m for m in received if m["message_id"] == bogus.message_id)
        assert any(problem.startswith("PAYLOAD-04 $.payload") for problem in rejected["rejected"])
        # Rejected with a signed rejection: the sender sees it, with the rule, not the text.
        status = await la.status(bogus.message_id)
        health_status = {r.node: r for r in status.recipients}[HEALTH]
        assert health_status.state == "rejected"
        assert health_status.rejection_rules == ("PAYLOAD-04",)

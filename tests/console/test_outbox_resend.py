"""The console's sending is retry-safe: what a crashed or disconnected console sealed and
sent without a receipt is resent, as kept, when the console starts, and lands in its sent
items; a blob it sends is kept in sent items as the ciphertext it uploaded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agency_adapters.node.console import ConsoleSettings, NodeServices, create_console_app
from agency_adapters.node.store import NodeStore, node_database_path
from agency_adapters.node.users import UserStore
from hub.client import NodeClient, Outbox, PayloadSource, RetryPolicy, SendUnconfirmed
from hub.model import EnvelopeFields
from hub.policy.registry import load_registry
from tests.client.lossy_proxy import LossyProxy
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    INSECURE_TEST_NODE_KEYS,
    SYNTHETIC_REFERRAL,
    HubFixture,
    referral_fields,
)
from tests.console.reading_world import FAST

HEALTH = "health.bsw-icb"
QUICK = RetryPolicy(attempts=2, first_delay=0.01, max_delay=0.01)
BIG = json.dumps({"synthetic": "y" * (70 * 1024)}).encode()


def _services(hub: HubFixture, root: Path, hub_url: str) -> NodeServices:
    profile = hub.profile(root, HEALTH)
    database = node_database_path(profile)
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return NodeServices(
        profile=profile,
        keys=INSECURE_TEST_NODE_KEYS[HEALTH],
        store=NodeStore.open(database),
        users=UserStore.open(database, clock=hub.clock, settings=FAST),
        client=NodeClient(
            hub_url=hub_url,
            node_id=HEALTH,
            keys=INSECURE_TEST_NODE_KEYS[HEALTH],
            hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing,
            spool_dir=profile.spool_dir,
            clock=hub.clock,
            outbox=Outbox(profile.outbox_dir),
            retry=QUICK,
        ),
        registry=load_registry(),
        clock=hub.clock,
    )


def _close(services: NodeServices) -> None:
    services.users.close()
    services.store.close()


async def _log_actions(hub: HubFixture, message_id: str) -> list[str]:
    async with hub.store.read() as view:
        rows = await view.audit.rows(0, 1 << 40)
    return [r.action for r in rows if json.loads(r.entry_json).get("message_id") == message_id]


@pytest.mark.parametrize("plaintext", [json.dumps(SYNTHETIC_REFERRAL).encode(), BIG])
async def test_the_console_resends_its_outbox_at_start_and_keeps_what_was_accepted(
    hub: HubFixture, tmp_path: Path, plaintext: bytes
) -> None:
    fields: EnvelopeFields = referral_fields()
    payload = PayloadSource(media_type="application/json", data=plaintext)
    # A console whose every answer from the hub is lost: the message is committed at the
    # hub, but the console never learns it, and keeps nothing in its sent items.
    async with LossyProxy(hub.url, lambda _: "lose") as proxy:
        lost = _services(hub, tmp_path, proxy.url)
        with pytest.raises(SendUnconfirmed) as unconfirmed:
            await lost.send(fields, payload)
        await lost.client.close()
        message_id = unconfirmed.value.message_id
        assert lost.store.get(message_id) is None
        _close(lost)

    # The console starts again, with the hub reachable.
    services = _services(hub, tmp_path, hub.url)
    app = create_console_app(ConsoleSettings(node_dir=services.profile.root, sync_wait=0), services)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        for _ in range(200):
            if services.store.get(message_id) is not None:
                break
            await asyncio.sleep(0.05)
        kept = services.store.get(message_id)
        assert kept is not None
        assert kept.direction == "out"
        assert services.store.open_payload(message_id, services.keys, HEALTH) == plaintext
    finally:
        await client.close()
    assert Outbox(services.profile.outbox_dir).pending() == []
    assert await _log_actions(hub, message_id) == ["submitted"]


async def test_a_sent_blob_is_kept_as_the_ciphertext_that_was_uploaded(
    hub: HubFixture, tmp_path: Path
) -> None:
    services = _services(hub, tmp_path, hub.url)
    try:
        receipt = await services.send(
            referral_fields(), PayloadSource(media_type="application/json", data=BIG)
        )
        kept = services.store.get(receipt.message_id)
        assert kept is not None
        sha256 = kept.envelope.payload.sha256
        # Not sealed again: the store holds the very ciphertext the hub holds.
        assert (services.store.ciphertext_dir / sha256).stat().st_size == kept.envelope.payload.size
        assert (hub.config.blob_dir / "complete" / sha256).read_bytes() == (
            services.store.ciphertext_dir / sha256
        ).read_bytes()
        assert services.store.open_payload(receipt.message_id, services.keys, HEALTH) == BIG
        assert list(services.profile.outbox_dir.iterdir()) == []
    finally:
        await services.client.close()
        _close(services)

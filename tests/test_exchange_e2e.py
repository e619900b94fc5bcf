"""End to end through the real HTTP server: health → local authority + police."""

from __future__ import annotations

import json

import pytest

from hub.client import HubProblem, PayloadSource
from hub.crypto import DecryptionFailed, NodeKeys
from tests.conftest import SYNTHETIC_REFERRAL, HubFixture, referral_fields


async def test_referral_round_trip_decrypts_at_both_recipients(hub: HubFixture) -> None:
    health, la, police = (
        hub.client(n) for n in ("health.bsw-icb", "la.wiltshire", "police.ctp-sw")
    )
    async with health, la, police:
        receipt = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        assert receipt.recipients == ("la.wiltshire", "police.ctp-sw")
        assert receipt.hub_id == "hub.test"

        for reader in (la, police):
            page = await reader.inbox()
            assert [e.message_id for e in page.entries] == [receipt.message_id]
            assert page.entries[0].kind == "referral"
            message = await reader.fetch(receipt.message_id)
            assert message.envelope.sender == "health.bsw-icb"
            assert message.envelope.marking.render() == "OFFICIAL-SENSITIVE - PERSONAL DATA"
            plaintext = await reader.open_payload(message)
            assert plaintext is not None
            assert json.loads(plaintext) == SYNTHETIC_REFERRAL
            ack = await reader.acknowledge(message)
            assert ack.state == "acknowledged"

        status = await health.status(receipt.message_id)
        assert {r.node: r.state for r in status.recipients} == {
            "la.wiltshire": "acknowledged",
            "police.ctp-sw": "acknowledged",
        }


async def test_wrong_recipient_key_cannot_open_payload(hub: HubFixture) -> None:
    health = hub.client("health.bsw-icb")
    # The LA node's id with somebody else's keys: its requests are refused, and even
    # holding the message it could not open the content key.
    async with health, hub.client("la.wiltshire") as la:
        receipt = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        message = await la.fetch(receipt.message_id)
    impostor = hub.client(
        "la.wiltshire", keys=NodeKeys.from_seed(b"insecure-wrong-key-0000000000000")
    )
    async with impostor:
        with pytest.raises(DecryptionFailed):
            await impostor.open_payload(message)
        with pytest.raises(HubProblem) as refused:
            await impostor.inbox()
        assert refused.value.problem.status == 401

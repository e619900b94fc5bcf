"""The transparency log through the real hub: receipts, proofs, visibility, tampering."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from hub.audit.entries import audit_entry
from hub.audit.log import verify_receipt_inclusion
from hub.audit.verify import verify_log
from hub.client import HubProblem, PayloadSource, VerificationFailed
from hub.config import HubConfig
from hub.crypto import canonical_json
from hub.store.tables import audit_log
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    SYNTHETIC_REFERRAL,
    HubFixture,
    referral_fields,
    running_hub,
)

LA, POLICE, HEALTH = "la.wiltshire", "police.ctp-sw", "health.bsw-icb"


@pytest.fixture
async def audited_hub(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    config = replace(make_config(), auditors=("education.stranger",))
    async with running_hub(config) as fixture:
        yield fixture


async def _send_some(hub: HubFixture, count: int) -> list[Any]:
    receipts = []
    async with hub.client(HEALTH) as health:
        for _ in range(count):
            receipts.append(
                await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
            )
    return receipts


async def _verify(hub: HubFixture) -> Any:
    async with hub.store.read() as view:
        rows = await view.audit.rows(0, 10**9)
        heads = await view.audit.heads()
        size, _ = await view.audit.state_for_update()
    return verify_log(
        rows, heads, state_size=size, hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing
    )


async def test_receipts_carry_a_log_position_that_nodes_verify(audited_hub: HubFixture) -> None:
    receipts = await _send_some(audited_hub, 5)
    indexes = [r.log.index for r in receipts]
    assert indexes == sorted(indexes)
    assert len(set(indexes)) == 5
    async with audited_hub.client(HEALTH) as health, audited_hub.client(LA) as la:
        for receipt in receipts:
            message = await la.fetch(receipt.message_id)
            proof = await health.verify_logged(message.envelope, receipt)
            # Offline, with the proof kept: the same check needs nothing from the hub.
            entry = audit_entry(
                message.envelope, receipt.envelope_sha256, receipt.received_at, "submitted"
            )
            entry_json = canonical_json(entry.model_dump(mode="json", exclude_none=True)).decode()
            pinned = INSECURE_TEST_HUB_KEYS.public.signing
            assert verify_receipt_inclusion(receipt.log, entry_json, proof, pinned)
            forged = [bytes(32), *proof[1:]]
            assert not verify_receipt_inclusion(receipt.log, entry_json, forged, pinned)
        # Heads seen over time are consistent: the log only grew.
        first = receipts[0].log.tree_head
        latest = await health.audit_head()
        assert latest.size > first.size
        await health.verify_consistency(first, latest)
        forged_head = first.model_copy(update={"root_hash": "00" * 32})
        with pytest.raises(VerificationFailed):
            await health.verify_consistency(forged_head, latest)


async def test_refusals_deliveries_and_acks_are_logged_and_visible_to_their_actor(
    audited_hub: HubFixture,
) -> None:
    async with audited_hub.client(HEALTH) as health, audited_hub.client(LA) as la:
        with pytest.raises(HubProblem):
            await health.send(
                # The police alone: a Prevent referral always reaches the local authority
                # (WF-01; seed 004 Appendix 4a).
                referral_fields(recipients=("police.ctp-sw",)),
                PayloadSource.json({}),
                preflight=False,
            )
        receipt = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        message = await la.fetch(receipt.message_id)
        await la.acknowledge(message)
        own = (await health._call("GET", "/v1/audit/entries", params={"start": 0, "end": 100}))[1][
            "entries"
        ]
        actions = [(e["entry"]["action"], e["entry"].get("rules", [])) for e in own]
        assert ("refused", ["WF-01"]) in actions
        assert ("submitted", []) in actions
        assert all(e["entry"]["actor"] == HEALTH for e in own)
        la_own = (await la._call("GET", "/v1/audit/entries", params={"start": 0, "end": 100}))[1][
            "entries"
        ]
        assert {e["entry"]["action"] for e in la_own} == {"delivered", "acknowledged"}
        for entry in own + la_own:  # metadata only: no payload text anywhere
            assert "Testperson" not in json.dumps(entry)
    async with audited_hub.client("education.stranger") as auditor:
        every = (await auditor._call("GET", "/v1/audit/entries", params={"start": 0, "end": 100}))[
            1
        ]["entries"]
    assert {e["entry"]["actor"] for e in every} == {HEALTH, LA}
    assert [e["index"] for e in every] == list(range(len(every)))


async def test_verify_passes_then_names_the_first_tampered_entry(audited_hub: HubFixture) -> None:
    await _send_some(audited_hub, 6)
    clean = await _verify(audited_hub)
    assert clean.ok, clean.problem
    assert clean.entries == 6

    engine = audited_hub.store._engine  # tests reach under the repositories on purpose
    async with engine.begin() as conn:
        row = (await conn.execute(select(audit_log).where(audit_log.c.idx == 3))).one()
        edited = row.entry_json.replace('"submitted"', '"refused"')
        await conn.execute(update(audit_log).where(audit_log.c.idx == 3).values(entry_json=edited))
    result = await _verify(audited_hub)
    assert result.first_bad_index == 3
    assert "changed" in (result.problem or "")

    async with engine.begin() as conn:  # put it back, then reorder two entries
        await conn.execute(
            update(audit_log).where(audit_log.c.idx == 3).values(entry_json=row.entry_json)
        )
        two = (await conn.execute(select(audit_log).where(audit_log.c.idx == 2))).one()
        four = (await conn.execute(select(audit_log).where(audit_log.c.idx == 4))).one()
        for idx, source in ((2, four), (4, two)):
            await conn.execute(
                update(audit_log)
                .where(audit_log.c.idx == idx)
                .values(entry_json=source.entry_json, leaf_hash=source.leaf_hash)
            )
    result = await _verify(audited_hub)
    assert result.first_bad_index == 2
    assert "signed tree head" in (result.problem or "")

    async with engine.begin() as conn:  # restore, then delete one
        for idx, source in ((2, two), (4, four)):
            await conn.execute(
                update(audit_log)
                .where(audit_log.c.idx == idx)
                .values(entry_json=source.entry_json, leaf_hash=source.leaf_hash)
            )
    assert (await _verify(audited_hub)).ok
    async with engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.idx == 1))
    result = await _verify(audited_hub)
    assert result.first_bad_index == 1
    assert "missing" in (result.problem or "")


async def test_a_rewritten_entry_with_a_matching_leaf_hash_is_caught_by_the_heads(
    audited_hub: HubFixture,
) -> None:
    await _send_some(audited_hub, 4)
    from hub.audit.log import entry_leaf_hash

    async with audited_hub.store._engine.begin() as conn:
        row = (await conn.execute(select(audit_log).where(audit_log.c.idx == 1))).one()
        forged = row.entry_json.replace('"submitted"', '"refused"')
        await conn.execute(
            update(audit_log)
            .where(audit_log.c.idx == 1)
            .values(entry_json=forged, leaf_hash=entry_leaf_hash(forged))
        )
    result = await _verify(audited_hub)
    assert result.first_bad_index == 1

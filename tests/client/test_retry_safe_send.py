"""Retry-safe sending: a lost answer, a busy hub or a crash never re-seals a message.

The client keeps the sealed, signed bytes of each message in the node's outbox until it
holds the hub's receipt; every retry sends exactly those bytes, and the hub answers an
identical resubmission with the original receipt. Tested through a proxy that commits at
the hub and then drops the answer (``tests.client.lossy_proxy``).
"""

from __future__ import annotations

import json
import random
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.client import (
    HubProblem,
    NodeClient,
    Outbox,
    OutboxConflict,
    PayloadSource,
    RetryPolicy,
    SendUnconfirmed,
)
from hub.client.ids import uuid7
from hub.crypto import canonical_sha256
from hub.registry import set_node_status
from tests.client.lossy_proxy import LossyProxy, Plan
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    INSECURE_TEST_NODE_KEYS,
    SYNTHETIC_REFERRAL,
    HubFixture,
    referral_fields,
)

HEALTH = "health.bsw-icb"
QUICK = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02)


@asynccontextmanager
async def _node(
    hub: HubFixture,
    outbox_dir: Path,
    plan: Plan,
    *,
    retry: RetryPolicy = QUICK,
) -> AsyncIterator[tuple[NodeClient, LossyProxy]]:
    """HEALTH's client, with its outbox, talking to the hub through a lossy proxy."""
    async with LossyProxy(hub.url, plan) as proxy:
        client = NodeClient(
            hub_url=proxy.url,
            node_id=HEALTH,
            keys=INSECURE_TEST_NODE_KEYS[HEALTH],
            hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing,
            spool_dir=outbox_dir.parent / "spool",
            clock=hub.clock,
            outbox=Outbox(outbox_dir),
            retry=retry,
        )
        async with client:
            yield client, proxy


def _plan(*actions: str) -> Plan:
    """The given actions for the first attempts, then ``pass``."""

    def plan(attempt: int) -> Any:
        return actions[attempt] if attempt < len(actions) else "pass"

    return plan


async def _stored(hub: HubFixture, message_id: str) -> tuple[str | None, list[str]]:
    """The receipt the hub stored for the message, and the log's actions about it."""
    async with hub.store.read() as view:
        message = await view.messages.get(message_id)
        rows = await view.audit.rows(0, 1 << 40)
    actions = [r.action for r in rows if json.loads(r.entry_json).get("message_id") == message_id]
    return (None if message is None else message.receipt_json), actions


def _referral() -> tuple[Any, PayloadSource]:
    return referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL)


async def test_a_lost_answer_is_retried_with_the_same_bytes_and_gets_the_original_receipt(
    hub: HubFixture, tmp_path: Path
) -> None:
    async with _node(hub, tmp_path / "outbox", _plan("lose")) as (client, proxy):
        envelope, receipt = await client.send_with_envelope(*_referral())

    # Two submissions reached the hub (the first committed, its answer lost), byte for byte
    # the same; the hub created the message once and answered the retry with 200.
    assert len(proxy.submissions) == 2
    assert proxy.submissions[0] == proxy.submissions[1]
    assert proxy.answers == [201, 200]
    stored_receipt, actions = await _stored(hub, envelope["id"])
    assert stored_receipt is not None
    assert json.loads(stored_receipt) == receipt.model_dump(mode="json")
    assert actions == ["submitted"]
    assert receipt.envelope_sha256 == canonical_sha256(json.loads(proxy.submissions[0]))
    assert Outbox(tmp_path / "outbox").pending() == []


async def test_a_busy_hub_is_retried_with_backoff(hub: HubFixture, tmp_path: Path) -> None:
    async with _node(hub, tmp_path / "outbox", _plan("503", "refuse-connection")) as (
        client,
        proxy,
    ):
        receipt = await client.send(*_referral())
    assert len(proxy.submissions) == 3
    assert len(set(proxy.submissions)) == 1
    assert proxy.answers == [201]  # the hub saw only the third
    assert (await _stored(hub, receipt.message_id))[1] == ["submitted"]


async def test_an_unconfirmed_message_survives_a_restart_and_is_resent_once(
    hub: HubFixture, tmp_path: Path
) -> None:
    outbox_dir = tmp_path / "outbox"
    # Every attempt commits at the hub and loses the answer: the retries run out.
    async with _node(hub, outbox_dir, lambda _: "lose") as (client, proxy):
        with pytest.raises(SendUnconfirmed) as unconfirmed:
            await client.send(*_referral())
    assert unconfirmed.value.kept
    assert unconfirmed.value.problem.status == 503
    assert "outbox" in (unconfirmed.value.problem.detail or "")
    assert len(proxy.submissions) == QUICK.attempts
    assert proxy.answers == [201, 200, 200]
    message_id = unconfirmed.value.message_id

    # On disk, owner-only, exactly the bytes that were submitted.
    (pending,) = Outbox(outbox_dir).pending()
    assert pending.message_id == message_id
    assert pending.body == proxy.submissions[0]
    assert stat.S_IMODE(outbox_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in outbox_dir.iterdir()} == {0o600}

    # The next run (a new client, as after a crash) resends it, once, and gets the
    # receipt the hub issued the first time.
    async with _node(hub, outbox_dir, _plan()) as (restarted, later):
        (outcome,) = await restarted.resend_pending()
        assert await restarted.resend_pending() == []
    assert later.submissions == [pending.body]
    assert later.answers == [200]
    assert outcome.receipt is not None
    assert outcome.problem is None
    stored_receipt, actions = await _stored(hub, message_id)
    assert stored_receipt is not None
    assert json.loads(stored_receipt) == outcome.receipt.model_dump(mode="json")
    assert actions == ["submitted"]
    assert Outbox(outbox_dir).pending() == []


async def test_a_message_that_never_reached_the_hub_is_sent_on_the_next_run(
    hub: HubFixture, tmp_path: Path
) -> None:
    outbox_dir = tmp_path / "outbox"
    async with _node(hub, outbox_dir, lambda _: "refuse-connection") as (client, _):
        with pytest.raises(SendUnconfirmed) as unconfirmed:
            await client.send(*_referral())
    message_id = unconfirmed.value.message_id
    assert await _stored(hub, message_id) == (None, [])

    async with _node(hub, outbox_dir, _plan()) as (restarted, proxy):
        (outcome,) = await restarted.resend_pending()
    assert proxy.answers == [201]
    assert outcome.receipt is not None
    assert outcome.receipt.message_id == message_id
    assert (await _stored(hub, message_id))[1] == ["submitted"]


async def test_sending_the_same_draft_again_resends_the_kept_bytes(
    hub: HubFixture, tmp_path: Path
) -> None:
    """A user who saw the send fail and sends the same draft again makes no second
    message: the kept one goes again (for a draft with no id, by its content)."""
    outbox_dir = tmp_path / "outbox"
    async with _node(hub, outbox_dir, lambda _: "lose") as (client, first):
        with pytest.raises(SendUnconfirmed):
            await client.send(*_referral())
    async with _node(hub, outbox_dir, _plan()) as (client, again):
        receipt = await client.send(*_referral())
        other = await client.send(referral_fields(subject_ref="subj-000777"), _referral()[1])
    assert again.submissions[0] == first.submissions[0]
    assert again.answers == [200, 201]  # the kept message, then a new draft sealed afresh
    assert receipt.message_id == json.loads(first.submissions[0])["id"]
    assert other.message_id != receipt.message_id
    assert Outbox(outbox_dir).pending() == []


async def test_another_draft_under_a_kept_id_is_refused_locally(
    hub: HubFixture, tmp_path: Path
) -> None:
    outbox_dir = tmp_path / "outbox"
    message_id = uuid7(hub.clock())
    async with _node(hub, outbox_dir, lambda _: "refuse-connection") as (client, _):
        with pytest.raises(SendUnconfirmed):
            await client.send(*_referral(), message_id=message_id)
        with pytest.raises(OutboxConflict, match=message_id):
            await client.send(
                referral_fields(subject_ref="subj-000777"),
                _referral()[1],
                message_id=message_id,
            )
    assert [p.message_id for p in Outbox(outbox_dir).pending()] == [message_id]


async def test_a_refusal_is_final_and_leaves_nothing_pending(
    hub: HubFixture, tmp_path: Path
) -> None:
    outbox_dir = tmp_path / "outbox"
    async with _node(hub, outbox_dir, _plan()) as (client, proxy):
        with pytest.raises(HubProblem) as refused:
            # No pre-flight: only the hub refuses (an unknown recipient, ROUTE-01).
            await client.send(
                referral_fields(recipients=("la.nowhere",)), _referral()[1], preflight=False
            )
    assert refused.value.problem.status == 422
    assert not isinstance(refused.value, SendUnconfirmed)
    assert len(proxy.submissions) == 1  # a verdict is not retried
    assert Outbox(outbox_dir).pending() == []


async def test_a_blob_message_keeps_its_ciphertext_until_the_receipt(
    hub: HubFixture, tmp_path: Path
) -> None:
    outbox_dir = tmp_path / "outbox"
    big = PayloadSource(
        media_type="application/json",
        data=json.dumps({"synthetic": "x" * (70 * 1024)}).encode(),
    )
    async with _node(hub, outbox_dir, lambda _: "lose") as (client, _):
        with pytest.raises(SendUnconfirmed):
            await client.send(referral_fields(), big)
    (pending,) = Outbox(outbox_dir).pending()
    assert pending.ciphertext is not None
    payload = pending.envelope()["payload"]
    assert isinstance(payload, dict)
    assert payload["transport"] == "blob"
    assert stat.S_IMODE(pending.ciphertext.stat().st_mode) == 0o600
    assert pending.ciphertext.stat().st_size == payload["size"]

    kept: list[tuple[str, Path | None]] = []
    async with _node(hub, outbox_dir, _plan()) as (restarted, proxy):
        (outcome,) = await restarted.resend_pending(
            receipted=lambda envelope, receipt, ciphertext: kept.append(
                (receipt.message_id, ciphertext)
            )
        )
    assert proxy.answers == [200]
    assert outcome.receipt is not None
    # The sender's hook saw the ciphertext before the entry went; then it went.
    assert kept == [(pending.message_id, pending.ciphertext)]
    assert not pending.ciphertext.exists()
    assert list(outbox_dir.iterdir()) == []


async def test_a_request_the_hub_will_not_authenticate_stays_pending(
    hub: HubFixture, tmp_path: Path
) -> None:
    """401: the hub did not look at the message, so it is not a verdict on it."""
    outbox_dir = tmp_path / "outbox"
    async with _node(hub, outbox_dir, _plan()) as (client, proxy):
        await client.directory()  # fetched while the node is active
        await set_node_status(hub.store, HEALTH, "suspended", now=hub.clock())
        with pytest.raises(SendUnconfirmed) as unconfirmed:
            await client.send(*_referral())
        assert len(proxy.submissions) == 1  # not retried: the answer would be the same
        assert "authenticate" in unconfirmed.value.cause
        (pending,) = Outbox(outbox_dir).pending()

        await set_node_status(hub.store, HEALTH, "active", now=hub.clock())
        (outcome,) = await client.resend_pending()
    assert outcome.receipt is not None
    assert outcome.receipt.message_id == pending.message_id
    assert proxy.answers == [401, 201]


def test_retries_wait_longer_each_time_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=5, first_delay=0.5, max_delay=3.0)
    jitter = random.Random(7)
    delays = [policy.delay(n, jitter) for n in range(1, 6)]
    full = [0.5, 1.0, 2.0, 3.0, 3.0]
    assert all(f / 2 <= d <= f for d, f in zip(delays, full, strict=True))
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)

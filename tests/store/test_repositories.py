"""The repositories behave the same on SQLite and PostgreSQL (STYLE.md rule 9).

Every test here takes the ``store`` fixture, so it runs once per engine; the SQLite-only
checks at the end open their own engine to read pragmas.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError

from hub.store import BlobRecord, NodeRecord, SqlStore, StoredMessage, database_url_for_path
from hub.store.dialect import open_engine

# Microseconds on purpose: both engines must hand them back unchanged.
T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
SENDER = "health.bsw-icb"
LA = "la.wiltshire"
POLICE = "police.ctp-sw"
STRANGER = "education.stranger"
PAYLOAD_SHA256 = "a" * 64


def node(node_id: str, *, status: str = "active", at: datetime = T0) -> NodeRecord:
    return NodeRecord(
        id=node_id,
        agency_type=node_id.split(".", 1)[0],
        display_name=f"Test node {node_id}",
        signing_key=bytes(range(32)),
        encryption_key=bytes(range(32, 64)),
        accreditation="OFFICIAL-SENSITIVE",
        status=status,
        enrolled_at=at,
        updated_at=at,
    )


def message(
    message_id: str,
    *,
    sender: str = SENDER,
    payload_sha256: str = PAYLOAD_SHA256,
    received_at: datetime = T0,
) -> StoredMessage:
    return StoredMessage(
        id=message_id,
        sender=sender,
        kind="referral",
        envelope_json='{"id":"' + message_id + '"}',
        envelope_sha256="e" * 64,
        receipt_json='{"receipt":true}',
        received_at=received_at,
        payload_sha256=payload_sha256,
        payload_size=1234,
        transport="inline",
    )


def blob(upload_id: str, *, sha256: str = "b" * 64, chunk_count: int = 3) -> BlobRecord:
    return BlobRecord(
        upload_id=upload_id,
        owner=SENDER,
        sha256=sha256,
        size=chunk_count * 1024,
        chunk_size=1024,
        chunk_count=chunk_count,
        state="uploading",
        created_at=T0,
        received_chunks=frozenset(),
    )


async def enrol(store: SqlStore, *node_ids: str) -> None:
    async with store.transaction() as tx:
        for node_id in node_ids:
            await tx.nodes.add(node(node_id))


@pytest.fixture
async def enrolled(store: SqlStore) -> SqlStore:
    await enrol(store, SENDER, LA, POLICE, STRANGER)
    return store


def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


# --- nodes ------------------------------------------------------------------------------


async def test_node_add_get_list_update(store: SqlStore) -> None:
    await enrol(store, LA, SENDER)

    async with store.read() as view:
        got = await view.nodes.get(SENDER)
        listed = await view.nodes.list_all()
        missing = await view.nodes.get("police.nowhere")

    assert got == node(SENDER)
    assert [n.id for n in listed] == [SENDER, LA]  # ordered by id
    assert missing is None

    later = T0 + timedelta(days=1, microseconds=7)
    async with store.transaction() as tx:
        await tx.nodes.update(replace(node(SENDER), status="suspended", updated_at=later))

    async with store.read() as view:
        updated = await view.nodes.get(SENDER)
        untouched = await view.nodes.get(LA)
    assert updated == replace(node(SENDER), status="suspended", updated_at=later)
    assert untouched == node(LA)


async def test_node_datetimes_come_back_aware_utc_with_microseconds(store: SqlStore) -> None:
    # Stored from a non-UTC offset: the same instant must come back, expressed in UTC.
    enrolled_at = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    async with store.transaction() as tx:
        await tx.nodes.add(replace(node(SENDER), enrolled_at=enrolled_at, updated_at=T0))

    async with store.read() as view:
        got = await view.nodes.get(SENDER)

    assert got is not None
    for value in (got.enrolled_at, got.updated_at):
        assert_utc(value)
        assert value == T0
        assert value.microsecond == T0.microsecond
    assert got.enrolled_at.tzinfo == UTC


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    naive = T0.replace(tzinfo=None)
    with pytest.raises(StatementError, match="naive datetimes are not stored"):
        async with store.transaction() as tx:
            await tx.nodes.add(replace(node(SENDER), enrolled_at=naive))
    async with store.read() as view:
        assert await view.nodes.get(SENDER) is None


# --- messages and deliveries -------------------------------------------------------------


async def test_message_add_get_and_deliveries(enrolled: SqlStore) -> None:
    stored = message("m-1")
    async with enrolled.transaction() as tx:
        await tx.messages.add(stored, [POLICE, LA])

    async with enrolled.read() as view:
        got = await view.messages.get("m-1")
        deliveries = await view.messages.deliveries("m-1")
        one = await view.messages.delivery("m-1", LA)
        none = await view.messages.delivery("m-1", STRANGER)
        missing = await view.messages.get("m-404")

    assert got == stored
    assert got is not None
    assert_utc(got.received_at)
    assert [d.recipient for d in deliveries] == [LA, POLICE]  # ordered by recipient
    for delivery in deliveries:
        assert delivery.message_id == "m-1"
        assert delivery.state == "pending"
        assert delivery.delivered_at is None
        assert delivery.acknowledged_at is None
        assert delivery.ack_json is None
    assert one == deliveries[0]
    assert none is None
    assert missing is None


async def test_inbox_orders_by_seq_and_pages_with_after_and_limit(enrolled: SqlStore) -> None:
    for index in range(5):
        async with enrolled.transaction() as tx:
            recipients = [LA, POLICE] if index % 2 == 0 else [LA]
            received = T0 + timedelta(seconds=index)
            await tx.messages.add(message(f"m-{index}", received_at=received), recipients)

    async with enrolled.read() as view:
        everything = await view.messages.inbox(LA, after=0, limit=100)
        first_page = await view.messages.inbox(LA, after=0, limit=2)
        second_page = await view.messages.inbox(LA, after=first_page[-1].seq, limit=2)
        last_page = await view.messages.inbox(LA, after=second_page[-1].seq, limit=2)
        beyond = await view.messages.inbox(LA, after=everything[-1].seq, limit=2)
        police = await view.messages.inbox(POLICE, after=0, limit=100)
        stranger = await view.messages.inbox(STRANGER, after=0, limit=100)

    assert [row.message_id for row in everything] == [f"m-{i}" for i in range(5)]
    seqs = [row.seq for row in everything]
    assert all(a < b for a, b in itertools.pairwise(seqs))
    assert first_page + second_page + last_page == everything
    assert [len(first_page), len(second_page), len(last_page)] == [2, 2, 1]
    assert beyond == []
    assert [row.message_id for row in police] == ["m-0", "m-2", "m-4"]
    assert stranger == []

    row = everything[3]
    assert (row.sender, row.kind, row.state, row.payload_size, row.transport) == (
        SENDER,
        "referral",
        "pending",
        1234,
        "inline",
    )
    assert row.received_at == T0 + timedelta(seconds=3)
    assert_utc(row.received_at)


async def test_seq_is_strictly_increasing_across_messages(enrolled: SqlStore) -> None:
    for index in range(4):
        async with enrolled.transaction() as tx:
            await tx.messages.add(message(f"m-{index}"), [STRANGER, POLICE, LA])

    seqs: list[int] = []
    async with enrolled.read() as view:
        for index in range(4):
            seqs.extend(
                d.seq
                for d in sorted(await view.messages.deliveries(f"m-{index}"), key=lambda d: d.seq)
            )
    assert len(seqs) == 12
    assert all(a < b for a, b in itertools.pairwise(seqs))


async def test_mark_delivered_only_moves_pending(enrolled: SqlStore) -> None:
    async with enrolled.transaction() as tx:
        await tx.messages.add(message("m-1"), [LA, POLICE])
        await tx.messages.mark_delivered("m-1", LA, T0)
        # A second delivery of the same message does not move the first timestamp.
        await tx.messages.mark_delivered("m-1", LA, T0 + timedelta(hours=1))

    async with enrolled.read() as view:
        la = await view.messages.delivery("m-1", LA)
        police = await view.messages.delivery("m-1", POLICE)
    assert la is not None
    assert police is not None
    assert (la.state, la.delivered_at) == ("delivered", T0)
    assert_utc(la.delivered_at)
    assert (police.state, police.delivered_at) == ("pending", None)

    acked_at = T0 + timedelta(hours=2)
    async with enrolled.transaction() as tx:
        await tx.messages.acknowledge("m-1", LA, acked_at, '{"ack":1}')
        await tx.messages.mark_delivered("m-1", LA, T0 + timedelta(hours=3))

    async with enrolled.read() as view:
        la = await view.messages.delivery("m-1", LA)
    assert la is not None
    assert (la.state, la.delivered_at, la.acknowledged_at) == ("acknowledged", T0, acked_at)


async def test_acknowledge_keeps_delivered_at_and_is_not_repeated(enrolled: SqlStore) -> None:
    delivered_at = T0 + timedelta(minutes=1)
    acked_at = T0 + timedelta(minutes=2, microseconds=1)
    async with enrolled.transaction() as tx:
        await tx.messages.add(message("m-1"), [LA, POLICE])
        await tx.messages.mark_delivered("m-1", LA, delivered_at)

    async with enrolled.transaction() as tx:
        assert await tx.messages.acknowledge("m-1", LA, acked_at, '{"ack":"la"}')
        # Acknowledged without a recorded delivery: delivered_at falls back to the ack time.
        assert await tx.messages.acknowledge("m-1", POLICE, acked_at, '{"ack":"police"}')

    async with enrolled.transaction() as tx:
        # The first answer stands: neither a repeat nor a rejection changes it.
        again = T0 + timedelta(days=1)
        assert not await tx.messages.acknowledge("m-1", LA, again, '{"ack":"again"}')
        assert not await tx.messages.acknowledge(
            "m-1", LA, again, '{"rejection":1}', state="rejected"
        )

    async with enrolled.read() as view:
        la = await view.messages.delivery("m-1", LA)
        police = await view.messages.delivery("m-1", POLICE)
    assert la is not None
    assert police is not None
    assert la.state == "acknowledged"
    assert la.delivered_at == delivered_at
    assert la.acknowledged_at == acked_at
    assert la.ack_json == '{"ack":"la"}'
    assert_utc(la.acknowledged_at)
    assert police.state == "acknowledged"
    assert police.delivered_at == acked_at
    assert police.acknowledged_at == acked_at
    assert police.ack_json == '{"ack":"police"}'


async def test_readers_of_payload_are_senders_and_recipients(enrolled: SqlStore) -> None:
    other = "c" * 64
    async with enrolled.transaction() as tx:
        await tx.messages.add(message("m-1"), [LA])
        await tx.messages.add(message("m-2", sender=POLICE), [SENDER])
        await tx.messages.add(message("m-3", payload_sha256=other), [STRANGER])

    async with enrolled.read() as view:
        readers = await view.messages.readers_of_payload(PAYLOAD_SHA256)
        others = await view.messages.readers_of_payload(other)
        nobody = await view.messages.readers_of_payload("d" * 64)

    assert readers == frozenset({SENDER, LA, POLICE})
    assert others == frozenset({SENDER, STRANGER})
    assert nobody == frozenset()


# --- transactions ------------------------------------------------------------------------


class _Abort(Exception):
    pass


async def test_failed_transaction_writes_nothing(enrolled: SqlStore) -> None:
    async def write_then_fail() -> None:
        async with enrolled.transaction() as tx:
            await tx.messages.add(message("m-1"), [LA, POLICE])
            await tx.nonces.remember(SENDER, "n-1", T0)
            assert await tx.messages.get("m-1") is not None
            raise _Abort

    with pytest.raises(_Abort):
        await write_then_fail()

    async with enrolled.read() as view:
        assert await view.messages.get("m-1") is None
        assert await view.messages.deliveries("m-1") == []
        assert await view.messages.inbox(LA, after=0, limit=10) == []
    async with enrolled.transaction() as tx:
        # The nonce was rolled back too, so it is new again.
        assert await tx.nonces.remember(SENDER, "n-1", T0) is True


async def test_duplicate_message_id_is_refused_and_original_kept(enrolled: SqlStore) -> None:
    original = message("m-1")
    async with enrolled.transaction() as tx:
        await tx.messages.add(original, [LA])

    with pytest.raises(IntegrityError):
        async with enrolled.transaction() as tx:
            await tx.messages.add(replace(original, kind="other", sender=POLICE), [STRANGER])

    async with enrolled.read() as view:
        assert await view.messages.get("m-1") == original
        assert [d.recipient for d in await view.messages.deliveries("m-1")] == [LA]
        assert await view.messages.inbox(STRANGER, after=0, limit=10) == []

    # The store is still usable after the failed transaction.
    async with enrolled.transaction() as tx:
        await tx.messages.add(message("m-2"), [STRANGER])
    async with enrolled.read() as view:
        assert [r.message_id for r in await view.messages.inbox(STRANGER, after=0, limit=10)] == [
            "m-2"
        ]


async def test_read_rolls_back_anything_written(store: SqlStore) -> None:
    async with store.read() as view:
        await view.nodes.add(node(SENDER))
        await view.nonces.remember(SENDER, "n-1", T0)
        assert await view.nodes.get(SENDER) is not None

    async with store.read() as view:
        assert await view.nodes.get(SENDER) is None
        assert await view.nodes.list_all() == []
    async with store.transaction() as tx:
        assert await tx.nonces.remember(SENDER, "n-1", T0) is True


async def test_concurrent_transactions_all_commit_with_distinct_seqs(enrolled: SqlStore) -> None:
    count = 50

    async def submit(index: int) -> None:
        async with enrolled.transaction() as tx:
            await tx.messages.add(message(f"m-{index:02d}"), [LA])
            # Yield to the loop mid-transaction so the transactions really interleave.
            await asyncio.sleep(0)
            await tx.nonces.remember(SENDER, f"n-{index}", T0)

    await asyncio.gather(*(submit(i) for i in range(count)))

    async with enrolled.read() as view:
        inbox = await view.messages.inbox(LA, after=0, limit=count + 10)
    assert sorted(row.message_id for row in inbox) == [f"m-{i:02d}" for i in range(count)]
    seqs = [row.seq for row in inbox]
    assert len(set(seqs)) == count
    assert seqs == sorted(seqs)


# --- nonces ------------------------------------------------------------------------------


async def test_nonce_remember_detects_replays_per_node(store: SqlStore) -> None:
    expires = T0 + timedelta(minutes=5)
    async with store.transaction() as tx:
        assert await tx.nonces.remember(SENDER, "n-1", expires) is True
        assert await tx.nonces.remember(SENDER, "n-1", expires) is False
    async with store.transaction() as tx:
        assert await tx.nonces.remember(SENDER, "n-1", expires) is False
        assert await tx.nonces.remember(LA, "n-1", expires) is True
        assert await tx.nonces.remember(SENDER, "n-2", expires) is True


async def test_nonce_purge_removes_only_expired(store: SqlStore) -> None:
    now = T0
    async with store.transaction() as tx:
        await tx.nonces.remember(SENDER, "old-1", now - timedelta(seconds=10))
        await tx.nonces.remember(LA, "old-2", now - timedelta(microseconds=1))
        await tx.nonces.remember(SENDER, "edge", now)
        await tx.nonces.remember(SENDER, "fresh", now + timedelta(minutes=5))

    async with store.transaction() as tx:
        assert await tx.nonces.purge_expired(now) == 2
    async with store.transaction() as tx:
        assert await tx.nonces.purge_expired(now) == 0
        # Purged nonces may be remembered again; the rest are still replays.
        assert await tx.nonces.remember(SENDER, "old-1", now + timedelta(minutes=5)) is True
        assert await tx.nonces.remember(LA, "old-2", now + timedelta(minutes=5)) is True
        assert await tx.nonces.remember(SENDER, "edge", now + timedelta(minutes=5)) is False
        assert await tx.nonces.remember(SENDER, "fresh", now + timedelta(minutes=5)) is False


# --- blobs -------------------------------------------------------------------------------


async def test_blob_create_get_and_chunks(enrolled: SqlStore) -> None:
    async with enrolled.transaction() as tx:
        await tx.blobs.create(blob("u-1"))

    async with enrolled.read() as view:
        assert await view.blobs.get("u-1") == blob("u-1")
        assert await view.blobs.get("u-404") is None

    async with enrolled.transaction() as tx:
        await tx.blobs.record_chunk("u-1", 2, 1024)
        await tx.blobs.record_chunk("u-1", 0, 1024)
    async with enrolled.transaction() as tx:
        # Idempotent: a retried chunk upload records nothing new and does not fail.
        await tx.blobs.record_chunk("u-1", 0, 1024)

    async with enrolled.read() as view:
        got = await view.blobs.get("u-1")
    assert got is not None
    assert got.received_chunks == frozenset({0, 2})
    assert got.state == "uploading"
    assert_utc(got.created_at)
    assert got.created_at == T0


async def test_blob_record_chunk_is_idempotent_under_concurrent_retries(
    enrolled: SqlStore,
) -> None:
    # A client retrying a chunk while its first attempt is still in flight: every attempt
    # succeeds and the chunk counts once (on PostgreSQL these are truly concurrent).
    async with enrolled.transaction() as tx:
        await tx.blobs.create(blob("u-1"))

    async def record_same_chunk() -> None:
        async with enrolled.transaction() as tx:
            await tx.blobs.record_chunk("u-1", 1, 1024)
            await asyncio.sleep(0.01)  # hold the transaction open while the others run

    await asyncio.gather(*(record_same_chunk() for _ in range(5)))

    async with enrolled.read() as view:
        got = await view.blobs.get("u-1")
    assert got is not None
    assert got.received_chunks == frozenset({1})


async def test_blob_chunk_for_unknown_upload_is_refused(enrolled: SqlStore) -> None:
    with pytest.raises(IntegrityError):
        async with enrolled.transaction() as tx:
            await tx.blobs.record_chunk("u-404", 0, 1024)


async def test_blob_complete_by_sha256_only_finds_complete(enrolled: SqlStore) -> None:
    sha = "f" * 64
    async with enrolled.transaction() as tx:
        await tx.blobs.create(blob("u-1", sha256=sha, chunk_count=1))
        await tx.blobs.record_chunk("u-1", 0, 1024)

    async with enrolled.read() as view:
        assert await view.blobs.complete_by_sha256(sha) is None

    async with enrolled.transaction() as tx:
        await tx.blobs.mark_complete("u-1", T0 + timedelta(seconds=1))
        await tx.blobs.create(blob("u-2", sha256=sha, chunk_count=1))

    async with enrolled.read() as view:
        found = await view.blobs.complete_by_sha256(sha)
        uploading = await view.blobs.get("u-2")
        other = await view.blobs.complete_by_sha256("0" * 64)
    assert found is not None
    assert (found.upload_id, found.state, found.received_chunks) == ("u-1", "complete", {0})
    assert uploading is not None
    assert uploading.state == "uploading"
    assert other is None


async def test_blob_delete_removes_chunks_too(enrolled: SqlStore) -> None:
    async with enrolled.transaction() as tx:
        await tx.blobs.create(blob("u-1"))
        await tx.blobs.record_chunk("u-1", 0, 1024)
        await tx.blobs.record_chunk("u-1", 1, 1024)
        await tx.blobs.create(blob("u-2"))
        await tx.blobs.record_chunk("u-2", 0, 1024)

    async with enrolled.transaction() as tx:
        await tx.blobs.delete("u-1")

    async with enrolled.read() as view:
        assert await view.blobs.get("u-1") is None
        kept = await view.blobs.get("u-2")
    assert kept is not None
    assert kept.received_chunks == frozenset({0})

    # Re-using the upload id starts from no chunks: none were left behind.
    async with enrolled.transaction() as tx:
        await tx.blobs.create(blob("u-1"))
    async with enrolled.read() as view:
        again = await view.blobs.get("u-1")
    assert again is not None
    assert again.received_chunks == frozenset()


# --- foreign keys (both engines) ---------------------------------------------------------


async def test_delivery_for_unknown_node_is_refused(enrolled: SqlStore) -> None:
    with pytest.raises(IntegrityError):
        async with enrolled.transaction() as tx:
            await tx.messages.add(message("m-1"), [LA, "police.nowhere"])
    async with enrolled.read() as view:
        assert await view.messages.get("m-1") is None


# --- SQLite specifics --------------------------------------------------------------------


async def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    engine, dialect = open_engine(database_url_for_path(path))
    store = SqlStore(engine, dialect)
    try:
        await store.create_schema()
        async with engine.connect() as conn:
            journal_mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
        assert journal_mode == "wal"
        assert foreign_keys == 1

        await enrol(store, SENDER)
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            async with store.transaction() as tx:
                await tx.messages.add(message("m-1"), ["police.nowhere"])
    finally:
        await store.close()

    # WAL is a property of the database file: a plain connection sees it too.
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    plain.close()

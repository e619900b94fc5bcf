"""The retention sweep over the repositories, on SQLite and PostgreSQL (deploy/retention.md).

Messages and blobs are written straight through the repositories, with a retention policy
made for each test, so every reason a payload goes (every acknowledgement, the kind's own
period, a case pack's access expiry) and every way it must not go can be set up exactly;
the HTTP tests (tests/server/test_retention_http.py) run the same sweep behind the API
with the registry's own retention.yaml.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.audit.log import AuditLog
from hub.audit.verify import verify_log
from hub.config import Limits
from hub.crypto import canonical_json, canonical_sha256
from hub.model import rfc3339
from hub.policy.registry import KindRetention, RetentionPolicy, UnsentBlobRetention
from hub.server.blobs import BlobFiles, new_upload_id
from hub.server.retention import PurgeReport, RetentionService
from hub.store import BlobRecord, SqlStore, StoredMessage
from hub.store.tables import metadata
from tests.conftest import (
    AGENCY,
    INSECURE_TEST_HUB_KEYS,
    INSECURE_TEST_NODE_KEYS,
    MutableClock,
)
from tests.server.helpers import HEALTH, LA, POLICE, STRANGER, sign_envelope, unsigned_envelope
from tests.store.test_repositories import node

DAY = timedelta(days=1)
EXPIRY = 3600.0


@dataclass
class _Clocked:
    """What the envelope helpers need of a hub: its clock."""

    clock: MutableClock


def policy(**kinds: tuple[int, bool]) -> RetentionPolicy:
    """A retention policy: kind -> (days, purge_when_acknowledged)."""
    return RetentionPolicy(
        unsent_blobs=UnsentBlobRetention(days=7, local_policy=True, source="test"),
        kinds=[
            KindRetention(
                kind=kind,  # type: ignore[arg-type]
                days=days,
                purge_when_acknowledged=acknowledged,
                local_policy=True,
                source="test",
            )
            for kind, (days, acknowledged) in kinds.items()
        ],
    )


DEFAULT_POLICY = policy(referral=(30, True), note=(10, False), case_pack=(365, False))


class World:
    """A store with the test nodes, a blob folder, a clock and the sweep over them."""

    def __init__(self, store: SqlStore, root: Path, retention: RetentionPolicy) -> None:
        self.store = store
        self.clock = MutableClock()
        self.files = BlobFiles(root / "blobs")
        self.files.ensure()
        self.retention = retention

    def service(self, *, dry_run_only: bool = False) -> RetentionService:
        return RetentionService(
            store=self.store,
            files=self.files,
            policy=self.retention,
            limits=Limits(blob_upload_expiry_seconds=EXPIRY),
            clock=self.clock,
            audit=None if dry_run_only else AuditLog(hub_keys=INSECURE_TEST_HUB_KEYS),
        )

    async def sweep(self, *, dry_run: bool = False) -> PurgeReport:
        return await self.service().sweep(dry_run=dry_run)

    async def message(
        self,
        *,
        kind: str = "referral",
        sender: str = HEALTH,
        recipients: Sequence[str] = (LA, POLICE),
        blob: BlobRecord | None = None,
        **fields: Any,
    ) -> StoredMessage:
        options: dict[str, Any] = {"recipients": list(recipients), **fields}
        if blob is not None:
            options["blob"] = (blob.sha256, blob.size)
        envelope = unsigned_envelope(_Clocked(self.clock), sender=sender, **options)  # type: ignore[arg-type]
        envelope["kind"] = kind
        envelope = sign_envelope(envelope, INSECURE_TEST_NODE_KEYS[sender])
        stored = StoredMessage(
            id=envelope["id"],
            sender=sender,
            kind=kind,
            envelope_json=canonical_json(envelope).decode(),
            envelope_sha256=canonical_sha256(envelope),
            receipt_json="{}",
            received_at=self.clock(),
            payload_sha256=envelope["payload"]["sha256"],
            payload_size=envelope["payload"]["size"],
            transport=envelope["payload"]["transport"],
        )
        async with self.store.transaction() as tx:
            await tx.messages.add(stored, list(recipients))
        self.clock.advance(0.001)  # distinct UUIDv7 order
        return stored

    async def acknowledge(self, message: StoredMessage, *recipients: str) -> None:
        async with self.store.transaction() as tx:
            for recipient in recipients:
                assert await tx.messages.acknowledge(message.id, recipient, self.clock(), "{}")

    async def blob(self, data: bytes, *, owner: str = HEALTH, complete: bool = True) -> BlobRecord:
        """An upload of ``data`` by ``owner``: its row and its file."""
        record = BlobRecord(
            upload_id=new_upload_id(self.clock()),
            owner=owner,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            chunk_size=len(data),
            chunk_count=1,
            state="uploading",
            created_at=self.clock(),
            received_chunks=frozenset(),
        )
        async with self.store.transaction() as tx:
            await tx.blobs.create(record)
            if complete:
                await tx.blobs.mark_complete(record.upload_id, self.clock())
            else:
                await tx.blobs.record_chunk(record.upload_id, 0, len(data))
        path = self.files.complete(record.sha256) if complete else self.files.part(record.upload_id)
        path.write_bytes(data)
        self.clock.advance(0.001)
        return record

    async def get(self, message_id: str) -> StoredMessage:
        async with self.store.read() as view:
            stored = await view.messages.get(message_id)
        assert stored is not None
        return stored

    async def blob_state(self, upload_id: str) -> str | None:
        async with self.store.read() as view:
            record = await view.blobs.get(upload_id)
        return None if record is None else record.state

    async def entries(self) -> list[dict[str, Any]]:
        async with self.store.read() as view:
            size, _ = await view.audit.state_for_update()
            rows = await view.audit.rows(0, size)
        return [json.loads(r.entry_json) for r in rows]

    async def verify_log(self) -> None:
        async with self.store.read() as view:
            size, _ = await view.audit.state_for_update()
            rows = await view.audit.rows(0, size)
            heads = await view.audit.heads()
        result = verify_log(
            rows, heads, state_size=size, hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing
        )
        assert result.ok, result.problem

    async def snapshot(self) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, str]]:
        """Every row of every table, and every file under the blob folder with its hash."""
        tables: dict[str, list[tuple[Any, ...]]] = {}
        # Tests reach under the repositories on purpose.
        async with self.store._engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = await conn.execute(select(table))
                tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
        root = self.files.root
        files = {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
        return tables, files


@pytest.fixture
async def world(store: SqlStore, tmp_path: Path) -> World:
    async with store.transaction() as tx:
        for node_id in (HEALTH, LA, POLICE, STRANGER):
            await tx.nodes.add(node(node_id))
    assert set(AGENCY) == {HEALTH, LA, POLICE, STRANGER}
    return World(store, tmp_path, DEFAULT_POLICY)


def lines(report: PurgeReport) -> set[tuple[str, str | None, str, int, int]]:
    return {(ln.what, ln.kind, ln.reason, ln.count, ln.bytes) for ln in report.lines}


# -- why a payload goes -------------------------------------------------------------------


async def test_a_payload_goes_after_every_recipient_acknowledged_not_after_some(
    world: World,
) -> None:
    referral = await world.message()
    await world.acknowledge(referral, LA)
    assert (await world.sweep()).lines == ()
    assert (await world.get(referral.id)).payload_purged_at is None

    await world.acknowledge(referral, POLICE)
    report = await world.sweep()
    assert lines(report) == {("payload", "referral", "ACKNOWLEDGED", 1, referral.payload_size)}
    purged = await world.get(referral.id)
    assert purged.purge_reason == "ACKNOWLEDGED"
    assert "inline" not in json.loads(purged.envelope_json)["payload"]
    assert "inline" in json.loads(referral.envelope_json)["payload"]


async def test_a_rejection_is_not_an_acknowledgement(world: World) -> None:
    referral = await world.message()
    await world.acknowledge(referral, LA)
    async with world.store.transaction() as tx:
        await tx.messages.acknowledge(referral.id, POLICE, world.clock(), "{}", state="rejected")
    assert (await world.sweep()).lines == ()


async def test_a_kind_kept_after_acknowledgement_waits_for_its_period(world: World) -> None:
    note = await world.message(kind="note")
    await world.acknowledge(note, LA, POLICE)
    assert (await world.sweep()).lines == ()


async def test_each_kind_goes_when_its_own_retention_period_ends(world: World) -> None:
    referral = await world.message()
    note = await world.message(kind="note")
    world.clock.advance(10 * DAY.total_seconds() - 1)
    assert (await world.sweep()).lines == ()

    world.clock.advance(1)
    report = await world.sweep()
    assert lines(report) == {("payload", "note", "RETENTION_PERIOD", 1, note.payload_size)}
    assert (await world.get(referral.id)).payload_purged_at is None

    world.clock.advance(20 * DAY.total_seconds())
    report = await world.sweep()
    assert lines(report) == {("payload", "referral", "RETENTION_PERIOD", 1, referral.payload_size)}
    assert (await world.get(note.id)).purge_reason == "RETENTION_PERIOD"
    await world.verify_log()


async def test_a_case_pack_goes_when_its_access_expires(world: World) -> None:
    expires = world.clock() + DAY
    pack = await world.message(
        kind="case_pack", case_ref="case-ret-0001", access_expires_at=rfc3339(expires)
    )
    open_ended = await world.message(kind="case_pack", case_ref="case-ret-0001")
    assert (await world.sweep()).lines == ()
    world.clock.advance(DAY.total_seconds())
    report = await world.sweep()
    assert lines(report) == {("payload", "case_pack", "ACCESS_EXPIRED", 1, pack.payload_size)}
    assert (await world.get(open_ended.id)).payload_purged_at is None
    (entry,) = [e for e in await world.entries() if e["action"] == "purged"]
    assert (entry["message_id"], entry["case_ref"], entry["outcome"]) == (
        pack.id,
        "case-ret-0001",
        "ACCESS_EXPIRED",
    )


# -- blobs --------------------------------------------------------------------------------


async def test_a_blob_shared_by_two_messages_goes_with_the_last_of_them(world: World) -> None:
    data = b"shared ciphertext" * 10
    blob = await world.blob(data)
    first = await world.message(blob=blob)
    second = await world.message(blob=blob)
    await world.acknowledge(first, LA, POLICE)
    report = await world.sweep()
    assert lines(report) == {("payload", "referral", "ACKNOWLEDGED", 1, len(data))}
    assert await world.blob_state(blob.upload_id) == "complete"
    assert world.files.complete(blob.sha256).read_bytes() == data

    await world.acknowledge(second, LA, POLICE)
    report = await world.sweep()
    assert lines(report) == {
        ("payload", "referral", "ACKNOWLEDGED", 1, len(data)),
        ("blob", "referral", "ACKNOWLEDGED", 1, len(data)),
    }
    assert await world.blob_state(blob.upload_id) == "purged"
    assert not world.files.complete(blob.sha256).exists()
    # The quota no longer counts it.
    async with world.store.read() as view:
        usage = await view.blobs.quota_usage(HEALTH, live_after=world.clock() - DAY)
    assert usage.total_bytes == 0


async def test_another_nodes_upload_of_the_same_bytes_keeps_the_file(world: World) -> None:
    data = b"the same bytes, uploaded twice"
    mine = await world.blob(data)
    theirs = await world.blob(data, owner=POLICE)
    message = await world.message(blob=mine)
    await world.acknowledge(message, LA, POLICE)
    await world.sweep()
    assert await world.blob_state(mine.upload_id) == "purged"
    assert await world.blob_state(theirs.upload_id) == "complete"
    assert world.files.complete(data and theirs.sha256).read_bytes() == data


async def test_an_unsent_blob_goes_after_its_period_and_a_sent_one_stays(world: World) -> None:
    unsent = await world.blob(b"never sent")
    sent = await world.blob(b"sent, not yet acknowledged")
    await world.message(blob=sent)
    world.clock.advance(7 * DAY.total_seconds() - 1)
    assert (await world.sweep()).lines == ()

    world.clock.advance(1)
    report = await world.sweep()
    assert lines(report) == {("blob", None, "UNSENT", 1, unsent.size)}
    assert report.log_entries == 0  # never sent: nothing to log about anyone
    assert await world.blob_state(unsent.upload_id) == "purged"
    assert not world.files.complete(unsent.sha256).exists()
    assert await world.blob_state(sent.upload_id) == "complete"
    assert world.files.complete(sent.sha256).exists()


async def test_expired_uploads_are_deleted_with_their_files_and_others_kept(
    world: World,
) -> None:
    old = await world.blob(b"x" * 300, complete=False)
    world.clock.advance(EXPIRY - 1)
    fresh = await world.blob(b"y" * 200, complete=False)
    world.clock.advance(1)
    report = await world.sweep()
    assert lines(report) == {("upload", None, "UPLOAD_EXPIRED", 1, 300)}
    assert await world.blob_state(old.upload_id) is None
    assert not world.files.part(old.upload_id).exists()
    async with world.store.read() as view:
        gone = await view.blobs.get(old.upload_id)
        kept = await view.blobs.get(fresh.upload_id)
    assert gone is None
    assert kept is not None
    assert kept.received_chunks == frozenset({0})
    assert world.files.part(fresh.upload_id).exists()


async def test_leftover_files_are_removed_and_other_files_left(world: World) -> None:
    live = await world.blob(b"a live upload", complete=False)
    stored = await world.blob(b"a stored blob")
    orphan_part = world.files.part(new_upload_id(world.clock()))
    orphan_part.write_bytes(b"part of nothing")
    orphan_blob = world.files.complete("f" * 64)
    orphan_blob.write_bytes(b"blob of nothing!")
    stranger = world.files.root / "complete" / "README"
    stranger.write_text("not ours")

    report = await world.sweep()
    assert lines(report) == {("file", None, "LEFTOVER", 2, 15 + 16)}
    assert not orphan_part.exists()
    assert not orphan_blob.exists()
    assert stranger.exists()
    assert world.files.part(live.upload_id).exists()
    assert world.files.complete(stored.sha256).exists()


# -- a dry run, the log, two sweeps at once -----------------------------------------------


async def _everything_due(world: World) -> None:
    await world.blob(b"u" * 64, complete=False)
    inline = await world.message()
    blob = await world.blob(b"b" * 128)
    carried = await world.message(blob=blob)
    await world.message(kind="note")
    await world.blob(b"never sent at all")
    await world.acknowledge(inline, LA, POLICE)
    await world.acknowledge(carried, LA, POLICE)
    world.files.complete("e" * 64).write_bytes(b"left over")
    world.clock.advance(10 * DAY.total_seconds())


async def test_a_dry_run_changes_nothing_and_foresees_the_purge(world: World) -> None:
    await _everything_due(world)
    before = await world.snapshot()

    # Without the hub's key: a dry run appends nothing it would have to sign.
    dry = await world.service(dry_run_only=True).sweep(dry_run=True)
    assert await world.snapshot() == before
    assert dry.dry_run
    assert {ln.what for ln in dry.lines} == {"upload", "payload", "blob", "file"}

    real = await world.sweep()
    assert real.lines == dry.lines
    assert real.log_entries == dry.log_entries == 3
    assert await world.snapshot() != before
    assert (await world.sweep(dry_run=True)).lines == ()


async def test_a_purge_without_the_audit_log_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="audit log"):
        await world.service(dry_run_only=True).sweep()


async def test_the_log_verifies_after_purges_and_names_each_one(world: World) -> None:
    await _everything_due(world)
    await world.sweep()
    await world.verify_log()
    purges = [e for e in await world.entries() if e["action"] == "purged"]
    assert sorted((e["kind"], e["outcome"]) for e in purges) == [
        ("note", "RETENTION_PERIOD"),
        ("referral", "ACKNOWLEDGED"),
        ("referral", "ACKNOWLEDGED"),
    ]
    for entry in purges:
        assert entry["actor"] == HEALTH
        stored = await world.get(entry["message_id"])
        assert entry["envelope_sha256"] == stored.envelope_sha256
        assert stored.payload_purged_at is not None


async def test_two_sweeps_at_once_purge_and_log_each_payload_once(world: World) -> None:
    messages = [await world.message() for _ in range(2 * 100 + 7)]  # more than two pages
    for message in messages:
        await world.acknowledge(message, LA, POLICE)
    reports = await asyncio.gather(world.service().sweep(), world.service().sweep())

    assert sum(r.log_entries for r in reports) == len(messages)
    purges = [e["message_id"] for e in await world.entries() if e["action"] == "purged"]
    assert sorted(purges) == sorted(m.id for m in messages)
    await world.verify_log()


async def test_the_quota_is_held_while_an_announcement_decides(world: World) -> None:
    """Two announcements at once: the second reads the quota only after the first has
    committed (a row lock on the node on PostgreSQL; one writer on SQLite)."""
    quota = 1000

    async def announce(size: int) -> bool:
        async with world.store.transaction() as tx:
            usage = await tx.blobs.quota_usage(HEALTH, live_after=world.clock() - DAY, lock=True)
            await asyncio.sleep(0.05)  # the other announcement runs meanwhile
            if usage.total_bytes + size > quota:
                return False
            await tx.blobs.create(
                BlobRecord(
                    upload_id=new_upload_id(world.clock()),
                    owner=HEALTH,
                    sha256=hashlib.sha256(str(size).encode()).hexdigest(),
                    size=size,
                    chunk_size=size,
                    chunk_count=1,
                    state="uploading",
                    created_at=world.clock(),
                    received_chunks=frozenset(),
                )
            )
            return True

    assert sorted(await asyncio.gather(announce(600), announce(700))) == [False, True]

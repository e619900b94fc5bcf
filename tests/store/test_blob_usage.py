"""BlobRepository.usage: the aggregates /metrics reports, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from hub.store import BlobUsage, SqlStore
from tests.store.test_repositories import SENDER, T0, blob, enrol


async def test_usage_counts_uploads_and_bytes_by_state(store: SqlStore) -> None:
    await enrol(store, SENDER)
    async with store.read() as view:
        assert list(await view.blobs.usage()) == []

    async with store.transaction() as tx:
        await tx.blobs.create(blob("u-1", sha256="1" * 64, chunk_count=3))  # 3072 bytes
        await tx.blobs.create(blob("u-2", sha256="2" * 64, chunk_count=2))  # 2048 bytes
        await tx.blobs.create(blob("u-3", sha256="3" * 64, chunk_count=4))  # none received
        for index in range(3):
            await tx.blobs.record_chunk("u-1", index, 1024)
        await tx.blobs.record_chunk("u-2", 0, 1024)
        await tx.blobs.mark_complete("u-1", T0 + timedelta(seconds=1))

    async with store.read() as view:
        usage = sorted(await view.blobs.usage(), key=lambda u: u.state)
    assert usage == [
        BlobUsage(state="complete", uploads=1, declared_bytes=3072, received_bytes=3072),
        BlobUsage(state="uploading", uploads=2, declared_bytes=2048 + 4096, received_bytes=1024),
    ]

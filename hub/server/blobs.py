"""Large ciphertext: chunked, resumable uploads streamed to disk; ranged downloads.

The hub never holds more than one network read of a blob in memory. Each chunk is written
at its offset in a sparse part-file and recorded only once complete and authenticated;
when every chunk is in, the whole file is hashed (in a worker thread) and must match the
declared sha256 before it becomes a blob a message can reference.

Each node has a quota (deploy/retention.md): the declared sizes of its unfinished uploads
and the sizes of its completed blobs together stay within ``limits.blob_quota_bytes``, and
it has at most ``limits.max_pending_uploads`` unfinished uploads (BLOB-01, BLOB-02). The
check and the new upload's row share one transaction that holds the node's quota, so two
announcements cannot both slip under it; a refused one leaves no row and no file. An
upload not finished ``limits.blob_upload_expiry_seconds`` after its announcement is
refused from then on (BLOB-03) and deleted by the retention sweep
(:mod:`hub.server.retention`). An upload id begins with the hub's clock at its
announcement in milliseconds (twelve hex digits, then eighty random bits), so a chunk
for an upload the sweep has already deleted still gets the 410 that says it expired.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.config import Limits
from hub.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable, UploadExpired
from hub.model import BlobUpload, BlobUploadRequest, Violation, rfc3339
from hub.server.exchange import Clock
from hub.server.purged import purged_error
from hub.store import BlobRecord, NodeRecord, QuotaUsage, Store

__all__ = ["BlobFiles", "BlobService", "new_upload_id", "upload_announced_at"]

log = logging.getLogger("hub.blobs")
_HASH_READ = 1024 * 1024
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobFiles:
    """Paths under the configured blob root only; names are validated hex, never user text."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._uploads = self.root / "uploads"
        self._complete = self.root / "complete"

    def ensure(self) -> None:
        for folder in (self._uploads, self._complete):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def part(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise ValueError("upload ids are 32 lower-case hex digits")
        return self._uploads / f"{upload_id}.part"

    def complete(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError("blob names are 64 lower-case hex digits")
        return self._complete / sha256


def new_upload_id(now: datetime) -> str:
    """Twelve hex digits of ``now`` in milliseconds since the epoch, then 80 random bits."""
    return f"{int(now.timestamp() * 1000):012x}{secrets.token_hex(10)}"


def upload_announced_at(upload_id: str) -> datetime | None:
    """When the upload ``upload_id`` was announced, read from the id (see the top)."""
    try:
        return datetime.fromtimestamp(int(upload_id[:12], 16) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_READ):
            digest.update(block)
    return digest.hexdigest()


def _create_sparse(path: Path, size: int) -> None:
    """A part-file of the final size; chunks land at their offsets, holes cost nothing."""
    with path.open("xb") as handle:
        handle.truncate(size)


def _upload_view(blob: BlobRecord) -> BlobUpload:
    return BlobUpload(
        upload_id=blob.upload_id,
        sha256=blob.sha256,
        size=blob.size,
        chunk_size=blob.chunk_size,
        chunk_count=blob.chunk_count,
        received_chunks=tuple(sorted(blob.received_chunks)),
        complete=blob.state == "complete",
    )


class _ChunkWriter:
    """Writes one chunk at its offset; sync file I/O of page-cache-sized pieces."""

    def __init__(self, path: Path, offset: int) -> None:
        self._fd = os.open(path, os.O_WRONLY)
        self._offset = offset

    def write(self, data: bytes) -> None:
        written = os.pwrite(self._fd, data, self._offset)
        self._offset += written
        if written != len(data):  # pragma: no cover - disk full
            raise OSError("short write to blob part-file")

    def close(self) -> None:
        os.close(self._fd)


class BlobService:
    def __init__(self, *, store: Store, files: BlobFiles, clock: Clock, limits: Limits) -> None:
        self._store = store
        self._files = files
        self._clock = clock
        self._limits = limits
        self._finishing = asyncio.Lock()

    @property
    def _expiry(self) -> timedelta:
        return timedelta(seconds=self._limits.blob_upload_expiry_seconds)

    async def announce(self, node: NodeRecord, request: BlobUploadRequest) -> BlobUpload:
        """Start (or find) an upload for a ciphertext of known hash and size."""
        if request.size > self._limits.blob_max_bytes:
            raise PayloadTooLarge(
                f"Blobs are at most {self._limits.blob_max_bytes} bytes.",
                debug={"size": request.size},
            )
        async with self._store.read() as view:
            existing = await view.blobs.complete_by_sha256(request.sha256, owner=node.id)
        if existing is not None and existing.owner == node.id:
            return _upload_view(existing)
        chunk = self._limits.blob_chunk_bytes
        now = self._clock()
        blob = BlobRecord(
            upload_id=new_upload_id(now),
            owner=node.id,
            sha256=request.sha256,
            size=request.size,
            chunk_size=chunk,
            chunk_count=-(-request.size // chunk),
            state="uploading",
            created_at=now,
            received_chunks=frozenset(),
        )
        # The row first, under the node's quota; then its file. A refused announcement
        # writes neither; the sweep never takes a new row's file for a leftover.
        async with self._store.transaction() as tx:
            usage = await tx.blobs.quota_usage(node.id, live_after=now - self._expiry, lock=True)
            self._check_quota(node, usage, request.size)
            await tx.blobs.create(blob)
        part = self._files.part(blob.upload_id)
        try:
            await asyncio.to_thread(_create_sparse, part, blob.size)
        except BaseException:
            async with self._store.transaction() as tx:
                await tx.blobs.delete(blob.upload_id)
            part.unlink(missing_ok=True)
            raise
        return _upload_view(blob)

    def _check_quota(self, node: NodeRecord, usage: QuotaUsage, size: int) -> None:
        limits = self._limits
        violations: list[Violation] = []
        if usage.pending_uploads >= limits.max_pending_uploads:
            violations.append(
                Violation(
                    rule="BLOB-02",
                    path="$",
                    message=f"this node has {usage.pending_uploads} unfinished uploads, the "
                    f"most it may have at once (limits.max_pending_uploads = "
                    f"{limits.max_pending_uploads}): finish one, or wait until one expires",
                )
            )
        if usage.total_bytes + size > limits.blob_quota_bytes:
            violations.append(
                Violation(
                    rule="BLOB-01",
                    path="$.size",
                    message=f"this node holds {usage.total_bytes} bytes in unfinished and "
                    f"stored blobs; {size} more would pass its quota of "
                    f"{limits.blob_quota_bytes} bytes (limits.blob_quota_bytes): finish or "
                    "let expire its unfinished uploads, or wait until payloads its "
                    "recipients have acknowledged are purged",
                )
            )
        if violations:
            log.info("blob announcement by %s refused: over its quota", node.id)
            raise Unprocessable(
                "This upload would take the node past its blob limits; nothing was stored.",
                slug="blob-quota-exceeded",
                title="Over the node's blob quota",
                violations=violations,
            )

    def _expired(self, upload_id: str, expires_at: datetime) -> UploadExpired:
        return UploadExpired(
            f"This upload expired at {rfc3339(expires_at)}: an upload must be finished within "
            f"{self._limits.blob_upload_expiry_seconds:g} seconds of its announcement "
            "(limits.blob_upload_expiry_seconds), and what was sent of it is deleted. Announce "
            "the blob again and send every chunk.",
            violations=[
                Violation(
                    rule="BLOB-03",
                    path="$",
                    message="announce the blob again (POST /v1/blobs) and resend its chunks",
                )
            ],
            debug={"upload_id": upload_id},
        )

    async def upload_state(self, node: NodeRecord, upload_id: str) -> BlobRecord:
        """The node's unfinished or finished upload; 410 once it has expired.

        An expired id is answered 410 whoever asks and whether or not its row is still
        there, so the answer does not say whether another node's upload exists.
        """
        now = self._clock()
        async with self._store.read() as view:
            blob = await view.blobs.get(upload_id, owner=node.id)
        if blob is None:  # another node's upload is not found as a missing one is
            announced = upload_announced_at(upload_id)
            if announced is not None and announced + self._expiry <= now:
                raise self._expired(upload_id, announced + self._expiry)
            raise NotFound(upload_id=upload_id, node=node.id)
        if blob.state == "uploading" and blob.created_at + self._expiry <= now:
            raise self._expired(upload_id, blob.created_at + self._expiry)
        if blob.state == "purged" and blob.purged_at is not None:
            raise purged_error("this upload's blob", blob.purged_at, blob.purge_reason or "")
        return blob

    def expected_chunk_length(self, blob: BlobRecord, index: int) -> int:
        if not 0 <= index < blob.chunk_count:
            raise BadRequest(
                f"Chunk index {index} is out of range: this upload has chunks "
                f"0..{blob.chunk_count - 1}."
            )
        if index == blob.chunk_count - 1:
            return blob.size - blob.chunk_size * index
        return blob.chunk_size

    async def write_chunk(self, blob: BlobRecord, index: int, body: AsyncIterator[bytes]) -> bytes:
        """Stream one chunk to its offset; return its sha256 (for Content-Digest).

        The chunk is not recorded here: the caller records it only after checking the
        request's Content-Digest, so a corrupted or forged chunk never counts.
        """
        expected = self.expected_chunk_length(blob, index)
        if blob.state == "complete":
            raise BadRequest("This upload is already complete.")
        digest = hashlib.sha256()
        received = 0
        # A recorded chunk was authenticated when it was written. A resend (a client that
        # never saw the answer) is read and checked but not written: bytes damaged on the
        # way, refused only once read, must not overwrite a chunk that already counts.
        writer = (
            None
            if index in blob.received_chunks
            else _ChunkWriter(self._files.part(blob.upload_id), index * blob.chunk_size)
        )
        try:
            async for piece in body:
                received += len(piece)
                if received > expected:
                    raise PayloadTooLarge(
                        f"Chunk {index} must be exactly {expected} bytes.",
                        debug={"upload_id": blob.upload_id},
                    )
                digest.update(piece)
                if writer is not None:
                    writer.write(piece)
        finally:
            if writer is not None:
                writer.close()
        if received != expected:
            raise BadRequest(f"Chunk {index} must be exactly {expected} bytes; got {received}.")
        return digest.digest()

    async def record_chunk(self, blob: BlobRecord, index: int) -> BlobUpload:
        """Count an authenticated chunk; finish the upload when it was the last one."""
        async with self._store.transaction() as tx:
            # Locked: the expiry sweep deletes an upload only between chunks.
            locked = await tx.blobs.get(blob.upload_id, for_update=True)
            if locked is None or (
                locked.state == "uploading" and locked.created_at + self._expiry <= self._clock()
            ):
                raise self._expired(blob.upload_id, blob.created_at + self._expiry)
            await tx.blobs.record_chunk(
                blob.upload_id, index, self.expected_chunk_length(blob, index)
            )
            current = await tx.blobs.get(blob.upload_id)
        assert current is not None
        if len(current.received_chunks) < current.chunk_count or current.state == "complete":
            return _upload_view(current)
        return await self._finish(current)

    async def _finish(self, blob: BlobRecord) -> BlobUpload:
        # Two last chunks arriving together must not both hash and move the part-file.
        async with self._finishing:
            async with self._store.read() as view:
                current = await view.blobs.get(blob.upload_id)
            if current is None:
                raise NotFound(upload_id=blob.upload_id)
            if current.state == "complete":
                return _upload_view(current)
            return await self._verify_and_complete(current)

    async def _verify_and_complete(self, blob: BlobRecord) -> BlobUpload:
        part = self._files.part(blob.upload_id)
        actual = await asyncio.to_thread(_sha256_file, part)
        if actual != blob.sha256:
            async with self._store.transaction() as tx:
                await tx.blobs.delete(blob.upload_id)
            part.unlink(missing_ok=True)
            log.info("blob upload %s discarded: hash mismatch", blob.upload_id)
            raise Unprocessable(
                "The uploaded bytes do not match the announced sha256; the upload was "
                "discarded. Announce it again and resend every chunk.",
                slug="blob-hash-mismatch",
                title="The upload was discarded",
            )
        try:
            os.replace(part, self._files.complete(blob.sha256))
        except FileNotFoundError:
            # Expired and swept while it was being hashed.
            raise self._expired(blob.upload_id, blob.created_at + self._expiry) from None
        async with self._store.transaction() as tx:
            await tx.blobs.mark_complete(blob.upload_id, self._clock())
            done = await tx.blobs.get(blob.upload_id)
        assert done is not None
        log.info("blob %s complete (%d bytes)", blob.sha256, blob.size)
        return _upload_view(done)

    async def readable_path(self, node: NodeRecord, sha256: str) -> Path:
        """The blob's file, if this node uploaded it or reads a message that carries it.

        One query decides, whether the blob is another's or does not exist at all; a
        purged blob is answered 410 with when and why, to the same nodes only (a second
        query, made alike for every blob this node may not read).
        """
        async with self._store.read() as view:
            readable = await view.blobs.readable_by(sha256, node.id)
            purged = None if readable else await view.blobs.purged_readable_by(sha256, node.id)
        if purged is not None and purged.purged_at is not None:
            raise purged_error(
                "this blob", purged.purged_at, purged.purge_reason or "", sha256=sha256
            )
        if not readable:
            raise NotFound(sha256=sha256, node=node.id)
        return self._files.complete(sha256)

"""Retention at the hub: unfinished uploads expire and ciphertext is purged when it is due.

Why. The hub relays ciphertext it cannot read. Once every recipient has it, or its kind's
retention period has ended, holding it serves nobody, and personal data is "not kept for
longer than is necessary" (SEED 004 Appendix 4). Until now nothing was ever deleted: one
fuzzing run left 516 unfinished uploads of up to 16 GiB each.

What. One sweep, run every ``limits.retention_sweep_seconds`` by ``hub serve`` and on
demand by ``hub admin purge`` (deploy/retention.md), in four steps:

1. **Uploads never finished** within ``limits.blob_upload_expiry_seconds`` of their
   announcement: their chunk rows and row are deleted, then their part-file.
2. **Payloads due**, by the registry's ``retention.yaml``: ``ACKNOWLEDGED`` (a kind with
   ``purge_when_acknowledged`` whose every recipient acknowledged it; a rejection is not
   an acknowledgement), ``ACCESS_EXPIRED`` (a case pack past its access expiry) and
   ``RETENTION_PERIOD`` (received more than its kind's ``days`` ago). The stored envelope
   keeps its metadata without ``payload.inline``; the message row says when and why. A
   blob's rows turn ``purged`` once no message from its uploader still holds it, and its
   file goes once no upload of that hash is left. Each purged payload appends a
   ``purged`` entry to the transparency log (metadata only; ``outcome`` is the reason) in
   the same transaction as the purge.
3. **Unsent blobs**: a completed upload that no message from its uploader holds, completed
   more than ``retention.unsent_blobs.days`` ago (no log entry: it was never sent).
4. **Leftover files**: a part-file or blob file whose rows are gone (a crash between a
   commit and its unlink) is removed.

Costs. Candidates are read in pages of :data:`PAGE` in id order, one write transaction per
page; the log's lock is taken last in each, after the blob rows, in the order a submission
takes them. Files are unlinked only after their rows' transaction has committed.

What a caller may rely on. A dry run only reads, and reports the lines the same sweep
would produce at that moment. Two sweeps at once (two hub processes) purge and log each
payload once: every change is conditional on the row still being due.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from hub.audit.log import AuditLog
from hub.config import Limits
from hub.crypto import canonical_json
from hub.model import AuditEntry, rfc3339
from hub.policy.registry import RetentionPolicy
from hub.server.blobs import BlobFiles
from hub.server.exchange import Clock, stored_envelope
from hub.store import Store, StoredMessage, UnitOfWork

__all__ = ["PAGE", "PurgeLine", "PurgeReport", "RetentionService"]

log = logging.getLogger("hub.retention")
PAGE = 100
What = Literal["upload", "payload", "blob", "file"]
_PART = re.compile(r"^([0-9a-f]{32})\.part$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Candidates = Callable[[UnitOfWork, str], Awaitable[Sequence[StoredMessage]]]


@dataclass(frozen=True, slots=True)
class PurgeLine:
    """How many of one thing went (or would go) for one reason, and their bytes."""

    what: What
    kind: str | None
    reason: str
    count: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "kind": self.kind,
            "reason": self.reason,
            "count": self.count,
            "bytes": self.bytes,
        }


@dataclass(frozen=True, slots=True)
class PurgeReport:
    at: datetime
    dry_run: bool
    lines: tuple[PurgeLine, ...]
    log_entries: int  # ``purged`` entries appended (or, in a dry run, that would be)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": rfc3339(self.at),
            "dry_run": self.dry_run,
            "lines": [line.to_json() for line in self.lines],
            "log_entries": self.log_entries,
        }


@dataclass
class _Tally:
    counts: dict[tuple[What, str | None, str], list[int]] = field(default_factory=dict)
    log_entries: int = 0

    def add(self, what: What, kind: str | None, reason: str, size: int, count: int = 1) -> None:
        entry = self.counts.setdefault((what, kind, reason), [0, 0])
        entry[0] += count
        entry[1] += size

    def lines(self) -> tuple[PurgeLine, ...]:
        order = {"upload": 0, "payload": 1, "blob": 2, "file": 3}
        return tuple(
            PurgeLine(what, kind, reason, count, size)
            for (what, kind, reason), (count, size) in sorted(
                self.counts.items(),
                key=lambda item: (order[item[0][0]], item[0][1] or "", item[0][2]),
            )
        )


def _metadata_only(message: StoredMessage) -> str:
    """The stored envelope without its inline ciphertext (a blob's envelope holds none)."""
    if message.transport != "inline":
        return message.envelope_json
    document = json.loads(message.envelope_json)
    document["payload"].pop("inline", None)
    return canonical_json(document).decode("utf-8")


def _purge_entry(message: StoredMessage, at: datetime, reason: str) -> AuditEntry:
    """The log's record of a purge: which message, about whom, when and why; no content.

    ``actor`` is the message's sender, the node the entry concerns (as a ``key_change``
    entry names the node changed): the hub performs every purge, and the sender finds the
    entry among its own.
    """
    envelope = json.loads(message.envelope_json)
    return AuditEntry.model_validate(
        {
            "at": at,
            "action": "purged",
            "actor": message.sender,
            "kind": message.kind,
            "message_id": message.id,
            "envelope_sha256": message.envelope_sha256,
            "recipients": envelope.get("recipients", []),
            "subject_ref": envelope.get("subject_ref"),
            "case_ref": envelope.get("case_ref"),
            "outcome": reason,
        },
        strict=False,
    )


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class RetentionService:
    def __init__(
        self,
        *,
        store: Store,
        files: BlobFiles,
        policy: RetentionPolicy,
        limits: Limits,
        clock: Clock,
        audit: AuditLog | None,
    ) -> None:
        self._store = store
        self._files = files
        self._policy = policy
        self._limits = limits
        self._clock = clock
        self._audit = audit
        # One sweep at a time in a process (the background task and a manual run).
        self._running = asyncio.Lock()

    async def sweep(self, *, dry_run: bool = False) -> PurgeReport:
        """Run the four steps (module docstring); with ``dry_run``, only count."""
        if not dry_run and self._audit is None:
            raise ValueError("a purge appends to the audit log: give the hub's AuditLog")
        async with self._running:
            now = self._clock()
            tally = _Tally()
            await self._expire_uploads(now, tally, dry_run)
            await self._purge_payloads(now, tally, dry_run)
            await self._purge_unsent(now, tally, dry_run)
            await self._remove_leftovers(tally, dry_run)
        report = PurgeReport(
            at=now, dry_run=dry_run, lines=tally.lines(), log_entries=tally.log_entries
        )
        if report.lines and not dry_run:
            log.info(
                "retention sweep: %s",
                ", ".join(
                    f"{line.count} {line.what} {line.kind or ''} {line.reason}"
                    for line in report.lines
                ),
            )
        return report

    # -- 1. uploads never finished ------------------------------------------------------

    async def _expire_uploads(self, now: datetime, tally: _Tally, dry_run: bool) -> None:
        cutoff = now - timedelta(seconds=self._limits.blob_upload_expiry_seconds)
        after = ""
        while True:
            async with self._store.read() as view:
                page = await view.blobs.uploads_created_before(cutoff, after=after, limit=PAGE)
            if not page:
                return
            after = page[-1].upload_id
            if dry_run:
                for upload in page:
                    tally.add("upload", None, "UPLOAD_EXPIRED", upload.size)
                continue
            async with self._store.transaction() as tx:
                deleted = [u for u in page if await tx.blobs.delete_expired(u.upload_id, cutoff)]
            for upload in deleted:
                self._files.part(upload.upload_id).unlink(missing_ok=True)
                tally.add("upload", None, "UPLOAD_EXPIRED", upload.size)

    # -- 2. payloads due ----------------------------------------------------------------

    async def _purge_payloads(self, now: datetime, tally: _Tally, dry_run: bool) -> None:
        run = _PayloadRun(now=now, tally=tally, dry_run=dry_run)
        acknowledged = [e.kind for e in self._policy.kinds if e.purge_when_acknowledged]
        if acknowledged:
            await self._pages(run, "ACKNOWLEDGED", _fully_acknowledged(acknowledged))
        await self._pages(
            run,
            "ACCESS_EXPIRED",
            _unpurged_case_packs,
            keep=lambda message: self._access_expired(message, now),
        )
        for entry in self._policy.kinds:
            before = now - timedelta(days=entry.days)
            await self._pages(run, "RETENTION_PERIOD", _received_before(entry.kind, before))
        if dry_run:
            # A blob goes with the last message from its uploader that still holds it.
            async with self._store.read() as view:
                for (sender, sha256), group in run.carriers.items():
                    if await view.messages.unpurged_blob_carriers(sender, sha256) == len(group):
                        kind, reason, size = group[-1]
                        tally.add("blob", kind, reason, size)

    @staticmethod
    def _access_expired(message: StoredMessage, now: datetime) -> bool:
        expires = stored_envelope(message).access_expires_at
        return expires is not None and expires <= now

    async def _pages(
        self,
        run: _PayloadRun,
        reason: str,
        candidates: Candidates,
        *,
        keep: Callable[[StoredMessage], bool] | None = None,
    ) -> None:
        after = ""
        while True:
            async with self._store.read() as view:
                page = list(await candidates(view, after))
            if not page:
                return
            after = page[-1].id
            due = [m for m in page if m.id not in run.seen and (keep is None or keep(m))]
            if not run.dry_run:
                if due:
                    await self._purge_page(due, reason, run.now, run.tally)
                continue
            for message in due:
                run.seen.add(message.id)
                run.tally.add("payload", message.kind, reason, message.payload_size)
                run.tally.log_entries += 1
                if message.transport == "blob":
                    run.carriers.setdefault((message.sender, message.payload_sha256), []).append(
                        (message.kind, reason, message.payload_size)
                    )

    async def _purge_page(
        self, due: list[StoredMessage], reason: str, now: datetime, tally: _Tally
    ) -> None:
        assert self._audit is not None
        entries: list[AuditEntry] = []
        freed: list[StoredMessage] = []
        async with self._store.transaction() as tx:
            for message in due:
                if not await tx.messages.purge_payload(
                    message.id, envelope_json=_metadata_only(message), at=now, reason=reason
                ):
                    continue  # another sweep purged it first
                entries.append(_purge_entry(message, now, reason))
                if message.transport != "blob":
                    continue
                if await tx.messages.unpurged_blob_carriers(message.sender, message.payload_sha256):
                    continue
                rows = await tx.blobs.complete_rows(message.sender, message.payload_sha256)
                for row in rows:
                    await tx.blobs.purge(row.upload_id, at=now, reason=reason)
                if rows:
                    freed.append(message)
            # The log's lock last, as a submission takes it after the blob's row.
            for entry in entries:
                await self._audit.append(tx, entry)
        purged = {e.message_id for e in entries}
        for message in due:
            if message.id in purged:
                tally.add("payload", message.kind, reason, message.payload_size)
        tally.log_entries += len(entries)
        for message in freed:
            tally.add("blob", message.kind, reason, message.payload_size)
        await self._unlink_blob_files([message.payload_sha256 for message in freed])

    async def _unlink_blob_files(self, sha256s: list[str]) -> None:
        if not sha256s:
            return
        async with self._store.read() as view:
            live = await view.blobs.live_sha256s(sha256s)
        for sha256 in sha256s:
            if sha256 not in live:  # another node's upload of the same bytes keeps the file
                self._files.complete(sha256).unlink(missing_ok=True)

    # -- 3. unsent blobs ----------------------------------------------------------------

    async def _purge_unsent(self, now: datetime, tally: _Tally, dry_run: bool) -> None:
        cutoff = now - timedelta(days=self._policy.unsent_blobs.days)
        after = ""
        while True:
            async with self._store.read() as view:
                page = await view.blobs.unsent_completed_before(cutoff, after=after, limit=PAGE)
            if not page:
                return
            after = page[-1].upload_id
            if dry_run:
                for blob in page:
                    tally.add("blob", None, "UNSENT", blob.size)
                continue
            purged = []
            async with self._store.transaction() as tx:
                for blob in page:
                    # Locked, then checked again: a message sent meanwhile keeps it.
                    rows = await tx.blobs.complete_rows(blob.owner, blob.sha256)
                    if blob.upload_id not in {r.upload_id for r in rows}:
                        continue
                    if await tx.messages.unpurged_blob_carriers(blob.owner, blob.sha256):
                        continue
                    if await tx.blobs.purge(blob.upload_id, at=now, reason="UNSENT"):
                        purged.append(blob)
            for blob in purged:
                tally.add("blob", None, "UNSENT", blob.size)
            await self._unlink_blob_files([b.sha256 for b in purged])

    # -- 4. leftover files --------------------------------------------------------------

    async def _remove_leftovers(self, tally: _Tally, dry_run: bool) -> None:
        uploads = self._files.part("0" * 32).parent
        for batch in _batches(_names(uploads, _PART)):
            async with self._store.read() as view:
                live = await view.blobs.uploading_ids(batch)
            self._remove([self._files.part(n) for n in batch if n not in live], tally, dry_run)
        complete = self._files.complete("0" * 64).parent
        for batch in _batches(_names(complete, _SHA256)):
            async with self._store.read() as view:
                live = await view.blobs.live_sha256s(batch)
            self._remove([self._files.complete(n) for n in batch if n not in live], tally, dry_run)

    @staticmethod
    def _remove(paths: list[Path], tally: _Tally, dry_run: bool) -> None:
        for path in paths:
            tally.add("file", None, "LEFTOVER", _file_size(path))
            if not dry_run:
                path.unlink(missing_ok=True)


@dataclass
class _PayloadRun:
    now: datetime
    tally: _Tally
    dry_run: bool
    # A dry run changes nothing, so a later reason would find the same messages again.
    seen: set[str] = field(default_factory=set)
    # A dry run's blob messages by (uploader, hash): (kind, reason, bytes) of each.
    carriers: dict[tuple[str, str], list[tuple[str, str, int]]] = field(default_factory=dict)


def _fully_acknowledged(kinds: Sequence[str]) -> Candidates:
    def candidates(view: UnitOfWork, after: str) -> Awaitable[Sequence[StoredMessage]]:
        return view.messages.fully_acknowledged(kinds, after=after, limit=PAGE)

    return candidates


def _unpurged_case_packs(view: UnitOfWork, after: str) -> Awaitable[Sequence[StoredMessage]]:
    return view.messages.unpurged_of_kind("case_pack", after=after, limit=PAGE)


def _received_before(kind: str, before: datetime) -> Candidates:
    def candidates(view: UnitOfWork, after: str) -> Awaitable[Sequence[StoredMessage]]:
        return view.messages.received_before(kind, before, after=after, limit=PAGE)

    return candidates


def _names(folder: Path, pattern: re.Pattern[str]) -> Iterator[str]:
    """The hex names in ``folder`` that this module's files have; anything else is left."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None and entry.is_file(follow_symlinks=False):
            yield match.group(match.lastindex or 0)


def _batches(names: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if len(batch) == PAGE:
            yield batch
            batch = []
    if batch:
        yield batch

"""The repository interfaces services depend on (STYLE.md rule 9): small, one per concern."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, TypeVar

from hub.store.records import (
    AuditLeaf,
    AuditRow,
    BlobRecord,
    BlobUsage,
    DeliveryRecord,
    InboxRow,
    NodeKeyRecord,
    NodeRecord,
    QuotaUsage,
    StoredHead,
    StoredMessage,
    WorkflowEvent,
    WorkflowRecord,
)

__all__ = [
    "AuditRepository",
    "BlobRepository",
    "EndStep",
    "MessageRepository",
    "NodeKeyRepository",
    "NodeRepository",
    "NonceRepository",
    "Store",
    "UnitOfWork",
    "WorkflowRepository",
]


class NodeRepository(Protocol):
    async def get(self, node_id: str) -> NodeRecord | None: ...
    async def list_all(self) -> Sequence[NodeRecord]: ...
    async def add(self, node: NodeRecord) -> None: ...
    async def update(self, node: NodeRecord) -> None: ...
    async def get_for_update(self, node_id: str) -> NodeRecord | None:
        """The node, its row locked until the transaction ends (a key change)."""
        ...

    async def signing_key_locked(self, node_id: str) -> bytes | None:
        """The node's current signing key, read under a shared lock, so a key change
        cannot commit between this read and the end of the transaction."""
        ...


class NodeKeyRepository(Protocol):
    async def for_node(self, node_id: str) -> Sequence[NodeKeyRecord]:
        """The node's key pairs, oldest first."""
        ...

    async def all_nodes(self) -> Sequence[NodeKeyRecord]:
        """Every node's key pairs, by node, oldest first."""
        ...

    async def add(self, key: NodeKeyRecord) -> None: ...
    async def update(self, key: NodeKeyRecord) -> None:
        """Rewrite the row of (node_id, signing_key)."""
        ...


class MessageRepository(Protocol):
    async def get(self, message_id: str) -> StoredMessage | None: ...
    async def readable(
        self, message_id: str, node_id: str
    ) -> tuple[StoredMessage, DeliveryRecord | None] | None:
        """The message and ``node_id``'s delivery of it (None for its sender), when that
        node sent it or is a recipient; None otherwise, exactly as for a missing message.

        Every access-checked lookup by id is one statement with the check inside it, so
        that another node's record and a missing one take the same queries and time.
        """
        ...

    async def addressed(
        self, message_id: str, recipient: str
    ) -> tuple[StoredMessage, DeliveryRecord] | None:
        """The message and its delivery to ``recipient``; None unless it is a recipient."""
        ...

    async def sent_by(self, message_id: str, sender: str) -> StoredMessage | None:
        """The message, if ``sender`` sent it; None otherwise, as for a missing one."""
        ...

    async def add(self, message: StoredMessage, recipients: Sequence[str]) -> None: ...
    async def inbox(self, recipient: str, *, after: int, limit: int) -> Sequence[InboxRow]: ...
    async def deliveries(self, message_id: str) -> Sequence[DeliveryRecord]: ...
    async def delivery(self, message_id: str, recipient: str) -> DeliveryRecord | None: ...
    async def mark_delivered(self, message_id: str, recipient: str, at: datetime) -> None: ...
    async def acknowledge(
        self,
        message_id: str,
        recipient: str,
        at: datetime,
        ack_json: str,
        state: str = "acknowledged",
    ) -> bool:
        """Record a recipient's signed answer: ``acknowledged``, or ``rejected``.

        The first answer stands; a later one of either kind changes nothing and returns
        False (checked in the write itself, so two racing answers cannot both win).
        """
        ...

    async def set_receipts(self, receipts: Sequence[tuple[str, str]]) -> None:
        """Store ``(message id, receipt JSON)`` for messages added earlier in this transaction."""
        ...

    async def readers_of_payload(self, payload_sha256: str) -> frozenset[str]: ...
    async def carrying_payload(self, payload_sha256: str) -> Sequence[StoredMessage]: ...

    # Retention (hub/server/retention.py): messages whose payload is still held, in pages
    # of id order after ``after``.
    async def fully_acknowledged(
        self, kinds: Sequence[str], *, after: str, limit: int
    ) -> Sequence[StoredMessage]:
        """Of ``kinds``, messages every recipient has acknowledged."""
        ...

    async def received_before(
        self, kind: str, before: datetime, *, after: str, limit: int
    ) -> Sequence[StoredMessage]: ...
    async def unpurged_of_kind(
        self, kind: str, *, after: str, limit: int
    ) -> Sequence[StoredMessage]: ...
    async def purge_payload(
        self, message_id: str, *, envelope_json: str, at: datetime, reason: str
    ) -> bool:
        """Replace the stored envelope by its metadata and mark it purged; False when it
        already was (the first purge stands)."""
        ...

    async def unpurged_blob_carriers(self, sender: str, payload_sha256: str) -> int: ...


class NonceRepository(Protocol):
    async def remember(self, node_id: str, nonce: str, expires_at: datetime) -> bool:
        """Record a nonce; False when this node has used it before (a replay)."""
        ...

    async def purge_expired(self, now: datetime) -> int: ...


class BlobRepository(Protocol):
    async def create(self, blob: BlobRecord) -> None: ...
    async def get(
        self, upload_id: str, *, owner: str | None = None, for_update: bool = False
    ) -> BlobRecord | None:
        """The upload; with ``owner``, only that node's (another's is None, as a missing one);
        ``for_update`` locks its row until the transaction ends."""
        ...

    async def record_chunk(self, upload_id: str, index: int, size: int) -> None: ...
    async def mark_complete(self, upload_id: str, at: datetime) -> None: ...
    async def delete(self, upload_id: str) -> None: ...
    async def complete_by_sha256(
        self, sha256: str, *, owner: str | None = None, for_update: bool = False
    ) -> BlobRecord | None: ...
    async def readable_by(self, sha256: str, node_id: str) -> bool:
        """A complete blob ``node_id`` uploaded or reads (it sent or receives a message
        carrying it); one statement whether the blob is another's or missing."""
        ...

    async def usage(self) -> Sequence[BlobUsage]:
        """Uploads, announced and received bytes per state (for ``/metrics``)."""
        ...

    async def purged_readable_by(self, sha256: str, node_id: str) -> BlobRecord | None:
        """As :meth:`readable_by`, for a blob the hub has purged (deploy/retention.md)."""
        ...

    # Quotas and retention (deploy/retention.md).
    async def complete_rows(self, owner: str, sha256: str) -> Sequence[BlobRecord]:
        """The owner's completed blobs of this hash, locked until the transaction ends."""
        ...

    async def quota_usage(
        self, owner: str, *, live_after: datetime, lock: bool = False
    ) -> QuotaUsage:
        """Uploads announced after ``live_after`` and completed blobs; ``lock`` holds the
        node's quota until the transaction ends."""
        ...

    async def uploads_created_before(
        self, before: datetime, *, after: str, limit: int
    ) -> Sequence[BlobRecord]:
        """Unfinished uploads announced at or before ``before`` (expired at ``before``
        plus the expiry, as the chunk handler judges them)."""
        ...

    async def delete_expired(self, upload_id: str, created_before: datetime) -> bool:
        """Delete an unfinished upload announced at or before ``created_before`` (its
        chunks and row); False when it is not one any more."""
        ...

    async def unsent_completed_before(
        self, before: datetime, *, after: str, limit: int
    ) -> Sequence[BlobRecord]:
        """Completed blobs that no message from their uploader carries, still held."""
        ...

    async def purge(self, upload_id: str, *, at: datetime, reason: str) -> bool: ...
    async def live_sha256s(self, sha256s: Sequence[str]) -> frozenset[str]:
        """Which of these hashes an unfinished or completed upload still has."""
        ...

    async def uploading_ids(self, upload_ids: Sequence[str]) -> frozenset[str]: ...


class WorkflowRepository(Protocol):
    async def get(self, kind: str, ref: str) -> WorkflowRecord | None: ...
    async def visible(self, kind: str, ref: str, node_id: str) -> WorkflowRecord | None:
        """The workflow if ``node_id`` is a party to it; None otherwise, as for a missing one."""
        ...

    async def for_message(self, message_id: str) -> tuple[str, str] | None: ...
    async def save(
        self,
        record: WorkflowRecord,
        *,
        parties: Sequence[str],
        message_id: str,
        replace_parties: bool = False,
        created: bool = False,
    ) -> None: ...
    async def add_event(
        self,
        kind: str,
        ref: str,
        *,
        message_id: str,
        message_kind: str,
        actor: str,
        at: datetime,
        summary: str,
    ) -> None: ...
    async def history(self, kind: str, ref: str) -> Sequence[WorkflowEvent]: ...
    async def involving(self, node_id: str, kind: str) -> Sequence[WorkflowRecord]: ...
    async def is_party(self, kind: str, ref: str, node_id: str) -> bool: ...
    async def all_of(self, kind: str) -> Sequence[WorkflowRecord]: ...


class AuditRepository(Protocol):
    async def state_for_update(self) -> tuple[int, list[bytes]]:
        """The log's size and frontier; in a write transaction, locked until it ends."""
        ...

    async def set_state(self, size: int, frontier: Sequence[bytes]) -> None: ...
    async def add_leaves(self, leaves: Sequence[AuditLeaf]) -> None: ...
    async def add_heads(self, heads: Sequence[StoredHead]) -> None: ...
    async def latest_head(self) -> StoredHead | None: ...
    async def heads(self) -> Sequence[StoredHead]: ...
    async def leaf_hashes(self, size: int) -> list[bytes]: ...
    async def size(self) -> int:
        """The log's size as its state row says (no lock; 0 before the first append)."""
        ...

    async def leaf_hashes_in(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, bytes]]:
        """``(idx, leaf_hash)`` of the stored entries in any ``[start, end)`` given, in order."""
        ...

    async def leaves_from(self, start: int, limit: int) -> list[tuple[int, str, bytes]]:
        """Up to ``limit`` stored ``(idx, entry_json, leaf_hash)``, ``idx >= start``, in order."""
        ...

    async def leaves_between(self, start: int, end: int) -> list[tuple[int, str, bytes]]:
        """The stored ``(idx, entry_json, leaf_hash)`` with ``start <= idx < end``, in order."""
        ...

    async def heads_between(self, after: int, upto: int, *, limit: int) -> Sequence[StoredHead]:
        """Up to ``limit`` stored heads with ``after < size <= upto``, smallest first."""
        ...

    async def rows(
        self, start: int, end: int, *, actor: str | None = None
    ) -> Sequence[AuditRow]: ...
    async def rows_for_subject(self, subject_ref: str) -> Sequence[AuditRow]: ...
    async def rows_for_cases(self, case_refs: Sequence[str]) -> Sequence[AuditRow]: ...
    async def rows_between(self, start: datetime, end: datetime) -> Sequence[AuditRow]: ...


class EndStep(Protocol):
    """Work a write transaction does last, after everything else its callers wrote."""

    async def run(self, tx: UnitOfWork) -> None: ...


S = TypeVar("S", bound=EndStep)


class UnitOfWork(Protocol):
    """One transaction: committed when the block exits normally, rolled back otherwise."""

    def at_end(self, key: object, make: Callable[[], S]) -> S:
        """The transaction's end step named ``key``, made by ``make`` when first asked for.

        End steps run once each, in the order first asked for, after the block's own
        statements and just before the commit; a failing one rolls everything back. The
        audit log appends this way, so its lock is the last one a transaction takes and is
        held only for its own few statements. A read view has no end: it refuses.
        """
        ...

    @property
    def nodes(self) -> NodeRepository: ...
    @property
    def node_keys(self) -> NodeKeyRepository: ...
    @property
    def messages(self) -> MessageRepository: ...
    @property
    def nonces(self) -> NonceRepository: ...
    @property
    def blobs(self) -> BlobRepository: ...
    @property
    def workflows(self) -> WorkflowRepository: ...
    @property
    def audit(self) -> AuditRepository: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]: ...
    def read(self) -> AbstractAsyncContextManager[UnitOfWork]: ...
    async def create_schema(self) -> None: ...
    async def close(self) -> None: ...

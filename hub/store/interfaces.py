"""The repository interfaces services depend on (STYLE.md rule 9): small, one per concern."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from hub.store.records import (
    AuditRow,
    BlobRecord,
    BlobUsage,
    DeliveryRecord,
    InboxRow,
    NodeRecord,
    StoredHead,
    StoredMessage,
    WorkflowEvent,
    WorkflowRecord,
)

__all__ = [
    "AuditRepository",
    "BlobRepository",
    "MessageRepository",
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

    async def readers_of_payload(self, payload_sha256: str) -> frozenset[str]: ...
    async def carrying_payload(self, payload_sha256: str) -> Sequence[StoredMessage]: ...


class NonceRepository(Protocol):
    async def remember(self, node_id: str, nonce: str, expires_at: datetime) -> bool:
        """Record a nonce; False when this node has used it before (a replay)."""
        ...

    async def purge_expired(self, now: datetime) -> int: ...


class BlobRepository(Protocol):
    async def create(self, blob: BlobRecord) -> None: ...
    async def get(self, upload_id: str, *, owner: str | None = None) -> BlobRecord | None:
        """The upload; with ``owner``, only that node's (another's is None, as a missing one)."""
        ...

    async def record_chunk(self, upload_id: str, index: int, size: int) -> None: ...
    async def mark_complete(self, upload_id: str, at: datetime) -> None: ...
    async def delete(self, upload_id: str) -> None: ...
    async def complete_by_sha256(
        self, sha256: str, *, owner: str | None = None
    ) -> BlobRecord | None: ...
    async def readable_by(self, sha256: str, node_id: str) -> bool:
        """A complete blob ``node_id`` uploaded or reads (it sent or receives a message
        carrying it); one statement whether the blob is another's or missing."""
        ...

    async def usage(self) -> Sequence[BlobUsage]:
        """Uploads, announced and received bytes per state (for ``/metrics``)."""
        ...


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
        """The log's size and frontier, locked until the transaction ends."""
        ...

    async def set_state(self, size: int, frontier: Sequence[bytes]) -> None: ...
    async def add_leaf(
        self,
        row: AuditRow,
        *,
        kind: str | None,
        message_id: str | None,
        subject_ref: str | None,
        case_ref: str | None,
    ) -> None: ...
    async def add_head(self, head: StoredHead) -> None: ...
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


class UnitOfWork(Protocol):
    """One transaction: committed when the block exits normally, rolled back otherwise."""

    @property
    def nodes(self) -> NodeRepository: ...
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

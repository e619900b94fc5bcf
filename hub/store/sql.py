"""The SQLAlchemy implementation of the repositories: all of the hub's SQL is here."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.store.dialect import WRITE_TRANSACTION, Dialect, open_engine
from hub.store.errors import DuplicateRecord
from hub.store.interfaces import EndStep
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
from hub.store.tables import (
    audit_heads,
    audit_log,
    audit_state,
    blob_chunks,
    blobs,
    deliveries,
    messages,
    metadata,
    node_keys,
    nodes,
    nonces,
    workflow_events,
    workflow_parties,
    workflow_pointers,
    workflows,
)

__all__ = ["SqlStore", "SqlUnitOfWork"]

S = TypeVar("S", bound=EndStep)


def _node(row: Any) -> NodeRecord:
    return NodeRecord(
        id=row.id,
        agency_type=row.agency_type,
        display_name=row.display_name,
        signing_key=bytes(row.signing_key),
        encryption_key=bytes(row.encryption_key),
        accreditation=row.accreditation,
        status=row.status,
        enrolled_at=row.enrolled_at,
        updated_at=row.updated_at,
    )


def _message(row: Any) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        sender=row.sender,
        kind=row.kind,
        envelope_json=row.envelope_json,
        envelope_sha256=row.envelope_sha256,
        receipt_json=row.receipt_json,
        received_at=row.received_at,
        payload_sha256=row.payload_sha256,
        payload_size=row.payload_size,
        transport=row.transport,
        payload_purged_at=row.payload_purged_at,
        purge_reason=row.purge_reason,
    )


def _unpurged_since(after: str) -> Any:
    """Messages whose payload is still held, after ``after`` in id order (keyset pages)."""
    return (messages.c.payload_purged_at.is_(None)) & (messages.c.id > after)


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        seq=row.seq,
        message_id=row.message_id,
        recipient=row.recipient,
        state=row.state,
        delivered_at=row.delivered_at,
        acknowledged_at=row.acknowledged_at,
        ack_json=row.ack_json,
    )


class _Nodes:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, node_id: str) -> NodeRecord | None:
        row = (await self._conn.execute(select(nodes).where(nodes.c.id == node_id))).first()
        return None if row is None else _node(row)

    async def list_all(self) -> Sequence[NodeRecord]:
        rows = await self._conn.execute(select(nodes).order_by(nodes.c.id))
        return [_node(r) for r in rows]

    async def add(self, node: NodeRecord) -> None:
        try:
            await self._conn.execute(nodes.insert().values(**_node_values(node)))
        except IntegrityError as exc:
            raise DuplicateRecord(f"node {node.id} exists") from exc

    async def update(self, node: NodeRecord) -> None:
        values = _node_values(node)
        del values["id"]
        await self._conn.execute(update(nodes).where(nodes.c.id == node.id).values(**values))

    async def get_for_update(self, node_id: str) -> NodeRecord | None:
        # FOR UPDATE on PostgreSQL; SQLite has one writer and ignores it.
        query = select(nodes).where(nodes.c.id == node_id).with_for_update()
        row = (await self._conn.execute(query)).first()
        return None if row is None else _node(row)

    async def signing_key_locked(self, node_id: str) -> bytes | None:
        query = select(nodes.c.signing_key).where(nodes.c.id == node_id).with_for_update(read=True)
        row = (await self._conn.execute(query)).first()
        return None if row is None else bytes(row[0])


def _node_key(row: Any) -> NodeKeyRecord:
    return NodeKeyRecord(
        node_id=row.node_id,
        signing_key=bytes(row.signing_key),
        encryption_key=bytes(row.encryption_key),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        reason=row.reason,
        compromised_from=row.compromised_from,
    )


class _NodeKeys:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def for_node(self, node_id: str) -> Sequence[NodeKeyRecord]:
        rows = await self._conn.execute(
            select(node_keys)
            .where(node_keys.c.node_id == node_id)
            .order_by(node_keys.c.valid_from, node_keys.c.signing_key)
        )
        return [_node_key(r) for r in rows]

    async def all_nodes(self) -> Sequence[NodeKeyRecord]:
        rows = await self._conn.execute(
            select(node_keys).order_by(
                node_keys.c.node_id, node_keys.c.valid_from, node_keys.c.signing_key
            )
        )
        return [_node_key(r) for r in rows]

    async def add(self, key: NodeKeyRecord) -> None:
        try:
            await self._conn.execute(node_keys.insert().values(**_node_key_values(key)))
        except IntegrityError as exc:
            raise DuplicateRecord(f"node {key.node_id} has had this signing key before") from exc

    async def update(self, key: NodeKeyRecord) -> None:
        values = _node_key_values(key)
        await self._conn.execute(
            update(node_keys)
            .where(node_keys.c.node_id == key.node_id, node_keys.c.signing_key == key.signing_key)
            .values(**values)
        )


def _node_key_values(key: NodeKeyRecord) -> dict[str, Any]:
    return {
        "node_id": key.node_id,
        "signing_key": key.signing_key,
        "encryption_key": key.encryption_key,
        "valid_from": key.valid_from,
        "valid_until": key.valid_until,
        "reason": key.reason,
        "compromised_from": key.compromised_from,
    }


def _node_values(node: NodeRecord) -> dict[str, Any]:
    return {
        "id": node.id,
        "agency_type": node.agency_type,
        "display_name": node.display_name,
        "signing_key": node.signing_key,
        "encryption_key": node.encryption_key,
        "accreditation": node.accreditation,
        "status": node.status,
        "enrolled_at": node.enrolled_at,
        "updated_at": node.updated_at,
    }


class _Messages:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, message_id: str) -> StoredMessage | None:
        row = (
            await self._conn.execute(select(messages).where(messages.c.id == message_id))
        ).first()
        return None if row is None else _message(row)

    # The access checks below are part of the one statement that finds the record, so a
    # record the node may not see and one that does not exist cost the same round trip
    # and return the same nothing: no existence oracle in the answer or its timing.

    async def readable(
        self, message_id: str, node_id: str
    ) -> tuple[StoredMessage, DeliveryRecord | None] | None:
        row = (
            await self._conn.execute(
                select(messages, deliveries)
                .select_from(
                    messages.outerjoin(
                        deliveries,
                        (deliveries.c.message_id == messages.c.id)
                        & (deliveries.c.recipient == node_id),
                    )
                )
                .where(
                    messages.c.id == message_id,
                    or_(messages.c.sender == node_id, deliveries.c.recipient.is_not(None)),
                )
            )
        ).first()
        if row is None:
            return None
        return _message(row), None if row.recipient is None else _delivery(row)

    async def addressed(
        self, message_id: str, recipient: str
    ) -> tuple[StoredMessage, DeliveryRecord] | None:
        row = (
            await self._conn.execute(
                select(messages, deliveries)
                .join(deliveries, deliveries.c.message_id == messages.c.id)
                .where(messages.c.id == message_id, deliveries.c.recipient == recipient)
            )
        ).first()
        return None if row is None else (_message(row), _delivery(row))

    async def sent_by(self, message_id: str, sender: str) -> StoredMessage | None:
        row = (
            await self._conn.execute(
                select(messages).where(messages.c.id == message_id, messages.c.sender == sender)
            )
        ).first()
        return None if row is None else _message(row)

    async def add(self, message: StoredMessage, recipients: Sequence[str]) -> None:
        await self._conn.execute(
            messages.insert().values(
                id=message.id,
                sender=message.sender,
                kind=message.kind,
                envelope_json=message.envelope_json,
                envelope_sha256=message.envelope_sha256,
                receipt_json=message.receipt_json,
                received_at=message.received_at,
                payload_sha256=message.payload_sha256,
                payload_size=message.payload_size,
                transport=message.transport,
            )
        )
        await self._conn.execute(
            deliveries.insert(),
            [{"message_id": message.id, "recipient": r, "state": "pending"} for r in recipients],
        )

    async def set_receipts(self, receipts: Sequence[tuple[str, str]]) -> None:
        if not receipts:
            return
        await self._conn.execute(
            update(messages)
            .where(messages.c.id == bindparam("message_id"))
            .values(receipt_json=bindparam("receipt")),
            [{"message_id": message_id, "receipt": receipt} for message_id, receipt in receipts],
        )

    async def inbox(self, recipient: str, *, after: int, limit: int) -> Sequence[InboxRow]:
        query = (
            select(
                deliveries.c.seq,
                deliveries.c.state,
                messages.c.id,
                messages.c.sender,
                messages.c.kind,
                messages.c.received_at,
                messages.c.payload_size,
                messages.c.transport,
            )
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(deliveries.c.recipient == recipient, deliveries.c.seq > after)
            .order_by(deliveries.c.seq)
            .limit(limit)
        )
        return [
            InboxRow(
                seq=r.seq,
                message_id=r.id,
                sender=r.sender,
                kind=r.kind,
                received_at=r.received_at,
                state=r.state,
                payload_size=r.payload_size,
                transport=r.transport,
            )
            for r in await self._conn.execute(query)
        ]

    async def deliveries(self, message_id: str) -> Sequence[DeliveryRecord]:
        rows = await self._conn.execute(
            select(deliveries)
            .where(deliveries.c.message_id == message_id)
            .order_by(deliveries.c.recipient)
        )
        return [_delivery(r) for r in rows]

    async def delivery(self, message_id: str, recipient: str) -> DeliveryRecord | None:
        row = (
            await self._conn.execute(
                select(deliveries).where(
                    deliveries.c.message_id == message_id, deliveries.c.recipient == recipient
                )
            )
        ).first()
        return None if row is None else _delivery(row)

    async def mark_delivered(self, message_id: str, recipient: str, at: datetime) -> None:
        await self._conn.execute(
            update(deliveries)
            .where(
                deliveries.c.message_id == message_id,
                deliveries.c.recipient == recipient,
                deliveries.c.state == "pending",
            )
            .values(state="delivered", delivered_at=at)
        )

    async def acknowledge(
        self,
        message_id: str,
        recipient: str,
        at: datetime,
        ack_json: str,
        state: str = "acknowledged",
    ) -> bool:
        result = await self._conn.execute(
            update(deliveries)
            .where(
                deliveries.c.message_id == message_id,
                deliveries.c.recipient == recipient,
                deliveries.c.state.notin_(("acknowledged", "rejected")),
            )
            .values(
                state=state,
                acknowledged_at=at,
                delivered_at=func.coalesce(deliveries.c.delivered_at, at),
                ack_json=ack_json,
            )
        )
        return bool(result.rowcount == 1)

    async def carrying_payload(self, payload_sha256: str) -> Sequence[StoredMessage]:
        rows = await self._conn.execute(
            select(messages).where(messages.c.payload_sha256 == payload_sha256)
        )
        return [_message(r) for r in rows]

    async def fully_acknowledged(
        self, kinds: Sequence[str], *, after: str, limit: int
    ) -> Sequence[StoredMessage]:
        unanswered = (
            select(deliveries.c.message_id)
            .where(
                deliveries.c.message_id == messages.c.id,
                deliveries.c.state != "acknowledged",
            )
            .exists()
        )
        rows = await self._conn.execute(
            select(messages)
            .where(_unpurged_since(after), messages.c.kind.in_(kinds), ~unanswered)
            .order_by(messages.c.id)
            .limit(limit)
        )
        return [_message(r) for r in rows]

    async def received_before(
        self, kind: str, before: datetime, *, after: str, limit: int
    ) -> Sequence[StoredMessage]:
        rows = await self._conn.execute(
            select(messages)
            .where(_unpurged_since(after), messages.c.kind == kind, messages.c.received_at < before)
            .order_by(messages.c.id)
            .limit(limit)
        )
        return [_message(r) for r in rows]

    async def unpurged_of_kind(
        self, kind: str, *, after: str, limit: int
    ) -> Sequence[StoredMessage]:
        rows = await self._conn.execute(
            select(messages)
            .where(_unpurged_since(after), messages.c.kind == kind)
            .order_by(messages.c.id)
            .limit(limit)
        )
        return [_message(r) for r in rows]

    async def purge_payload(
        self, message_id: str, *, envelope_json: str, at: datetime, reason: str
    ) -> bool:
        # Conditional: of two sweeps (two hub processes) only one purges and logs it.
        result = await self._conn.execute(
            update(messages)
            .where(messages.c.id == message_id, messages.c.payload_purged_at.is_(None))
            .values(envelope_json=envelope_json, payload_purged_at=at, purge_reason=reason)
        )
        return bool(result.rowcount == 1)

    async def unpurged_blob_carriers(self, sender: str, payload_sha256: str) -> int:
        count = await self._conn.scalar(
            select(func.count())
            .select_from(messages)
            .where(
                messages.c.sender == sender,
                messages.c.payload_sha256 == payload_sha256,
                messages.c.transport == "blob",
                messages.c.payload_purged_at.is_(None),
            )
        )
        return int(count or 0)

    async def readers_of_payload(self, payload_sha256: str) -> frozenset[str]:
        senders = await self._conn.execute(
            select(messages.c.sender).where(messages.c.payload_sha256 == payload_sha256)
        )
        recipients = await self._conn.execute(
            select(deliveries.c.recipient)
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(messages.c.payload_sha256 == payload_sha256)
        )
        return frozenset(r[0] for r in senders) | frozenset(r[0] for r in recipients)


class _Nonces:
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def remember(self, node_id: str, nonce: str, expires_at: datetime) -> bool:
        result = await self._conn.execute(
            self._dialect.insert_ignore(
                nonces, {"node_id": node_id, "nonce": nonce, "expires_at": expires_at}
            )
        )
        return result.rowcount == 1

    async def purge_expired(self, now: datetime) -> int:
        result = await self._conn.execute(delete(nonces).where(nonces.c.expires_at < now))
        return result.rowcount


class _Blobs:
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def create(self, blob: BlobRecord) -> None:
        await self._conn.execute(
            blobs.insert().values(
                upload_id=blob.upload_id,
                owner=blob.owner,
                sha256=blob.sha256,
                size=blob.size,
                chunk_size=blob.chunk_size,
                chunk_count=blob.chunk_count,
                state=blob.state,
                created_at=blob.created_at,
            )
        )

    async def get(
        self, upload_id: str, *, owner: str | None = None, for_update: bool = False
    ) -> BlobRecord | None:
        query = select(blobs).where(blobs.c.upload_id == upload_id)
        if owner is not None:
            # Another node's upload is not found in the same one statement as a missing one.
            query = query.where(blobs.c.owner == owner)
        # FOR UPDATE (PostgreSQL; SQLite has one writer): a chunk being recorded and the
        # expiry sweep deleting the upload take turns on its row.
        row = (await self._conn.execute(query.with_for_update() if for_update else query)).first()
        if row is None:
            return None
        chunks = await self._conn.execute(
            select(blob_chunks.c.idx).where(blob_chunks.c.upload_id == upload_id)
        )
        return _blob(row, frozenset(c[0] for c in chunks))

    async def record_chunk(self, upload_id: str, index: int, size: int) -> None:
        # One statement, not select-then-insert: a retried chunk racing the original in
        # another transaction (or hub process, on PostgreSQL) must not fail on the key.
        await self._conn.execute(
            self._dialect.insert_ignore(
                blob_chunks, {"upload_id": upload_id, "idx": index, "size": size}
            )
        )

    async def mark_complete(self, upload_id: str, at: datetime) -> None:
        await self._conn.execute(
            update(blobs)
            .where(blobs.c.upload_id == upload_id)
            .values(state="complete", completed_at=at)
        )

    async def delete(self, upload_id: str) -> None:
        await self._conn.execute(delete(blob_chunks).where(blob_chunks.c.upload_id == upload_id))
        await self._conn.execute(delete(blobs).where(blobs.c.upload_id == upload_id))

    async def readable_by(self, sha256: str, node_id: str) -> bool:
        # One statement, the access check inside it: a blob the node may not read and one
        # that does not exist cost the same round trip (no existence oracle).
        row = (
            await self._conn.execute(
                select(blobs.c.upload_id)
                .where(
                    blobs.c.sha256 == sha256,
                    blobs.c.state == "complete",
                    _blob_reader(sha256, node_id),
                )
                .limit(1)
            )
        ).first()
        return row is not None

    async def purged_readable_by(self, sha256: str, node_id: str) -> BlobRecord | None:
        # The same access check in the one statement, for what was purged.
        row = (
            await self._conn.execute(
                select(blobs)
                .where(
                    blobs.c.sha256 == sha256,
                    blobs.c.state == "purged",
                    _blob_reader(sha256, node_id),
                )
                .order_by(blobs.c.purged_at.desc(), blobs.c.upload_id)
                .limit(1)
            )
        ).first()
        return None if row is None else _blob(row, frozenset())

    async def complete_by_sha256(
        self, sha256: str, *, owner: str | None = None, for_update: bool = False
    ) -> BlobRecord | None:
        query = select(blobs.c.upload_id).where(
            blobs.c.sha256 == sha256, blobs.c.state == "complete"
        )
        if owner is not None:
            query = query.where(blobs.c.owner == owner)
        query = query.order_by(blobs.c.upload_id).limit(1)
        row = (await self._conn.execute(query.with_for_update() if for_update else query)).first()
        return None if row is None else await self.get(row[0])

    async def complete_rows(self, owner: str, sha256: str) -> Sequence[BlobRecord]:
        rows = await self._conn.execute(
            select(blobs)
            .where(blobs.c.owner == owner, blobs.c.sha256 == sha256, blobs.c.state == "complete")
            .order_by(blobs.c.upload_id)
            .with_for_update()
        )
        return [_blob(r, frozenset()) for r in rows]

    async def quota_usage(
        self, owner: str, *, live_after: datetime, lock: bool = False
    ) -> QuotaUsage:
        if lock:
            # One announcement per node at a time decides against its quota (PostgreSQL
            # row lock on the node; SQLite has one writer).
            await self._conn.execute(
                select(nodes.c.id).where(nodes.c.id == owner).with_for_update()
            )
        pending = (
            await self._conn.execute(
                select(func.count(), func.coalesce(func.sum(blobs.c.size), 0)).where(
                    blobs.c.owner == owner,
                    blobs.c.state == "uploading",
                    blobs.c.created_at > live_after,
                )
            )
        ).one()
        stored = await self._conn.scalar(
            select(func.coalesce(func.sum(blobs.c.size), 0)).where(
                blobs.c.owner == owner, blobs.c.state == "complete"
            )
        )
        return QuotaUsage(
            pending_uploads=int(pending[0]),
            pending_bytes=int(pending[1]),
            stored_bytes=int(stored or 0),
        )

    async def uploads_created_before(
        self, before: datetime, *, after: str, limit: int
    ) -> Sequence[BlobRecord]:
        rows = await self._conn.execute(
            select(blobs)
            .where(
                blobs.c.state == "uploading",
                blobs.c.created_at <= before,
                blobs.c.upload_id > after,
            )
            .order_by(blobs.c.upload_id)
            .limit(limit)
        )
        return [_blob(r, frozenset()) for r in rows]

    async def delete_expired(self, upload_id: str, created_before: datetime) -> bool:
        row = (
            await self._conn.execute(
                select(blobs.c.upload_id)
                .where(
                    blobs.c.upload_id == upload_id,
                    blobs.c.state == "uploading",
                    blobs.c.created_at <= created_before,
                )
                .with_for_update()
            )
        ).first()
        if row is None:
            return False
        await self.delete(upload_id)
        return True

    async def unsent_completed_before(
        self, before: datetime, *, after: str, limit: int
    ) -> Sequence[BlobRecord]:
        rows = await self._conn.execute(
            select(blobs)
            .where(
                blobs.c.state == "complete",
                blobs.c.completed_at < before,
                blobs.c.upload_id > after,
                ~_carried(),
            )
            .order_by(blobs.c.upload_id)
            .limit(limit)
        )
        return [_blob(r, frozenset()) for r in rows]

    async def purge(self, upload_id: str, *, at: datetime, reason: str) -> bool:
        result = await self._conn.execute(
            update(blobs)
            .where(blobs.c.upload_id == upload_id, blobs.c.state == "complete")
            .values(state="purged", purged_at=at, purge_reason=reason)
        )
        if result.rowcount != 1:
            return False
        # Its chunks are gone with its file (seh_hub_blob_stored_bytes counts them).
        await self._conn.execute(delete(blob_chunks).where(blob_chunks.c.upload_id == upload_id))
        return True

    async def live_sha256s(self, sha256s: Sequence[str]) -> frozenset[str]:
        if not sha256s:
            return frozenset()
        rows = await self._conn.execute(
            select(blobs.c.sha256)
            .where(blobs.c.sha256.in_(sha256s), blobs.c.state.in_(("uploading", "complete")))
            .distinct()
        )
        return frozenset(r[0] for r in rows)

    async def uploading_ids(self, upload_ids: Sequence[str]) -> frozenset[str]:
        if not upload_ids:
            return frozenset()
        rows = await self._conn.execute(
            select(blobs.c.upload_id).where(
                blobs.c.upload_id.in_(upload_ids), blobs.c.state == "uploading"
            )
        )
        return frozenset(r[0] for r in rows)

    async def usage(self) -> Sequence[BlobUsage]:
        declared = await self._conn.execute(
            select(blobs.c.state, func.count(), func.coalesce(func.sum(blobs.c.size), 0)).group_by(
                blobs.c.state
            )
        )
        received = await self._conn.execute(
            select(blobs.c.state, func.coalesce(func.sum(blob_chunks.c.size), 0))
            .select_from(blobs.join(blob_chunks, blob_chunks.c.upload_id == blobs.c.upload_id))
            .group_by(blobs.c.state)
        )
        got = {state: int(size) for state, size in received}
        return [
            BlobUsage(
                state=state,
                uploads=int(count),
                declared_bytes=int(size),
                received_bytes=got.get(state, 0),
            )
            for state, count, size in declared
        ]


def _blob(row: Any, received_chunks: frozenset[int]) -> BlobRecord:
    return BlobRecord(
        upload_id=row.upload_id,
        owner=row.owner,
        sha256=row.sha256,
        size=row.size,
        chunk_size=row.chunk_size,
        chunk_count=row.chunk_count,
        state=row.state,
        created_at=row.created_at,
        received_chunks=received_chunks,
        completed_at=row.completed_at,
        purged_at=row.purged_at,
        purge_reason=row.purge_reason,
    )


def _blob_reader(sha256: str, node_id: str) -> Any:
    """The node uploaded the blob, or sent or receives a message carrying it."""
    carried = (
        select(messages.c.id)
        .where(
            messages.c.payload_sha256 == sha256,
            or_(
                messages.c.sender == node_id,
                exists().where(
                    deliveries.c.message_id == messages.c.id,
                    deliveries.c.recipient == node_id,
                ),
            ),
        )
        .exists()
    )
    return or_(blobs.c.owner == node_id, carried)


def _carried() -> Any:
    """A message from the blob's uploader carries it and still holds its payload."""
    return (
        select(messages.c.id)
        .where(
            messages.c.sender == blobs.c.owner,
            messages.c.payload_sha256 == blobs.c.sha256,
            messages.c.transport == "blob",
            messages.c.payload_purged_at.is_(None),
        )
        .exists()
    )


class _Workflows:
    def __init__(self, conn: AsyncConnection, dialect: Dialect, *, lock_rows: bool) -> None:
        self._conn = conn
        self._dialect = dialect
        self._lock_rows = lock_rows

    async def get(self, kind: str, ref: str) -> WorkflowRecord | None:
        query = select(workflows).where(workflows.c.kind == kind, workflows.c.ref == ref)
        if self._lock_rows:
            # In a write transaction the state read is the state the write advances: on
            # PostgreSQL a second hub process deciding the same request waits here and then
            # sees the first decision (SQLite has one writer and renders no FOR UPDATE).
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return (
            None
            if row is None
            else WorkflowRecord(row.kind, row.ref, row.state_json, row.updated_at)
        )

    async def visible(self, kind: str, ref: str, node_id: str) -> WorkflowRecord | None:
        # The party check is a join in the one statement that finds the workflow, so
        # another's workflow and a missing one cost the same (no existence oracle).
        row = (
            await self._conn.execute(
                select(workflows)
                .join(
                    workflow_parties,
                    (workflow_parties.c.kind == workflows.c.kind)
                    & (workflow_parties.c.ref == workflows.c.ref),
                )
                .where(
                    workflows.c.kind == kind,
                    workflows.c.ref == ref,
                    workflow_parties.c.node_id == node_id,
                )
            )
        ).first()
        return (
            None
            if row is None
            else WorkflowRecord(row.kind, row.ref, row.state_json, row.updated_at)
        )

    async def for_message(self, message_id: str) -> tuple[str, str] | None:
        row = (
            await self._conn.execute(
                select(workflow_pointers.c.kind, workflow_pointers.c.ref).where(
                    workflow_pointers.c.message_id == message_id
                )
            )
        ).first()
        return None if row is None else (row.kind, row.ref)

    async def save(
        self,
        record: WorkflowRecord,
        *,
        parties: Sequence[str],
        message_id: str,
        replace_parties: bool = False,
        created: bool = False,
    ) -> None:
        if replace_parties:
            await self._conn.execute(
                delete(workflow_parties).where(
                    workflow_parties.c.kind == record.kind, workflow_parties.c.ref == record.ref
                )
            )
        updated_rows = 0
        if not created:
            updated = await self._conn.execute(
                update(workflows)
                .where(workflows.c.kind == record.kind, workflows.c.ref == record.ref)
                .values(state_json=record.state_json, updated_at=record.updated_at)
            )
            updated_rows = updated.rowcount
        if updated_rows == 0:
            await self._conn.execute(
                workflows.insert().values(
                    kind=record.kind,
                    ref=record.ref,
                    state_json=record.state_json,
                    updated_at=record.updated_at,
                )
            )
        if parties:
            await self._conn.execute(
                self._dialect.insert_ignore_many(workflow_parties),
                [{"kind": record.kind, "ref": record.ref, "node_id": node} for node in parties],
            )
        await self._conn.execute(
            self._dialect.insert_ignore(
                workflow_pointers,
                {"message_id": message_id, "kind": record.kind, "ref": record.ref},
            )
        )

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
    ) -> None:
        await self._conn.execute(
            workflow_events.insert().values(
                kind=kind,
                ref=ref,
                message_id=message_id,
                message_kind=message_kind,
                actor=actor,
                at=at,
                summary=summary,
            )
        )

    async def history(self, kind: str, ref: str) -> Sequence[WorkflowEvent]:
        rows = await self._conn.execute(
            select(workflow_events)
            .where(workflow_events.c.kind == kind, workflow_events.c.ref == ref)
            .order_by(workflow_events.c.seq)
        )
        return [
            WorkflowEvent(r.seq, r.message_id, r.message_kind, r.actor, r.at, r.summary)
            for r in rows
        ]

    async def involving(self, node_id: str, kind: str) -> Sequence[WorkflowRecord]:
        rows = await self._conn.execute(
            select(workflows)
            .join(
                workflow_parties,
                (workflow_parties.c.kind == workflows.c.kind)
                & (workflow_parties.c.ref == workflows.c.ref),
            )
            .where(workflow_parties.c.node_id == node_id, workflows.c.kind == kind)
            .order_by(workflows.c.updated_at)
        )
        return [WorkflowRecord(r.kind, r.ref, r.state_json, r.updated_at) for r in rows]

    async def all_of(self, kind: str) -> Sequence[WorkflowRecord]:
        rows = await self._conn.execute(
            select(workflows).where(workflows.c.kind == kind).order_by(workflows.c.updated_at)
        )
        return [WorkflowRecord(r.kind, r.ref, r.state_json, r.updated_at) for r in rows]

    async def is_party(self, kind: str, ref: str, node_id: str) -> bool:
        row = (
            await self._conn.execute(
                select(workflow_parties.c.node_id).where(
                    workflow_parties.c.kind == kind,
                    workflow_parties.c.ref == ref,
                    workflow_parties.c.node_id == node_id,
                )
            )
        ).first()
        return row is not None


def _audit_row(row: Any) -> AuditRow:
    return AuditRow(row.idx, row.entry_json, bytes(row.leaf_hash), row.at, row.action, row.actor)


def _head(row: Any) -> StoredHead:
    return StoredHead(row.size, bytes(row.root_hash), row.signed_at, row.signature)


class _Audit:
    def __init__(self, conn: AsyncConnection, dialect: Dialect, *, lock_rows: bool) -> None:
        self._conn = conn
        self._dialect = dialect
        self._lock_rows = lock_rows

    async def state_for_update(self) -> tuple[int, list[bytes]]:
        # Read afresh inside the caller's transaction every time, never kept between
        # transactions: another hub process may have appended since. In a write transaction
        # FOR UPDATE holds the row on PostgreSQL until the commit (on SQLite the transaction
        # began IMMEDIATE and already holds the one write lock); a read view (`hub audit
        # verify`) only reads it, and never holds up the hub's appends.
        query = select(audit_state).where(audit_state.c.id == 1)
        if self._lock_rows:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        if row is None:
            if self._lock_rows:
                await self._conn.execute(
                    audit_state.insert().values(id=1, size=0, frontier_json="[]")
                )
            return 0, []
        return row.size, [bytes.fromhex(h) for h in json.loads(row.frontier_json)]

    async def set_state(self, size: int, frontier: Sequence[bytes]) -> None:
        await self._conn.execute(
            update(audit_state)
            .where(audit_state.c.id == 1)
            .values(size=size, frontier_json=json.dumps([h.hex() for h in frontier]))
        )

    async def add_leaves(self, leaves: Sequence[AuditLeaf]) -> None:
        if not leaves:
            return
        await self._conn.execute(
            audit_log.insert(),
            [
                {
                    "idx": leaf.row.idx,
                    "entry_json": leaf.row.entry_json,
                    "leaf_hash": leaf.row.leaf_hash,
                    "at": leaf.row.at,
                    "action": leaf.row.action,
                    "actor": leaf.row.actor,
                    "kind": leaf.kind,
                    "message_id": leaf.message_id,
                    "subject_ref": leaf.subject_ref,
                    "case_ref": leaf.case_ref,
                }
                for leaf in leaves
            ],
        )

    async def add_heads(self, heads: Sequence[StoredHead]) -> None:
        if not heads:
            return
        await self._conn.execute(
            self._dialect.insert_ignore_many(audit_heads),
            [
                {
                    "size": head.size,
                    "root_hash": head.root_hash,
                    "signed_at": head.signed_at,
                    "signature": head.signature,
                }
                for head in heads
            ],
        )

    async def latest_head(self) -> StoredHead | None:
        row = (
            await self._conn.execute(
                select(audit_heads).order_by(audit_heads.c.size.desc()).limit(1)
            )
        ).first()
        return None if row is None else _head(row)

    async def heads(self) -> Sequence[StoredHead]:
        rows = await self._conn.execute(select(audit_heads).order_by(audit_heads.c.size))
        return [_head(r) for r in rows]

    async def leaf_hashes(self, size: int) -> list[bytes]:
        rows = await self._conn.execute(
            select(audit_log.c.leaf_hash).where(audit_log.c.idx < size).order_by(audit_log.c.idx)
        )
        return [bytes(r[0]) for r in rows]

    # -- reads for hub audit verify and for proofs (hub/audit/verify.py, proofs.py) ---------

    async def size(self) -> int:
        row = (
            await self._conn.execute(select(audit_state.c.size).where(audit_state.c.id == 1))
        ).first()
        return 0 if row is None else int(row[0])

    async def leaf_hashes_in(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, bytes]]:
        if not ranges:
            return []
        within = or_(
            *(and_(audit_log.c.idx >= start, audit_log.c.idx < end) for start, end in ranges)
        )
        rows = await self._conn.execute(
            select(audit_log.c.idx, audit_log.c.leaf_hash).where(within).order_by(audit_log.c.idx)
        )
        return [(r[0], bytes(r[1])) for r in rows]

    async def leaves_from(self, start: int, limit: int) -> list[tuple[int, str, bytes]]:
        rows = await self._conn.execute(
            select(audit_log.c.idx, audit_log.c.entry_json, audit_log.c.leaf_hash)
            .where(audit_log.c.idx >= start)
            .order_by(audit_log.c.idx)
            .limit(limit)
        )
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    async def leaves_between(self, start: int, end: int) -> list[tuple[int, str, bytes]]:
        rows = await self._conn.execute(
            select(audit_log.c.idx, audit_log.c.entry_json, audit_log.c.leaf_hash)
            .where(audit_log.c.idx >= start, audit_log.c.idx < end)
            .order_by(audit_log.c.idx)
        )
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    async def heads_between(self, after: int, upto: int, *, limit: int) -> Sequence[StoredHead]:
        rows = await self._conn.execute(
            select(audit_heads)
            .where(audit_heads.c.size > after, audit_heads.c.size <= upto)
            .order_by(audit_heads.c.size)
            .limit(limit)
        )
        return [_head(r) for r in rows]

    async def rows(self, start: int, end: int, *, actor: str | None = None) -> Sequence[AuditRow]:
        query = select(audit_log).where(audit_log.c.idx >= start, audit_log.c.idx < end)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        return [_audit_row(r) for r in await self._conn.execute(query.order_by(audit_log.c.idx))]

    async def rows_for_subject(self, subject_ref: str) -> Sequence[AuditRow]:
        rows = await self._conn.execute(
            select(audit_log)
            .where(audit_log.c.subject_ref == subject_ref)
            .order_by(audit_log.c.idx)
        )
        return [_audit_row(r) for r in rows]

    async def rows_for_cases(self, case_refs: Sequence[str]) -> Sequence[AuditRow]:
        if not case_refs:
            return []
        rows = await self._conn.execute(
            select(audit_log).where(audit_log.c.case_ref.in_(case_refs)).order_by(audit_log.c.idx)
        )
        return [_audit_row(r) for r in rows]

    async def rows_between(self, start: datetime, end: datetime) -> Sequence[AuditRow]:
        rows = await self._conn.execute(
            select(audit_log)
            .where(audit_log.c.at >= start, audit_log.c.at < end)
            .order_by(audit_log.c.idx)
        )
        return [_audit_row(r) for r in rows]


class SqlUnitOfWork:
    def __init__(self, conn: AsyncConnection, dialect: Dialect, *, writable: bool) -> None:
        self.nodes = _Nodes(conn)
        self.node_keys = _NodeKeys(conn)
        self.messages = _Messages(conn)
        self.nonces = _Nonces(conn, dialect)
        self.workflows = _Workflows(conn, dialect, lock_rows=writable)
        self.audit = _Audit(conn, dialect, lock_rows=writable)
        self.blobs = _Blobs(conn, dialect)
        self._writable = writable
        self._end_steps: dict[object, EndStep] = {}

    def at_end(self, key: object, make: Callable[[], S]) -> S:
        if not self._writable:
            raise RuntimeError("a read view cannot queue writes; use Store.transaction()")
        step = self._end_steps.get(key)
        if step is None:
            step = self._end_steps[key] = make()
        return cast(S, step)

    async def run_end_steps(self) -> None:
        done = 0
        while done < len(self._end_steps):  # a step may ask for a later one
            step = list(self._end_steps.values())[done]
            await step.run(self)
            done += 1


class SqlStore:
    """The hub's storage on SQLite (default, WAL) or PostgreSQL, behind one interface."""

    def __init__(self, engine: AsyncEngine, dialect: Dialect) -> None:
        self._engine = engine
        # The same pool; its transactions begin as writers (BEGIN IMMEDIATE on SQLite).
        self._write_engine = engine.execution_options(**WRITE_TRANSACTION)
        self.dialect = dialect

    @classmethod
    def open(cls, url: str) -> SqlStore:
        engine, dialect = open_engine(url)
        return cls(engine, dialect)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        """A write transaction: committed on normal exit, rolled back on any error.

        The commit is durable when this returns (SQLite synchronous=FULL; PostgreSQL
        synchronous_commit not off, see hub/store/dialect.py).
        """
        async with self.dialect.writer(), self._write_engine.begin() as conn:
            uow = SqlUnitOfWork(conn, self.dialect, writable=True)
            yield uow
            await uow.run_end_steps()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[SqlUnitOfWork]:
        """A read-only view; anything written inside is rolled back."""
        async with self._engine.connect() as conn:
            try:
                yield SqlUnitOfWork(conn, self.dialect, writable=False)
            finally:
                await conn.rollback()

    async def create_schema(self) -> None:
        async with self.dialect.writer(), self._write_engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def drop_schema(self) -> None:
        async with self.dialect.writer(), self._write_engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)

    async def close(self) -> None:
        await self._engine.dispose()

"""The SQLAlchemy implementation of the repositories: all of the hub's SQL is here."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.store.dialect import Dialect, open_engine
from hub.store.errors import DuplicateRecord
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
from hub.store.tables import (
    audit_heads,
    audit_log,
    audit_state,
    blob_chunks,
    blobs,
    deliveries,
    messages,
    metadata,
    nodes,
    nonces,
    workflow_events,
    workflow_parties,
    workflow_pointers,
    workflows,
)

__all__ = ["SqlStore", "SqlUnitOfWork"]


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
    )


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

    async def get(self, upload_id: str, *, owner: str | None = None) -> BlobRecord | None:
        query = select(blobs).where(blobs.c.upload_id == upload_id)
        if owner is not None:
            # Another node's upload is not found in the same one statement as a missing one.
            query = query.where(blobs.c.owner == owner)
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        chunks = await self._conn.execute(
            select(blob_chunks.c.idx).where(blob_chunks.c.upload_id == upload_id)
        )
        return BlobRecord(
            upload_id=row.upload_id,
            owner=row.owner,
            sha256=row.sha256,
            size=row.size,
            chunk_size=row.chunk_size,
            chunk_count=row.chunk_count,
            state=row.state,
            created_at=row.created_at,
            received_chunks=frozenset(c[0] for c in chunks),
        )

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
        row = (
            await self._conn.execute(
                select(blobs.c.upload_id)
                .where(
                    blobs.c.sha256 == sha256,
                    blobs.c.state == "complete",
                    or_(blobs.c.owner == node_id, carried),
                )
                .limit(1)
            )
        ).first()
        return row is not None

    async def complete_by_sha256(
        self, sha256: str, *, owner: str | None = None
    ) -> BlobRecord | None:
        query = select(blobs.c.upload_id).where(
            blobs.c.sha256 == sha256, blobs.c.state == "complete"
        )
        if owner is not None:
            query = query.where(blobs.c.owner == owner)
        row = (await self._conn.execute(query.order_by(blobs.c.upload_id).limit(1))).first()
        return None if row is None else await self.get(row[0])

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


class _Workflows:
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def get(self, kind: str, ref: str) -> WorkflowRecord | None:
        row = (
            await self._conn.execute(
                select(workflows).where(workflows.c.kind == kind, workflows.c.ref == ref)
            )
        ).first()
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
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect
        self._state: tuple[int, list[bytes]] | None = None

    async def state_for_update(self) -> tuple[int, list[bytes]]:
        # The row stays locked until the transaction ends, so within one transaction (a
        # group-commit batch) it is read once and then kept here, updated by set_state.
        if self._state is not None:
            return self._state[0], list(self._state[1])
        # FOR UPDATE serialises appends across PostgreSQL processes; SQLite has one writer.
        row = (
            await self._conn.execute(
                select(audit_state).where(audit_state.c.id == 1).with_for_update()
            )
        ).first()
        if row is None:
            await self._conn.execute(audit_state.insert().values(id=1, size=0, frontier_json="[]"))
            self._state = (0, [])
        else:
            self._state = (row.size, [bytes.fromhex(h) for h in json.loads(row.frontier_json)])
        return self._state[0], list(self._state[1])

    async def set_state(self, size: int, frontier: Sequence[bytes]) -> None:
        self._state = (size, list(frontier))
        await self._conn.execute(
            update(audit_state)
            .where(audit_state.c.id == 1)
            .values(size=size, frontier_json=json.dumps([h.hex() for h in frontier]))
        )

    async def add_leaf(
        self,
        row: AuditRow,
        *,
        kind: str | None,
        message_id: str | None,
        subject_ref: str | None,
        case_ref: str | None,
    ) -> None:
        await self._conn.execute(
            audit_log.insert().values(
                idx=row.idx,
                entry_json=row.entry_json,
                leaf_hash=row.leaf_hash,
                at=row.at,
                action=row.action,
                actor=row.actor,
                kind=kind,
                message_id=message_id,
                subject_ref=subject_ref,
                case_ref=case_ref,
            )
        )

    async def add_head(self, head: StoredHead) -> None:
        await self._conn.execute(
            self._dialect.insert_ignore(
                audit_heads,
                {
                    "size": head.size,
                    "root_hash": head.root_hash,
                    "signed_at": head.signed_at,
                    "signature": head.signature,
                },
            )
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
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self.nodes = _Nodes(conn)
        self.messages = _Messages(conn)
        self.nonces = _Nonces(conn, dialect)
        self.workflows = _Workflows(conn, dialect)
        self.audit = _Audit(conn, dialect)
        self.blobs = _Blobs(conn, dialect)


class SqlStore:
    """The hub's storage on SQLite (default, WAL) or PostgreSQL, behind one interface."""

    def __init__(self, engine: AsyncEngine, dialect: Dialect) -> None:
        self._engine = engine
        self.dialect = dialect

    @classmethod
    def open(cls, url: str) -> SqlStore:
        engine, dialect = open_engine(url)
        return cls(engine, dialect)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        """A write transaction: committed on normal exit, rolled back on any error."""
        async with self.dialect.writer(), self._engine.begin() as conn:
            yield SqlUnitOfWork(conn, self.dialect)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[SqlUnitOfWork]:
        """A read-only view; anything written inside is rolled back."""
        async with self._engine.connect() as conn:
            try:
                yield SqlUnitOfWork(conn, self.dialect)
            finally:
                await conn.rollback()

    async def create_schema(self) -> None:
        async with self.dialect.writer(), self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def drop_schema(self) -> None:
        async with self.dialect.writer(), self._engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)

    async def close(self) -> None:
        await self._engine.dispose()

"""Plain records that cross the repository boundary; services never see ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "AuditLeaf",
    "AuditRow",
    "BlobRecord",
    "BlobUsage",
    "DeliveryRecord",
    "InboxRow",
    "NodeKeyRecord",
    "NodeRecord",
    "QuotaUsage",
    "StoredHead",
    "StoredMessage",
    "WorkflowEvent",
    "WorkflowRecord",
]


@dataclass(frozen=True, slots=True)
class NodeRecord:
    id: str
    agency_type: str
    display_name: str
    signing_key: bytes
    encryption_key: bytes
    accreditation: str
    status: str  # active | suspended | revoked
    enrolled_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NodeKeyRecord:
    """One key pair of a node and when it was (or is) the node's key."""

    node_id: str
    signing_key: bytes
    encryption_key: bytes
    valid_from: datetime
    valid_until: datetime | None = None  # None: the current key
    reason: str | None = None  # None (current) | rotated | compromised
    compromised_from: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    sender: str
    kind: str
    envelope_json: str  # canonical JSON of the envelope exactly as signed and received
    envelope_sha256: str
    receipt_json: str
    received_at: datetime
    payload_sha256: str
    payload_size: int
    transport: str  # inline | blob
    # Set once the hub has purged the payload's ciphertext (deploy/retention.md).
    payload_purged_at: datetime | None = None
    purge_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    seq: int
    message_id: str
    recipient: str
    state: str  # pending | delivered | acknowledged
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    ack_json: str | None


@dataclass(frozen=True, slots=True)
class InboxRow:
    seq: int
    message_id: str
    sender: str
    kind: str
    received_at: datetime
    state: str
    payload_size: int
    transport: str


@dataclass(frozen=True, slots=True)
class BlobRecord:
    upload_id: str
    owner: str
    sha256: str
    size: int
    chunk_size: int
    chunk_count: int
    state: str  # uploading | complete | purged
    created_at: datetime
    received_chunks: frozenset[int]
    completed_at: datetime | None = None
    purged_at: datetime | None = None
    purge_reason: str | None = None


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """What counts against a node's blob quota: unfinished (unexpired) and stored blobs."""

    pending_uploads: int
    pending_bytes: int
    stored_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.pending_bytes + self.stored_bytes


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    kind: str
    ref: str
    state_json: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    seq: int
    message_id: str
    message_kind: str
    actor: str
    at: datetime
    summary: str


@dataclass(frozen=True, slots=True)
class AuditRow:
    idx: int
    entry_json: str
    leaf_hash: bytes
    at: datetime
    action: str
    actor: str


@dataclass(frozen=True, slots=True)
class AuditLeaf:
    """A log row with the fields of its entry that the register and reports query by."""

    row: AuditRow
    kind: str | None
    message_id: str | None
    subject_ref: str | None
    case_ref: str | None


@dataclass(frozen=True, slots=True)
class StoredHead:
    size: int
    root_hash: bytes
    signed_at: datetime
    signature: str


@dataclass(frozen=True, slots=True)
class BlobUsage:
    """Uploads in one state, the bytes they announced and the bytes received (for metrics)."""

    state: str
    uploads: int
    declared_bytes: int
    received_bytes: int

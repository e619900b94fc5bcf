"""Table definitions (SQLAlchemy Core). One schema for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "audit_heads",
    "audit_log",
    "audit_state",
    "blob_chunks",
    "blobs",
    "deliveries",
    "messages",
    "metadata",
    "node_keys",
    "nodes",
    "nonces",
    "workflow_events",
    "workflow_parties",
    "workflow_pointers",
    "workflows",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

nodes = Table(
    "nodes",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("agency_type", String(32), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("signing_key", LargeBinary(32), nullable=False),
    Column("encryption_key", LargeBinary(32), nullable=False),
    Column("accreditation", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("enrolled_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Every key pair a node has had (the current one has no valid_until), so signatures made
# before a rotation still verify against the key valid when the hub received them.
# reason: NULL while current, "rotated" once replaced, "compromised" once an operator
# marks it so (its signatures from compromised_from on are not trusted).
node_keys = Table(
    "node_keys",
    metadata,
    Column("node_id", String(80), ForeignKey("nodes.id"), nullable=False),
    Column("signing_key", LargeBinary(32), nullable=False),
    Column("encryption_key", LargeBinary(32), nullable=False),
    Column("valid_from", UTCDateTime(), nullable=False),
    Column("valid_until", UTCDateTime()),
    Column("reason", String(16)),
    Column("compromised_from", UTCDateTime()),
    PrimaryKeyConstraint("node_id", "signing_key", name="pk_node_keys"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("sender", String(80), ForeignKey("nodes.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("envelope_json", Text, nullable=False),
    Column("envelope_sha256", String(64), nullable=False),
    Column("receipt_json", Text, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("payload_size", BigInteger, nullable=False),
    Column("transport", String(8), nullable=False),
    # When and why the hub purged the payload's ciphertext (deploy/retention.md); the
    # envelope's metadata stays, without its inline ciphertext.
    Column("payload_purged_at", UTCDateTime()),
    Column("purge_reason", String(32)),
    Index("ix_messages_payload_sha256", "payload_sha256"),
    # The retention sweep: messages not yet purged, by kind and age.
    Index("ix_messages_retention", "payload_purged_at", "kind", "received_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    # The inbox cursor: strictly increasing per insert on both engines.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False),
    Column("recipient", String(80), ForeignKey("nodes.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Column("acknowledged_at", UTCDateTime()),
    Column("ack_json", Text),
    UniqueConstraint("message_id", "recipient", name="uq_delivery_message_recipient"),
    Index("ix_deliveries_recipient_seq", "recipient", "seq"),
)

nonces = Table(
    "nonces",
    metadata,
    Column("node_id", String(80), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("node_id", "nonce", name="pk_nonces"),
    Index("ix_nonces_expires_at", "expires_at"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("upload_id", String(32), primary_key=True),
    Column("owner", String(80), ForeignKey("nodes.id"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("chunk_size", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime()),
    # state "purged": the file is gone, the row says when and why (deploy/retention.md).
    Column("purged_at", UTCDateTime()),
    Column("purge_reason", String(32)),
    Index("ix_blobs_sha256", "sha256"),
    # A node's quota (its uploads and blobs by state) and the expiry sweep (by age).
    Index("ix_blobs_owner_state", "owner", "state"),
    Index("ix_blobs_state_created", "state", "created_at"),
)

blob_chunks = Table(
    "blob_chunks",
    metadata,
    Column("upload_id", String(32), ForeignKey("blobs.upload_id"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    PrimaryKeyConstraint("upload_id", "idx", name="pk_blob_chunks"),
)

# Workflow state derived from accepted envelopes (DESIGN.md section 6).
workflows = Table(
    "workflows",
    metadata,
    Column("kind", String(16), nullable=False),  # request | case | referral
    Column("ref", String(80), nullable=False),
    Column("state_json", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("kind", "ref", name="pk_workflows"),
)

workflow_parties = Table(
    "workflow_parties",
    metadata,
    Column("kind", String(16), nullable=False),
    Column("ref", String(80), nullable=False),
    Column("node_id", String(80), nullable=False),
    PrimaryKeyConstraint("kind", "ref", "node_id", name="pk_workflow_parties"),
    Index("ix_workflow_parties_node", "node_id", "kind"),
)

# Which workflow each accepted message belongs to, so a reply finds its workflow.
workflow_pointers = Table(
    "workflow_pointers",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("ref", String(80), nullable=False),
)

workflow_events = Table(
    "workflow_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("ref", String(80), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("message_kind", String(32), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("summary", Text, nullable=False),
    Index("ix_workflow_events_ref", "kind", "ref", "seq"),
)

# The transparency log (DESIGN.md section 7): one row per entry, metadata only. The
# columns beside entry_json repeat fields of it so the register and reports can query.
audit_log = Table(
    "audit_log",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_json", Text, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("action", String(24), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("kind", String(32)),
    Column("message_id", String(36)),
    Column("subject_ref", String(80)),
    Column("case_ref", String(80)),
    Index("ix_audit_log_actor", "actor", "idx"),
    Index("ix_audit_log_subject", "subject_ref", "idx"),
    Index("ix_audit_log_at", "at"),
)

# One row: the tree's size and its frontier (the roots of its perfect subtrees), so an
# append needs O(log n) work and the database, not a process, is the authority.
audit_state = Table(
    "audit_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("frontier_json", Text, nullable=False),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("signed_at", UTCDateTime(), nullable=False),
    Column("signature", Text, nullable=False),
)

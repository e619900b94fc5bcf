"""The initial schema: every table of hub/store/tables.py as it stood before migrations.

Revision ID: 0001_initial
Revises: (none)

Written by hand. The tables are built by :func:`create_tables` so that the same
definitions serve the upgrade (``op.create_table``) and the check of a database made by
``metadata.create_all`` before migrations existed (``hub admin migrate`` stamps such a
database 0001_initial only when it equals this schema). UTCDateTime is stored as
``DateTime(timezone=True)``: the TypeDecorator only converts values in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def create_tables(create_table: Callable[..., Any]) -> None:
    """Call ``create_table(name, *columns_and_constraints)`` for each table, in FK order."""
    create_table(
        "nodes",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("agency_type", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(32), nullable=False),
        sa.Column("encryption_key", sa.LargeBinary(32), nullable=False),
        sa.Column("accreditation", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_table(
        "messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sender", sa.String(80), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("envelope_json", sa.Text, nullable=False),
        sa.Column("envelope_sha256", sa.String(64), nullable=False),
        sa.Column("receipt_json", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("payload_size", sa.BigInteger, nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Index("ix_messages_payload_sha256", "payload_sha256"),
    )
    create_table(
        "deliveries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("recipient", sa.String(80), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("ack_json", sa.Text),
        sa.UniqueConstraint("message_id", "recipient", name="uq_delivery_message_recipient"),
        sa.Index("ix_deliveries_recipient_seq", "recipient", "seq"),
    )
    create_table(
        "nonces",
        sa.Column("node_id", sa.String(80), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "nonce", name="pk_nonces"),
        sa.Index("ix_nonces_expires_at", "expires_at"),
    )
    create_table(
        "blobs",
        sa.Column("upload_id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(80), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Index("ix_blobs_sha256", "sha256"),
    )
    create_table(
        "blob_chunks",
        sa.Column("upload_id", sa.String(32), sa.ForeignKey("blobs.upload_id"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "idx", name="pk_blob_chunks"),
    )
    create_table(
        "workflows",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
        sa.Column("state_json", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "ref", name="pk_workflows"),
    )
    create_table(
        "workflow_parties",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
        sa.Column("node_id", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("kind", "ref", "node_id", name="pk_workflow_parties"),
        sa.Index("ix_workflow_parties_node", "node_id", "kind"),
    )
    create_table(
        "workflow_pointers",
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
    )
    create_table(
        "workflow_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("message_kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Index("ix_workflow_events_ref", "kind", "ref", "seq"),
    )
    create_table(
        "audit_log",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entry_json", sa.Text, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(32)),
        sa.Column("message_id", sa.String(36)),
        sa.Column("subject_ref", sa.String(80)),
        sa.Column("case_ref", sa.String(80)),
        sa.Index("ix_audit_log_actor", "actor", "idx"),
        sa.Index("ix_audit_log_subject", "subject_ref", "idx"),
        sa.Index("ix_audit_log_at", "at"),
    )
    create_table(
        "audit_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier_json", sa.Text, nullable=False),
    )
    create_table(
        "audit_heads",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )


_TABLES = (
    "nodes",
    "messages",
    "deliveries",
    "nonces",
    "blobs",
    "blob_chunks",
    "workflows",
    "workflow_parties",
    "workflow_pointers",
    "workflow_events",
    "audit_log",
    "audit_state",
    "audit_heads",
)


def upgrade() -> None:
    create_tables(op.create_table)


def downgrade() -> None:
    for name in reversed(_TABLES):
        op.drop_table(name)

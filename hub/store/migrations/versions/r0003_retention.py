"""Retention at the hub: when and why a payload or blob was purged, and the sweep's indexes.

Revision ID: 0003_retention
Revises: 0002_node_keys

Written by hand (deploy/retention.md). ``messages`` and ``blobs`` gain nullable
``*_purged_at`` and ``purge_reason`` columns, so every existing row reads as not purged;
the indexes serve the retention sweep (unpurged messages by kind and age, uploads by state
and age) and a node's blob quota (its blobs by state).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_retention"
down_revision: str | None = "0002_node_keys"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("payload_purged_at", sa.DateTime(timezone=True)))
    op.add_column("messages", sa.Column("purge_reason", sa.String(32)))
    op.create_index(
        "ix_messages_retention", "messages", ["payload_purged_at", "kind", "received_at"]
    )
    op.add_column("blobs", sa.Column("purged_at", sa.DateTime(timezone=True)))
    op.add_column("blobs", sa.Column("purge_reason", sa.String(32)))
    op.create_index("ix_blobs_owner_state", "blobs", ["owner", "state"])
    op.create_index("ix_blobs_state_created", "blobs", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_blobs_state_created", table_name="blobs")
    op.drop_index("ix_blobs_owner_state", table_name="blobs")
    op.drop_index("ix_messages_retention", table_name="messages")
    # SQLite cannot drop columns in place.
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("purge_reason")
        batch.drop_column("purged_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("purge_reason")
        batch.drop_column("payload_purged_at")

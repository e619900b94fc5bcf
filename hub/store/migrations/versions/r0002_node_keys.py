"""Key rotation: every key pair a node has had, with its period (table node_keys).

Revision ID: 0002_node_keys
Revises: 0001_initial

Each node enrolled so far has had one key pair, its current one, since its enrolment: the
upgrade records exactly that, so the directory can list it with its period at once. The
downgrade drops the history (the nodes keep their current keys); restore a backup to keep
a history made after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_node_keys"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "node_keys",
        sa.Column("node_id", sa.String(80), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(32), nullable=False),
        sa.Column("encryption_key", sa.LargeBinary(32), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.String(16)),
        sa.Column("compromised_from", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("node_id", "signing_key", name="pk_node_keys"),
    )
    op.execute(
        "INSERT INTO node_keys (node_id, signing_key, encryption_key, valid_from) "
        "SELECT id, signing_key, encryption_key, enrolled_at FROM nodes"
    )


def downgrade() -> None:
    op.drop_table("node_keys")

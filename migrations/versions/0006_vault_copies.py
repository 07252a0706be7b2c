"""Package vault: where each load package's durable copy is, journaled before the package loads.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_copies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        # No foreign key: a copy outlives a pruned run, and `runjournal prune` finds it orphaned then.
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("load_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(80), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("stored_at", sa.Float, nullable=False),
        sa.Column("forgotten_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_vault_copies"),
    )
    op.create_index("ix_vault_copies_run_id", "vault_copies", ["run_id"])
    op.create_index("ix_vault_copies_load_id", "vault_copies", ["load_id"])


def downgrade() -> None:
    op.drop_table("vault_copies")

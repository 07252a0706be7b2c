"""Run labels: key/value pairs naming where a run was launched (scheduler run, pod, ...), to filter runs by.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_labels",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(512), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_run_labels_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_run_labels"),
    )
    op.create_index("ix_run_labels_key_value", "run_labels", ["key", "value", "run_id"])


def downgrade() -> None:
    op.drop_table("run_labels")

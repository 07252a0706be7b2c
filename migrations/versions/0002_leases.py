"""One run per pipeline at a time: the leases table.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("pipelines_dir", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("taken_over_from", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("pipeline_name", "pipelines_dir", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")

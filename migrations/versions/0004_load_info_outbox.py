"""The load-info outbox: finished packages to ship to the destination (``store_load_info``).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "load_info_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("load_id", sa.String(64), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("ship_load_id", sa.String(64), nullable=True),
        sa.Column("shipped_at", sa.Float, nullable=True),
        sa.Column("ship_error", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_load_info_outbox_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_load_info_outbox"),
        sa.UniqueConstraint("run_id", "load_id", name="uq_load_info_outbox_run_id_load_id"),
    )
    op.create_index(
        "ix_load_info_outbox_unshipped",
        "load_info_outbox",
        ["pipeline_name", "id"],
        sqlite_where=sa.text("shipped_at IS NULL"),
        postgresql_where=sa.text("shipped_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("load_info_outbox")

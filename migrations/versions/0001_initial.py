"""The journal's first schema: runs, attempts, transitions, traces.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("pipelines_dir", sa.Text, nullable=True),
        sa.Column("destination_type", sa.String(255), nullable=True),
        sa.Column("destination_name", sa.String(255), nullable=True),
        sa.Column("dataset_name", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("process_started_at", sa.Float, nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_pipeline_name_started_at", "runs", ["pipeline_name", "started_at"])
    op.create_index("ix_runs_status_started_at", "runs", ["status", "started_at"])

    op.create_table(
        "attempts",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("failed_step", sa.String(32), nullable=True),
        sa.Column("exception_type", sa.String(255), nullable=True),
        sa.Column("exception_message", sa.Text, nullable=True),
        sa.Column("error_class", sa.String(16), nullable=True),
        sa.Column("wait_seconds", sa.Float, nullable=True),
        sa.Column("load_ids", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "number", name="pk_attempts"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_attempts_run_id_runs"),
    )

    op.create_table(
        "transitions",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("dest", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_transitions"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_transitions_run_id_runs"),
    )

    op.create_table(
        "traces",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("ship_load_id", sa.String(64), nullable=True),
        sa.Column("shipped_at", sa.Float, nullable=True),
        sa.Column("ship_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_traces"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_traces_run_id_runs"),
        sa.UniqueConstraint("run_id", "attempt", name="uq_traces_run_id_attempt"),
    )
    op.create_index(
        "ix_traces_unshipped",
        "traces",
        ["pipeline_name", "id"],
        sqlite_where=sa.text("shipped_at IS NULL"),
        postgresql_where=sa.text("shipped_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("traces")
    op.drop_table("transitions")
    op.drop_table("attempts")
    op.drop_table("runs")

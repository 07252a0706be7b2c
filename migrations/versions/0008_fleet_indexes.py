"""Indexes for the fleet view (`runjournal serve`, /metrics): each pipeline's runs by status, newest first.

The overview's last success and failing streak of every pipeline, and the metrics' runs by pipeline
and status, are index ranges then, however long the journal's history.

Revision ID: 0008
Revises: 0005
"""

from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_pipeline_name_status_started_at", "runs", ["pipeline_name", "status", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_pipeline_name_status_started_at", table_name="runs")

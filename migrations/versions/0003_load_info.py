"""Load info: packages, jobs and schema changes of each run; operator operations.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _run_columns(table: str) -> list:
    """The run_id column every load-info table starts with, and its foreign key to the run."""
    return [
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE", name=f"fk_{table}_run_id_runs"),
    ]


def upgrade() -> None:
    op.create_table(
        "packages",
        *_run_columns("packages"),
        sa.Column("load_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("schema_name", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("completed_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "load_id", name="pk_packages"),
    )
    op.create_index("ix_packages_load_id", "packages", ["load_id"])
    op.create_table(
        "jobs",
        *_run_columns("jobs"),
        sa.Column("load_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(512), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("file_format", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("file_size", sa.BigInteger, nullable=True),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=True),
        sa.Column("failed_message", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "load_id", "job_id", name="pk_jobs"),
    )
    op.create_table(
        "schema_changes",
        *_run_columns("schema_changes"),
        sa.Column("load_id", sa.String(64), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("column_name", sa.String(255), nullable=False),
        sa.Column("data_type", sa.String(64), nullable=True),
        sa.Column("new_table", sa.Boolean, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "load_id", "table_name", "column_name", name="pk_schema_changes"),
    )
    op.create_index("ix_schema_changes_at", "schema_changes", ["at"])
    op.create_table(
        "operations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("pipelines_dir", sa.Text, nullable=True),
        sa.Column("load_id", sa.String(64), nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("details", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
    )
    op.create_index("ix_operations_pipeline_name_at", "operations", ["pipeline_name", "at"])


def downgrade() -> None:
    op.drop_table("operations")
    op.drop_table("schema_changes")
    op.drop_table("jobs")
    op.drop_table("packages")

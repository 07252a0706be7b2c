"""The fleet view's reads at any size (`runjournal serve`, /metrics).

- An index of each pipeline's runs by status, newest first: the overview's last success and
  failing streak of every pipeline are index ranges, however long the history.
- ``pipeline_counts``: runs by (pipeline, status) and attempts by (pipeline, outcome), kept by
  triggers in the transaction of every insert, status change and delete, so that the metrics read a
  row per pipeline instead of counting a million runs, and every writer (old code included) keeps
  them. On PostgreSQL the triggers take a transaction-level advisory lock per pipeline before they
  touch its rows, so that two transactions never lock two count rows in opposite orders.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: The counts of a journal's runs and attempts as they are (the bench's bulk loader uses them too).
COUNT_EVERYTHING = (
    "INSERT INTO pipeline_counts (pipeline_name, kind, value, n) "
    "SELECT pipeline_name, 'run', status, count(*) FROM runs GROUP BY pipeline_name, status",
    "INSERT INTO pipeline_counts (pipeline_name, kind, value, n) "
    "SELECT runs.pipeline_name, 'attempt', attempts.outcome, count(*) FROM attempts "
    "JOIN runs ON runs.id = attempts.run_id GROUP BY runs.pipeline_name, attempts.outcome",
)
_SQLITE_COUNT = """INSERT INTO pipeline_counts (pipeline_name, kind, value, n) VALUES ({pipeline}, '{kind}', {value}, 1)
    ON CONFLICT (pipeline_name, kind, value) DO UPDATE SET n = n + 1;"""
_SQLITE_UNCOUNT = """UPDATE pipeline_counts SET n = n - 1
    WHERE pipeline_name = {pipeline} AND kind = '{kind}' AND value = {value};"""
# (table, kind, counted column, the pipeline of a row as SQL with NEW/OLD)
_COUNTED = (("runs", "run", "status", "{row}.pipeline_name"),
            ("attempts", "attempt", "outcome", "(SELECT pipeline_name FROM runs WHERE id = {row}.run_id)"))

_PG_FUNCTIONS = """
CREATE FUNCTION runjournal_count(p text, k text, old_value text, new_value text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('runjournal.pipeline_counts'), hashtext(p));
    IF old_value IS NOT NULL THEN
        UPDATE pipeline_counts SET n = n - 1 WHERE pipeline_name = p AND kind = k AND value = old_value;
    END IF;
    IF new_value IS NOT NULL THEN
        INSERT INTO pipeline_counts (pipeline_name, kind, value, n) VALUES (p, k, new_value, 1)
        ON CONFLICT (pipeline_name, kind, value) DO UPDATE SET n = pipeline_counts.n + 1;
    END IF;
END $$;

CREATE FUNCTION runjournal_count_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM runjournal_count(NEW.pipeline_name, 'run', NULL, NEW.status);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM runjournal_count(OLD.pipeline_name, 'run', OLD.status, NULL);
    ELSIF OLD.status IS DISTINCT FROM NEW.status THEN
        PERFORM runjournal_count(NEW.pipeline_name, 'run', OLD.status, NEW.status);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION runjournal_count_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT pipeline_name INTO p FROM runs WHERE id = OLD.run_id;
        PERFORM runjournal_count(p, 'attempt', OLD.outcome, NULL);
    ELSE
        SELECT pipeline_name INTO p FROM runs WHERE id = NEW.run_id;
        IF TG_OP = 'INSERT' THEN
            PERFORM runjournal_count(p, 'attempt', NULL, NEW.outcome);
        ELSIF OLD.outcome IS DISTINCT FROM NEW.outcome THEN
            PERFORM runjournal_count(p, 'attempt', OLD.outcome, NEW.outcome);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER pipeline_counts_runs AFTER INSERT OR DELETE OR UPDATE OF status ON runs
    FOR EACH ROW EXECUTE FUNCTION runjournal_count_runs();
CREATE TRIGGER pipeline_counts_attempts AFTER INSERT OR DELETE OR UPDATE OF outcome ON attempts
    FOR EACH ROW EXECUTE FUNCTION runjournal_count_attempts();
"""


def upgrade() -> None:
    op.create_index("ix_runs_pipeline_name_status_started_at", "runs", ["pipeline_name", "status", "started_at"])
    op.create_table(
        "pipeline_counts",
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pipeline_name", "kind", "value", name="pk_pipeline_counts"),
    )
    for statement in COUNT_EVERYTHING:
        op.execute(statement)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTIONS)
        return
    for table, kind, column, pipeline in _COUNTED:
        new, old = pipeline.format(row="NEW"), pipeline.format(row="OLD")
        count = _SQLITE_COUNT.format(pipeline=new, kind=kind, value=f"NEW.{column}")
        uncount = _SQLITE_UNCOUNT.format(pipeline=old, kind=kind, value=f"OLD.{column}")
        op.execute(f"CREATE TRIGGER pipeline_counts_{table}_insert AFTER INSERT ON {table} BEGIN {count} END")
        op.execute(f"CREATE TRIGGER pipeline_counts_{table}_delete AFTER DELETE ON {table} BEGIN {uncount} END")
        op.execute(f"CREATE TRIGGER pipeline_counts_{table}_update AFTER UPDATE OF {column} ON {table} "
                   f"WHEN OLD.{column} IS NOT NEW.{column} BEGIN {uncount} {count} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER pipeline_counts_runs ON runs; DROP TRIGGER pipeline_counts_attempts ON attempts; "
                   "DROP FUNCTION runjournal_count_runs(); DROP FUNCTION runjournal_count_attempts(); "
                   "DROP FUNCTION runjournal_count(text, text, text, text);")
    else:
        for table, *_ in _COUNTED:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER pipeline_counts_{table}_{event}")
    op.drop_table("pipeline_counts")
    op.drop_index("ix_runs_pipeline_name_status_started_at", table_name="runs")

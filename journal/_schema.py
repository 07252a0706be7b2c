"""The journal's tables: one schema for SQLite and PostgreSQL.

Times are epoch seconds (float) so that both dialects store, compare and index
them the same way, without timezone surprises.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline_name", String(255), nullable=False),
    Column("pipelines_dir", Text, nullable=True),
    Column("destination_type", String(255), nullable=True),
    Column("destination_name", String(255), nullable=True),
    Column("dataset_name", String(255), nullable=True),
    Column("status", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    # Guards pid reuse when deciding whether the run's process is still alive.
    Column("process_started_at", Float, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("error_type", String(255), nullable=True),
    Column("error_message", Text, nullable=True),
    # Run configuration without secrets: runner options, origin, non-secret destination facts.
    Column("config", JSON, nullable=False),
    Index(None, "started_at"),
    Index(None, "pipeline_name", "started_at"),
    Index(None, "status", "started_at"),
    # The fleet view: each pipeline's last success and failing streak, and runs counted by pipeline and status.
    Index(None, "pipeline_name", "status", "started_at"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    # "finalize" (pending packages found at start) or "run" (the caller's data).
    Column("phase", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("failed_step", String(32), nullable=True),
    Column("exception_type", String(255), nullable=True),
    Column("exception_message", Text, nullable=True),
    # "terminal", "transient" or "interrupted": how the engine classified the error.
    Column("error_class", String(16), nullable=True),
    Column("wait_seconds", Float, nullable=True),
    Column("load_ids", JSON, nullable=True),
)

transitions = Table(
    "transitions",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("dest", String(32), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("details", JSON, nullable=True),
)

# Labels of a run (``airflow.dag_id``, ``k8s.pod``, ...): one row per key. `runs --label k=v` looks a pair
# up in the (key, value, run_id) index and joins the runs it names, so a label that names few runs
# among millions is found without scanning them.
run_labels = Table(
    "run_labels",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(512), nullable=False),
    Index("ix_run_labels_key_value", "key", "value", "run_id"),
)


def _outbox(name: str, key: Column) -> Table:
    """An outbox table: JSON payloads of a run, each shipped to the destination once, keyed by ``key`` in its run.

    The shipment's load id is recorded before it loads, which makes shipping idempotent across
    crashes (see runjournal._shipping). What is left to ship is read on every run: the partial index
    keeps that an index scan.
    """
    table = Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        key,
        Column("pipeline_name", String(255), nullable=False),
        Column("created_at", Float, nullable=False),
        # JSON text, secrets removed before it was written.
        Column("payload", Text, nullable=False),
        Column("ship_load_id", String(64), nullable=True),
        Column("shipped_at", Float, nullable=True),
        Column("ship_error", Text, nullable=True),
        UniqueConstraint("run_id", key.name),
    )
    Index(
        f"ix_{name}_unshipped",
        table.c.pipeline_name,
        table.c.id,
        sqlite_where=table.c.shipped_at.is_(None),
        postgresql_where=table.c.shipped_at.is_(None),
    )
    return table


# Each attempt's trace.
traces = _outbox("traces", Column("attempt", Integer, nullable=False))
# With ``store_load_info``, each finished package of a run: a package finishes once, so it is shipped once.
load_info_outbox = _outbox("load_info_outbox", Column("load_id", String(64), nullable=False))

# One row per pipeline working directory: the run that may use it. The holder is live while its
# run's status is "running", so ending or crashing a run frees the lease with no second write.
# No foreign key: pruning an old run must not need the lease row to go first.
leases = Table(
    "leases",
    metadata,
    Column("pipeline_name", String(255), primary_key=True),
    Column("pipelines_dir", Text, primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("taken_over_from", String(32), nullable=True),
)

# A run's load info, journaled with the transition that leaves `load` / `finalize_pending` (or with
# the failed attempt): the packages the load step reported, their jobs, and the schema changes the
# loaded packages applied at the destination.
packages = Table(
    "packages",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("load_id", String(64), primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("schema_name", String(255), nullable=True),
    # dlt's package state: "loaded", "aborted", or "normalized" (still pending).
    Column("state", String(16), nullable=False),
    Column("completed_at", Float, nullable=True),
    # Which runs touched a package (a pending one is finalized by a later run, or aborted).
    Index(None, "load_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("load_id", String(64), primary_key=True),
    Column("job_id", String(512), primary_key=True),
    Column("table_name", String(255), nullable=False),
    Column("file_format", String(32), nullable=False),
    # "completed", "failed", "new" (to be retried) or "started".
    Column("state", String(16), nullable=False),
    Column("file_size", BigInteger, nullable=True),
    Column("retry_count", Integer, nullable=False),
    # Rows normalize wrote to the job's file; null when normalize ran in another process.
    Column("row_count", BigInteger, nullable=True),
    # Secrets removed, cut to a few KB.
    Column("failed_message", Text, nullable=True),
)

schema_changes = Table(
    "schema_changes",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("load_id", String(64), primary_key=True),
    Column("table_name", String(255), primary_key=True),
    Column("column_name", String(255), primary_key=True),
    Column("data_type", String(64), nullable=True),
    # True when the column came with a table the package created, False when it was added to one.
    Column("new_table", Boolean, nullable=False),
    Column("at", Float, nullable=False),
    # `runjournal schema-changes --since T` across all runs.
    Index(None, "at"),
)

# Operator actions on a pipeline outside any run (`runjournal abort-package`): who did what, when.
operations = Table(
    "operations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("pipeline_name", String(255), nullable=False),
    Column("pipelines_dir", Text, nullable=True),
    Column("load_id", String(64), nullable=True),
    Column("at", Float, nullable=False),
    Column("host", String(255), nullable=False),
    Column("user", String(255), nullable=True),
    Column("details", JSON, nullable=True),
    Index(None, "pipeline_name", "at"),
)

# Runs by (pipeline, "run", status) and attempts by (pipeline, "attempt", outcome), kept by the
# triggers migration 0007 creates: the metrics read a row per pipeline, not every run.
pipeline_counts = Table(
    "pipeline_counts",
    metadata,
    Column("pipeline_name", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("value", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Package vault (runjournal._vault): a durable copy of a load package, recorded before the package loads.
vault_copies = Table(
    "vault_copies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key: a copy outlives a pruned run, and `runjournal prune` finds it orphaned then.
    Column("run_id", String(32), nullable=False),
    Column("pipeline_name", String(255), nullable=False),
    Column("load_id", String(64), nullable=False),
    # "extracted" (taken before normalize) or "normalized" (taken before load).
    Column("stage", String(16), nullable=False),
    # The copy's URL, never with credentials in it.
    Column("location", Text, nullable=False),
    # "sha256:<hex>" of the copy's bytes.
    Column("checksum", String(80), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("host", String(255), nullable=False),
    Column("stored_at", Float, nullable=False),
    Column("forgotten_at", Float, nullable=True),
    Index(None, "run_id"),
    Index(None, "load_id"),
)

"""Reads: listing runs and telling one run's story. Every filter is served by an index."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from sqlalchemy import Connection, Row, func, select

from ._errors import RunNotFound
from ._records import (
    Attempt, JobRecord, Operation, PackageRecord, Run, RunStory, SchemaChange, TraceRecord, Transition,
)
from ._schema import attempts, jobs, operations, packages, runs, schema_changes, traces, transitions


def to_run(row: Row) -> Run:
    return Run(**row._asdict())


def list_runs(
    conn: Connection,
    *,
    pipeline: Optional[str] = None,
    status: Union[str, Sequence[str], None] = None,
    since: Optional[float] = None,
    until: Optional[float] = None,
    limit: Optional[int] = 50,
) -> list[Run]:
    query = select(runs)
    if pipeline is not None:
        query = query.where(runs.c.pipeline_name == pipeline)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(runs.c.status.in_(statuses))
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    if until is not None:
        query = query.where(runs.c.started_at < until)
    query = query.order_by(runs.c.started_at.desc(), runs.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [to_run(row) for row in conn.execute(query)]


def resolve_run_id(conn: Connection, id_or_prefix: str) -> str:
    """A full run id, from the id itself or from a unique prefix of it (as git does)."""
    id_or_prefix = id_or_prefix.lower()  # ids are lowercase hex; SQLite's LIKE ignores case, PostgreSQL's does not
    exact = conn.execute(select(runs.c.id).where(runs.c.id == id_or_prefix)).scalar()
    if exact is not None:
        return exact
    escaped = id_or_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = list(
        conn.execute(select(runs.c.id).where(runs.c.id.like(escaped + "%", escape="\\")).limit(2)).scalars()
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise RunNotFound(f"no run with id {id_or_prefix!r} in the journal")
    raise RunNotFound(f"run id prefix {id_or_prefix!r} is ambiguous: give more characters")


def get_run(conn: Connection, run_id: str) -> Run:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise RunNotFound(f"no run with id {run_id!r} in the journal")
    return to_run(row)


def get_story(conn: Connection, id_or_prefix: str) -> RunStory:
    run = get_run(conn, resolve_run_id(conn, id_or_prefix))
    attempt_rows = conn.execute(
        select(attempts).where(attempts.c.run_id == run.id).order_by(attempts.c.number)
    )
    transition_rows = conn.execute(
        select(transitions).where(transitions.c.run_id == run.id).order_by(transitions.c.seq)
    )
    trace_rows = conn.execute(select(traces).where(traces.c.run_id == run.id).order_by(traces.c.attempt))

    def of_run(table, record, *order):
        rows = conn.execute(select(table).where(table.c.run_id == run.id).order_by(*order))
        return tuple(record(**_without_run_id(row)) for row in rows)

    return RunStory(
        run=run,
        attempts=tuple(_to_attempt(row) for row in attempt_rows),
        transitions=tuple(_to_transition(row) for row in transition_rows),
        traces=tuple(TraceRecord(**row._asdict()) for row in trace_rows),
        packages=of_run(packages, PackageRecord, packages.c.load_id),
        jobs=of_run(jobs, JobRecord, jobs.c.load_id, jobs.c.table_name, jobs.c.job_id),
        schema_changes=of_run(
            schema_changes, SchemaChange, schema_changes.c.load_id, schema_changes.c.table_name,
            schema_changes.c.column_name,
        ),
    )


def list_schema_changes(
    conn: Connection, *, pipeline: Optional[str] = None, since: Optional[float] = None, limit: Optional[int] = None
) -> list[SchemaChange]:
    query = select(schema_changes, runs.c.pipeline_name).join(runs, runs.c.id == schema_changes.c.run_id)
    if pipeline is not None:
        query = query.where(runs.c.pipeline_name == pipeline)
    if since is not None:
        query = query.where(schema_changes.c.at >= since)
    query = query.order_by(
        schema_changes.c.at.desc(), schema_changes.c.table_name, schema_changes.c.column_name
    )
    if limit is not None:
        query = query.limit(limit)
    return [SchemaChange(**row._asdict()) for row in conn.execute(query)]


def failed_job_counts(conn: Connection, run_ids: Sequence[str]) -> dict[str, int]:
    if not run_ids:
        return {}
    query = (
        select(jobs.c.run_id, func.count())
        .where(jobs.c.run_id.in_(list(run_ids)), jobs.c.state == "failed")
        .group_by(jobs.c.run_id)
    )
    return {run_id: count for run_id, count in conn.execute(query)}


def list_operations(conn: Connection, *, pipeline: Optional[str] = None) -> list[Operation]:
    query = select(operations).order_by(operations.c.at.desc(), operations.c.id.desc())
    if pipeline is not None:
        query = query.where(operations.c.pipeline_name == pipeline)
    return [Operation(**row._asdict()) for row in conn.execute(query)]


def unshipped_traces(conn: Connection, pipeline_name: str) -> list[TraceRecord]:
    query = (
        select(traces)
        .where(traces.c.pipeline_name == pipeline_name, traces.c.shipped_at.is_(None))
        .order_by(traces.c.id)
    )
    return [TraceRecord(**row._asdict()) for row in conn.execute(query)]


def _to_attempt(row: Row) -> Attempt:
    values = row._asdict()
    values.pop("run_id")
    values["load_ids"] = tuple(values["load_ids"] or ())
    return Attempt(**values)


def _to_transition(row: Row) -> Transition:
    return Transition(**_without_run_id(row))


def _without_run_id(row: Row) -> dict:
    values = row._asdict()
    values.pop("run_id")
    return values

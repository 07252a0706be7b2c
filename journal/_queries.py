"""Reads: listing runs and telling one run's story. Every filter is served by an index."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from ._dialects import Session
from ._errors import RunNotFound
from ._records import Operation, Run, RunStory, SchemaChange
from ._rows import (
    ATTEMPT_COLUMNS, JOB_COLUMNS, OPERATION_COLUMNS, PACKAGE_COLUMNS, RUN_COLUMNS, SCHEMA_CHANGE_COLUMNS,
    TRACE_COLUMNS, TRANSITION_COLUMNS, to_attempt, to_job, to_operation, to_package, to_run, to_schema_change,
    to_trace, to_transition,
)
from ._sql import bind_list, scalar, where


def list_runs(
    session: Session,
    *,
    pipeline: Optional[str] = None,
    status: Union[str, Sequence[str], None] = None,
    since: Optional[float] = None,
    until: Optional[float] = None,
    limit: Optional[int] = 50,
) -> list[Run]:
    conditions: list[str] = []
    params: dict[str, Any] = {"pipeline": pipeline, "since": since, "until": until, "limit": limit}
    if pipeline is not None:
        conditions.append("pipeline_name = :pipeline")
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        conditions.append(f"status IN {bind_list(params, 'status', statuses)}")
    if since is not None:
        conditions.append("started_at >= :since")
    if until is not None:
        conditions.append("started_at < :until")
    sql = f"SELECT {RUN_COLUMNS} FROM runs{where(conditions)} ORDER BY started_at DESC, id DESC"
    if limit is not None:
        sql += " LIMIT :limit"
    return [to_run(row) for row in session.rows(sql, params)]


def resolve_run_id(session: Session, id_or_prefix: str) -> str:
    """A full run id, from the id itself or from a unique prefix of it (as git does)."""
    id_or_prefix = id_or_prefix.lower()  # ids are lowercase hex; SQLite's LIKE ignores case, PostgreSQL's does not
    if session.rows("SELECT id FROM runs WHERE id = :id", {"id": id_or_prefix}):
        return id_or_prefix
    escaped = id_or_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = session.rows("SELECT id FROM runs WHERE id LIKE :pattern ESCAPE '\\' LIMIT 2", {"pattern": escaped + "%"})
    if len(found) == 1:
        return found[0]["id"]
    if not found:
        raise RunNotFound(f"no run with id {id_or_prefix!r} in the journal")
    raise RunNotFound(f"run id prefix {id_or_prefix!r} is ambiguous: give more characters")


def last_heard_from(session: Session, host: str) -> Optional[float]:
    # every transition and every beat sets heartbeat_at: the latest one is the host's last word
    return scalar(session, "SELECT max(heartbeat_at) FROM runs WHERE host = :host", {"host": host})


def find_run(session: Session, run_id: str) -> Optional[Run]:
    rows = session.rows(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = :id", {"id": run_id})
    return to_run(rows[0]) if rows else None


def get_run(session: Session, run_id: str) -> Run:
    run = find_run(session, run_id)
    if run is None:
        raise RunNotFound(f"no run with id {run_id!r} in the journal")
    return run


def get_story(session: Session, id_or_prefix: str) -> RunStory:
    run = get_run(session, resolve_run_id(session, id_or_prefix))

    def of_run(columns: str, table: str, order_by: str) -> list[dict[str, Any]]:
        sql = f"SELECT {columns} FROM {table} WHERE run_id = :run_id ORDER BY {order_by}"
        return session.rows(sql, {"run_id": run.id})

    return RunStory(
        run=run,
        attempts=tuple(map(to_attempt, of_run(ATTEMPT_COLUMNS, "attempts", "number"))),
        transitions=tuple(map(to_transition, of_run(TRANSITION_COLUMNS, "transitions", "seq"))),
        traces=tuple(map(to_trace, of_run(TRACE_COLUMNS, "traces", "attempt"))),
        packages=tuple(map(to_package, of_run(PACKAGE_COLUMNS, "packages", "load_id"))),
        jobs=tuple(map(to_job, of_run(JOB_COLUMNS, "jobs", "load_id, table_name, job_id"))),
        schema_changes=tuple(
            map(to_schema_change, of_run(SCHEMA_CHANGE_COLUMNS, "schema_changes", "load_id, table_name, column_name"))
        ),
    )


def list_schema_changes(
    session: Session, *, pipeline: Optional[str] = None, since: Optional[float] = None, limit: Optional[int] = None
) -> list[SchemaChange]:
    conditions: list[str] = []
    if pipeline is not None:
        conditions.append("runs.pipeline_name = :pipeline")
    if since is not None:
        conditions.append("schema_changes.at >= :since")
    sql = (  # the two tables have no column name in common
        f"SELECT {SCHEMA_CHANGE_COLUMNS}, run_id, pipeline_name "
        f"FROM schema_changes JOIN runs ON runs.id = schema_changes.run_id{where(conditions)} "
        "ORDER BY schema_changes.at DESC, schema_changes.table_name, schema_changes.column_name"
    )
    if limit is not None:
        sql += " LIMIT :limit"
    rows = session.rows(sql, {"pipeline": pipeline, "since": since, "limit": limit})
    return [to_schema_change(row) for row in rows]


def failed_job_counts(session: Session, run_ids: Sequence[str]) -> dict[str, int]:
    if not run_ids:
        return {}
    params: dict[str, Any] = {}
    sql = (
        f"SELECT run_id, count(*) AS failed FROM jobs WHERE run_id IN {bind_list(params, 'run_id', run_ids)} "
        "AND state = 'failed' GROUP BY run_id"
    )
    return {row["run_id"]: row["failed"] for row in session.rows(sql, params)}


def list_operations(session: Session, *, pipeline: Optional[str] = None) -> list[Operation]:
    condition = " WHERE pipeline_name = :pipeline" if pipeline is not None else ""
    sql = f"SELECT {OPERATION_COLUMNS} FROM operations{condition} ORDER BY at DESC, id DESC"
    return [to_operation(row) for row in session.rows(sql, {"pipeline": pipeline})]

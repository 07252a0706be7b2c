"""Reads: listing runs and telling one run's story. Every filter is served by an index."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Optional, Sequence, Union

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
    labels: Optional[Mapping[str, str]] = None,
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
    for i, (key, value) in enumerate((labels or {}).items()):
        conditions.append(_label_condition(session, params, i, key, value))
    sql = f"SELECT {RUN_COLUMNS} FROM runs{where(conditions)} ORDER BY started_at DESC, id DESC"
    if limit is not None:
        sql += " LIMIT :limit"
    runs = [to_run(row) for row in session.rows(sql, params)]
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(runs), _IDS_PER_QUERY):
        chunk: dict[str, Any] = {}
        ids = bind_list(chunk, "run_id", [run.id for run in runs[start:start + _IDS_PER_QUERY]])
        found.update(_labels_where(session, f"run_id IN {ids}", chunk))
    return [replace(run, labels=found.get(run.id, {})) for run in runs]


#: Up to this many runs named by a label are looked up by id; a label naming more is checked run by run,
#: newest first, which stops at the limit. Either way a filter reads a few rows, not all runs or all labels.
_FEW_RUNS = 5_000
_IDS_PER_QUERY = 500


def _label_condition(session: Session, params: dict[str, Any], i: int, key: str, value: str) -> str:
    """The runs labelled ``key=value``, as the condition the database serves fastest for how many they are.

    Planners cannot tell (SQLite's least of all): ``id IN (subquery)`` makes SQLite walk all runs newest
    first, while a correlated EXISTS walks them all when the label names one run among a million.
    """
    pair = {"key": key, "value": value, "few": _FEW_RUNS + 1}
    named = session.rows("SELECT run_id FROM run_labels WHERE key = :key AND value = :value LIMIT :few", pair)
    if len(named) <= _FEW_RUNS:  # the (key, value, run_id) index gave them all
        return f"id IN {bind_list(params, f'label_{i}_run', [row['run_id'] for row in named])}"
    params[f"label_key_{i}"], params[f"label_value_{i}"] = key, value
    return (  # the primary key (run_id, key) answers it for each run
        f"EXISTS (SELECT 1 FROM run_labels WHERE run_labels.run_id = runs.id "
        f"AND run_labels.key = :label_key_{i} AND run_labels.value = :label_value_{i})"
    )


def _labels_where(session: Session, condition: str, params: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The labels of the runs ``condition`` (on run_labels.run_id) selects, by run id."""
    found: dict[str, dict[str, str]] = {}
    for row in session.rows(f"SELECT run_id, key, value FROM run_labels WHERE {condition}", params):
        found.setdefault(row["run_id"], {})[row["key"]] = row["value"]
    return {run_id: dict(sorted(labels.items())) for run_id, labels in found.items()}


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
    if not rows:
        return None
    labels = _labels_where(session, "run_id = :id", {"id": run_id}).get(run_id, {})
    return replace(to_run(rows[0]), labels=labels)


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

"""Writes: each call runs inside the caller's write transaction, which took the write lock up front."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping, Optional, Sequence

from ._dialects import Session
from ._errors import LeaseHeld
from ._queries import find_run
from ._records import AttemptEnd, AttemptStart, JobRecord, LoadRecord, NewRun, Operation, Owner, RunChange, Transition
from ._rows import TRANSITION_COLUMNS, to_json, to_transition
from ._sql import bind_list, scalar

INSERT_TRANSITION = (
    'INSERT INTO transitions (run_id, seq, attempt, source, dest, "trigger", at, details) '
    "VALUES (:run_id, :seq, :attempt, :source, :dest, :trigger, :at, :details)"
)
INSERT_PACKAGE = (
    "INSERT INTO packages (run_id, load_id, attempt, schema_name, state, completed_at) "
    "VALUES (:run_id, :load_id, :attempt, :schema_name, :state, :completed_at)"
)
INSERT_JOB = (
    "INSERT INTO jobs (run_id, load_id, job_id, table_name, file_format, state, file_size, retry_count, row_count, "
    "failed_message) VALUES (:run_id, :load_id, :job_id, :table_name, :file_format, :state, :file_size, "
    ":retry_count, :row_count, :failed_message)"
)
INSERT_LOAD_INFO = (
    "INSERT INTO load_info_outbox (run_id, load_id, pipeline_name, created_at, payload) "
    "VALUES (:run_id, :load_id, :pipeline_name, :at, :payload) ON CONFLICT DO NOTHING"
)
INSERT_SCHEMA_CHANGE = (
    "INSERT INTO schema_changes (run_id, load_id, table_name, column_name, data_type, new_table, at) "
    "VALUES (:run_id, :load_id, :table_name, :column_name, :data_type, :new_table, :at)"
)


def insert_run(session: Session, run_id: str, new: NewRun, at: float) -> None:
    session.run(
        "INSERT INTO runs (id, pipeline_name, pipelines_dir, destination_type, destination_name, dataset_name, "
        "status, state, attempt, host, pid, process_started_at, started_at, heartbeat_at, config) "
        "VALUES (:id, :pipeline_name, :pipelines_dir, :destination_type, :destination_name, :dataset_name, "
        "'running', :initial_state, 0, :host, :pid, :process_started_at, :at, :at, :config)",
        {**{k: v for k, v in vars(new).items() if k != "labels"}, "id": run_id, "at": at,
         "config": to_json(dict(new.config))},
    )
    set_labels(session, run_id, new.labels)


def set_labels(session: Session, run_id: str, labels: Mapping[str, str]) -> None:
    """Add ``labels`` to the run; a key it already has takes the new value (a retry's try number)."""
    if not labels:
        return
    params: dict[str, Any] = {"run_id": run_id}
    keys = bind_list(params, "key", list(labels))
    session.run(f"DELETE FROM run_labels WHERE run_id = :run_id AND key IN {keys}", params)
    session.run_many(
        "INSERT INTO run_labels (run_id, key, value) VALUES (:run_id, :key, :value)",
        [{"run_id": run_id, "key": key, "value": value} for key, value in labels.items()],
    )


def take_lease(session: Session, pipeline_name: str, pipelines_dir: str, run_id: str, at: float) -> Optional[dict]:
    """Give the pipeline's lease to ``run_id``, in the caller's transaction.

    Raises :class:`LeaseHeld` while another run holding it is still running; returns what was
    taken over from a crashed holder, or None.
    """
    key = "pipeline_name = :pipeline_name AND pipelines_dir = :pipelines_dir"
    params = {"pipeline_name": pipeline_name, "pipelines_dir": pipelines_dir, "run_id": run_id, "at": at}
    # Insert-if-absent, then lock the row: on PostgreSQL a concurrent taker waits here for our commit.
    session.run(
        "INSERT INTO leases (pipeline_name, pipelines_dir, run_id, acquired_at) "
        "VALUES (:pipeline_name, :pipelines_dir, :run_id, :at) ON CONFLICT DO NOTHING",
        params,
    )
    holder_id = scalar(session, f"SELECT run_id FROM leases WHERE {key}{session.dialect.for_update}", params)
    if holder_id == run_id:
        return None
    holder = find_run(session, holder_id)
    if holder is not None and holder.status == "running":
        raise LeaseHeld(pipeline_name, pipelines_dir, holder)
    session.run(
        f"UPDATE leases SET run_id = :run_id, acquired_at = :at, taken_over_from = :holder_id WHERE {key}",
        {**params, "holder_id": holder_id},
    )
    if holder is not None and holder.status == "crashed":
        return {"taken_over_from": holder_id, "holder_status": holder.status}
    return None  # the holder ended: an ordinary succession, not a takeover


def reclaim_run(session: Session, run_id: str, statuses: tuple[str, ...], owner: Owner, at: float) -> bool:
    """Compare-and-set: a run that ended in one of ``statuses`` is running again, in ``owner``'s process."""
    params: dict[str, Any] = {**vars(owner), "run_id": run_id, "at": at}
    moved = session.run(
        "UPDATE runs SET status = 'running', host = :host, pid = :pid, process_started_at = :process_started_at, "
        "heartbeat_at = :at, finished_at = NULL, error_type = NULL, error_message = NULL "
        f"WHERE id = :run_id AND status IN {bind_list(params, 'status', statuses)}",
        params,
    )
    return moved == 1


def find_transition(session: Session, run_id: str, *, attempt: int, at: float, trigger: str) -> Optional[Transition]:
    """The run's transition of ``attempt`` committed at ``at`` by ``trigger``, if it is there (after a
    commit whose answer was lost: ``at`` is the writer's own clock reading, so it names one transition)."""
    rows = session.rows(
        f"SELECT {TRANSITION_COLUMNS} FROM transitions "
        'WHERE run_id = :run_id AND attempt = :attempt AND at = :at AND "trigger" = :trigger',
        {"run_id": run_id, "attempt": attempt, "at": at, "trigger": trigger},
    )
    return to_transition(rows[0]) if rows else None


def find_trace(session: Session, run_id: str, attempt: int) -> Optional[int]:
    """The id of the attempt's trace, if it is there (an attempt has one trace)."""
    return scalar(session, "SELECT id FROM traces WHERE run_id = :run_id AND attempt = :attempt",
                  {"run_id": run_id, "attempt": attempt})


def last_seq(session: Session, run_id: str) -> int:
    return scalar(session, "SELECT coalesce(max(seq), 0) FROM transitions WHERE run_id = :run_id", {"run_id": run_id})


def record_transition(
    session: Session,
    run_id: str,
    transition: Transition,
    change: Optional[RunChange],
    attempt_start: Optional[AttemptStart],
    attempt_end: Optional[AttemptEnd],
    load_record: Optional[LoadRecord] = None,
) -> None:
    details = to_json(dict(transition.details)) if transition.details else None
    session.run(INSERT_TRANSITION, {**vars(transition), "run_id": run_id, "details": details})
    if attempt_end is not None:
        _end_attempt(session, run_id, attempt_end)
    if attempt_start is not None:
        session.run(
            "INSERT INTO attempts (run_id, number, phase, started_at, outcome) "
            "VALUES (:run_id, :number, :phase, :started_at, 'running')",
            {**vars(attempt_start), "run_id": run_id},
        )
    assignments = ["state = :dest", "attempt = :attempt", "heartbeat_at = :at"]
    params: dict[str, Any] = {
        "run_id": run_id, "dest": transition.dest, "attempt": transition.attempt, "at": transition.at,
    }
    if change is not None:
        if change.status is not None:
            assignments.append("status = :status")
        if change.finished:
            assignments.append("finished_at = :at")
        if change.error_type is not None:
            assignments += ["error_type = :error_type", "error_message = :error_message"]
        params.update(vars(change))
    session.run(f"UPDATE runs SET {', '.join(assignments)} WHERE id = :run_id", params)
    if load_record is not None:
        _record_load(session, run_id, load_record, transition.at)


def _end_attempt(session: Session, run_id: str, end: AttemptEnd) -> None:
    session.run(
        "UPDATE attempts SET finished_at = :finished_at, outcome = :outcome, failed_step = :failed_step, "
        "exception_type = :exception_type, exception_message = :exception_message, error_class = :error_class, "
        "wait_seconds = :wait_seconds, load_ids = :load_ids WHERE run_id = :run_id AND number = :number",
        {**vars(end), "run_id": run_id, "load_ids": to_json(list(end.load_ids))},
    )


def _record_load(session: Session, run_id: str, record: LoadRecord, at: float) -> None:
    """Replace the run's record of these packages (an attempt that failed, then one that loaded them).

    Finished packages to ship go to the load-info outbox once: a package finishes only once.
    """
    params: dict[str, Any] = {"run_id": run_id}
    load_ids = bind_list(params, "load_id", [package.load_id for package in record.packages])
    jobs = _with_known_row_counts(session, record.jobs, load_ids, params)
    for table in ("schema_changes", "jobs", "packages"):
        session.run(f"DELETE FROM {table} WHERE run_id = :run_id AND load_id IN {load_ids}", params)
    for sql, rows in (
        (INSERT_PACKAGE, record.packages), (INSERT_JOB, jobs), (INSERT_SCHEMA_CHANGE, record.schema_changes)
    ):
        if rows:
            session.run_many(sql, [{**vars(row), "run_id": run_id} for row in rows])
    if record.to_ship:
        pipeline_name = scalar(session, "SELECT pipeline_name FROM runs WHERE id = :run_id", params)
        session.run_many(INSERT_LOAD_INFO, [
            {**vars(entry), "run_id": run_id, "pipeline_name": pipeline_name, "at": at} for entry in record.to_ship
        ])


def _with_known_row_counts(
    session: Session, jobs: Sequence[JobRecord], load_ids: str, params: dict[str, Any]
) -> list[JobRecord]:
    """The jobs, each keeping the row count journaled for it before when this report has none: the package
    was normalized by an earlier attempt's process, or by an earlier run that left it pending."""
    if all(job.row_count is not None for job in jobs):
        return list(jobs)
    known = {
        (row["load_id"], row["job_id"]): row["row_count"]
        for row in session.rows(  # ix_packages_load_id finds the runs that reported these packages
            "SELECT jobs.load_id, jobs.job_id, jobs.row_count FROM packages JOIN jobs ON jobs.run_id = packages.run_id "
            f"AND jobs.load_id = packages.load_id WHERE packages.load_id IN {load_ids} AND jobs.row_count IS NOT NULL",
            params,
        )
    }
    return [job if job.row_count is not None else replace(job, row_count=known.get((job.load_id, job.job_id)))
            for job in jobs]


def insert_operation(session: Session, operation: Operation) -> int:
    return scalar(
        session,
        'INSERT INTO operations (kind, pipeline_name, pipelines_dir, load_id, at, host, "user", details) '
        "VALUES (:kind, :pipeline_name, :pipelines_dir, :load_id, :at, :host, :user, :details) RETURNING id",
        {**vars(operation), "details": to_json(None if operation.details is None else dict(operation.details))},
    )


def beat(session: Session, run_id: str, at: float) -> None:
    session.run("UPDATE runs SET heartbeat_at = :at WHERE id = :run_id", {"run_id": run_id, "at": at})


def insert_trace(session: Session, run_id: str, attempt: int, pipeline_name: str, payload: str, at: float) -> int:
    return scalar(
        session,
        "INSERT INTO traces (run_id, attempt, pipeline_name, created_at, payload) "
        "VALUES (:run_id, :attempt, :pipeline_name, :at, :payload) RETURNING id",
        {"run_id": run_id, "attempt": attempt, "pipeline_name": pipeline_name, "at": at, "payload": payload},
    )


def update_outbox(session: Session, table: str, item_ids: Iterable[int], **values: Any) -> None:
    item_ids = list(item_ids)
    if not item_ids:
        return
    params = dict(values)
    ids = bind_list(params, "item_id", item_ids)
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    session.run(f"UPDATE {table} SET {assignments} WHERE id IN {ids}", params)


def mark_crashed(session: Session, run_id: str, expected_state: str, at: float, details: dict) -> bool:
    """Compare-and-set: only a run still running in ``expected_state`` becomes crashed."""
    params = {"run_id": run_id, "expected_state": expected_state, "at": at}
    moved = session.run(
        "UPDATE runs SET status = 'crashed', state = 'crashed', finished_at = :at "
        "WHERE id = :run_id AND status = 'running' AND state = :expected_state",
        params,
    )
    if moved != 1:
        return False
    attempt = scalar(session, "SELECT attempt FROM runs WHERE id = :run_id", params)
    session.run(INSERT_TRANSITION, {
        "run_id": run_id, "seq": last_seq(session, run_id) + 1, "attempt": attempt, "source": expected_state,
        "dest": "crashed", "trigger": "crash", "at": at, "details": to_json(details),
    })
    session.run(
        "UPDATE attempts SET outcome = 'crashed', finished_at = :at WHERE run_id = :run_id AND outcome = 'running'",
        params,
    )
    return True

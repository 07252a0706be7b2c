"""Writes: each call is one short transaction that takes the write lock up front."""

from __future__ import annotations

from typing import Iterable, Optional

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ._errors import LeaseHeld
from ._records import AttemptEnd, AttemptStart, LoadRecord, NewRun, Operation, Owner, RunChange, Transition
from ._schema import attempts, jobs, leases, operations, packages, runs, schema_changes, traces, transitions

_UPSERT_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_run(conn: Connection, run_id: str, new: NewRun, at: float) -> None:
    conn.execute(
        insert(runs).values(
            id=run_id,
            pipeline_name=new.pipeline_name,
            pipelines_dir=new.pipelines_dir,
            destination_type=new.destination_type,
            destination_name=new.destination_name,
            dataset_name=new.dataset_name,
            status="running",
            state=new.initial_state,
            attempt=0,
            host=new.host,
            pid=new.pid,
            process_started_at=new.process_started_at,
            started_at=at,
            heartbeat_at=at,
            config=dict(new.config),
        )
    )


def take_lease(conn: Connection, pipeline_name: str, pipelines_dir: str, run_id: str, at: float) -> Optional[dict]:
    """Give the pipeline's lease to ``run_id``, in the caller's transaction.

    Raises :class:`LeaseHeld` while another run holding it is still running; returns what was
    taken over from a crashed holder, or None.
    """
    key = (leases.c.pipeline_name == pipeline_name, leases.c.pipelines_dir == pipelines_dir)
    # Insert-if-absent, then lock the row: on PostgreSQL a concurrent taker waits here for our commit.
    conn.execute(
        _UPSERT_INSERT[conn.dialect.name](leases)
        .values(pipeline_name=pipeline_name, pipelines_dir=pipelines_dir, run_id=run_id, acquired_at=at)
        .on_conflict_do_nothing()
    )
    lease = conn.execute(select(leases).where(*key).with_for_update()).one()
    if lease.run_id == run_id:
        return None
    holder = conn.execute(select(runs).where(runs.c.id == lease.run_id)).first()
    if holder is not None and holder.status == "running":
        from ._queries import to_run

        raise LeaseHeld(pipeline_name, pipelines_dir, to_run(holder))
    conn.execute(update(leases).where(*key).values(run_id=run_id, acquired_at=at, taken_over_from=lease.run_id))
    if holder is not None and holder.status == "crashed":
        return {"taken_over_from": lease.run_id, "holder_status": holder.status}
    return None  # the holder ended: an ordinary succession, not a takeover


def reclaim_run(conn: Connection, run_id: str, statuses: tuple[str, ...], owner: Owner, at: float) -> bool:
    """Compare-and-set: a run that ended in one of ``statuses`` is running again, in ``owner``'s process."""
    moved = conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status.in_(statuses))
        .values(status="running", host=owner.host, pid=owner.pid, process_started_at=owner.process_started_at,
                heartbeat_at=at, finished_at=None, error_type=None, error_message=None)
    )
    return moved.rowcount == 1


def last_seq(conn: Connection, run_id: str) -> int:
    return conn.execute(
        select(func.coalesce(func.max(transitions.c.seq), 0)).where(transitions.c.run_id == run_id)
    ).scalar_one()


def record_transition(
    conn: Connection,
    run_id: str,
    transition: Transition,
    change: Optional[RunChange],
    attempt_start: Optional[AttemptStart],
    attempt_end: Optional[AttemptEnd],
    load_record: Optional[LoadRecord] = None,
) -> None:
    conn.execute(
        insert(transitions).values(
            run_id=run_id,
            seq=transition.seq,
            attempt=transition.attempt,
            source=transition.source,
            dest=transition.dest,
            trigger=transition.trigger,
            at=transition.at,
            details=dict(transition.details) if transition.details else None,
        )
    )
    if attempt_end is not None:
        _end_attempt(conn, run_id, attempt_end)
    if attempt_start is not None:
        conn.execute(
            insert(attempts).values(
                run_id=run_id,
                number=attempt_start.number,
                phase=attempt_start.phase,
                started_at=attempt_start.started_at,
                outcome="running",
            )
        )
    values: dict = {"state": transition.dest, "attempt": transition.attempt, "heartbeat_at": transition.at}
    if change is not None:
        if change.status is not None:
            values["status"] = change.status
        if change.finished:
            values["finished_at"] = transition.at
        if change.error_type is not None:
            values["error_type"] = change.error_type
            values["error_message"] = change.error_message
    conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
    if load_record is not None:
        _record_load(conn, run_id, load_record)


def _record_load(conn: Connection, run_id: str, record: LoadRecord) -> None:
    load_ids = [package.load_id for package in record.packages]
    for table in (schema_changes, jobs, packages):
        conn.execute(delete(table).where(table.c.run_id == run_id, table.c.load_id.in_(load_ids)))
    for table, rows in ((packages, record.packages), (jobs, record.jobs), (schema_changes, record.schema_changes)):
        if rows:
            conn.execute(insert(table), [_row(table, run_id, row) for row in rows])


def _row(table, run_id: str, record) -> dict:
    values = {column.name: getattr(record, column.name) for column in table.columns if column.name != "run_id"}
    return {**values, "run_id": run_id}


def insert_operation(conn: Connection, operation: Operation) -> int:
    values = {column.name: getattr(operation, column.name) for column in operations.columns if column.name != "id"}
    return int(conn.execute(insert(operations).values(**values)).inserted_primary_key[0])


def _end_attempt(conn: Connection, run_id: str, end: AttemptEnd) -> None:
    conn.execute(
        update(attempts)
        .where(attempts.c.run_id == run_id, attempts.c.number == end.number)
        .values(
            finished_at=end.finished_at,
            outcome=end.outcome,
            failed_step=end.failed_step,
            exception_type=end.exception_type,
            exception_message=end.exception_message,
            error_class=end.error_class,
            wait_seconds=end.wait_seconds,
            load_ids=list(end.load_ids),
        )
    )


def beat(conn: Connection, run_id: str, at: float) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id).values(heartbeat_at=at))


def insert_trace(conn: Connection, run_id: str, attempt: int, pipeline_name: str, payload: str, at: float) -> int:
    result = conn.execute(
        insert(traces).values(
            run_id=run_id, attempt=attempt, pipeline_name=pipeline_name, created_at=at, payload=payload
        )
    )
    return int(result.inserted_primary_key[0])


def update_traces(conn: Connection, trace_ids: Iterable[int], **values) -> None:
    ids = list(trace_ids)
    if ids:
        conn.execute(update(traces).where(traces.c.id.in_(ids)).values(**values))


def mark_crashed(conn: Connection, run_id: str, expected_state: str, at: float, details: dict) -> bool:
    """Compare-and-set: only a run still running in ``expected_state`` becomes crashed."""
    moved = conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == "running", runs.c.state == expected_state)
        .values(status="crashed", state="crashed", finished_at=at)
    )
    if moved.rowcount != 1:
        return False
    attempt = conn.execute(select(runs.c.attempt).where(runs.c.id == run_id)).scalar_one()
    seq = last_seq(conn, run_id)
    conn.execute(
        insert(transitions).values(
            run_id=run_id, seq=seq + 1, attempt=attempt, source=expected_state, dest="crashed",
            trigger="crash", at=at, details=details,
        )
    )
    conn.execute(
        update(attempts)
        .where(attempts.c.run_id == run_id, attempts.c.outcome == "running")
        .values(outcome="crashed", finished_at=at)
    )
    return True

"""Reads: listing runs and telling one run's story. Every filter is served by an index."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from sqlalchemy import Connection, Row, select

from ._errors import RunNotFound
from ._records import Attempt, Run, RunStory, TraceRecord, Transition
from ._schema import attempts, runs, traces, transitions


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
    return RunStory(
        run=run,
        attempts=tuple(_to_attempt(row) for row in attempt_rows),
        transitions=tuple(_to_transition(row) for row in transition_rows),
        traces=tuple(TraceRecord(**row._asdict()) for row in trace_rows),
    )


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
    values = row._asdict()
    values.pop("run_id")
    return Transition(**values)

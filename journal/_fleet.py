"""Reads across every pipeline of a journal, for the fleet view (`runjournal serve`) and its metrics.

Each answer is a handful of statements whose cost does not grow with the journal's history: the
pipelines are found by skipping through the ``(pipeline_name, status, started_at)`` index (a
recursive CTE, as neither database skips by itself), and every per-pipeline figure is an index
range. The counts behind the metrics are rows of ``pipeline_counts``, which triggers keep (migration 0007).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ._dialects import Session
from ._records import Run
from ._rows import RUN_COLUMNS, to_run
from ._sql import bind_list

_PIPELINES = """
WITH RECURSIVE names(name) AS (
    SELECT min(pipeline_name) FROM runs
    UNION ALL
    SELECT (SELECT min(pipeline_name) FROM runs WHERE pipeline_name > names.name) FROM names WHERE name IS NOT NULL
)"""

_SUMMARY = f"""{_PIPELINES},
done AS (
    SELECT name,
           (SELECT max(started_at) FROM runs WHERE pipeline_name = name AND status = 'done') AS done_started
    FROM names WHERE name IS NOT NULL
)
SELECT name,
       done_started,
       (SELECT finished_at FROM runs WHERE pipeline_name = name AND status = 'done' AND started_at = done_started
        ORDER BY id DESC LIMIT 1) AS done_finished,
       (SELECT id FROM runs WHERE pipeline_name = name ORDER BY started_at DESC, id DESC LIMIT 1) AS last_id,
       -- a failing streak counts the runs that ended badly; an interrupted one was stopped on purpose
       (SELECT count(*) FROM runs WHERE pipeline_name = name AND status IN ('failed', 'crashed')
        AND started_at > coalesce(done_started, -1)) AS streak,
       (SELECT count(*) FROM runs WHERE pipeline_name = name AND started_at >= :day_ago) AS last_day
FROM done ORDER BY name"""


@dataclass(frozen=True)
class PipelineSummary:
    """One pipeline as the journal records it (a reader adjusts it for runs it sees crashed)."""

    name: str
    last_run: Run
    last_success_started_at: Optional[float]
    last_success_finished_at: Optional[float]
    failing_streak: int
    runs_last_day: int


def pipeline_summaries(session: Session, *, day_ago: float) -> list[PipelineSummary]:
    rows = session.rows(_SUMMARY, {"day_ago": day_ago})
    params: dict[str, Any] = {}
    ids = bind_list(params, "id", [row["last_id"] for row in rows])
    last_runs = {run.id: run for run in map(to_run, session.rows(f"SELECT {RUN_COLUMNS} FROM runs WHERE id IN {ids}", params))}
    return [
        PipelineSummary(
            name=row["name"],
            last_run=last_runs[row["last_id"]],
            last_success_started_at=row["done_started"],
            last_success_finished_at=row["done_finished"],
            failing_streak=row["streak"],
            runs_last_day=row["last_day"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the metrics are computed from, read in one transaction."""

    run_counts: dict[tuple[str, str], int]  # (pipeline, status) -> runs, as journaled
    attempt_counts: dict[tuple[str, str], int]  # (pipeline, outcome) -> attempts
    durations: list[tuple[str, str, float]]  # (pipeline, status, seconds) of recent finished runs
    running: list[Run]  # runs journaled running: a reader decides which of them are crashed


def metrics_snapshot(session: Session, *, since: float) -> MetricsSnapshot:
    return MetricsSnapshot(run_counts(session), attempt_counts(session), finished_durations(session, since=since),
                           running_runs(session))


def run_counts(session: Session) -> dict[tuple[str, str], int]:
    """Runs by (pipeline, status), as journaled (kept by triggers: see migration 0007)."""
    return _counts(session, "run")


def attempt_counts(session: Session) -> dict[tuple[str, str], int]:
    """Attempts by (pipeline, outcome), as journaled."""
    return _counts(session, "attempt")


def _counts(session: Session, kind: str) -> dict[tuple[str, str], int]:
    rows = session.rows("SELECT pipeline_name, value, n FROM pipeline_counts WHERE kind = :kind", {"kind": kind})
    return {(row["pipeline_name"], row["value"]): row["n"] for row in rows}


def finished_durations(session: Session, *, since: float) -> list[tuple[str, str, float]]:
    """(pipeline, status, seconds) of the runs started since ``since`` that have finished."""
    rows = session.rows(
        "SELECT pipeline_name, status, finished_at - started_at AS seconds FROM runs "
        "WHERE started_at >= :since AND finished_at IS NOT NULL",
        {"since": since},
    )
    return [(row["pipeline_name"], row["status"], row["seconds"]) for row in rows]


def running_runs(session: Session) -> list[Run]:
    """Every run the journal calls running (a reader decides which of them are crashed)."""
    return [to_run(row) for row in session.rows(f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running'")]

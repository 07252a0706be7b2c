"""Journals with thousands of runs for the prune tests, written through the journal's own store
functions in one transaction (the per-run API commits, and fsyncs, every transition)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from runjournal.journal import AttemptEnd, AttemptStart, Journal, NewRun, PruneResult, RunChange, Transition
from runjournal.journal import _prune, _store
from runjournal.journal._journal import new_run_id
from runjournal.journal._sql import bind_list, scalar

# Every run of these tests starts around 2001, so that a prune at CUTOFF cannot touch the runs
# other tests leave in the shared PostgreSQL database (they start now).
CUTOFF = 1_000_000_000.0
DAY = 86400.0
STATUSES = ("done", "failed", "crashed", "interrupted", "recovered", "running")
CHILDREN = ("attempts", "transitions", "traces")


@dataclass(frozen=True)
class Planted:
    id: str
    pipeline: str
    status: str
    started_at: float
    attempts: int
    transitions: int
    traces: int

    @property
    def old(self) -> bool:
        return self.started_at < CUTOFF


def plant(journal: Journal, count: int, *, payload_bytes: int = 200, pipeline: str | None = None) -> list[Planted]:
    """``count`` runs, two in three started before CUTOFF, of every status in turn.

    A failed run has two attempts (a transient failure, then a terminal one), each with its trace;
    every other finished run has one attempt and one trace; a running run is in its first attempt.
    """
    pipeline = pipeline or f"prune_{uuid.uuid4().hex[:8]}"
    filler = "x" * payload_bytes
    planted = []
    with journal._write() as session:
        for i in range(count):
            status = STATUSES[i % len(STATUSES)]
            old = (i // len(STATUSES)) % 3 != 0
            at = CUTOFF - DAY * (1 + i % 400) if old else CUTOFF + 60.0 * (1 + i % 400)
            run_id = new_run_id(at)
            name = f"{pipeline}_{i % 3}"
            new = NewRun(pipeline_name=name, host="worker-1", pid=1000 + i, config={"retries": 3})
            _store.insert_run(session, run_id, new, at)
            start = Transition(1, 1, "created", "extract", "start", at + 1)
            moves = [(start, {"attempt_start": AttemptStart(1, "run", at + 1)})]
            n_attempts = n_traces = 1
            if status == "failed":
                n_attempts = n_traces = 2
                moves += [
                    (Transition(2, 1, "extract", "retry_wait", "attempt_failed", at + 2),
                     {"attempt_end": AttemptEnd(1, at + 2, "failed", failed_step="extract", error_class="transient")}),
                    (Transition(3, 2, "retry_wait", "extract", "resume", at + 3),
                     {"attempt_start": AttemptStart(2, "run", at + 3)}),
                ]
            if status == "running":
                n_traces = 0
            else:
                seq = len(moves) + 1
                outcome = "succeeded" if status in ("done", "recovered") else status
                moves.append(
                    (Transition(seq, n_attempts, "extract", status, "finish", at + seq),
                     {"attempt_end": AttemptEnd(n_attempts, at + seq, outcome),
                      "change": RunChange(status=status, finished=True)})
                )
            for transition, changes in moves:
                _store.record_transition(
                    session, run_id, transition,
                    changes.get("change"), changes.get("attempt_start"), changes.get("attempt_end"),
                )
            for attempt in range(1, n_traces + 1):
                payload = json.dumps({"pipeline_name": name, "attempt": attempt, "filler": filler})
                _store.insert_trace(session, run_id, attempt, name, payload, at + 10)
            planted.append(Planted(run_id, name, status, at, n_attempts, len(moves), n_traces))
    return planted


def expected(planted: list[Planted], *, keep_failed: bool = False) -> list[Planted]:
    """The planted runs a prune at CUTOFF deletes."""
    kept = {"running"} | ({"failed", "crashed", "interrupted"} if keep_failed else set())
    return [run for run in planted if run.old and run.status not in kept]


def totals(planted: list[Planted]) -> PruneResult:
    return PruneResult(
        runs=len(planted),
        attempts=sum(run.attempts for run in planted),
        transitions=sum(run.transitions for run in planted),
        traces=sum(run.traces for run in planted),
    )


def remaining(journal: Journal, planted: list[Planted]) -> tuple[set[str], PruneResult]:
    """Which of the planted runs are still in the journal, and how many rows of each table they have."""
    params: dict = {}
    ids = bind_list(params, "id", [run.id for run in planted])
    with journal._read() as session:
        left = {row["id"] for row in session.rows(f"SELECT id FROM runs WHERE id IN {ids}", params)}
        rows = {
            child: scalar(session, f"SELECT count(*) FROM {child} WHERE run_id IN {ids}", params) for child in CHILDREN
        }
    return left, PruneResult(runs=len(left), **rows)


def orphans(journal: Journal) -> dict[str, int]:
    """Rows of each child table whose run is gone (over the whole journal)."""
    with journal._read() as session:
        return {
            child: scalar(session, f"SELECT count(*) FROM {child} WHERE run_id NOT IN (SELECT id FROM runs)")
            for child in CHILDREN
        }


def remove(journal: Journal, planted: list[Planted]) -> None:
    """Take the planted runs out again (the PostgreSQL database is shared by the whole session)."""
    ids = [run.id for run in planted]
    for start in range(0, len(ids), 500):
        with journal._write() as session:
            _prune.delete_runs(session, ids[start : start + 500])

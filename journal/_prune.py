"""Retention: delete finished runs that started before a cutoff, with their attempts, transitions, traces and load info.

A prune works in batches, each its own short write transaction: on SQLite it holds the write lock
for one batch at a time, and the pipelines running meanwhile write between batches. A run that is
still running is never deleted, however old, nor one that a row of the ``leases`` table names.

Children are deleted explicitly rather than left to ON DELETE CASCADE: the counts are wanted
anyway, and the journal stays whole on a connection where SQLite's foreign keys are off.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from ._dialects import SQLITE, Database, Session, Transact
from ._errors import DatabaseError, JournalUnavailable
from ._records import FINISHED_STATUSES, PruneResult
from ._sql import bind_list, scalar


# What ``keep_failed`` keeps: the runs an auditor wants to see.
AUDITED = ("failed", "crashed", "interrupted")

# Between two batches on SQLite, let waiting writers take the lock: the busy handler of a writer
# that has waited a while polls only every 100 ms, so releasing the lock for an instant is not enough.
_MAX_PAUSE_S = 0.05


def prune(
    transact: Transact, database: Database, cutoff: float, *, keep_failed: bool, batch_size: int, dry_run: bool,
    vacuum: bool,
) -> PruneResult:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if dry_run:
        return transact(lambda session: count(session, cutoff, keep_failed=keep_failed), write=False)
    total = PruneResult()
    sqlite = database.dialect is SQLITE
    while True:
        began = time.monotonic()
        batch = transact(lambda session: delete_batch(session, cutoff, keep_failed=keep_failed, limit=batch_size))
        total += batch
        if batch.runs < batch_size:
            break
        if sqlite:
            time.sleep(min(time.monotonic() - began, _MAX_PAUSE_S))
    if vacuum and sqlite:
        compact(database)
    return total


def prunable(cutoff: float, *, keep_failed: bool, params: dict[str, Any]) -> str:
    """SELECT the ids of the runs a prune at ``cutoff`` deletes (served by the index on status, started_at);
    its parameters are added to ``params``."""
    statuses = [status for status in FINISHED_STATUSES if not (keep_failed and status in AUDITED)]
    params["cutoff"] = cutoff
    return (
        f"SELECT id FROM runs WHERE started_at < :cutoff AND status IN {bind_list(params, 'status', statuses)} "
        "AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.run_id = runs.id)"
    )


def count(session: Session, cutoff: float, *, keep_failed: bool) -> PruneResult:
    """What a prune at ``cutoff`` would delete, deleting nothing."""
    params: dict[str, Any] = {}
    ids = prunable(cutoff, keep_failed=keep_failed, params=params)

    def rows(child: str) -> int:
        return scalar(session, f"SELECT count(*) FROM {child} WHERE run_id IN ({ids})", params)

    return PruneResult(
        runs=scalar(session, f"SELECT count(*) FROM ({ids}) AS prunable", params),
        attempts=rows("attempts"),
        transitions=rows("transitions"),
        traces=rows("traces"),
    )


def delete_batch(session: Session, cutoff: float, *, keep_failed: bool, limit: int) -> PruneResult:
    """Delete up to ``limit`` of the oldest prunable runs; call inside a write transaction.

    On PostgreSQL the chosen runs are locked: a run resumed or leased meanwhile is re-checked, not
    deleted under it. On SQLite the write transaction holds the whole database.
    """
    params: dict[str, Any] = {"limit": limit}
    sql = f"{prunable(cutoff, keep_failed=keep_failed, params=params)} ORDER BY started_at LIMIT :limit"
    chosen = session.rows(sql + session.dialect.for_update, params)
    return delete_runs(session, [row["id"] for row in chosen])


def delete_runs(session: Session, run_ids: Sequence[str]) -> PruneResult:
    """Delete these runs with their attempts, transitions and traces, whatever their status."""
    if not run_ids:
        return PruneResult()
    params: dict[str, Any] = {}
    ids = bind_list(params, "run_id", run_ids)
    # The load info goes with its run; the counts report what a run's story is made of.
    for child in ("schema_changes", "jobs", "packages", "load_info_outbox", "run_labels"):
        session.run(f"DELETE FROM {child} WHERE run_id IN {ids}", params)
    removed = {child: session.run(f"DELETE FROM {child} WHERE run_id IN {ids}", params)
               for child in ("traces", "transitions", "attempts")}
    removed["runs"] = session.run(f"DELETE FROM runs WHERE id IN {ids}", params)
    return PruneResult(**removed)


def compact(database: Database) -> None:
    """SQLite: VACUUM and checkpoint the WAL, so that the file shrinks on disk.

    Only when the file has free pages: a prune that freed none has nothing to give back, and one
    run with ``vacuum=False`` leaves its free pages for the next prune to reclaim.
    """
    try:
        database.vacuum()
    except DatabaseError as exc:
        raise JournalUnavailable(f"journal {database.url} could not be vacuumed after the prune: {exc}") from exc

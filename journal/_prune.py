"""Retention: delete finished runs that started before a cutoff, with their attempts, transitions, traces and load info.

A prune works in batches, each its own short write transaction: on SQLite it holds the write lock
for one batch at a time, and the pipelines running meanwhile write between batches. A run that is
still running is never deleted, however old, nor one that a row of a ``leases`` table names (when
the journal has such a table).

Children are deleted explicitly rather than left to ON DELETE CASCADE: the counts are wanted
anyway, and the journal stays whole on a connection where SQLite's foreign keys are off.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Sequence

from sqlalchemy import Connection, Engine, Select, column, delete, exists, func, inspect, select, table
from sqlalchemy.exc import DBAPIError

from ._records import PruneResult
from ._schema import attempts, jobs, packages, runs, schema_changes, traces, transitions

if TYPE_CHECKING:
    from ._journal import Journal

# Every status a run can end in (``running`` is the only other one).
FINISHED = ("done", "failed", "interrupted", "crashed", "recovered")
# What ``keep_failed`` keeps: the runs an auditor wants to see.
AUDITED = ("failed", "crashed", "interrupted")

# Between two batches on SQLite, let waiting writers take the lock: the busy handler of a writer
# that has waited a while polls only every 100 ms, so releasing the lock for an instant is not enough.
_MAX_PAUSE_S = 0.05


def prune(
    journal: "Journal", cutoff: float, *, keep_failed: bool, batch_size: int, dry_run: bool, vacuum: bool
) -> PruneResult:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if dry_run:
        with journal._read() as conn:
            return count(conn, cutoff, keep_failed=keep_failed)
    total = PruneResult()
    sqlite = journal.engine.dialect.name == "sqlite"
    while True:
        began = time.monotonic()
        with journal._write() as conn:
            batch = delete_batch(conn, cutoff, keep_failed=keep_failed, limit=batch_size)
        total += batch
        if batch.runs < batch_size:
            break
        if sqlite:
            time.sleep(min(time.monotonic() - began, _MAX_PAUSE_S))
    if vacuum and sqlite:
        compact(journal)
    return total


def prunable(conn: Connection, cutoff: float, *, keep_failed: bool) -> Select:
    """The ids of the runs a prune at ``cutoff`` deletes (served by the index on status, started_at)."""
    statuses = [status for status in FINISHED if not (keep_failed and status in AUDITED)]
    query = select(runs.c.id).where(runs.c.started_at < cutoff, runs.c.status.in_(statuses))
    if inspect(conn).has_table("leases"):
        leases = table("leases", column("run_id"))
        query = query.where(~exists().where(leases.c.run_id == runs.c.id))
    return query


def count(conn: Connection, cutoff: float, *, keep_failed: bool) -> PruneResult:
    """What a prune at ``cutoff`` would delete, deleting nothing."""
    ids = prunable(conn, cutoff, keep_failed=keep_failed)

    def rows(child) -> int:
        return conn.execute(select(func.count()).select_from(child).where(child.c.run_id.in_(ids))).scalar_one()

    return PruneResult(
        runs=conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one(),
        attempts=rows(attempts),
        transitions=rows(transitions),
        traces=rows(traces),
    )


def delete_batch(conn: Connection, cutoff: float, *, keep_failed: bool, limit: int) -> PruneResult:
    """Delete up to ``limit`` of the oldest prunable runs; call inside a write transaction."""
    query = prunable(conn, cutoff, keep_failed=keep_failed).order_by(runs.c.started_at).limit(limit)
    if conn.dialect.name == "postgresql":
        # Lock the chosen runs: a run resumed or leased meanwhile is re-checked, not deleted under it.
        query = query.with_for_update(of=runs)
    return delete_runs(conn, list(conn.execute(query).scalars()))


def delete_runs(conn: Connection, run_ids: Sequence[str]) -> PruneResult:
    """Delete these runs with their attempts, transitions and traces, whatever their status."""
    if not run_ids:
        return PruneResult()
    # The load info goes with its run; the counts report what a run's story is made of.
    for child in (schema_changes, jobs, packages):
        conn.execute(delete(child).where(child.c.run_id.in_(run_ids)))
    removed = {
        child.name: conn.execute(delete(child).where(child.c.run_id.in_(run_ids))).rowcount
        for child in (traces, transitions, attempts)
    }
    removed["runs"] = conn.execute(delete(runs).where(runs.c.id.in_(run_ids))).rowcount
    return PruneResult(**removed)


def compact(journal: "Journal") -> None:
    """SQLite: VACUUM (outside any transaction) and checkpoint the WAL, so that the file shrinks on disk.

    Only when the file has free pages: a prune that freed none has nothing to give back, and one
    run with ``vacuum=False`` leaves its free pages for the next prune to reclaim.
    """
    engine: Engine = journal.engine
    try:
        raw = engine.raw_connection()
    except DBAPIError as exc:
        raise _unavailable(journal, exc) from exc
    try:
        # The connection runs in autocommit (isolation_level None), so VACUUM is not wrapped in BEGIN.
        cursor = raw.cursor()
        if cursor.execute("PRAGMA freelist_count").fetchone()[0]:
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    except sqlite3.Error as exc:
        raise _unavailable(journal, exc) from exc
    finally:
        raw.close()


def _unavailable(journal: "Journal", exc: Exception) -> Exception:
    from ._errors import JournalUnavailable

    return JournalUnavailable(f"journal {journal.url} could not be vacuumed after the prune: {exc}")

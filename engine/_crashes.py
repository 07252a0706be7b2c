"""Crash detection: a run the journal says is running, whose process is gone.

On the run's own host the pid decides (with the process start time, so a reused pid is not
taken for the run). From another host the heartbeat does, and a heartbeat gap counts only when
the silence is the run's own, not the journal's (docs/outages.md, "Is it dead?"):

- a heartbeat no older than ``STALE_BEATS`` intervals: alive;
- older, while another run of the same host wrote the journal after the gap began: that host could
  reach the journal, so the run's process is gone ("heartbeat stale");
- older than the run's journal patience plus ``STALE_BEATS`` intervals: had the run only lost its
  journal, it would have stopped by now without doing unjournaled work ("heartbeat stale past patience");
- otherwise the journal itself may have been unreachable (a failover, a partition): presumed alive.

Imports no dlt, so `runjournal runs` can use it.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any, Mapping, Optional, Sequence

from runjournal.journal import Journal, Run

from . import _process
from ._heartbeat import DEFAULT_INTERVAL

#: A heartbeat this many intervals old means the run's process is gone (if its host reached the journal).
STALE_BEATS = float(os.environ.get("RUNJOURNAL_STALE_BEATS", 3))

#: Runs this process stopped because the journal stayed unreachable past their patience: their pid is
#: alive (it is this process), yet nobody drives them any more.
_given_up: set[str] = set()


def given_up(run_id: str) -> None:
    """This process stopped driving ``run_id`` (a journal outage outlasted its patience)."""
    _given_up.add(run_id)


def evidence(
    run: Run, now: float, this_host: str, host_heard_at: Optional[float] = None
) -> Optional[dict[str, Any]]:
    """Why ``run`` is crashed, or None while it may be alive.

    ``host_heard_at``: when the journal last heard from any run of ``run.host`` (None: not known).
    """
    heartbeat_at = run.heartbeat_at or run.started_at
    heartbeat_age = round(now - heartbeat_at, 3)
    if run.host == this_host:
        if run.pid == os.getpid() and run.id in _given_up:
            return {"reason": "stopped by a journal outage", "host": run.host, "pid": run.pid,
                    "heartbeat_age_s": heartbeat_age}
        if _process.is_alive(run.pid, run.process_started_at):
            return None
        return {"reason": "process gone", "host": run.host, "pid": run.pid, "heartbeat_age_s": heartbeat_age}
    interval = float(run.config.get("heartbeat_interval", DEFAULT_INTERVAL))
    patience = float(run.config.get("journal_patience") or 0.0)
    stale_after = STALE_BEATS * interval
    if heartbeat_age <= stale_after:
        return None
    found = {"host": run.host, "pid": run.pid, "heartbeat_age_s": heartbeat_age, "heartbeat_interval_s": interval}
    if host_heard_at is not None and host_heard_at - heartbeat_at > stale_after:
        return {"reason": "heartbeat stale", **found, "host_heard_from_s_ago": round(now - host_heard_at, 3)}
    if heartbeat_age > patience + stale_after:
        return {"reason": "heartbeat stale past patience" if patience else "heartbeat stale", **found,
                **({"journal_patience_s": patience} if patience else {})}
    return None  # its host may not have reached the journal: the run may be waiting for it


def as_seen(run: Run, journal: Optional[Journal] = None, now: Optional[float] = None,
            this_host: Optional[str] = None) -> Run:
    """``run`` as a reader should show it: a running run whose process is gone is shown crashed, with
    the evidence in ``presumed_crash``. ``journal`` tells when its host last reached the journal (the
    heartbeat-gap rule). Writes nothing; journaling the crash is for the writers (the next run,
    ``recover``, ``resume``)."""
    if run.status != "running":
        return run
    this_host = this_host or _process.host()
    heard = journal.last_heard_from(run.host) if journal is not None and run.host != this_host else None
    found = evidence(run, time.time() if now is None else now, this_host, heard)
    return run if found is None else replace(run, status="crashed", presumed_crash=found)


def list_as_seen(
    journal: Journal,
    *,
    pipeline: Optional[str] = None,
    status: Optional[Sequence[str]] = None,
    since: Optional[float] = None,
    until: Optional[float] = None,
    labels: Optional[Mapping[str, str]] = None,
    limit: Optional[int] = None,
) -> list[Run]:
    """Up to ``limit`` runs, newest first, as readers see them (:func:`as_seen`); a ``status`` filter applies
    to what is shown, so "crashed" finds a running run whose process is gone and "running" does not."""
    window = {"pipeline": pipeline, "since": since, "until": until, "labels": labels}
    if status is None or not {"running", "crashed"} & set(status):
        return [as_seen(run, journal) for run in journal.list_runs(status=status, limit=limit, **window)]
    # Running runs are few, and any of them may be shown crashed: read them all, the rest up to the limit.
    journaled = [s for s in status if s != "running"]
    found = journal.list_runs(status=journaled, limit=limit, **window) if journaled else []
    running = (as_seen(run, journal) for run in journal.list_runs(status="running", limit=None, **window))
    found += [run for run in running if run.status in status]
    found.sort(key=lambda run: (run.started_at, run.id), reverse=True)
    return found if limit is None else found[:limit]


def detect(journal: Journal, *, pipeline: Optional[str] = None) -> list[Run]:
    """Mark every crashed run (of ``pipeline``, or all) as crashed, journaled with the evidence."""
    now, this_host = time.time(), _process.host()
    crashed = []
    for run in journal.list_runs(pipeline=pipeline, status="running", limit=None):
        heard = journal.last_heard_from(run.host) if run.host != this_host else None
        found = evidence(run, now, this_host, heard)
        if found and journal.mark_crashed(run.id, expected_state=run.state, details=found):
            crashed.append(run)
    return crashed

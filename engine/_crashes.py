"""Crash detection: a run the journal says is running, whose process is gone.

On the run's own host the pid decides (with the process start time, so a reused pid is not
taken for the run); from another host, a heartbeat older than a few intervals does. Imports
no dlt, so `runjournal runs` can use it.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any, Mapping, Optional, Sequence

from runjournal.journal import Journal, Run

from . import _process
from ._heartbeat import DEFAULT_INTERVAL

#: A heartbeat this many intervals old means the run's process is gone.
STALE_BEATS = float(os.environ.get("RUNJOURNAL_STALE_BEATS", 3))


def evidence(run: Run, now: float, this_host: str) -> Optional[dict[str, Any]]:
    """Why ``run`` is crashed, or None while it may be alive."""
    heartbeat_age = round(now - (run.heartbeat_at or run.started_at), 3)
    if run.host == this_host:
        if _process.is_alive(run.pid, run.process_started_at):
            return None
        return {"reason": "process gone", "host": run.host, "pid": run.pid, "heartbeat_age_s": heartbeat_age}
    interval = float(run.config.get("heartbeat_interval", DEFAULT_INTERVAL))
    if heartbeat_age <= STALE_BEATS * interval:
        return None
    return {"reason": "heartbeat stale", "host": run.host, "pid": run.pid, "heartbeat_age_s": heartbeat_age,
            "heartbeat_interval_s": interval}


def as_seen(run: Run, now: Optional[float] = None, this_host: Optional[str] = None) -> Run:
    """``run`` as a reader should show it: a running run whose process is gone is shown crashed, with
    the evidence in ``presumed_crash``. Writes nothing; journaling the crash is for the writers (the
    next run, ``recover``, ``resume``)."""
    if run.status != "running":
        return run
    found = evidence(run, time.time() if now is None else now, this_host or _process.host())
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
        return [as_seen(run) for run in journal.list_runs(status=status, limit=limit, **window)]
    # Running runs are few, and any of them may be shown crashed: read them all, the rest up to the limit.
    journaled = [s for s in status if s != "running"]
    found = journal.list_runs(status=journaled, limit=limit, **window) if journaled else []
    found += [run for run in map(as_seen, journal.list_runs(status="running", limit=None, **window)) if run.status in status]
    found.sort(key=lambda run: (run.started_at, run.id), reverse=True)
    return found if limit is None else found[:limit]


def detect(journal: Journal, *, pipeline: Optional[str] = None) -> list[Run]:
    """Mark every crashed run (of ``pipeline``, or all) as crashed, journaled with the evidence."""
    now, this_host = time.time(), _process.host()
    crashed = []
    for run in journal.list_runs(pipeline=pipeline, status="running", limit=None):
        found = evidence(run, now, this_host)
        if found and journal.mark_crashed(run.id, expected_state=run.state, details=found):
            crashed.append(run)
    return crashed

"""The counts behind /metrics (``pipeline_counts``, kept by the journal's triggers) always equal counting
the runs and attempts themselves, through every write: start, transitions, crash, take-up, prune."""

from __future__ import annotations

import time

import pytest

from runjournal.journal import AttemptStart, Journal, Owner, Transition
from tests._cli_support import Filler


def _counted(journal: Journal, pipelines: tuple[str, ...]) -> tuple[dict, dict]:
    """(what the triggers kept, what counting the tables says), for these pipelines, zero counts left out."""
    with journal.database.transaction(write=False) as session:
        kept = {(r["pipeline_name"], r["kind"], r["value"]): r["n"]
                for r in session.rows("SELECT pipeline_name, kind, value, n FROM pipeline_counts") if r["n"]}
        runs = session.rows("SELECT pipeline_name, status, count(*) AS n FROM runs GROUP BY pipeline_name, status")
        attempts = session.rows("SELECT runs.pipeline_name, attempts.outcome, count(*) AS n FROM attempts "
                                "JOIN runs ON runs.id = attempts.run_id GROUP BY runs.pipeline_name, attempts.outcome")
    counted = {(r["pipeline_name"], "run", r["status"]): r["n"] for r in runs}
    counted.update({(r["pipeline_name"], "attempt", r["outcome"]): r["n"] for r in attempts})
    mine = lambda found: {key: n for key, n in found.items() if key[0] in pipelines}  # noqa: E731
    return mine(kept), mine(counted)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_counts_follow_every_write(backend, request):
    url = request.getfixturevalue("journal_url" if backend == "sqlite" else "pg_journal_url")
    suffix = str(time.time_ns())[-8:]
    orders, events = f"orders_{suffix}", f"events_{suffix}"
    filler = Filler(url)
    jnl = filler.journal
    try:
        now = time.time()
        old = filler.succeeded(orders, at=now - 90 * 86400)
        filler.failed(orders, at=now - 3600)
        dead = filler.running(events, at=now - 600)
        filler.succeeded(events, at=now - 300)
        kept, counted = _counted(jnl, (orders, events))
        assert kept == counted and counted[(orders, "attempt", "failed")] == 2

        assert jnl.mark_crashed(dead, expected_state="sync", details={"reason": "test"})
        kept, counted = _counted(jnl, (orders, events))
        assert kept == counted and counted[(events, "run", "crashed")] == 1
        assert counted[(events, "attempt", "crashed")] == 1

        run = jnl.get_run(dead)
        opening = Transition(0, run.attempt + 1, "crashed", "clean_folder", "recover", time.time())
        jnl.reclaim_run(dead, statuses=("crashed",), owner=Owner("here", 1), opening=opening,
                        attempt_start=AttemptStart(run.attempt + 1, "recover", time.time()))
        kept, counted = _counted(jnl, (orders, events))
        assert kept == counted and counted[(events, "run", "running")] == 1 and (events, "run", "crashed") not in counted

        pruned = jnl.prune(now - 30 * 86400)
        assert pruned.runs >= 1
        kept, counted = _counted(jnl, (orders, events))
        assert old not in {r.id for r in jnl.list_runs(pipeline=orders, limit=None)}
        assert kept == counted and (orders, "run", "done") not in kept  # the pruned run is no longer counted
    finally:
        filler.close()

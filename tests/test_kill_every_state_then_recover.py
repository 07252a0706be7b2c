"""SIGKILL right after each state's transition is committed; then `runjournal recover`, or simply the next run.

The child's collector kills its own process in ``on_transition``, which the engine calls after the
transition is committed and before the state's work starts. So the journal must already name the
state, and the destination must show that none of the state's work happened. Then, either:

- ``recover``: `runjournal recover` in a subprocess, from another working directory, attaches to
  the pipeline from the journal alone, loads what the killed run left pending, ships the traces
  (with one the journal reconstructs for the attempt that died) and marks the run recovered.
  Running it again does nothing. Then the next run loads the next batch.
- ``next-run``: the next run of the pipeline recovers the killed run first, then runs.

What "exactly once" means depends on where the first run died, because the caller's data is in
dlt's hands only from the end of extract on:

- killed before extract's work (clean_folder, sync, finalize_pending, extract): the data of the
  killed call never reached a load package. The caller sends it again, with the next batch.
- killed after extract (normalize, load, store_trace): the data is in a committed package, which
  recovery finishes exactly once; the caller sends only the next batch (append), or sends both
  again (merge: the re-sent values win; replace: the table holds the last run's data).
- finalize_pending: the child first leaves a normalized package of its own (ids 100-104); the
  kill comes before it is loaded, and recovery must load it once.
"""

from __future__ import annotations

import collections
import json
import signal

import pytest

from runjournal.journal import Journal

from . import crash_child as cc
from ._crash_support import Destination, recover_cli, spec

BATCH1 = (0, 10)  # the killed call's data
BATCH2 = (10, 20)  # the next call's data
PENDING = (100, 105)  # the package left pending before the killed call (finalize_pending only)
BEFORE_EXTRACT = ("clean_folder", "sync", "finalize_pending", "extract")
ALL_STATES = ("clean_folder", "sync", "finalize_pending", "extract", "normalize", "load", "store_trace")

CASES = [
    # every state x every write disposition x both destinations, recovered by `runjournal recover`
    *(pytest.param(kind, s, d, "recover", id=f"{kind}-{s}-{d}-recover",
                   marks=[pytest.mark.postgres] if kind == "postgres" else [])
      for kind in ("duckdb", "postgres") for s in ALL_STATES for d in ("append", "merge", "replace")),
    # and recovered by simply running again
    *(pytest.param("duckdb", s, "append", "next-run", id=f"duckdb-{s}-append-next-run") for s in ALL_STATES),
]


@pytest.mark.parametrize("kind, state, disposition, how", CASES)
def test_kill_in_state_then_recovery_loads_every_row_once(tmp_path, journal_url, request, kind, state, disposition,
                                                          how):
    dest = Destination(kind, tmp_path, request)
    common = ["--store-trace", "--disposition", disposition, *dest.args()]
    pending_args = ["--pending", spec(PENDING)] if state == "finalize_pending" else []

    # 1. the run killed as soon as the transition into `state` is committed
    killed = cc.spawn(tmp_path, journal_url, *common, "--ids", spec(BATCH1), "--tag", "v", "--kill-at", state,
                      *pending_args, env=dest.env)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs(limit=None)
        crashed = jnl.get_story(run.id)
    assert (crashed.run.status, crashed.run.state, crashed.run.pid) == ("running", state, killed.pid)
    assert [(a.number, a.outcome) for a in crashed.attempts] == [(1, "running")]
    assert crashed.traces == ()  # store_trace's work never ran, in any case

    # none of the state's work happened: only a kill at store_trace finds the data loaded
    extract_ids = [t.details["load_ids"] for t in crashed.transitions if t.source == "extract"]
    killed_load_id = extract_ids[0][0] if extract_ids else None
    assert (killed_load_id is None) == (state in BEFORE_EXTRACT)
    loaded_before = dest.rows()
    if state == "store_trace":
        assert {r[2] for r in loaded_before} == {killed_load_id}
    else:
        assert loaded_before == []

    # 2. recovery
    if how == "recover":
        recovered = recover_cli(journal_url, dest)
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        (outcome,) = json.loads(recovered.stdout)["runs"]
        assert (outcome["run_id"], outcome["stopped_in"], outcome["status"]) == (run.id, state, "recovered")
        assert_recovered(journal_url, run.id, state, killed_load_id, by="runjournal recover")
        assert_rows_after_recovery(dest.rows(), state, killed_load_id, pending_loaded=state == "finalize_pending")
        with Journal.open(journal_url) as jnl:
            before_again = len(jnl.get_story(run.id).transitions)
        again = recover_cli(journal_url, dest)
        assert again.returncode == 0 and json.loads(again.stdout) == {"runs": []}, again.stdout + again.stderr
        with Journal.open(journal_url) as jnl:
            assert len(jnl.get_story(run.id).transitions) == before_again

    # 3. the next run; re-sends the killed call's data only where that is correct (see module doc)
    resend = state in BEFORE_EXTRACT or disposition != "append"
    next_ids = (BATCH1[0], BATCH2[1]) if resend else BATCH2
    following = cc.spawn(tmp_path, journal_url, *common, "--ids", spec(next_ids), "--tag", "r", env=dest.env)
    assert cc.finish(following) == 0, cc.output_of(following)
    assert cc.result_of(following)["outcome"] == "ok", cc.output_of(following)
    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(cc.result_of(following)["run_id"])
    assert story.run.status == "done"
    assert [a.phase for a in story.attempts] == ["run"]  # nothing was left for it to finalize
    if how == "next-run":
        assert_recovered(journal_url, run.id, state, killed_load_id, by="the next run of the pipeline")

    rows = dest.rows()
    counts = collections.Counter(r[0] for r in rows)
    by_id = {r[0]: r for r in rows}
    if disposition == "replace":
        expected = set(range(*next_ids))
    else:
        expected = set(range(BATCH1[0], BATCH2[1])) | (set(range(*PENDING)) if state == "finalize_pending" else set())
    assert set(counts) == expected, sorted(counts)
    assert {i: n for i, n in counts.items() if n != 1} == {}, "rows loaded more than once"
    if disposition != "append":
        assert all(by_id[i][1] == f"r{i}" for i in range(*next_ids))  # the re-sent values win
    elif killed_load_id is not None:
        # batch 1 came from the killed run's own package, finished by recovery, not re-sent
        assert {by_id[i][2] for i in range(*BATCH1)} == {killed_load_id}

    # the destination's trace table tells the whole story, each trace once: the attempt that died
    # (reconstructed by the journal), the recovery, and the next run
    traces = dest.traces()
    died = traces[f"{run.id}-1"]
    assert (died["outcome"], died["reconstructed"], died["failed_step"]) == ("crashed", True, state)
    assert f"{story.run.id}-1" in traces


def assert_recovered(journal_url: str, run_id: str, state: str, killed_load_id, *, by: str) -> None:
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run_id)
    assert (story.run.status, story.run.state) == ("recovered", "recovered")
    moves = [(t.source, t.dest, t.trigger) for t in story.transitions]
    crash_at = moves.index((state, "crashed", "crash"))
    assert moves[crash_at + 1] == ("crashed", "clean_folder", "recover")
    assert moves[-1] == ("store_trace", "recovered", "finish")
    crash, recover = story.transitions[crash_at], story.transitions[crash_at + 1]
    assert crash.details["reason"] == "process gone"
    assert recover.details["by"].startswith(by)
    first_phase = "finalize" if state == "finalize_pending" else "run"  # a package was pending at its start
    assert [(a.number, a.phase, a.outcome) for a in story.attempts] == [
        (1, first_phase, "crashed"), (2, "recover", "succeeded")]
    pending = state in ("normalize", "load") or state == "finalize_pending"
    if pending:
        assert len(story.attempts[1].load_ids) == 1
        if killed_load_id is not None:
            assert list(story.attempts[1].load_ids) == [killed_load_id]
    else:
        assert list(story.attempts[1].load_ids) == []
    assert {t.attempt for t in story.traces} >= {1}
    assert all(t.shipped_at is not None for t in story.traces)


def assert_rows_after_recovery(rows, state: str, killed_load_id, *, pending_loaded: bool) -> None:
    """After recovery alone: the killed run's package is in, once; nothing of data that never reached one."""
    ids = collections.Counter(r[0] for r in rows)
    assert all(n == 1 for n in ids.values()), ids
    if killed_load_id is not None:
        assert set(ids) == set(range(*BATCH1)) and {r[2] for r in rows} == {killed_load_id}
    elif pending_loaded:
        assert set(ids) == set(range(*PENDING))
    else:
        assert rows == []

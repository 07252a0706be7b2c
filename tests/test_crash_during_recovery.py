"""SIGKILL during a recovery, then `runjournal recover` again: the run still ends recovered, every row and trace once.

A run is killed as soon as its transition into ``load`` is committed: its data is in a normalized
package, nothing loaded. Then a recovery process takes it up and is itself SIGKILLed during its
recovery (one such recovery, or three in a row), at the point the crash child's fault options choose:

- ``finalize_pending``: once the recovery's transition into finalize_pending (where a recovery
  loads what the run left pending; it never enters ``load``) is committed, before that work;
- ``mid_load``: inside finalize_pending's load, when dlt reports the package's first finished
  job (its file moved to completed_jobs; the other jobs not started: one load worker), so the
  package is partly loaded and still pending;
- ``store_trace``: once the transition into store_trace is committed: the package is loaded,
  the attempt's trace not yet captured and no trace shipped;
- ``traces_extracted`` and ``traces_loaded``: in store_trace, while the traces are shipped, when
  the trace pipeline's extract (resp. load) step has ended: the traces are in a package of the
  trace pipeline (resp. already at the destination), and the journal says they are not shipped.
  The attempt's own trace was captured into the journal before, so it is the one that is shipped
  for it, not a reconstruction;
- ``taken_up``: as soon as the take-up (``Journal.reclaim_run``: the run is running again, in this
  process) has committed. The take-up commits the recovery attempt's opening transition with it,
  so the death is journaled as a crash from ``clean_folder``, in an attempt of its own, like any.

The recovery process is ``crash_child.py --recover``: ``runjournal._recovery.recover`` (what `runjournal
recover` calls) with the child's collector given as its ``progress``, so that the collector's
``on_transition`` and dlt's job counter stop it. The take-up journals the recovering process's pid
and host, so the next `runjournal recover` (the console script, from ``/``) detects it as crashed
again, takes it up as a further attempt and finishes the job.
"""

from __future__ import annotations

import collections
import json
import signal
from pathlib import Path

import pytest

from runjournal.journal import Journal

from . import crash_child as cc
from ._crash_support import Destination, recover_cli, spec

ITEMS = (0, 10)
OTHERS = (100, 105)  # a second table: the package holds several jobs, so a load can die between them

TRACE_PIPELINE = f"_trace_{cc.PIPELINE_NAME}"
#: How each recovery is killed: the crash child's options, and the state the journal shows it died in.
KILLS = {
    "finalize_pending": (["--kill-at", "finalize_pending"], "finalize_pending"),
    "mid_load": (["--kill-after-jobs", "1"], "finalize_pending"),
    "store_trace": (["--kill-at", "store_trace"], "store_trace"),
    "traces_extracted": (["--kill-after-step", f"{TRACE_PIPELINE}:extract"], "store_trace"),
    "traces_loaded": (["--kill-after-step", f"{TRACE_PIPELINE}:load"], "store_trace"),
    "taken_up": (["--kill-after-reclaim"], "clean_folder"),
}
#: Kills that leave the package pending; the others come after the package was loaded.
BEFORE_LOADED = ("finalize_pending", "mid_load")
#: Kills that come after the attempt's own trace was captured into the journal.
WHILE_SHIPPING = ("traces_extracted", "traces_loaded")
SCENARIOS = (("finalize_pending",), ("mid_load",), ("store_trace",), ("traces_extracted",), ("traces_loaded",),
             ("taken_up",), ("mid_load", "taken_up", "store_trace"))
CASES = [
    pytest.param(kind, kills, id=f"{kind}-{'-then-'.join(kills)}",
                 marks=[pytest.mark.postgres] if kind == "postgres" else [])
    for kind in ("duckdb", "postgres") for kills in SCENARIOS
]


@pytest.mark.parametrize("kind, kills", CASES)
def test_recovery_killed_then_recovered_again(tmp_path, journal_url, request, kind, kills):
    dest = Destination(kind, tmp_path, request)
    # 1. the run, killed once its transition into load is committed: the data is in a normalized package
    victim = cc.spawn(tmp_path, journal_url, "--store-trace", *dest.args(), "--ids", spec(ITEMS),
                      "--other-ids", spec(OTHERS), "--kill-at", "load", env=dest.env)
    assert cc.finish(victim) == -signal.SIGKILL, cc.output_of(victim)
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs(limit=None)
        story = jnl.get_story(run.id)
    (load_id,) = next(t.details["load_ids"] for t in story.transitions if t.source == "extract")
    assert pending_packages(tmp_path) == [load_id]
    assert dest.rows() == []

    # 2. each recovery, killed at its point during its own attempt
    died = [("load", victim.pid)]  # each death: the state the journal shows it in, the pid
    stopped_in, attempt = "load", 1  # where the last attempt died, and its number
    # the trace the destination must show for each attempt: dlt's own for a recovery that loaded the package
    # and died only while shipping, else the journal's reconstruction of an attempt that died
    expected = {1: ("crashed", True, "load")}
    pending = True  # the package is still to load
    for kill in kills:
        options, state = KILLS[kill]
        recovering = cc.spawn(tmp_path, journal_url, "--recover", *options, env={**dest.env, "LOAD__WORKERS": "1"})
        assert cc.finish(recovering) == -signal.SIGKILL, cc.output_of(recovering)
        assert cc.sqlite_integrity(journal_url) == ["ok"]
        with Journal.open(journal_url) as jnl:
            story = jnl.get_story(run.id)
        # the take-up made the run the recovering process's own: that is how its death is detected
        assert (story.run.status, story.run.state, story.run.pid) == ("running", state, recovering.pid)
        assert_left_behind(tmp_path, dest, journal_url, run.id, kill, load_id, pending)
        died.append((state, recovering.pid))
        attempt, stopped_in = attempt + 1, state
        assert [(a.number, a.phase, a.outcome) for a in story.attempts][-2:] == [
            (attempt - 1, "run" if attempt == 2 else "recover", "crashed"), (attempt, "recover", "running")]
        expected[attempt] = ("succeeded", None, None) if pending and kill in WHILE_SHIPPING else ("crashed", True, state)
        pending = kill in BEFORE_LOADED or (kill == "taken_up" and pending)  # a take-up alone did nothing

    # 3. `runjournal recover` detects the dead recovery and finishes the job
    recovered = recover_cli(journal_url, dest)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    (outcome,) = json.loads(recovered.stdout)["runs"]
    assert (outcome["run_id"], outcome["stopped_in"], outcome["status"]) == (run.id, stopped_in, "recovered")
    # the warning names the state the last process died in
    assert f"it died in state {KILLS[kills[-1]][1]}" in recovered.stderr, recovered.stderr
    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run.id)
    last = attempt + 1  # the attempt that finished
    loaded_last = pending  # else a dead recovery had loaded the package already
    assert (story.run.status, story.run.state) == ("recovered", "recovered")

    # the transitions: each death detected, each attempt taken up by the next, numbered on
    transitions = story.transitions
    moves = [(t.source, t.dest, t.trigger) for t in transitions]
    crashes = [t for t in transitions if t.trigger == "crash"]
    assert [(t.source, t.details["reason"], t.details["pid"]) for t in crashes] == [
        (state, "process gone", pid) for state, pid in died]
    recovers = [i for i, t in enumerate(transitions) if t.trigger == "recover"]
    assert [transitions[i].attempt for i in recovers] == list(range(2, last + 1))
    for i in recovers:
        assert (moves[i - 1][1:], moves[i][:2]) == (("crashed", "crash"), ("crashed", "clean_folder"))
        assert transitions[i].details["by"].startswith("runjournal recover")
    assert [t.attempt for t in transitions] == sorted(t.attempt for t in transitions)
    assert [t.seq for t in transitions] == list(range(1, len(moves) + 1))
    assert moves[recovers[-1]:] == [
        ("crashed", "clean_folder", "recover"), ("clean_folder", "sync", "advance"),
        ("sync", "finalize_pending", "advance"),
        ("finalize_pending", "store_trace", "attempt_done" if loaded_last else "advance"),
        ("store_trace", "recovered", "finish")]
    assert [(a.number, a.phase, a.outcome) for a in story.attempts] == [
        (1, "run", "crashed"), *((n, "recover", "crashed") for n in range(2, last)), (last, "recover", "succeeded")]
    assert list(story.attempts[-1].load_ids) == ([load_id] if loaded_last else [])

    # every row once, all from the killed run's own package, which is gone from the working folder
    for table, ids in ((cc.TABLE, ITEMS), (cc.OTHER_TABLE, OTHERS)):
        rows = dest.rows(table)
        assert collections.Counter(r[0] for r in rows) == collections.Counter(range(*ids)), (table, rows)
        assert {r[2] for r in rows} == {load_id}
    assert pending_packages(tmp_path) == []
    assert pending_packages(tmp_path, TRACE_PIPELINE) == []

    # one trace per attempt, each shipped once: dlt's own for an attempt that loaded something and lived to
    # capture it (the last one, or one killed while shipping), else the journal's reconstruction of a dead one;
    # the last attempt has one even when it ran no dlt step (it tells the states it walked and why)
    traces = dest.traces()
    expected[last] = ("succeeded", None, None)
    assert {trace_id: (t["outcome"], t["reconstructed"], t["failed_step"]) for trace_id, t in traces.items()} == {
        f"{run.id}-{n}": trace for n, trace in expected.items()}
    assert sorted(t.attempt for t in story.traces) == sorted(expected)
    assert all(t.shipped_at is not None for t in story.traces)
    if not set(kills) & set(WHILE_SHIPPING):
        assert outcome["traces_shipped"] == len(expected)  # no dead process got as far as shipping

    # 4. nothing left to do
    again = recover_cli(journal_url, dest)
    assert again.returncode == 0 and json.loads(again.stdout) == {"runs": []}, again.stdout + again.stderr
    with Journal.open(journal_url) as jnl:
        assert len(jnl.get_story(run.id).transitions) == len(moves)


def pending_packages(base: Path, pipeline: str = cc.PIPELINE_NAME) -> list[str]:
    """The pipeline's packages extracted or normalized, not loaded: their folders in its working dir."""
    working = base / "pipelines" / pipeline
    return sorted(p.name for folder in ("normalize/extracted", "load/normalized")
                  if (working / folder).is_dir() for p in (working / folder).iterdir())


def assert_left_behind(base: Path, dest: Destination, journal_url: str, run_id: str, kill: str, load_id: str,
                       pending_before: bool) -> None:
    """What the recovery killed at ``kill`` left: nothing done, part of the package, or all of it (and traces)."""
    loaded = {table: dest.rows(table) for table in (cc.TABLE, cc.OTHER_TABLE)}
    with Journal.open(journal_url) as jnl:
        assert all(t.shipped_at is None for t in jnl.get_story(run_id).traces)
    shipped = dest.trace_rows()
    if kill in BEFORE_LOADED or (kill == "taken_up" and pending_before):
        assert pending_packages(base) == [load_id]
        jobs = base / "pipelines" / cc.PIPELINE_NAME / "load" / "normalized" / load_id
        completed = list((jobs / "completed_jobs").iterdir()) if (jobs / "completed_jobs").is_dir() else []
        if kill == "finalize_pending":
            assert completed == [] and all(rows == [] for rows in loaded.values()), (completed, loaded)
        elif kill == "mid_load":  # one job finished, the rest still to do
            assert len(completed) == 1 and list((jobs / "new_jobs").iterdir()), completed
        assert shipped == []
        return
    assert pending_packages(base) == []
    assert {t: sorted(r[0] for r in rows) for t, rows in loaded.items()} == {
        cc.TABLE: list(range(*ITEMS)), cc.OTHER_TABLE: list(range(*OTHERS))}
    if kill == "traces_loaded":  # at the destination, once, though the journal does not know it yet
        assert shipped and len({r[0] for r in shipped}) == len(shipped), shipped
        assert pending_packages(base, TRACE_PIPELINE) == []
    else:
        assert shipped == []
        assert len(pending_packages(base, TRACE_PIPELINE)) == (kill == "traces_extracted")

"""SIGKILL right after each work state's transition is committed, then a normal run on the same pipeline.

The child's collector kills its own process in ``on_transition``, which the engine calls after the
transition is committed and before the state's work starts. So the journal must already name
the state, and the destination must show that none of the state's work happened. A second,
normal child then runs the same pipeline, and every row must be in the destination once.

What "exactly once" means depends on where the first run died, because the caller's data is
in dlt's hands only from the end of extract on:

- killed before extract's work (clean_folder, sync, finalize_pending, extract): the data of the
  killed call never reached a load package, so nothing of it is pending. A caller who recovers
  must send it again; the test re-sends it, together with the next batch.
- killed after extract (normalize, load, store_trace): the data is in a committed package
  (extracted, normalized, or for store_trace already loaded). The next run must finish that
  package (finalize) and must not load it twice; the caller sends only the next batch. With
  ``append``, re-sending the killed call's data would duplicate it: that is dlt's append
  semantics, not the engine's business. With ``merge`` on a primary key, re-sending is harmless,
  and the re-sent values must win over those of the package finalized first.
- finalize_pending: the child first leaves a normalized package of its own (ids 100-104); the
  kill comes before it is loaded, and the next run must load it once.
"""

from __future__ import annotations

import collections
import signal

import pytest

from journal import Journal

from . import crash_child as cc

BATCH1 = (0, 10)  # the killed call's data
BATCH2 = (10, 20)  # the next call's data
PENDING = (100, 105)  # the package left pending before the killed call (finalize_pending only)
BEFORE_EXTRACT = ("clean_folder", "sync", "finalize_pending", "extract")

CASES = [
    *(pytest.param(state, "append", id=f"{state}-append") for state in
      ("clean_folder", "sync", "finalize_pending", "extract", "normalize", "load", "store_trace")),
    # merge on a primary key: the killed run's package is finalized, then the re-sent data overwrites it
    pytest.param("load", "merge", id="load-merge"),
]


def spec(bounds: tuple[int, int]) -> str:
    return f"{bounds[0]}:{bounds[1]}"


def destination_rows(base) -> list[tuple]:
    """(id, value, _dlt_load_id) of the items table; empty when the file or the table does not exist yet."""
    return cc.table_rows(base, columns="id, value, _dlt_load_id")


@pytest.mark.parametrize("state, disposition", CASES)
def test_kill_after_commit_of_state_then_next_run_loads_every_row_once(tmp_path, journal_url, state, disposition):
    pending_args = ["--pending", spec(PENDING)] if state == "finalize_pending" else []
    common = ["--store-trace", "--disposition", disposition]

    # 1. the run killed as soon as the transition into `state` is committed
    killed = cc.spawn(tmp_path, journal_url, *common, "--ids", spec(BATCH1), "--tag", "v", "--kill-at", state,
                      *pending_args)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)

    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        runs = jnl.list_runs(limit=None)
        assert len(runs) == 1, runs
        crashed = jnl.get_story(runs[0].id)
    assert crashed.run.pid == killed.pid
    assert (crashed.run.status, crashed.run.state, crashed.run.finished_at) == ("running", state, None)
    assert crashed.transitions[-1].dest == state
    assert [t.seq for t in crashed.transitions] == list(range(1, len(crashed.transitions) + 1))
    assert [(a.number, a.outcome) for a in crashed.attempts] == [(1, "running")]
    # store_trace's work (capturing the attempt's trace) never ran, in any case
    assert crashed.traces == ()

    # none of the state's work happened: only a kill at store_trace finds the data loaded
    before = destination_rows(tmp_path)
    extract_ids = [t.details["load_ids"] for t in crashed.transitions if t.source == "extract"]
    if state == "store_trace":
        assert sorted(r[0] for r in before) == list(range(*BATCH1))
        assert extract_ids and {r[2] for r in before} == set(extract_ids[0])
    else:
        assert before == []
    if state in BEFORE_EXTRACT:
        assert extract_ids == []  # the killed call's data never reached a package
    else:
        assert len(extract_ids) == 1 and len(extract_ids[0]) == 1
    killed_load_id = extract_ids[0][0] if extract_ids else None

    # 2. the next run, normal; re-sends the killed call's data only where that is correct (see module doc)
    resend = state in BEFORE_EXTRACT or disposition == "merge"
    next_ids = (BATCH1[0], BATCH2[1]) if resend else BATCH2
    recovery = cc.spawn(tmp_path, journal_url, *common, "--ids", spec(next_ids), "--tag", "r")
    assert cc.finish(recovery) == 0, cc.output_of(recovery)
    assert cc.result_of(recovery)["outcome"] == "ok", cc.output_of(recovery)

    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        runs = jnl.list_runs(limit=None)
        assert len(runs) == 2
        recovered = jnl.get_story(cc.result_of(recovery)["run_id"])
        after = jnl.get_story(crashed.run.id)
    assert recovered.run.status == "done"
    # the next run of the pipeline found the killed run's process gone and journaled it as crashed,
    # from the state it had reached, with the evidence
    assert (after.run.status, after.run.state) == ("crashed", "crashed")
    assert after.run.finished_at is not None
    assert after.transitions[:-1] == crashed.transitions
    last = after.transitions[-1]
    assert (last.source, last.dest, last.trigger) == (state, "crashed", "crash")
    assert last.details["reason"] == "process gone" and last.details["pid"] == killed.pid
    assert [(a.number, a.outcome) for a in after.attempts] == [(1, "crashed")]
    assert last.at <= recovered.run.started_at

    # finalize ran first exactly when a package was left pending, and it loaded that package
    phases = [a.phase for a in recovered.attempts]
    finalized: list[str] = []
    if state in ("finalize_pending", "normalize", "load"):
        assert phases == ["finalize", "run"], recovered.attempts
        finalized = list(recovered.attempts[0].load_ids)
        assert len(finalized) == 1
        if killed_load_id is not None:
            assert finalized == [killed_load_id]
    else:
        assert phases == ["run"], recovered.attempts

    rows = destination_rows(tmp_path)
    counts = collections.Counter(r[0] for r in rows)
    expected = set(range(BATCH1[0], BATCH2[1]))
    if state == "finalize_pending":
        expected |= set(range(*PENDING))
    assert set(counts) == expected, sorted(counts)
    duplicated = {i: n for i, n in counts.items() if n != 1}
    assert duplicated == {}, f"rows loaded more than once: {duplicated}"

    by_id = {r[0]: r for r in rows}
    if disposition == "merge":
        # the package of the killed run was loaded before the re-sent data: the re-sent values win
        assert all(by_id[i][1] == f"r{i}" for i in expected)
    elif killed_load_id is not None:
        # batch 1 came from the killed run's own package, finalized (or already loaded), not re-sent
        assert {by_id[i][2] for i in range(*BATCH1)} == {killed_load_id}
        assert all(by_id[i][1] == f"v{i}" for i in range(*BATCH1))
    if state == "finalize_pending":
        # the package left pending before the killed call was loaded by the finalize attempt
        assert {by_id[i][2] for i in range(*PENDING)} == set(finalized)
    assert killed_load_id is None or killed_load_id in cc.completed_load_ids(tmp_path)

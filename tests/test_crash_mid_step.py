"""SIGKILL in the middle of a step's work: the journal names the step, and a normal re-run loses nothing.

- Mid-extract: the resource has yielded 10 of its 20 rows when the parent kills the child. dlt
  had not committed the package, so nothing is pending and only a temporary extract folder is
  left; the caller re-sends the data, the next run's clean_folder removes the orphan and says so
  in the journal, and every row is loaded once.
- Mid-load: a ``@dlt.destination`` sink (batch_size 2) is killed inside its 2nd batch. dlt 1.31
  commits the sink's record offset after each batch, so the next run resumes at the committed
  offset: exactly the batch in flight is delivered again, every other batch exactly once.
"""

from __future__ import annotations

import collections
import os
import re
import signal

from runjournal.journal import Journal

from . import crash_child as cc


def working_dir(base):
    return base / "pipelines" / cc.PIPELINE_NAME


def temp_extract_dirs(base) -> list[str]:
    normalize = working_dir(base) / "normalize"
    if not normalize.exists():
        return []
    return sorted(p.name for p in normalize.iterdir() if p.is_dir() and re.fullmatch(r"[0-9a-f]{16}", p.name))


def packages(base, *parts: str) -> list[str]:
    path = working_dir(base).joinpath(*parts)
    return sorted(os.listdir(path)) if path.exists() else []


def only_run(journal_url):
    with Journal.open(journal_url) as jnl:
        runs = jnl.list_runs(limit=None)
        assert len(runs) == 1, runs
        return jnl.get_story(runs[0].id)


def assert_killed_in(story, state: str, pid: int) -> None:
    assert story.run.pid == pid
    assert (story.run.status, story.run.state, story.run.finished_at) == ("running", state, None)
    assert story.transitions[-1].dest == state
    assert [(a.number, a.outcome) for a in story.attempts] == [(1, "running")]


def rerun_recovers(tmp_path, journal_url, crashed, *args: str):
    """Run the child again: it recovers the killed run first, then runs its own attempt to done.

    Returns the rerun's process and the killed run's story afterwards.
    """
    rerun = cc.spawn(tmp_path, journal_url, *args)
    assert cc.finish(rerun) == 0, cc.output_of(rerun)
    assert cc.result_of(rerun)["outcome"] == "ok", cc.output_of(rerun)
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(cc.result_of(rerun)["run_id"])
        after = jnl.get_story(crashed.run.id)
    assert story.run.status == "done"
    assert [a.phase for a in story.attempts] == ["run"]
    assert after.run.status == "recovered"
    return rerun, after


def test_kill_mid_extract_leaves_nothing_pending_and_rerun_loads_every_row_once(tmp_path, journal_url):
    child = cc.spawn(tmp_path, journal_url, "--ids", "0:20", "--extract-sleep-after", "10", "--sleep", "60")
    assert cc.wait_for_marker(tmp_path, "extract", child) == "10"
    os.kill(child.pid, signal.SIGKILL)
    assert cc.finish(child) == -signal.SIGKILL

    assert cc.sqlite_integrity(journal_url) == ["ok"]
    crashed = only_run(journal_url)
    assert_killed_in(crashed, "extract", child.pid)
    # dlt never committed the package: nothing pending, only its temporary folder is left behind
    orphans = temp_extract_dirs(tmp_path)
    assert len(orphans) == 1, orphans
    assert packages(tmp_path, "normalize", "extracted") == []
    assert packages(tmp_path, "load", "normalized") == []
    assert cc.table_rows(tmp_path) == []

    # the data never reached a package, so the caller sends it again
    _, after = rerun_recovers(tmp_path, journal_url, crashed, "--ids", "0:20")
    # that recovery attempt removed the orphan; nothing was pending
    assert [(a.phase, a.outcome, tuple(a.load_ids)) for a in after.attempts] == [
        ("run", "crashed", ()), ("recover", "succeeded", ())]
    crash = next(t for t in after.transitions if t.trigger == "crash")
    assert crash.source == "extract"
    cleaned = next(t for t in after.transitions if t.source == "clean_folder" and t.attempt == 2)
    assert cleaned.details["removed_temp_extract_dirs"] == orphans
    assert temp_extract_dirs(tmp_path) == []

    ids = [row[0] for row in cc.table_rows(tmp_path)]
    counts = collections.Counter(ids)
    assert set(counts) == set(range(20)) and set(counts.values()) == {1}, counts
    assert len(cc.completed_load_ids(tmp_path)) == 1


def test_kill_mid_load_resumes_sink_at_committed_batch_offset(tmp_path, journal_url):
    child = cc.spawn(tmp_path, journal_url, "--destination", "sink", "--ids", "0:10",
                     "--sink-sleep-at-call", "2", "--sleep", "60")
    cc.wait_for_marker(tmp_path, "sink", child)
    os.kill(child.pid, signal.SIGKILL)
    assert cc.finish(child) == -signal.SIGKILL

    assert cc.sqlite_integrity(journal_url) == ["ok"]
    crashed = only_run(journal_url)
    assert_killed_in(crashed, "load", child.pid)
    (load_id,) = next(t for t in crashed.transitions if t.source == "extract").details["load_ids"]
    assert packages(tmp_path, "load", "normalized") == [load_id]

    before = cc.sink_calls(tmp_path)
    assert [c["ids"] for c in before] == [[0, 1], [2, 3]]  # batch 1 done, batch 2 in flight
    in_flight = before[1]["ids"]

    # a normal run with no new data: it finalizes the package the killed run left
    rerun, after = rerun_recovers(tmp_path, journal_url, crashed, "--destination", "sink")
    # the package was finalized by the recovery of the killed run, before the new run began
    assert [(a.phase, a.outcome, tuple(a.load_ids)) for a in after.attempts] == [
        ("run", "crashed", ()), ("recover", "succeeded", (load_id,))]
    assert next(t for t in after.transitions if t.trigger == "crash").source == "load"
    assert packages(tmp_path, "load", "normalized") == []
    assert packages(tmp_path, "load", "loaded") == [load_id]

    calls = cc.sink_calls(tmp_path)
    resumed = [c["ids"] for c in calls if c["pid"] == rerun.pid]
    # resumption from the committed offset: the batch in flight first, then the rest, nothing before it
    assert resumed == [in_flight, [4, 5], [6, 7], [8, 9]]
    counts = collections.Counter(i for c in calls for i in c["ids"])
    assert set(counts) == set(range(10))
    assert {i for i, n in counts.items() if n > 1} == set(in_flight)
    assert max(counts.values()) == 2


"""One run per pipeline working directory at a time, by a lease in the journal, with real processes.

Two processes race for the same pipeline: one runs, the other is refused before it touches the
working directory, with an error naming the holder, and journals nothing. When the holder is
killed, the next run takes the pipeline over: the dead holder is journaled crashed, then recovered.
Run on an SQLite journal (processes of one host) and on PostgreSQL (what several hosts share).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from runjournal.journal import Journal

from . import crash_child as cc

HOLD = ["--ids", "0:20", "--extract-sleep-after", "5", "--sleep", "60"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_journal_url(request):
    return request.getfixturevalue("journal_url" if request.param == "sqlite" else "pg_journal_url")


def first_to_exit(*procs, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                return proc
        time.sleep(0.05)
    for proc in procs:
        proc.kill()
    raise AssertionError("both processes are still running: neither was refused")


def runs_of_this_test(url: str, base) -> list:
    with Journal.open(url) as jnl:
        return [r for r in jnl.list_runs(pipeline=cc.PIPELINE_NAME, limit=None)
                if r.pipelines_dir == str(base / "pipelines")]


def test_two_processes_race_one_runs_the_other_is_refused_then_a_killed_holder_is_taken_over(tmp_path,
                                                                                              any_journal_url):
    import dlt

    # The pipeline's working folder exists before the race: two processes creating it at the same instant
    # is dlt's own race (its create_folder(exists_ok=False)), not the lease's, which is what is tested here.
    dlt.pipeline(cc.PIPELINE_NAME, pipelines_dir=str(tmp_path / "pipelines"))
    first = cc.spawn(tmp_path, any_journal_url, *HOLD)
    second = cc.spawn(tmp_path, any_journal_url, *HOLD)
    loser = first_to_exit(first, second)  # the holder sleeps in extract for a minute
    holder = second if loser is first else first
    assert loser.returncode == 0, cc.output_of(loser)
    cc.wait_for_marker(tmp_path, "extract", holder)
    refused = cc.result_of(loser)
    assert (refused["outcome"], refused["type"], refused["run_id"]) == ("exception", "LeaseHeld", None)
    (running,) = runs_of_this_test(any_journal_url, tmp_path)  # the loser journaled nothing
    assert running.pid == holder.pid and (running.status, running.state) == ("running", "extract")
    assert holder.poll() is None  # the holder goes on, untouched

    # the holder dies: the next run detects it, takes the lease over and recovers it first
    os.kill(holder.pid, signal.SIGKILL)
    assert cc.finish(holder) == -signal.SIGKILL
    following = cc.spawn(tmp_path, any_journal_url, "--ids", "0:20")
    assert cc.finish(following) == 0 and cc.result_of(following)["outcome"] == "ok", cc.output_of(following)
    with Journal.open(any_journal_url) as jnl:
        dead = jnl.get_story(running.id)
        done = jnl.get_run(cc.result_of(following)["run_id"])
    assert done.status == "done"
    assert dead.run.status == "recovered"
    moves = [(t.source, t.dest, t.trigger) for t in dead.transitions]
    assert ("extract", "crashed", "crash") in moves and ("crashed", "clean_folder", "recover") in moves
    assert sorted(r[0] for r in cc.table_rows(tmp_path)) == list(range(20))
    assert len(runs_of_this_test(any_journal_url, tmp_path)) == 2


def test_the_refusal_names_the_holder(tmp_path, journal_url):
    holder = cc.spawn(tmp_path, journal_url, *HOLD)
    cc.wait_for_marker(tmp_path, "extract", holder)
    try:
        from runjournal import runner
        import dlt

        pipeline = dlt.pipeline(cc.PIPELINE_NAME, pipelines_dir=str(tmp_path / "pipelines"),
                                destination=dlt.destinations.duckdb(str(tmp_path / "other.duckdb")))
        from runjournal.journal import LeaseHeld

        with pytest.raises(LeaseHeld) as refused:
            runner(pipeline, journal=journal_url).run([{"id": 1}], table_name="items")
        (running,) = runs_of_this_test(journal_url, tmp_path)
        text = str(refused.value)
        assert running.id in text and f"pid {holder.pid}" in text and running.host in text
        assert "since " in text and "nothing was started" in text
        assert refused.value.holder.id == running.id
        assert not (tmp_path / "other.duckdb").exists()
    finally:
        holder.kill()
        holder.wait()

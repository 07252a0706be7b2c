"""One SIGTERM to a running child: the run stops on its own, is journaled as interrupted, and is never retried.

The child catches whatever the runner raises, prints its type and chain, and exits 0: a
return code of 0 proves the signal was handled (dlt's interception, set up by the engine)
instead of killing the process (which would give -15).
"""

from __future__ import annotations

import collections
import os
import signal
import time

from runjournal.journal import Journal

from . import crash_child as cc


def test_sigterm_during_load_interrupts_once_and_next_run_finishes_the_package(tmp_path, journal_url):
    # Two tables, so two load jobs; one worker, so the second job has not started when the signal
    # comes. The job in flight (its sink sleeping in its first batch) is drained, no new job starts.
    child = cc.spawn(
        tmp_path, journal_url, "--destination", "sink", "--ids", "0:6", "--other-ids", "50:56",
        "--sink-sleep-at-call", "1", "--sleep", "2", "--attempts", "5", "--retry-steps", "load",
        env={"LOAD__WORKERS": "1"},
    )
    cc.wait_for_marker(tmp_path, "sink", child)
    os.kill(child.pid, signal.SIGTERM)
    assert cc.finish(child, timeout=30) == 0, cc.output_of(child)
    result = cc.result_of(child)
    assert result["outcome"] == "exception", result
    assert result["type"] == "PipelineStepFailed"
    assert "SignalReceivedException" in result["chain"], result

    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(result["run_id"])
    run = story.run
    assert (run.status, run.state) == ("interrupted", "interrupted")
    assert run.finished_at is not None
    assert run.error_type == "SignalReceivedException"
    # exactly one attempt, though the policy allows 5 and load is a retried step
    assert len(story.attempts) == 1, story.attempts
    attempt = story.attempts[0]
    assert (attempt.outcome, attempt.error_class, attempt.failed_step) == ("interrupted", "interrupted", "load")
    assert "retry_wait" not in {t.dest for t in story.transitions}
    last = story.transitions[-1]
    assert (last.source, last.dest, last.trigger) == ("store_trace", "interrupted", "halt")
    (load_id,) = next(t for t in story.transitions if t.source == "extract").details["load_ids"]

    # the job in flight was drained to its end; the other job never started
    first = cc.sink_calls(tmp_path)
    assert {c["pid"] for c in first} == {child.pid}
    drained_table = first[0]["table"]
    assert {c["table"] for c in first} == {drained_table}
    all_ids = {cc.TABLE: list(range(0, 6)), cc.OTHER_TABLE: list(range(50, 56))}
    assert [i for c in first for i in c["ids"]] == all_ids[drained_table]

    # a later normal run (no new data) finishes the pending package: every row exactly once
    rerun = cc.spawn(tmp_path, journal_url, "--destination", "sink")
    assert cc.finish(rerun) == 0, cc.output_of(rerun)
    assert cc.result_of(rerun)["outcome"] == "ok", cc.output_of(rerun)
    with Journal.open(journal_url) as jnl:
        finished = jnl.get_story(cc.result_of(rerun)["run_id"])
        interrupted_after = jnl.get_run(run.id)
    assert finished.run.status == "done"
    assert finished.attempts[0].phase == "finalize" and list(finished.attempts[0].load_ids) == [load_id]
    assert interrupted_after.status == "interrupted"  # a run that ended on its own is not "crashed"

    calls = cc.sink_calls(tmp_path)
    later = [c for c in calls if c["pid"] == rerun.pid]
    assert {c["table"] for c in later} == set(all_ids) - {drained_table}
    counts = collections.Counter(i for c in calls for i in c["ids"])
    assert counts == collections.Counter([*all_ids[cc.TABLE], *all_ids[cc.OTHER_TABLE]])


def test_sigterm_during_retry_wait_ends_the_run_promptly(tmp_path, journal_url):
    # The sink fails its first call; LOAD__RAISE_ON_MAX_RETRIES=1 makes dlt raise at once, a
    # transient load failure, so the policy waits 30 s before attempt 2. SIGTERM comes in the wait.
    child = cc.spawn(
        tmp_path, journal_url, "--destination", "sink", "--ids", "0:4", "--sink-fail-once",
        "--attempts", "5", "--wait", "30", "--retry-steps", "load", "--marker-on", "retry_wait",
        env={"LOAD__RAISE_ON_MAX_RETRIES": "1"},
    )
    cc.wait_for_marker(tmp_path, "retry_wait", child)
    signalled = time.monotonic()
    os.kill(child.pid, signal.SIGTERM)
    assert cc.finish(child, timeout=30) == 0, cc.output_of(child)
    assert time.monotonic() - signalled < 10, "the retry wait was not cut short by SIGTERM"
    result = cc.result_of(child)
    assert result["outcome"] == "exception", result
    assert "SignalReceivedException" in result["chain"], result
    assert result["elapsed"] < 25, result

    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(result["run_id"])
    run = story.run
    assert (run.status, run.state) == ("interrupted", "interrupted")
    last = story.transitions[-1]
    assert (last.source, last.dest, last.trigger) == ("retry_wait", "interrupted", "halt")
    assert story.transitions[-2].dest == "retry_wait"
    assert story.transitions[-2].details["wait_seconds"] == 30
    # attempt 1 failed transiently and was to be retried; attempt 2 never started
    assert [(a.number, a.outcome, a.error_class) for a in story.attempts] == [(1, "failed", "transient")]
    assert story.attempts[0].wait_seconds == 30
    # the run ended because of the signal, not because of the transient failure it was waiting to retry
    assert run.error_type == "SignalReceivedException", (run.error_type, run.error_message)
    assert cc.sink_calls(tmp_path) == []


def test_sigterm_during_the_last_load_job_completes_the_run_and_defers_its_trace(tmp_path, journal_url):
    # One table, one job: dlt drains the job in flight to its end and completes the package, so
    # the data is all loaded and the run is done. The signal is still pending, though, and the
    # engine's own rule for a stopping process is that traces wait in the journal for the next run
    # (see _conclude_failure: "An interrupted run stops at once"). Shipping them now, inside the
    # signalled context, cannot work anyway: every dlt step of the trace pipeline raises at once.
    child = cc.spawn(
        tmp_path, journal_url, "--destination", "sink", "--ids", "0:4", "--store-trace",
        "--sink-sleep-at-call", "1", "--sleep", "2", "--attempts", "5", "--retry-steps", "load",
    )
    cc.wait_for_marker(tmp_path, "sink", child)
    os.kill(child.pid, signal.SIGTERM)
    assert cc.finish(child, timeout=30) == 0, cc.output_of(child)
    result = cc.result_of(child)
    assert result["outcome"] == "ok", result

    with Journal.open(journal_url) as jnl:
        first = jnl.get_story(result["run_id"])
    assert (first.run.status, first.run.state) == ("done", "done")
    assert [(a.number, a.outcome) for a in first.attempts] == [(1, "succeeded")]
    assert [c["ids"] for c in cc.sink_calls(tmp_path)] == [[0, 1], [2, 3]]
    assert len(first.traces) == 1 and first.traces[0].shipped_at is None

    # the next run ships the trace the stopping run kept, once
    rerun = cc.spawn(tmp_path, journal_url, "--destination", "sink", "--store-trace")
    assert cc.finish(rerun) == 0, cc.output_of(rerun)
    assert cc.result_of(rerun)["outcome"] == "ok", cc.output_of(rerun)
    with Journal.open(journal_url) as jnl:
        kept = jnl.get_story(first.run.id).traces[0]
    assert kept.shipped_at is not None
    trace_rows = [i for c in cc.sink_calls(tmp_path) if c["table"] == f"{cc.PIPELINE_NAME}_trace" for i in c["ids"]]
    assert trace_rows.count(f"{first.run.id}-1") == 1

    # what the stopping run journaled about its trace: deferred, not failed
    finish = first.transitions[-1]
    assert "ship_error" not in (finish.details or {}), finish.details
    assert first.traces[0].ship_error is None, first.traces[0].ship_error


def test_sigterm_with_start_new_jobs_on_signal_loads_every_job_and_ends_done(tmp_path, journal_url):
    """dlt's `load.start_new_jobs_on_signal=true`: the load goes on to its last job after SIGTERM, so the
    run completes (done), and only what comes after the load (shipping traces) is left for the next run."""
    child = cc.spawn(
        tmp_path, journal_url, "--destination", "sink", "--ids", "0:6", "--other-ids", "50:56", "--store-trace",
        "--sink-sleep-at-call", "1", "--sleep", "2", "--attempts", "5", "--retry-steps", "load",
        env={"LOAD__WORKERS": "1", "LOAD__START_NEW_JOBS_ON_SIGNAL": "true"},
    )
    cc.wait_for_marker(tmp_path, "sink", child)
    os.kill(child.pid, signal.SIGTERM)
    assert cc.finish(child, timeout=30) == 0, cc.output_of(child)
    assert cc.result_of(child)["outcome"] == "ok", cc.output_of(child)

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(cc.result_of(child)["run_id"])
    assert (story.run.status, len(story.attempts)) == ("done", 1)
    assert story.transitions[-1].details == {"shipping_deferred": "stop signal received"}
    loaded = sorted(i for c in cc.sink_calls(tmp_path) if c["pid"] == child.pid and c["table"] != "crash_pipe_trace"
                    for i in c["ids"])
    assert loaded == [*range(0, 6), *range(50, 56)]  # both jobs, the second started after the signal

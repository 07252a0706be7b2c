"""`runjournal resume RUN_ID`: a new attempt of an ended run, from where the journal says it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from runjournal.journal import Journal

from . import crash_child as cc
from ._cli_support import RUNJOURNAL, cli
from ._project_cli_support import PIPELINE, rows, wait_for, write_project


def test_resume_of_a_project_run_killed_mid_extract_extracts_its_source_again(tmp_path, journal_url):
    project = write_project(tmp_path / "project")
    (project / "hang_after_first_chunk").write_text("")
    env = {**os.environ, "RUNJOURNAL_URL": journal_url, "DLT_DATA_DIR": str(tmp_path / "dlt")}
    killed = subprocess.Popen([str(RUNJOURNAL), "run", PIPELINE, "--project", str(project)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(project / "marker_extract")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    (project / "hang_after_first_chunk").unlink()
    assert rows(project) == []
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
    assert (run.status, run.state) == ("running", "extract")

    result = cli("resume", run.id[:10], "--json", url=journal_url, cwd="/", DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 0, result.stdout + result.stderr
    (outcome,) = json.loads(result.stdout)["runs"]
    assert (outcome["run_id"], outcome["stopped_in"], outcome["status"]) == (run.id, "extract", "done")
    assert "extracting its source again" in outcome["notes"][0]
    assert rows(project) == list(range(10))

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run.id)
    assert [(a.number, a.phase, a.outcome) for a in story.attempts] == [(1, "run", "crashed"), (2, "run", "succeeded")]
    moves = [(t.source, t.dest, t.trigger) for t in story.transitions]
    assert ("extract", "crashed", "crash") in moves and ("crashed", "clean_folder", "resume_run") in moves
    assert moves[-1] == ("store_trace", "done", "finish")
    # the attempt that died has its trace, reconstructed from the journal, shipped with the rest
    assert {t.attempt for t in story.traces} == {1, 2} and all(t.shipped_at for t in story.traces)

    again = cli("resume", run.id, url=journal_url, DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert again.returncode == 2 and f"run {run.id} is done" in again.stderr


def test_resume_of_a_python_run_finalizes_and_says_the_rest_needs_the_callers_data(tmp_path, journal_url):
    killed = cc.spawn(tmp_path, journal_url, "--ids", "0:10", "--kill-at", "load")
    assert cc.finish(killed) == -signal.SIGKILL
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
    result = cli("resume", run.id, url=journal_url, cwd="/", DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{run.id} {cc.PIPELINE_NAME}: stopped in load -> recovered (1 package(s) loaded)" in result.stdout
    assert "started from Python" in result.stdout and "run that code again" in result.stdout
    assert [r[0] for r in cc.table_rows(tmp_path)] == list(range(10))


def test_resume_that_cannot_attach_says_why_and_loses_nothing(tmp_path, journal_url):
    """A run whose destination is a function defined inside other code cannot be attached from the journal."""
    failed = cc.spawn(tmp_path, journal_url, "--destination", "sink", "--ids", "0:4", "--sink-fail-once",
                      env={"LOAD__RAISE_ON_MAX_RETRIES": "1"})  # the sink's one failure fails the load
    assert cc.finish(failed) == 0 and cc.result_of(failed)["outcome"] == "exception", cc.output_of(failed)
    run_id = cc.result_of(failed)["run_id"]
    pending = sorted(os.listdir(tmp_path / "pipelines" / cc.PIPELINE_NAME / "load" / "normalized"))
    assert len(pending) == 1

    result = cli("resume", run_id, url=journal_url, DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "destination_callable" in result.stdout and "run the pipeline's own code again" in result.stdout
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run_id)
    assert story.run.status == "failed" and len(story.attempts) == 1  # untouched: no attempt was started
    assert sorted(os.listdir(tmp_path / "pipelines" / cc.PIPELINE_NAME / "load" / "normalized")) == pending

    # the pipeline's own code finalizes it on its next run
    rerun = cc.spawn(tmp_path, journal_url, "--destination", "sink")
    assert cc.finish(rerun) == 0 and cc.result_of(rerun)["outcome"] == "ok", cc.output_of(rerun)
    assert sorted(i for c in cc.sink_calls(tmp_path) for i in c["ids"]) == [0, 1, 2, 3]


def test_resume_of_an_unknown_run_exits_2(tmp_path, journal_url):
    cc.finish(cc.spawn(tmp_path, journal_url, "--ids", "0:2"))
    result = cli("resume", "ffffffff", url=journal_url)
    assert result.returncode == 2 and "no run with id 'ffffffff'" in result.stderr

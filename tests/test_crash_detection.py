"""A run whose process is gone is found and journaled as crashed, with the evidence; live runs are left alone."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import dlt

from runjournal import _crashes, runner
from runjournal.journal import Journal, NewRun, Transition
from tests._support import duckdb_rows, path_of, story

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import dlt
    from runjournal import RunnerCollector, runner

    class KillAt(RunnerCollector):
        def on_transition(self, pipeline, transition):
            if transition.dest == sys.argv[1]:
                os.kill(os.getpid(), signal.SIGKILL)

    pipeline = dlt.pipeline("crashy", pipelines_dir="p", destination=dlt.destinations.duckdb("crashy.duckdb"),
                            dataset_name="ds", progress=KillAt())
    runner(pipeline).run([{"id": i} for i in range(5)], table_name="t")
    """
)


def test_run_killed_in_load_is_marked_crashed_by_the_next_run(tmp_path, journal_url, monkeypatch):
    monkeypatch.setenv("RUNJOURNAL_URL", journal_url)
    child = subprocess.run([sys.executable, "-c", CHILD, "load"], cwd=tmp_path, capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    with Journal.open(journal_url) as journal:
        [dead] = journal.list_runs()
    assert (dead.status, dead.state) == ("running", "load")

    pipeline = dlt.pipeline("crashy", pipelines_dir=str(tmp_path / "p"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "crashy.duckdb")), dataset_name="ds")
    r = runner(pipeline, journal=journal_url)
    r.run()  # nothing new: finalizes the package the killed run left

    s = story(journal_url, dead.id)
    assert (s.run.status, s.run.state) == ("crashed", "crashed")
    assert path_of(s)[-2:] == ["load", "crashed"]
    assert s.transitions[-1].details["reason"] == "process gone"
    assert s.transitions[-1].details["pid"] == dead.pid
    assert [a.outcome for a in s.attempts] == ["crashed"]
    assert sorted(row[0] for row in duckdb_rows(str(tmp_path / "crashy.duckdb"), "ds", "t")) == [0, 1, 2, 3, 4]
    assert story(journal_url, r.last_run_id).attempts[0].phase == "finalize"


def _running(journal: Journal, host: str, pid: int, heartbeat_age: float, state: str = "extract") -> str:
    started = time.time() - heartbeat_age
    run_id = journal.start_run(
        NewRun(pipeline_name="elsewhere", host=host, pid=pid, config={"heartbeat_interval": 1.0}), at=started
    )
    journal.record_transition(run_id, Transition(1, 1, "created", state, "start", started))
    return run_id


def test_other_host_run_with_stale_heartbeat_is_crashed_and_fresh_one_is_not(journal_url):
    with Journal.open(journal_url) as journal:
        stale = _running(journal, "other-host", 4242, heartbeat_age=60)
        fresh = _running(journal, "other-host", 4243, heartbeat_age=0.5)

        found = _crashes.detect(journal)

        assert [run.id for run in found] == [stale]
        assert journal.get_run(fresh).status == "running"
        crash = journal.get_story(stale).transitions[-1]
        assert crash.details["reason"] == "heartbeat stale" and crash.details["heartbeat_age_s"] >= 60
        assert _crashes.detect(journal) == [], "detection twice does nothing the second time"


def test_live_process_on_this_host_is_not_crashed(journal_url):
    from runjournal import _process

    with Journal.open(journal_url) as journal:
        run_id = _running(journal, _process.host(), os.getpid(), heartbeat_age=3600)
        assert _crashes.detect(journal) == []
        assert journal.get_run(run_id).status == "running"


def test_reused_pid_is_not_taken_for_the_run(journal_url):
    """Same pid, but the process started at another time: the run's process is gone."""
    from runjournal import _process

    with Journal.open(journal_url) as journal:
        started = time.time() - 10
        run_id = journal.start_run(NewRun(pipeline_name="reused", host=_process.host(), pid=os.getpid(),
                                          process_started_at=started - 3600, config={}), at=started)
        assert [run.id for run in _crashes.detect(journal)] == [run_id]


def test_runjournal_runs_shows_a_dead_run_as_crashed(journal_url):
    import json
    from pathlib import Path

    with Journal.open(journal_url) as journal:
        stale = _running(journal, "other-host", 4242, heartbeat_age=60, state="normalize")
    script = Path(sys.executable).parent / "runjournal"

    listed = subprocess.run([str(script), "--journal", journal_url, "runs", "--json"],
                            capture_output=True, text=True, timeout=60)

    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)["runs"]
    # shown crashed where it died, with the evidence; the journal is left as it was (reads never write)
    assert (run["id"], run["status"], run["state"]) == (stale, "crashed", "normalize")
    assert run["presumed_crash"]["reason"] == "heartbeat stale"
    with Journal.open(journal_url) as journal:
        assert journal.get_run(stale).status == "running"

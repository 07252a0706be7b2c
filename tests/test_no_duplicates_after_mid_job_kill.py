"""The wide window of a load: the destination committed a job, dlt could not mark it complete, then a kill.

A real filesystem fault opens it: on entering load, the child makes the package's ``completed_jobs``
and ``.pending_transitions`` folders immutable (``chattr +i``), so each job runs and commits at the
destination but neither its file move nor its pending-transition marker can be written. The
attempt fails with the fault and the process is killed. Once the fault is gone, dlt alone would run
every job again (rows twice); recovery reconciles first: it deletes the package's rows found by
``_dlt_load_id`` (nested rows through their root rows) and runs the jobs again, so each row lands
once, on duckdb and PostgreSQL, for append, merge (whose rows wait in the staging dataset) and replace.
A sink cannot be asked: it stays at-least-once and the journal says how many jobs ran again.
"""

from __future__ import annotations

import collections
import json
import shutil
import signal
import subprocess

import pytest

from runjournal.journal import Journal

from . import crash_child as cc
from ._crash_support import Destination, recover_cli

BATCH = (0, 10)


def needs_chattr(tmp_path) -> None:
    """The fault needs chattr, CAP_LINUX_IMMUTABLE (root) and a filesystem with the immutable flag (ext4, xfs)."""
    if shutil.which("chattr") is None:
        pytest.skip("the filesystem fault needs chattr (e2fsprogs)")
    probe = tmp_path / "chattr-probe"
    probe.mkdir()
    tried = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, text=True)
    if tried.returncode != 0:
        pytest.skip(f"chattr +i is refused here ({tried.stderr.strip()}): needs root on ext4 or xfs")
    subprocess.run(["chattr", "-i", str(probe)], check=True)


def kill_in_the_window(tmp_path, journal_url, dest_args, env, *extra):
    killed = cc.spawn(tmp_path, journal_url, *dest_args, "--ids", f"{BATCH[0]}:{BATCH[1]}", "--freeze-jobs",
                      "--kill-at", "store_trace", *extra, env=env)
    try:
        assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    finally:
        cc.unfreeze(tmp_path)
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs(limit=None)
        story = jnl.get_story(run.id)
    failed = story.transitions[-1]
    assert (failed.source, failed.trigger) == ("load", "attempt_failed")
    assert failed.details["exception_type"] == "PermissionError"  # the fault, not a kill, stopped the load
    return run.id


def nested_rows(dest: Destination) -> int:
    return len(dest.rows(table="items__kids", columns="k AS id"))


@pytest.mark.parametrize("disposition", ["append", "merge", "replace"])
@pytest.mark.parametrize("kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_committed_but_unmarked_jobs_land_once_after_recovery(tmp_path, journal_url, request, kind, disposition):
    needs_chattr(tmp_path)
    dest = Destination(kind, tmp_path, request)
    run_id = kill_in_the_window(tmp_path, journal_url, [*dest.args(), "--disposition", disposition], dest.env,
                                "--kids")
    # the window is real: the destination has the rows (merge: in its staging dataset, the merge itself is
    # a follow-up job that never started), the package says its jobs never finished
    assert sorted(r[0] for r in dest.rows()) == ([] if disposition == "merge" else list(range(*BATCH)))
    (package,) = (tmp_path / "pipelines" / cc.PIPELINE_NAME / "load" / "normalized").iterdir()
    assert list((package / "completed_jobs").iterdir()) == [] and list((package / "started_jobs").iterdir())

    recovered = recover_cli(journal_url, dest)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert json.loads(recovered.stdout)["runs"][0]["status"] == "recovered"

    counts = collections.Counter(r[0] for r in dest.rows())
    assert set(counts) == set(range(*BATCH)) and set(counts.values()) == {1}, counts
    assert nested_rows(dest) == 2 * (BATCH[1] - BATCH[0])

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run_id)
    (report,) = [r for t in story.transitions for r in (t.details or {}).get("reconciled") or ()]
    # merge: the rows were in the staging dataset, where the merge takes them from
    where = "staging:" if disposition == "merge" else ""
    assert report["deleted_rows"][f"{where}items"] == BATCH[1] - BATCH[0]
    assert report["deleted_rows"][f"{where}items__kids"] == 2 * (BATCH[1] - BATCH[0])


def test_a_sink_stays_at_least_once_and_the_journal_counts_the_jobs_run_again(tmp_path, journal_url):
    needs_chattr(tmp_path)
    run_id = kill_in_the_window(tmp_path, journal_url, ["--destination", "sink"], {})
    delivered_before = [i for call in cc.sink_calls(tmp_path) if call["table"] == cc.TABLE for i in call["ids"]]
    assert sorted(delivered_before) == list(range(*BATCH))

    # the sink is a function of the child's own code: its next run recovers the killed one
    following = cc.spawn(tmp_path, journal_url, "--destination", "sink")
    assert cc.finish(following) == 0 and cc.result_of(following)["outcome"] == "ok", cc.output_of(following)

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run_id)
    assert story.run.status == "recovered"
    (report,) = [r for t in story.transitions for r in (t.details or {}).get("reconciled") or ()]
    assert "at_least_once" in report and report["jobs_rerun"] >= 1
    delivered = collections.Counter(i for call in cc.sink_calls(tmp_path) if call["table"] == cc.TABLE
                                    for i in call["ids"])
    assert set(delivered) == set(range(*BATCH))  # every row arrived; some twice, as the journal says

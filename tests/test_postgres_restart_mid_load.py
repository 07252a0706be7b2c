"""The PostgreSQL destination is restarted in the middle of a load; the retry policy carries the run to success.

A real `pg_ctlcluster restart` of the local server while the child is loading 100,000 rows: the
load's connection is cut, dlt's load job fails with a transient error, the engine journals the
failed attempt and retries the load after the policy's wait, and every row arrives exactly once.
dlt's own job retries (``load.raise_on_max_retries``, 5 by default) would absorb a short outage
inside one load step; the test sets it to 1 so that the failure reaches the engine's policy.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import time

import pytest

from runjournal.journal import Journal

from . import crash_child as cc

ROWS = 100_000
pytestmark = pytest.mark.postgres


def restart_postgres() -> None:
    versions = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    if not shutil.which("pg_ctlcluster") or not versions:
        reason = "pg_ctlcluster is not available to restart the local PostgreSQL"
        if os.environ.get("RUNJOURNAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (RUNJOURNAL_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "restart", "-m", "fast"],
                   check=True, capture_output=True, timeout=60)


def test_restart_in_the_middle_of_a_load_is_retried_to_success(tmp_path, journal_url, pg_database):
    from sqlalchemy.engine import make_url

    credentials = make_url(pg_database).set(password="trust-ignores-this").render_as_string(hide_password=False)
    child = cc.spawn(
        tmp_path, journal_url, "--destination", "postgres", "--dataset", "restarted", "--ids", f"0:{ROWS}",
        "--marker-on", "load", "--attempts", "4", "--wait", "3", "--retry-steps", "load",
        # dlt retries a failed job inside its load step; at 1 the failure reaches the engine's policy at once
        env={"DESTINATION__POSTGRES__CREDENTIALS": credentials, "LOAD__RAISE_ON_MAX_RETRIES": "1"},
    )
    cc.wait_for_marker(tmp_path, "load", child, timeout=120)
    time.sleep(0.5)  # into the load's inserts
    restart_postgres()
    assert cc.finish(child, timeout=180) == 0, cc.output_of(child)
    assert cc.result_of(child)["outcome"] == "ok", cc.output_of(child)

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(cc.result_of(child)["run_id"])
    assert story.run.status == "done"
    outcomes = [(a.outcome, a.failed_step, a.error_class) for a in story.attempts]
    assert outcomes[0] == ("failed", "load", "transient"), outcomes
    assert outcomes[-1] == ("succeeded", None, None) and len(outcomes) >= 2
    assert ("retry_wait", "load", "resume") in [(t.source, t.dest, t.trigger) for t in story.transitions]

    counts = collections.Counter(r[0] for r in cc.pg_rows(pg_database, "restarted", columns="id"))
    assert len(counts) == ROWS and set(counts.values()) == {1}

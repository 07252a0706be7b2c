"""A `runjournal run` run whose package was lost with its machine: `recover` fails it naming the package,
then `runjournal resume` extracts its source again, and every row lands once.

The run is killed while it waits to retry its load (the duckdb file is locked by the test, a real
fault), so its package exists only on the first machine; the pipelines dir is then deleted and
everything after runs under another hostname.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import duckdb

from runjournal.journal import Journal

from ._cli_support import RUNJOURNAL
from ._other_machine import HEARTBEAT_ENV, OTHER_HOST, lose_the_disk, needs_unshare, on_host, wait_until_stale
from ._project_cli_support import DLT_YML, PIPELINE, rows, write_project

RETRYING = DLT_YML.replace(
    "store_trace_info: true", "store_trace_info: false\n      retry_policy: {type: fixed, max_attempts: 3, multiplier: 300}"
)


def wait_for_state(journal_url: str, state: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(journal_url[len("sqlite:///"):]):
            with Journal.open(journal_url) as jnl:
                found = jnl.list_runs(limit=None)
            if found and found[0].state == state:
                return found[0].id
        time.sleep(0.1)
    raise AssertionError(f"no run reached {state} within {timeout}s")


def test_recover_fails_the_lost_package_then_resume_extracts_again(tmp_path, journal_url):
    needs_unshare()
    project = write_project(tmp_path / "project", RETRYING)
    env = {**os.environ, **HEARTBEAT_ENV, "RUNJOURNAL_URL": journal_url, "DLT_DATA_DIR": str(tmp_path / "dlt"),
           "RUNTIME__DLTHUB_TELEMETRY": "false"}
    locked = duckdb.connect(str(project / "warehouse.duckdb"))  # the load cannot open the file while we hold it
    try:
        # no sync (it would meet the lock first): the run extracts and normalizes, then its load waits to retry
        killed = subprocess.Popen([str(RUNJOURNAL), "run", PIPELINE, "--project", str(project)],
                                  env={**env, "RESTORE_FROM_DESTINATION": "false"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_id = wait_for_state(journal_url, "retry_wait")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    finally:
        locked.close()
    lose_the_disk(tmp_path)
    wait_until_stale(journal_url)
    where = {"RUNJOURNAL_URL": journal_url, "DLT_DATA_DIR": str(tmp_path / "dlt")}

    recovered = on_host(OTHER_HOST, "recover", "--json", env=where)
    assert recovered.returncode == 1, recovered.stdout + recovered.stderr
    (outcome,) = json.loads(recovered.stdout)["runs"]
    assert outcome["status"] == "failed" and "must be sent again" in outcome["error"]
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run_id)
    (lost,) = [t.details["lost_load_ids"] for t in story.transitions if (t.details or {}).get("lost_load_ids")]
    assert lost[0] in outcome["error"]
    assert rows(project) == []

    resumed = on_host(OTHER_HOST, "resume", run_id, "--json", env=where)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (outcome,) = json.loads(resumed.stdout)["runs"]
    assert outcome["status"] == "done" and "extracting its source again" in outcome["notes"][0]
    assert rows(project) == list(range(10))

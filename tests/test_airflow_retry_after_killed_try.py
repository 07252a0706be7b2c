"""A try of an Airflow task killed with SIGKILL mid-load (the worker lost, the grace period over): the
next try finds the run crashed, takes it up as the same run and loads the package left pending, once.

The killed try is a real child process running runjournal.airflow's task logic with try 1's context;
the retry runs in this process with try 2's (Airflow itself runs these in tests_airflow/).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import dlt

from runjournal.airflow import run_pipeline
from runjournal.journal import Journal

ORDERS = [{"id": i} for i in range(1, 8)]
DAG_RUN = "scheduled__2026-12-01T00:00:00+00:00"

CHILD = textwrap.dedent(
    """
    import sys, time, types
    from pathlib import Path
    import dlt
    from runjournal.airflow import run_pipeline

    base, journal_url = Path(sys.argv[1]), sys.argv[2]

    @dlt.destination(batch_size=100, name="orders_endpoint")
    def sink(items, table):
        (base / "in_load").touch()
        time.sleep(120)  # killed here

    ti = types.SimpleNamespace(dag_id="orders_daily", run_id=sys.argv[3], task_id="load_orders", try_number=1,
                               map_index=-1)
    run_pipeline(dlt.pipeline("orders_killed", destination=sink), [{"id": i} for i in range(1, 8)],
                 table_name="orders", journal=journal_url, context={"ti": ti})
    """
)


def _wait_for(path, child, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_the_retry_of_a_killed_try_loads_its_pending_package_once(tmp_path, journal_url):
    script = tmp_path / "killed_try.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path), journal_url, DAG_RUN],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_for(tmp_path / "in_load", child)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)

    received = tmp_path / "received.jsonl"

    @dlt.destination(batch_size=100, name="orders_endpoint")
    def sink(items, table):
        with open(received, "a") as out:
            out.write(json.dumps([item["id"] for item in items]) + "\n")

    ti = types.SimpleNamespace(dag_id="orders_daily", run_id=DAG_RUN, task_id="load_orders", try_number=2, map_index=-1)
    summary = run_pipeline(dlt.pipeline("orders_killed", destination=sink), ORDERS, table_name="orders",
                           journal=journal_url, context={"ti": ti})

    with Journal.open(journal_url, read_only=True) as journal:
        (run,) = journal.list_runs()
        story = journal.get_story(run.id)
    assert summary["runjournal_run_id"] == run.id and run.status == "recovered" and summary["continued_run"]
    crash = [t for t in story.transitions if t.trigger == "crash"]
    assert len(crash) == 1 and crash[0].source == "load"
    (taken_up,) = [t for t in story.transitions if t.trigger == "resume_run"]
    assert taken_up.source == "crashed" and taken_up.details["by"] == "Airflow try 2 of orders_daily.load_orders"
    extracted = [i for t in story.transitions if t.source == "extract" for i in (t.details or {}).get("load_ids", [])]
    assert len(extracted) == 1 and summary["load_ids"] == extracted  # the killed try's package, not a new one
    lines = received.read_text().splitlines()
    assert sorted(i for line in lines for i in json.loads(line)) == [order["id"] for order in ORDERS]
    assert run.labels["airflow.try_number"] == "2" and run.labels["airflow.run_id"] == DAG_RUN

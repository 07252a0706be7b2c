"""How a task fails, with Airflow's own exception types: a terminal error is an AirflowFailException (no Airflow
retry can help), a transient one an AirflowException carrying the journal's message; a retry on a worker
whose working folder does not have the failed try's package extracts the data again, and loads it once.

The task logic is called in process with the task instance's context (dag.test() runs the DAGs in
test_airflow_retry_continues_run.py); the destination is a real @dlt.destination whose endpoint is down
while a flag file exists.
"""

from __future__ import annotations

import json
import shutil
import threading
import types

import dlt
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from dlt.common.destination.exceptions import DestinationTerminalException
from tenacity import Retrying, stop_after_attempt

from runjournal.airflow import run_pipeline
from runjournal.journal import Journal, LeaseHeld

ORDERS = [{"id": i} for i in range(1, 6)]
ONE_ATTEMPT = {"retry_policy": Retrying(stop=stop_after_attempt(1), reraise=True)}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def journal_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'journal.sqlite'}"


def _context(try_number: int) -> dict:
    return {"ti": types.SimpleNamespace(dag_id="orders_daily", run_id="scheduled__2026-12-01T00:00:00+00:00",
                                        task_id="load_orders", try_number=try_number, map_index=-1)}


def _endpoint(tmp_path, *, terminal: bool = False):
    """A sink that fails while ``down`` exists, and records the ids it received in ``received.jsonl``."""
    down, received = tmp_path / "down", tmp_path / "received.jsonl"
    down.touch()

    @dlt.destination(batch_size=100, name="orders_endpoint")
    def sink(items, table):
        if down.exists():
            if terminal:
                raise DestinationTerminalException("the endpoint refuses these orders: 403 Forbidden")
            raise ConnectionError("the endpoint is down")
        with open(received, "a") as out:
            out.write(json.dumps([item["id"] for item in items]) + "\n")

    return sink, down, received


def _received(received) -> list[int]:
    lines = received.read_text().splitlines() if received.exists() else []
    return sorted(i for line in lines for i in json.loads(line))


def test_a_terminal_failure_fails_the_task_for_good(tmp_path, journal_url):
    sink, _, _ = _endpoint(tmp_path, terminal=True)
    pipeline = dlt.pipeline("orders_terminal", destination=sink)
    with pytest.raises(AirflowFailException) as failed:
        run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url, context=_context(1),
                     runner_kwargs={"retry_policy": Retrying(stop=stop_after_attempt(3), reraise=True)})
    with Journal.open(journal_url, read_only=True) as journal:
        (run,) = journal.list_runs()
    assert run.status == "failed" and run.attempt == 1  # terminal: the runner did not retry either
    message = str(failed.value)
    assert message.startswith(f"runjournal run {run.id} of pipeline orders_terminal ended failed after 1 attempt(s): ")
    assert run.error_message.splitlines()[0] in message and "403 Forbidden" in message
    assert f"runjournal show {run.id}" in message


def test_a_retry_on_a_fresh_worker_extracts_again_and_loads_once(tmp_path, journal_url):
    sink, down, received = _endpoint(tmp_path)
    pipeline = dlt.pipeline("orders_moved", destination=sink)
    with pytest.raises(AirflowException) as failed:
        run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url, context=_context(1),
                     runner_kwargs=ONE_ATTEMPT)
    assert not isinstance(failed.value, AirflowFailException)  # transient: Airflow's retry may help
    assert "ended failed after 1 attempt(s): " in str(failed.value)
    assert pipeline.list_normalized_load_packages()  # the package waits in this worker's folder

    # Airflow puts the retry on another worker: the same path, but not this disk's package
    shutil.rmtree(pipeline.working_dir)
    down.unlink()
    retry = dlt.pipeline("orders_moved", destination=sink)
    summary = run_pipeline(retry, ORDERS, table_name="orders", journal=journal_url, context=_context(2),
                           runner_kwargs=ONE_ATTEMPT)

    assert summary["runjournal_status"] == "done" and summary["attempts"] == 2 and summary["continued_run"]
    assert summary["labels"]["airflow.try_number"] == "2"
    assert _received(received) == [order["id"] for order in ORDERS]  # once: extracted again, loaded once
    with Journal.open(journal_url, read_only=True) as journal:
        story = journal.get_story(summary["runjournal_run_id"])
    assert [t.trigger for t in story.transitions].count("resume_run") == 1
    # the same run extracted twice: its first package was on the lost disk, its second one loaded
    extracted = [i for t in story.transitions if t.source == "extract" for i in (t.details or {}).get("load_ids", [])]
    assert len(extracted) == 2 and summary["load_ids"] == extracted[1:]


def test_a_retry_while_another_run_holds_the_pipeline_fails_naming_the_holder(tmp_path, journal_url):
    sink, down, received = _endpoint(tmp_path)
    with pytest.raises(AirflowException):
        run_pipeline(dlt.pipeline("orders_held", destination=sink), ORDERS, table_name="orders", journal=journal_url,
                     context=_context(1), runner_kwargs=ONE_ATTEMPT)
    (failed,) = _runs(journal_url)

    # another task's run of the same pipeline holds its lease, stuck in its load
    loading, release = threading.Event(), threading.Event()

    @dlt.destination(batch_size=100, name="orders_endpoint")
    def slow_sink(items, table):
        loading.set()
        release.wait(120)

    other = {"ti": types.SimpleNamespace(dag_id="orders_backfill", run_id="manual__1", task_id="load_orders",
                                         try_number=1, map_index=-1)}
    holder = threading.Thread(target=run_pipeline, args=(dlt.pipeline("orders_held", destination=slow_sink), []),
                              kwargs={"journal": journal_url, "context": other, "runner_kwargs": ONE_ATTEMPT,
                                      "table_name": "orders"})
    holder.start()
    try:
        assert loading.wait(120)
        with pytest.raises(LeaseHeld, match="orders_held"):
            run_pipeline(dlt.pipeline("orders_held", destination=sink), ORDERS, table_name="orders",
                         journal=journal_url, context=_context(2), runner_kwargs=ONE_ATTEMPT)
        assert [run for run in _runs(journal_url) if run.id == failed.id][0].status == "failed"  # untouched
    finally:
        release.set()
        holder.join(120)


def _runs(journal_url):
    with Journal.open(journal_url, read_only=True) as journal:
        return journal.list_runs()

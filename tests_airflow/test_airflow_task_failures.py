"""How a task fails, with Airflow's own exception types: a terminal error is an AirflowFailException (no Airflow
retry can help), a transient one an AirflowException; both carry the journal's message.

The task logic is called in process with the task instance's context (dag.test() runs the DAGs in
test_airflow_retry_continues_run.py); the destination is a real @dlt.destination that refuses every call.
"""

from __future__ import annotations

import types

import dlt
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from dlt.common.destination.exceptions import DestinationTerminalException
from tenacity import Retrying, stop_after_attempt

from runjournal.airflow import run_pipeline
from runjournal.journal import Journal

ORDERS = [{"id": i} for i in range(1, 6)]
ONE_ATTEMPT = {"retry_policy": Retrying(stop=stop_after_attempt(1), reraise=True)}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")  # a failed job fails the load at once
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def journal_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'journal.sqlite'}"


def _context(try_number: int) -> dict:
    return {"ti": types.SimpleNamespace(dag_id="orders_daily", run_id="scheduled__2026-12-01T00:00:00+00:00",
                                        task_id="load_orders", try_number=try_number, map_index=-1)}


def _endpoint(*, terminal: bool):
    """A @dlt.destination whose endpoint refuses every call, for good or for now."""

    @dlt.destination(batch_size=100, name="orders_endpoint")
    def sink(items, table):
        if terminal:
            raise DestinationTerminalException("the endpoint refuses these orders: 403 Forbidden")
        raise ConnectionError("the endpoint is down")

    return sink


def test_a_terminal_failure_fails_the_task_for_good(tmp_path, journal_url):
    sink = _endpoint(terminal=True)
    pipeline = dlt.pipeline("orders_terminal", destination=sink)
    with pytest.raises(AirflowFailException) as failed:
        run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url, context=_context(1),
                     runner_kwargs={"retry_policy": Retrying(stop=stop_after_attempt(3), reraise=True)})
    with Journal.open(journal_url, read_only=True) as journal:
        (run,) = journal.list_runs()
    assert run.status == "failed" and run.attempt == 1  # terminal: the runner did not retry either
    message = str(failed.value)
    assert message.startswith(f"runjournal run {run.id} of pipeline orders_terminal ended failed after 1 attempt(s): ")
    # the whole account the journal keeps: dlt's first line is "Traceback ...", the cause comes at its end
    assert run.error_message in message and "403 Forbidden" in message
    assert f"runjournal show {run.id}" in message


def test_a_transient_failure_fails_the_task_for_airflow_to_retry(tmp_path, journal_url):
    sink = _endpoint(terminal=False)
    with pytest.raises(AirflowException) as failed:
        run_pipeline(dlt.pipeline("orders_down", destination=sink), ORDERS, table_name="orders", journal=journal_url,
                     context=_context(1), runner_kwargs=ONE_ATTEMPT)
    assert not isinstance(failed.value, AirflowFailException)  # Airflow's retry may help: it continues the run
    with Journal.open(journal_url, read_only=True) as journal:
        (run,) = journal.list_runs()
    assert str(failed.value).startswith(f"runjournal run {run.id} of pipeline orders_down ended failed after "
                                        "1 attempt(s): ")

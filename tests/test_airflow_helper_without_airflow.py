"""runjournal.airflow where Airflow is not installed (this environment): importing it loads neither Airflow
nor dlt, naming the operator says how to install Airflow, and the task logic keys runs by task instance.

The task is given its Airflow context explicitly (the ``ti`` attributes Airflow's task instance has).
Real Airflow runs these tasks in tests_airflow/, in its own environment (tests_airflow/setup_venv.sh).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import dlt
import pytest

from runjournal.airflow import run_pipeline
from runjournal.journal import Journal, exists

from ._support import duckdb_rows

ORDERS = [{"id": 1, "amount": 10.0}, {"id": 2, "amount": 20.5}]


def _context(try_number: int, dag_run: str = "scheduled__2026-12-01T00:00:00+00:00") -> dict:
    ti = types.SimpleNamespace(dag_id="orders_daily", run_id=dag_run, task_id="load_orders",
                               try_number=try_number, map_index=-1)
    return {"ti": ti}


def _pipeline(tmp_path):
    warehouse = dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb"))
    return dlt.pipeline("orders_af", destination=warehouse, dataset_name="shop")


def test_import_loads_neither_airflow_nor_dlt():
    code = "import sys, runjournal.airflow; print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'dlt')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("airflow") is not None, reason="Airflow is installed here")
def test_the_operator_without_airflow_says_how_to_install_it():
    with pytest.raises(ImportError, match=r"pip install 'runjournal\[airflow\]'"):
        from runjournal.airflow import RunPipelineOperator  # noqa: F401


def test_a_retry_after_its_run_ended_done_loads_nothing_again(tmp_path, journal_url):
    pipeline = _pipeline(tmp_path)
    first = run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url, context=_context(1))
    assert first["runjournal_status"] == "done" and first["attempts"] == 1 and first["continued_run"] is False
    assert first["labels"] == {"airflow.dag_id": "orders_daily", "airflow.run_id": "scheduled__2026-12-01T00:00:00+00:00",
                               "airflow.task_id": "load_orders", "airflow.try_number": "1"}
    assert first["row_counts"] == {"orders": 2} and len(first["load_ids"]) == 1

    # Airflow retries the task (its try failed after the run, say on XCom): the run is done, so no second load
    again = run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url, context=_context(2))
    assert again == first
    assert len(duckdb_rows(str(tmp_path / "warehouse.duckdb"), "shop", "orders")) == 2

    # the next DAG run is another task instance: a run of its own
    nxt = run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url,
                       context=_context(1, "scheduled__2026-12-01T01:00:00+00:00"))
    assert nxt["runjournal_run_id"] != first["runjournal_run_id"] and nxt["runjournal_status"] == "done"
    with Journal.open(journal_url, read_only=True) as journal:
        assert [run.id for run in journal.list_runs(pipeline="orders_af")] == [nxt["runjournal_run_id"], first["runjournal_run_id"]]
    assert len(duckdb_rows(str(tmp_path / "warehouse.duckdb"), "shop", "orders")) == 4


@pytest.mark.parametrize(
    "kwargs, error, named",
    [
        ({"runner_kwargs": {"labels": {"team": 3}}}, ValueError, "label 'team' is 3"),
        ({"tabel_name": "orders"}, TypeError, "tabel_name"),
        ({"runner_kwargs": {"retry_policy": 3}}, TypeError, "retry_policy must be a tenacity.Retrying"),
    ],
)
def test_bad_arguments_are_named_before_anything_runs(tmp_path, journal_url, kwargs, error, named):
    with pytest.raises(error, match=named):
        run_pipeline(_pipeline(tmp_path), ORDERS, journal=journal_url, context=_context(1), **kwargs)
    if exists(journal_url):  # the runner checks some arguments after it opened the journal: still no run in it
        with Journal.open(journal_url, read_only=True) as journal:
            assert journal.list_runs() == []


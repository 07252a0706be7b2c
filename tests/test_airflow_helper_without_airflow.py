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
from pathlib import Path

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
    assert first["status"] == "done" and first["attempts"] == 1
    assert first["labels"] == {"airflow.dag_id": "orders_daily", "airflow.run_id": "scheduled__2026-12-01T00:00:00+00:00",
                               "airflow.task_id": "load_orders", "airflow.try_number": "1"}
    assert first["row_counts"]["orders"] == 2 and len(first["load_ids"]) == 1

    # Airflow retries the task (its try failed after the run, say on XCom): the run is done, so no second load
    again = run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url, context=_context(2))
    assert again == first
    assert len(duckdb_rows(str(tmp_path / "warehouse.duckdb"), "shop", "orders")) == 2

    # the next DAG run is another task instance: a run of its own
    nxt = run_pipeline(pipeline, ORDERS, table_name="orders", journal=journal_url,
                       context=_context(1, "scheduled__2026-12-01T01:00:00+00:00"))
    assert nxt["run_id"] != first["run_id"] and nxt["status"] == "done"
    with Journal.open(journal_url, read_only=True) as journal:
        assert [run.id for run in journal.list_runs(pipeline="orders_af")] == [nxt["run_id"], first["run_id"]]
    assert len(duckdb_rows(str(tmp_path / "warehouse.duckdb"), "shop", "orders")) == 4


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"runner_options": {"labels": {"team": "shop"}}}, "runner_options must not hold labels"),
        ({"dataset_name": "elsewhere"}, "dataset_name"),
        ({"runner_options": {"retry_policy": 3}}, "retry_policy must be a tenacity.Retrying"),
    ],
)
def test_bad_arguments_are_named_before_anything_runs(tmp_path, journal_url, kwargs, named):
    with pytest.raises(TypeError, match=named):
        run_pipeline(_pipeline(tmp_path), ORDERS, journal=journal_url, context=_context(1), **kwargs)
    assert not exists(journal_url)  # refused before the journal was even opened


def test_the_docs_show_the_dags_the_airflow_tests_run():
    root = Path(__file__).resolve().parent.parent
    docs = (root / "docs" / "airflow.md").read_text()
    examples = root / "examples" / "airflow"
    for example in ("dag_orders.py", "dag_orders_project.py", "orders_project/dlt.yml", "orders_project/shop_api.py"):
        assert (examples / example).read_text().rstrip() in docs, f"docs/airflow.md does not show {example} as it is"

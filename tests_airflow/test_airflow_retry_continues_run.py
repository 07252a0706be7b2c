"""Real Airflow 3 runs the example DAGs with dag.test(): a failed try leaves its load package
pending, Airflow's retry takes up the same journaled run and loads that package (not extracted again,
nothing dropped), and the run's labels name the DAG run, the task and the try that finished it.

The warehouse is a DuckDB file another process holds locked: the load fails transiently, the
runner's own retries fail too, the task fails and Airflow schedules a retry. The lock is let go once
the journal shows the run failed (or, under SIGTERM, interrupted). The working folder's sync with the
warehouse is turned off (RESTORE_FROM_DESTINATION=false) so that the load is the first step to touch it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

import duckdb
import pytest
from conftest import DAGS, ORDERS_DAG

from runjournal.journal import Journal

ORDER_IDS = list(range(1, 101))


@dataclass(frozen=True)
class Example:
    dag_file: str
    dag_id: str
    pipeline: str
    labels: dict = field(default_factory=dict)  # the run's own, beside Airflow's


TASKFLOW = Example(str(ORDERS_DAG), "orders_to_warehouse", "orders")
# RunPipelineOperator on the dlt.yml project: retry policy and labels come from its run_config
OPERATOR = Example(str(DAGS / "dag_orders_project.py"), "orders_project_to_warehouse", "shop_orders", {"team": "shop"})


def _warehouse(path) -> tuple[list[int], set[str]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        rows = conn.sql('SELECT id, _dlt_load_id FROM "shop"."orders" ORDER BY id').fetchall()
    return [row[0] for row in rows], {row[1] for row in rows}


def _the_task(dag_run):
    (task,) = [ti for ti in dag_run.task_instances() if ti["task_id"] == "load_orders"]
    return task


def _only_run(dag_run, pipeline="orders"):
    """The one run of the pipeline: a retry continued it, it did not start another."""
    runs = [run for run in dag_run.runs() if run.pipeline_name == pipeline]
    assert len(runs) == 1, [(r.id, r.status) for r in runs]
    with Journal.open(dag_run.journal_url, read_only=True) as journal:
        return journal.get_story(runs[0].id)


def _extracted_load_ids(story) -> list[str]:
    return [load_id for t in story.transitions if t.source == "extract" and t.trigger == "advance"
            for load_id in (t.details or {}).get("load_ids", [])]


def _assert_labels_name_the_airflow_try(story, task, example=TASKFLOW) -> None:
    assert story.run.labels == {
        **example.labels,
        "airflow.dag_id": example.dag_id,
        "airflow.run_id": task["run_id"],
        "airflow.task_id": "load_orders",
        "airflow.try_number": str(task["try_number"]),  # the try that finished the run
    }


@pytest.mark.parametrize("example", [TASKFLOW, OPERATOR], ids=["taskflow", "operator_dlt_yml"])
def test_retry_loads_the_package_the_failed_try_left(dag_run, warehouse_lock, example):
    dag_run.env["RESTORE_FROM_DESTINATION"] = "false"
    dag_run.start(example.dag_file)
    failed = dag_run.wait_for_run(lambda run: run.status == "failed", "failed by the locked warehouse")
    warehouse_lock.release()
    assert dag_run.finish() == 0, dag_run.output()[-4000:]

    task = _the_task(dag_run)
    assert task["state"] == "success"
    assert task["try_number"] >= 2  # Airflow retried the task at least once

    story = _only_run(dag_run, example.pipeline)
    run = story.run
    # its data had reached a package: the retry finalized it, and a run that ends that way is "recovered"
    assert run.id == failed.id and run.status == "recovered"
    # the first try: extract and normalize once, then the runner's two load attempts failed transiently
    first_try = [a for a in story.attempts if a.phase == "run"]
    assert [(a.outcome, a.error_class, a.failed_step) for a in first_try] == [("failed", "transient", "load")] * 2
    # the failed task said what the journal says, with the run to look at
    assert f"runjournal run {run.id} of pipeline {example.pipeline} ended failed after 2 attempt(s): " \
           "DestinationConnectionError" in dag_run.output()
    # a later try took the run up and loaded the package the first try had extracted: never extracted again
    (load_id,) = _extracted_load_ids(story)
    taken_up = [t for t in story.transitions if t.trigger == "resume_run"]
    assert taken_up and taken_up[0].details["by"].startswith("Airflow try ")
    resumed = [a for a in story.attempts if a.number > first_try[-1].number]
    assert resumed[-1].outcome == "succeeded" and list(resumed[-1].load_ids) == [load_id]

    ids, load_ids = _warehouse(dag_run.warehouse)
    assert ids == ORDER_IDS  # every order once: nothing dropped, nothing loaded twice
    assert load_ids == {load_id}
    _assert_labels_name_the_airflow_try(story, task, example)
    # the working folder was kept, and nothing is left pending in it
    working = dag_run.tmp / "dlt" / "pipelines" / example.pipeline
    assert (working / "load" / "loaded" / load_id).is_dir()
    assert not list((working / "load" / "normalized").iterdir())


def test_sigterm_ends_the_run_interrupted_and_the_retry_resumes_it(dag_run, warehouse_lock):
    dag_run.env["RESTORE_FROM_DESTINATION"] = "false"
    dag_run.start()
    # SIGTERM, as Airflow sends a task it stops, while the runner waits to retry the load
    waiting = dag_run.wait_for_run(lambda run: run.state == "retry_wait", "waiting to retry the load")
    os.kill(dag_run.process.pid, signal.SIGTERM)
    dag_run.wait_for_run(lambda run: run.id == waiting.id and run.status == "interrupted", "interrupted")
    warehouse_lock.release()
    assert dag_run.finish() == 0, dag_run.output()[-4000:]

    task = _the_task(dag_run)
    assert task["state"] == "success" and task["try_number"] >= 2
    story = _only_run(dag_run)
    assert story.run.status == "recovered"
    # the signal cut the runner's wait short: no further attempt in that try, the run halted interrupted
    halted = [t for t in story.transitions if t.dest == "interrupted"]
    assert [(t.source, t.trigger) for t in halted] == [("retry_wait", "halt")]
    assert story.attempts[0].wait_seconds == 2 and story.attempts[1].number == halted[0].attempt + 1
    assert f"runjournal run {story.run.id} of pipeline orders ended interrupted" in dag_run.output()
    (load_id,) = _extracted_load_ids(story)
    ids, load_ids = _warehouse(dag_run.warehouse)
    assert ids == ORDER_IDS and load_ids == {load_id}
    _assert_labels_name_the_airflow_try(story, task)

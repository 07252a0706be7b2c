"""The orders of the shop's dlt.yml project (orders_project/), loaded hourly with RunPipelineOperator.

The operator runs the project's pipeline as ``runjournal run shop_orders --project orders_project``
does: source, destination, retry policy and labels come from the dlt.yml. Airflow's retry of the
task continues the journaled run its failed try left. ``python dag_orders_project.py`` runs it once.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from airflow.sdk import dag

from runjournal.airflow import RunPipelineOperator


@dag(
    schedule="@hourly",
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": datetime.timedelta(seconds=3)},
)
def orders_project_to_warehouse():
    RunPipelineOperator(
        task_id="load_orders",
        project=str(Path(__file__).parent / "orders_project"),
        project_pipeline="shop_orders",
    )


orders_project_dag = orders_project_to_warehouse()

if __name__ == "__main__":
    orders_project_dag.test()

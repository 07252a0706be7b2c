"""Load orders into the warehouse every hour, through runjournal: an Airflow 3 DAG.

Where dlt's own Airflow helper drops pending data when a task starts and wipes the working folder
when it ends, this task never throws a load package away. If the warehouse is unreachable, the
runner retries the load (``retry_policy``); if it is still down, the task fails with the journal's
account of the error, and Airflow's retry takes up the same journaled run: the package extracted
by the first try is loaded, not extracted again.

Configuration comes from dlt's providers as usual: the warehouse file from
``DESTINATION__DUCKDB__CREDENTIALS`` (or ``.dlt/secrets.toml``), the journal from ``RUNJOURNAL_URL``.
Try it without a scheduler: ``python dag_orders.py`` runs one DAG run with ``dag.test()``.
"""

from __future__ import annotations

import datetime

import dlt
from airflow.sdk import dag, task
from tenacity import Retrying, stop_after_attempt, wait_fixed

from runjournal.airflow import run_pipeline


@dlt.resource(table_name="orders", write_disposition="append", primary_key="id")
def orders():
    """Stands in for the orders API: one page of 100 orders."""
    yield [{"id": i, "customer": f"c{i % 7}", "amount": round(i * 9.5, 2)} for i in range(1, 101)]


@dag(
    schedule="@hourly",
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one run per pipeline: the journal's lease would refuse a second one anyway
    default_args={"retries": 3, "retry_delay": datetime.timedelta(seconds=3)},
)
def orders_to_warehouse():
    @task
    def load_orders():
        pipeline = dlt.pipeline("orders", destination="duckdb", dataset_name="shop")
        return run_pipeline(
            pipeline,
            orders(),
            runner_kwargs={
                # the load is retried inside the task first; Airflow's retry continues the same run after
                "retry_policy": Retrying(stop=stop_after_attempt(2), wait=wait_fixed(2), reraise=True),
                "store_trace_info": True,
            },
        )

    load_orders()


orders_dag = orders_to_warehouse()

if __name__ == "__main__":
    orders_dag.test()

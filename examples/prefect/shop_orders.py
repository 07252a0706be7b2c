"""Shop orders into DuckDB from a Prefect 3 flow, run by runjournal.

    pip install "runjournal[prefect]"
    python shop_orders.py

A failed load leaves its package pending; Prefect's retry of the task continues the same journaled
run and loads that package (dlt+'s Prefect flow would clean the folder first and drop it).
`runjournal runs --label prefect.flow_run_id=<the flow run id>` lists what the flow did.
"""

import dlt
from prefect import flow, task
from tenacity import Retrying, stop_after_attempt, wait_exponential

from runjournal.prefect import retry_unless_terminal, run_pipeline


@dlt.resource(table_name="orders", write_disposition="merge", primary_key="id")
def orders():
    # Stands in for the shop's API: any dlt source or resource works the same way.
    yield [{"id": i, "amount": 10 * i} for i in range(1, 101)]


def shop_pipeline() -> dlt.Pipeline:
    return dlt.pipeline(pipeline_name="shop_orders", destination="duckdb", dataset_name="shop")


@task(retries=2, retry_delay_seconds=1, retry_condition_fn=retry_unless_terminal)
def load_orders() -> dict:
    outcome = run_pipeline(
        shop_pipeline(),
        orders(),
        # runjournal retries a failed load inside the task first; Prefect's retry comes after that.
        runner_kwargs={
            "retry_policy": Retrying(stop=stop_after_attempt(2), wait=wait_exponential(max=10), reraise=True),
            "labels": {"team": "shop"},
        },
    )
    return outcome.metadata()  # run id, attempts, rows loaded per table


@flow(name="shop-orders")
def shop_orders_flow() -> dict:
    return load_orders()


if __name__ == "__main__":
    print(shop_orders_flow())

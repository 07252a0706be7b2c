"""Shop orders into DuckDB as a Dagster asset, run by runjournal.

    pip install "runjournal[dagster]"
    dagster dev -f shop_orders.py        # or: dagster asset materialize -f shop_orders.py --select shop_orders

A failed load leaves its package pending; Dagster's retry of the step continues the same journaled
run and loads that package, instead of dropping it as dagster-dlt does. `runjournal runs --label
dagster.run_id=<the Dagster run id>` lists what the run did.
"""

import dagster as dg
import dlt
from tenacity import Retrying, stop_after_attempt, wait_exponential

from runjournal.dagster import RunjournalResource


@dlt.resource(table_name="orders", write_disposition="merge", primary_key="id")
def orders():
    # Stands in for the shop's API: any dlt source or resource works the same way.
    yield [{"id": i, "amount": 10 * i} for i in range(1, 101)]


def shop_pipeline() -> dlt.Pipeline:
    return dlt.pipeline(pipeline_name="shop_orders", destination="duckdb", dataset_name="shop")


@dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=1))
def shop_orders(context: dg.AssetExecutionContext, runjournal: RunjournalResource) -> dg.MaterializeResult:
    return runjournal.run(
        context,
        shop_pipeline(),
        orders(),
        # runjournal retries a failed load inside the step first; Dagster's retry comes after that.
        runner_kwargs={
            "retry_policy": Retrying(stop=stop_after_attempt(2), wait=wait_exponential(max=10), reraise=True),
            "labels": {"team": "shop"},
        },
    )


defs = dg.Definitions(
    assets=[shop_orders],
    # The journal: RUNJOURNAL_URL (e.g. postgresql://... shared by every Dagster code location), else SQLite.
    resources={"runjournal": RunjournalResource()},
)

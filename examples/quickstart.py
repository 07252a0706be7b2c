"""The main job on the embedded defaults: a dlt pipeline to a local duckdb file, journaled in SQLite.

    python examples/quickstart.py

Loads a small orders resource with a retry policy and trace storage, then prints the
load info and the run's story from the journal (what `runjournal show` will print).
"""

import dlt
from tenacity import Retrying, stop_after_attempt, wait_exponential

from runjournal import runner
from runjournal.journal import Journal


@dlt.resource(table_name="orders", primary_key="order_id", write_disposition="merge")
def orders():
    yield [{"order_id": i, "amount": round(i * 9.99, 2), "status": "paid" if i % 3 else "open"} for i in range(1, 101)]


def main() -> None:
    pipeline = dlt.pipeline("quickstart_orders", destination="duckdb", dataset_name="shop")
    r = runner(
        pipeline,
        store_trace_info=True,
        retry_policy=Retrying(stop=stop_after_attempt(5), wait=wait_exponential(multiplier=2, min=1, max=10), reraise=True),
        retry_pipeline_steps=["load"],
    )
    print(r.run(orders()))

    with Journal.open() as journal:
        story = journal.get_story(r.last_run_id)
    print(f"\nrun {story.run.id} ({story.run.status}) in journal {journal.url}")
    for t in story.transitions:
        print(f"  {t.seq:>2}  attempt {t.attempt}  {t.source:>16} -> {t.dest:<16} {t.trigger:<13} {t.details or ''}")


if __name__ == "__main__":
    main()

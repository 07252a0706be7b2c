"""A scheduler's retry (runjournal._scheduled, which the Airflow, Dagster and Prefect integrations share) that
runs where the failed try's load package is not: a fresh worker or pod. It extracts the data again, as the
same run, and loads it once; and a retry refused by another run's lease says so, leaving the run as it was.

Real dlt pipelines into a @dlt.destination whose first call fails; the retry runs in the same process
with the pipeline's working folder removed, as a new worker would have none.
"""

from __future__ import annotations

import shutil
import threading

import dlt
import pytest
from tenacity import Retrying, stop_after_attempt

from runjournal import runner
from runjournal._scheduled import ScheduledRunFailed, run_scheduled
from runjournal.journal import Journal, LeaseHeld

from ._support import failing_sink

ORDERS = [{"id": i} for i in range(1, 6)]
LAUNCH = {"airflow.dag_id": "orders_daily", "airflow.run_id": "scheduled__1", "airflow.task_id": "load_orders"}
ONE_ATTEMPT = Retrying(stop=stop_after_attempt(1), reraise=True)


@pytest.fixture(autouse=True)
def load_fails_at_once(monkeypatch):
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")  # a failed job fails the load, not dlt's job retry


def _try(pipeline_name, sink, journal_url, try_number):
    r = runner(dlt.pipeline(pipeline_name, destination=sink), retry_policy=ONE_ATTEMPT, journal=journal_url,
               labels={"airflow.try_number": str(try_number)})
    return run_scheduled(r, ORDERS, launch=LAUNCH, by=f"retry {try_number}", table_name="orders")


def test_a_retry_without_the_package_extracts_again_and_loads_once(journal_url):
    calls: list[int] = []
    sink = failing_sink(1, calls=calls)
    with pytest.raises(ScheduledRunFailed) as failed:
        _try("orders_moved", sink, journal_url, 1)
    assert not failed.value.terminal
    working_dir = dlt.pipeline("orders_moved").working_dir
    shutil.rmtree(working_dir)  # the retry's worker has none of the first try's folder

    outcome = _try("orders_moved", sink, journal_url, 2)

    assert outcome.run_id == failed.value.outcome.run_id and outcome.continued and outcome.status == "done"
    assert calls == [len(ORDERS), len(ORDERS)]  # the failed call, then each order loaded once
    assert outcome.row_counts == {"orders": len(ORDERS)}
    with Journal.open(journal_url, read_only=True) as journal:
        story = journal.get_story(outcome.run_id)
    extracted = [i for t in story.transitions if t.source == "extract" for i in (t.details or {}).get("load_ids", [])]
    assert len(extracted) == 2 and list(outcome.load_ids) == extracted[1:]
    assert story.run.labels["airflow.try_number"] == "2"


def test_a_retry_refused_by_another_runs_lease_raises_it_and_leaves_the_run(journal_url):
    sink = failing_sink(1)
    with pytest.raises(ScheduledRunFailed) as failed:
        _try("orders_held", sink, journal_url, 1)
    loading, release = threading.Event(), threading.Event()

    @dlt.destination(batch_size=100, name="slow_sink")
    def slow_sink(items, table):
        loading.set()
        release.wait(120)

    # another launch's run of the same pipeline holds the lease, stuck in its load
    other = runner(dlt.pipeline("orders_held", destination=slow_sink), retry_policy=ONE_ATTEMPT, journal=journal_url)
    holder = threading.Thread(target=other.run, args=([{"id": 99}],), kwargs={"table_name": "orders"})
    holder.start()
    try:
        assert loading.wait(120)
        with pytest.raises(LeaseHeld, match="orders_held"):
            _try("orders_held", sink, journal_url, 2)
        with Journal.open(journal_url, read_only=True) as journal:
            assert journal.get_run(failed.value.outcome.run_id).status == "failed"
    finally:
        release.set()
        holder.join(120)

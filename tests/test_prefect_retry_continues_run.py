"""runjournal.prefect under real Prefect 3: the docs' example flow (examples/prefect/shop_orders.py) run in
process against Prefect's test harness (a temporary SQLite database and a server on 127.0.0.1). A load that
fails transiently leaves its package pending; Prefect's retry of the task continues the same journaled run
and loads that package, each row once; a terminal failure is not retried.

Needs Prefect (``runjournal[prefect]``): run in the scheduler venv that .ci/run builds; skipped elsewhere.
"""

from __future__ import annotations

import os
import uuid

import pytest

pytest.importorskip("prefect")

from runjournal.journal import Journal  # noqa: E402

from ._scheduler_support import Shop, finalized_by_the_retry, load_example  # noqa: E402


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """Prefect's own test harness, its home in a temporary directory: nothing reaches ~/.prefect or a cloud."""
    saved = dict(os.environ)
    os.environ.update({
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect_home")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
    })
    os.environ.pop("PREFECT_API_URL", None)
    from prefect.testing.utilities import prefect_test_harness

    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def example(harness, monkeypatch, journal_url):
    monkeypatch.setenv("RUNJOURNAL_URL", journal_url)
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")  # a failing job fails the load (dlt retries it in place else)
    return load_example("prefect/shop_orders.py")


def run_flow(example, shop, monkeypatch):
    # The example's flow, task and retry settings as written; only the destination is the test's.
    monkeypatch.setattr(example, "shop_pipeline", shop.pipeline)
    return example.shop_orders_flow(return_state=True)


def test_prefect_retry_finalizes_the_pending_package_of_the_same_run(tmp_path, example, monkeypatch, journal_url):
    shop = Shop(tmp_path, failures=2)  # both of the runner's attempts fail; Prefect's retry succeeds
    state = run_flow(example, shop, monkeypatch)

    assert state.is_completed(), state
    metadata = state.result()
    run = finalized_by_the_retry(journal_url, shop)
    flow_run_id = str(state.state_details.flow_run_id)
    assert run.labels["prefect.flow_run_id"] == flow_run_id
    assert run.labels["prefect.flow"] == "shop-orders"
    assert run.labels["prefect.run_count"] == "2" and run.labels["team"] == "shop"
    uuid.UUID(run.labels["prefect.task_run_id"])
    assert metadata["runjournal_run_id"] == run.id and metadata["attempts"] == 3 and metadata["continued_run"]
    assert metadata["row_counts"] == {"orders": 100}


def test_terminal_failure_is_not_retried_by_prefect(tmp_path, example, monkeypatch, journal_url):
    shop = Shop(tmp_path, failures=1, terminal=True)
    state = run_flow(example, shop, monkeypatch)

    assert state.is_failed()
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
    assert run.status == "failed" and run.attempt == 1
    assert run.labels["prefect.run_count"] == "1"  # Prefect did not try again
    assert shop.calls == 1
    with pytest.raises(Exception, match=f"runjournal run {run.id} of pipeline shop_orders ended failed"):
        state.result()
    assert len(shop.pipeline().list_normalized_load_packages()) == 1  # still pending, for the next run

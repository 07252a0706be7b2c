"""runjournal.dagster under real Dagster: the docs' example asset (examples/dagster/shop_orders.py) materialized
in process. A load that fails transiently leaves its package pending; Dagster's retry of the step continues
the same journaled run and loads that package, each row once; a terminal failure is not retried by Dagster.

Needs Dagster (``runjournal[dagster]``): run in the scheduler venv that .ci/run builds; skipped elsewhere.
"""

from __future__ import annotations

import pytest

dg = pytest.importorskip("dagster")

from runjournal.journal import Journal  # noqa: E402

from ._scheduler_support import Shop, finalized_by_the_retry, load_example  # noqa: E402


@pytest.fixture
def example(monkeypatch, journal_url):
    monkeypatch.setenv("RUNJOURNAL_URL", journal_url)
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")  # a failing job fails the load (dlt retries it in place else)
    return load_example("dagster/shop_orders.py")


def materialize(example, shop, monkeypatch):
    # The example's asset, resource and retry policy as written; only the destination is the test's.
    monkeypatch.setattr(example, "shop_pipeline", shop.pipeline)
    return dg.materialize([example.shop_orders], resources=example.defs.resources, raise_on_error=False)


def test_dagster_retry_finalizes_the_pending_package_of_the_same_run(tmp_path, example, monkeypatch, journal_url):
    shop = Shop(tmp_path, failures=2)  # both of the runner's attempts fail; Dagster's retry succeeds
    result = materialize(example, shop, monkeypatch)

    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1
    run = finalized_by_the_retry(journal_url, shop)
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run.id)
    assert run.labels == {
        "dagster.run_id": result.run_id, "dagster.step_key": "shop_orders", "dagster.job": "__ephemeral_asset_job__",
        "dagster.retry_number": "1", "team": "shop",
    }
    assert any(t.trigger == "resume_run" and t.details["by"] == "dagster retry 1" for t in story.transitions)

    (materialization,) = result.asset_materializations_for_node("shop_orders")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["runjournal_run_id"] == run.id
    assert metadata["attempts"] == 3 and metadata["continued_run"] is True
    assert metadata["row_counts"] == {"orders": 100} and metadata["rows_loaded"] == 100


def test_terminal_failure_is_not_retried_by_dagster(tmp_path, example, monkeypatch, journal_url):
    shop = Shop(tmp_path, failures=1, terminal=True)
    result = materialize(example, shop, monkeypatch)

    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
    assert run.status == "failed" and run.attempt == 1
    message = failure.event_specific_data.error.message
    assert f"runjournal run {run.id} of pipeline shop_orders ended failed" in message
    assert failure.event_specific_data.user_failure_data.metadata["runjournal_run_id"].value == run.id
    # the package is still pending in the working folder: the next materialization loads it
    pending = shop.pipeline().list_normalized_load_packages()
    assert len(pending) == 1


def test_next_materialization_loads_what_a_failed_one_left(tmp_path, example, monkeypatch, journal_url):
    shop = Shop(tmp_path, failures=6)  # 2 runner attempts in each of Dagster's 3 tries
    assert not materialize(example, shop, monkeypatch).success
    result = materialize(example, shop, monkeypatch)  # a new Dagster run: a new journaled run finalizes first
    assert result.success
    # the left package and the new run's own data: merge on id keeps 100 distinct rows
    assert {row["id"] for row in shop.rows} == set(range(1, 101))
    with Journal.open(journal_url) as jnl:
        newest, failed = jnl.list_runs()
        story = jnl.get_story(newest.id)
    assert (failed.status, failed.attempt, newest.status) == ("failed", 6, "done")
    assert [a.phase for a in story.attempts] == ["finalize", "run"]
    assert newest.labels["dagster.run_id"] == result.run_id != failed.labels["dagster.run_id"]


def test_asset_factory_runs_the_pipeline_through_the_resource(tmp_path, monkeypatch, journal_url):
    from runjournal.dagster import RunjournalResource, journaled_dlt_asset

    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")
    shop = Shop(tmp_path, failures=0)
    example = load_example("dagster/shop_orders.py")
    asset = journaled_dlt_asset(name="orders_asset", pipeline=shop.pipeline, data=example.orders,
                                runner_kwargs={"labels": {"team": "shop"}}, group_name="shop")
    result = dg.materialize([asset], resources={"runjournal": RunjournalResource(journal=journal_url)})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("orders_asset")
    assert materialization.metadata["row_counts"].value == {"orders": 100}
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs(labels={"dagster.run_id": result.run_id})
    assert (run.status, run.labels["dagster.step_key"], run.labels["team"]) == ("done", "orders_asset", "shop")

"""A broken trace destination never fails the load; its traces wait in the journal and ship later, once.

Real dlt pipelines: the main one loads into a real duckdb file; the trace pipelines are a real
PostgreSQL destination (first at a port nobody listens on, then at the real local server) and a
real @dlt.destination sink that refuses everything until it is fixed.
"""

from __future__ import annotations

import uuid

import dlt
import duckdb
import psycopg2
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException
from sqlalchemy.engine import make_url

from runjournal import runner
from runjournal.journal import Journal
from tests._support import story

BROKEN_PG = "postgresql://postgres:whatever@127.0.0.1:1/test"


def main_pipeline(tmp_path, name: str = "orders"):
    return dlt.pipeline(
        name, destination=dlt.destinations.duckdb(str(tmp_path / "main.duckdb")), dataset_name="shop"
    )


def main_rows(tmp_path) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "main.duckdb"), read_only=True) as conn:
        return conn.sql('SELECT id FROM "shop"."items" ORDER BY id').fetchall()


def assert_not_shipped_report(details: dict, unshipped: int) -> None:
    assert details["traces_shipped"] == 0
    assert details["traces_unshipped"] == unshipped
    assert details["traces_ship_error"].startswith("PipelineStepFailed")


@pytest.fixture
def pg_dataset(pg_database):
    """A dataset name of this test's own in the session's PostgreSQL database, dropped at the end."""
    name = f"traces_{uuid.uuid4().hex[:10]}"
    yield pg_database, name
    with psycopg2.connect(pg_database) as conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    conn.close()


@pytest.mark.postgres
def test_unreachable_postgres_keeps_traces_until_a_working_trace_pipeline_ships_them(
    tmp_path, journal_url, pg_dataset
):
    pg_url, dataset = pg_dataset
    pipeline = main_pipeline(tmp_path)
    broken = dlt.pipeline("tracer", destination=dlt.destinations.postgres(BROKEN_PG), dataset_name=dataset)

    first = runner(pipeline, store_trace_info=broken, journal=journal_url)
    info = first.run([{"id": 1}], table_name="items")
    # the main load went through and its LoadInfo came back
    assert info is not None and not info.has_failed_jobs
    assert info.dataset_name == "shop"
    assert main_rows(tmp_path) == [(1,)]

    st = story(journal_url, first.last_run_id)
    assert st.run.status == "done"
    (trace,) = st.traces
    assert trace.shipped_at is None
    assert trace.ship_error and "Connection refused" in trace.ship_error
    assert trace.ship_load_id  # the package that carries it is pending in the trace pipeline
    assert st.transitions[-1].dest == "done"
    assert_not_shipped_report(st.transitions[-1].details, 1)
    assert broken.list_normalized_load_packages() == [trace.ship_load_id]

    # A later run of the same main pipeline, with a working trace pipeline of the same name.
    # (dlt's postgres credentials insist on a password; the local server's trust auth ignores it.)
    working_url = make_url(pg_url).set(password="trusted").render_as_string(hide_password=False)
    working = dlt.pipeline("tracer", destination=dlt.destinations.postgres(working_url), dataset_name=dataset)
    second = runner(pipeline, store_trace_info=working, journal=journal_url)
    info = second.run([{"id": 2}], table_name="items")
    assert info is not None and not info.has_failed_jobs
    assert main_rows(tmp_path) == [(1,), (2,)]

    st2 = story(journal_url, second.last_run_id)
    assert st2.transitions[-1].details == {"traces_shipped": 2}
    with Journal.open(journal_url) as jnl:
        assert jnl.outbox("traces").unshipped("orders") == []
        shipped = jnl.get_story(first.last_run_id).traces[0]
    assert shipped.shipped_at is not None and shipped.ship_error is None
    assert shipped.ship_load_id == trace.ship_load_id  # finished, not extracted again

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT run_id, attempt, trace_id, _dlt_load_id FROM "{dataset}"."orders_trace" ORDER BY run_id')
        rows = cur.fetchall()
    conn.close()
    assert [(r[0], r[1]) for r in rows] == [(first.last_run_id, 1), (second.last_run_id, 1)]
    assert len({r[2] for r in rows}) == 2
    assert rows[0][3] == trace.ship_load_id


@pytest.mark.parametrize("failure", ["transient", "terminal"])
def test_refusing_sink_keeps_traces_until_the_same_runner_ships_them(tmp_path, journal_url, monkeypatch, failure):
    # dlt retries a transiently failing job 5 times inside one load step by default; once is enough here
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")
    received: list[dict] = []
    broken = {"on": True}

    @dlt.destination(batch_size=100, name="trace_sink")
    def trace_sink(items, table):
        if broken["on"]:
            if failure == "terminal":
                raise DestinationTerminalException("trace sink refuses everything")
            raise RuntimeError("trace sink refuses everything")
        if table["name"] == "orders_trace":
            received.extend(dict(item) for item in items)

    pipeline = main_pipeline(tmp_path)
    tracer = dlt.pipeline("sink_tracer", destination=trace_sink)
    r = runner(pipeline, store_trace_info=tracer, journal=journal_url)

    info = r.run([{"id": 1}], table_name="items")
    assert info is not None and not info.has_failed_jobs
    assert main_rows(tmp_path) == [(1,)]
    first_run = r.last_run_id
    st = story(journal_url, first_run)
    assert st.run.status == "done"
    (trace,) = st.traces
    assert trace.shipped_at is None and "trace sink refuses everything" in trace.ship_error
    assert_not_shipped_report(st.transitions[-1].details, 1)
    assert received == []

    broken["on"] = False
    info = r.run([{"id": 2}], table_name="items")
    assert info is not None and not info.has_failed_jobs
    second_run = r.last_run_id
    assert story(journal_url, second_run).transitions[-1].details == {"traces_shipped": 2}
    with Journal.open(journal_url) as jnl:
        assert jnl.outbox("traces").unshipped("orders") == []

    # each pending trace arrived exactly once
    assert sorted(item["trace_id"] for item in received) == sorted([f"{first_run}-1", f"{second_run}-1"])
    assert [item["run_id"] for item in received].count(first_run) == 1


def test_failed_trace_jobs_are_not_taken_for_shipped_when_dlt_does_not_raise(tmp_path, journal_url, monkeypatch):
    """``load.raise_on_failed_jobs=false`` is a documented dlt setting: the load step then returns
    normally with the failed jobs in its LoadInfo and the package completed. A trace whose job failed
    did not reach the destination: the journal must keep it unshipped."""
    monkeypatch.setenv("LOAD__RAISE_ON_FAILED_JOBS", "false")
    received: list[dict] = []

    @dlt.destination(batch_size=100, name="trace_sink")
    def trace_sink(items, table):
        if table["name"] == "orders_trace":
            raise DestinationTerminalException("trace sink rejects the rows")
        received.extend(items)

    pipeline = main_pipeline(tmp_path)
    tracer = dlt.pipeline("rejecting_tracer", destination=trace_sink)
    r = runner(pipeline, store_trace_info=tracer, journal=journal_url)
    info = r.run([{"id": 1}], table_name="items")
    assert info is not None and not info.has_failed_jobs
    assert main_rows(tmp_path) == [(1,)]

    st = story(journal_url, r.last_run_id)
    (trace,) = st.traces
    assert st.transitions[-1].details.get("traces_shipped") == 0, st.transitions[-1].details
    assert trace.shipped_at is None
    assert trace.ship_error

"""Every attempt leaves a trace: in the journal's outbox first, then at the trace destination.

Real dlt pipelines on real duckdb files and a real SQLite journal; the failures come from a
real @dlt.destination sink and a real resource that raises.
"""

from __future__ import annotations

import json
import os

import dlt
import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from tenacity import Retrying, stop_after_attempt, wait_fixed

from runjournal import RunnerCollector, runner
from runjournal.journal import Journal
from tests._support import failing_sink, story


class RecordingCollector(RunnerCollector):
    """The pipeline's collector (``progress=``): records what the runner calls back."""

    def __init__(self):
        super().__init__()
        self.after: list[tuple[bool, dict]] = []

    def on_after(self, pipeline, trace, success, summary):
        self.after.append((success, dict(summary)))


TRACE_COLUMNS = ("run_id", "attempt", "outcome", "failed_step", "phase", "trace_id")


def trace_rows(path: str, dataset: str, table: str) -> list[dict]:
    """The trace table's rows by attempt; a column dlt never created (no failure yet) reads as None."""
    with duckdb.connect(path, read_only=True) as conn:
        cursor = conn.execute(f'SELECT * FROM "{dataset}"."{table}" ORDER BY attempt')
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    return [{name: row.get(name) for name in TRACE_COLUMNS} for row in rows]


def tables_in(path: str) -> set[tuple[str, str]]:
    with duckdb.connect(path, read_only=True) as conn:
        return set(conn.sql("SELECT table_schema, table_name FROM information_schema.tables").fetchall())


def duckdb_trace_pipeline(tmp_path, name: str = "tracer", dataset: str = "traces"):
    path = str(tmp_path / f"{name}.duckdb")
    return dlt.pipeline(name, destination=dlt.destinations.duckdb(path), dataset_name=dataset), path


def test_success_ships_one_trace_to_the_main_duckdb_file(tmp_path, journal_url):
    pipeline = dlt.pipeline("orders", destination="duckdb", dataset_name="shop")
    info = runner(pipeline, store_trace_info=True, journal=journal_url).run(
        [{"id": 1}, {"id": 2}], table_name="items"
    )
    assert info is not None and not info.has_failed_jobs

    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs(pipeline="orders")
        assert run.status == "done"
        st = jnl.get_story(run.id)
        assert jnl.outbox("traces").unshipped("orders") == []
    run_id = run.id
    assert len(st.traces) == 1
    (trace,) = st.traces
    assert trace.attempt == 1 and trace.pipeline_name == "orders"
    assert trace.shipped_at is not None and trace.ship_error is None and trace.ship_load_id
    assert json.loads(trace.payload)["outcome"] == "succeeded"
    assert st.transitions[-1].dest == "done"
    assert st.transitions[-1].details == {"traces_shipped": 1}

    # The default trace pipeline resolves duckdb's default credentials to the MAIN pipeline's
    # file: no `_trace_orders.duckdb` is created; the trace dataset sits beside the data.
    main_file = str(tmp_path / "orders.duckdb")
    assert os.path.exists(main_file)
    assert not os.path.exists(tmp_path / "_trace_orders.duckdb")
    assert sorted(p.name for p in tmp_path.glob("*.duckdb")) == ["orders.duckdb"]
    tables = tables_in(main_file)
    assert ("shop", "items") in tables
    assert ("_trace_shop", "orders_trace") in tables

    rows = trace_rows(main_file, "_trace_shop", "orders_trace")
    assert rows == [
        {
            "run_id": run_id,
            "attempt": 1,
            "outcome": "succeeded",
            "failed_step": None,
            "phase": "run",
            "trace_id": f"{run_id}-1",
        }
    ]
    # the package that carried the trace is the one the journal recorded
    with duckdb.connect(main_file, read_only=True) as conn:
        load_ids = conn.sql('SELECT DISTINCT _dlt_load_id FROM "_trace_shop"."orders_trace"').fetchall()
    assert load_ids == [(trace.ship_load_id,)]


def test_three_attempts_ship_three_traces(tmp_path, journal_url, monkeypatch):
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")
    calls: list[int] = []
    collector = RecordingCollector()
    pipeline = dlt.pipeline("flaky", destination=failing_sink(2, calls=calls), progress=collector)
    # The main destination is a sink: the traces go to a duckdb trace pipeline where they can be counted.
    tracer, trace_file = duckdb_trace_pipeline(tmp_path)
    r = runner(
        pipeline,
        store_trace_info=tracer,
        retry_policy=Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0), reraise=True),
        journal=journal_url,
    )
    info = r.run([{"id": 1}], table_name="items")
    assert info is not None and not info.has_failed_jobs
    assert len(calls) == 3  # two transient failures, then the load that went through
    assert collector.after and collector.after[-1][0] is True

    st = story(journal_url, r.last_run_id)
    assert st.run.status == "done"
    assert [a.outcome for a in st.attempts] == ["failed", "failed", "succeeded"]
    assert [t.attempt for t in st.traces] == [1, 2, 3]
    assert all(t.shipped_at is not None and t.ship_error is None for t in st.traces)
    assert [json.loads(t.payload)["outcome"] for t in st.traces] == ["transient", "transient", "succeeded"]

    rows = trace_rows(trace_file, "traces", "flaky_trace")
    assert [(row["run_id"], row["attempt"], row["outcome"]) for row in rows] == [
        (r.last_run_id, 1, "transient"),
        (r.last_run_id, 2, "transient"),
        (r.last_run_id, 3, "succeeded"),
    ]
    assert [row["failed_step"] for row in rows] == ["load", "load", None]
    assert len({row["trace_id"] for row in rows}) == 3


def test_terminal_sink_failure_still_stores_and_ships_its_trace(tmp_path, journal_url):
    collector = RecordingCollector()
    calls: list[int] = []
    pipeline = dlt.pipeline("doomed", destination=failing_sink(10, terminal=True, calls=calls), progress=collector)
    tracer, trace_file = duckdb_trace_pipeline(tmp_path)
    r = runner(
        pipeline,
        store_trace_info=tracer,
        # a policy that would retry: the terminal error must stop it after one attempt
        retry_policy=Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0), reraise=True),
        journal=journal_url,
    )
    with pytest.raises(PipelineStepFailed) as raised:
        r.run([{"id": 1}], table_name="items")
    assert raised.value.step == "load"
    assert "terminal sink failure" in str(raised.value)
    assert len(calls) == 1

    assert len(collector.after) == 1
    success, _summary = collector.after[0]
    assert success is False

    st = story(journal_url, r.last_run_id)
    assert st.run.status == "failed"
    assert len(st.attempts) == 1
    (trace,) = st.traces
    assert trace.shipped_at is not None and trace.ship_error is None
    payload = json.loads(trace.payload)
    assert payload["outcome"] == "terminal"
    assert payload["failed_step"] == "load"
    assert st.transitions[-1].dest == "failed"
    assert st.transitions[-1].details == {"traces_shipped": 1}

    rows = trace_rows(trace_file, "traces", "doomed_trace")
    assert [(row["run_id"], row["attempt"], row["outcome"], row["failed_step"]) for row in rows] == [
        (r.last_run_id, 1, "terminal", "load")
    ]


def test_extract_error_is_not_retried_by_default_and_still_ships_its_trace(tmp_path, journal_url):
    collector = RecordingCollector()
    extracts: list[int] = []

    @dlt.resource(name="items")
    def items():
        extracts.append(1)
        yield {"id": 1}
        raise RuntimeError("the source API went away")

    pipeline = dlt.pipeline("broken_source", destination="duckdb", dataset_name="src", progress=collector)
    r = runner(
        pipeline,
        store_trace_info=True,  # default trace pipeline on the main duckdb destination
        retry_policy=Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0), reraise=True),
        journal=journal_url,
    )  # retry_pipeline_steps is the default ("load",): an extract error is not retried
    with pytest.raises(PipelineStepFailed) as raised:
        r.run(items)
    assert raised.value.step == "extract"
    assert "the source API went away" in str(raised.value)
    assert len(extracts) == 1

    assert [success for success, _ in collector.after] == [False]

    st = story(journal_url, r.last_run_id)
    assert st.run.status == "failed"
    assert [(a.outcome, a.failed_step, a.error_class) for a in st.attempts] == [("failed", "extract", "transient")]
    (trace,) = st.traces
    assert trace.shipped_at is not None and trace.ship_error is None
    payload = json.loads(trace.payload)
    assert (payload["outcome"], payload["failed_step"]) == ("transient", "extract")
    assert payload["exception_type"] == "ResourceExtractionError"
    assert "the source API went away" in payload["exception_message"]

    main_file = str(tmp_path / "broken_source.duckdb")
    assert not os.path.exists(tmp_path / "_trace_broken_source.duckdb")
    rows = trace_rows(main_file, "_trace_src", "broken_source_trace")
    assert [(row["run_id"], row["attempt"], row["outcome"], row["failed_step"]) for row in rows] == [
        (r.last_run_id, 1, "transient", "extract")
    ]

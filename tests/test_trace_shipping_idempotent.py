"""Shipping survives a crash at any point between the trace pipeline's steps and the journal's bookkeeping.

The crash is simulated by doing part of ``OutboxShipper._ship``'s work by hand, in its order
(extract, assign_ship_load_id, normalize, load, mark_shipped), stopping where a killed process
would have stopped, and then calling ``OutboxShipper(...).ship()`` with fresh objects as a new
process would. A real SQLite journal, a real duckdb trace pipeline; nothing is mocked.
"""

from __future__ import annotations

import json
import os

import dlt
import duckdb
import pytest

from runjournal._secrets import Scrubber
from runjournal._shipping import IN_FLIGHT, OutboxShipper
from runjournal._traces import trace_resources
from runjournal.journal import Journal, NewRun

PIPELINE = "orders"
TABLE = "orders_trace"


@pytest.fixture
def jnl(journal_url):
    with Journal.open(journal_url) as opened:
        yield opened


@pytest.fixture
def trace_file(tmp_path) -> str:
    return str(tmp_path / "trace_destination.duckdb")


def trace_pipeline(trace_file: str):
    """The trace pipeline as a process would create it: attached to its working dir by name."""
    return dlt.pipeline("tracer", destination=dlt.destinations.duckdb(trace_file), dataset_name="traces")


def add_traces(jnl: Journal, count: int) -> tuple[str, list[int]]:
    run_id = jnl.start_run(NewRun(pipeline_name=PIPELINE, host="h", pid=os.getpid(), config={}))
    ids = []
    for attempt in range(1, count + 1):
        payload = json.dumps(
            {"pipeline_name": PIPELINE, "run_id": run_id, "attempt": attempt, "outcome": "transient", "steps": []}
        )
        ids.append(jnl.add_trace(run_id, attempt, PIPELINE, payload))
    return run_id, ids


def shipper(jnl: Journal, trace_file: str) -> OutboxShipper:
    return OutboxShipper(
        jnl.outbox("traces"), PIPELINE, lambda: trace_pipeline(trace_file), trace_resources(PIPELINE), Scrubber()
    )


def destination_rows(trace_file: str) -> list[tuple]:
    if not os.path.exists(trace_file):
        return []
    with duckdb.connect(trace_file, read_only=True) as conn:
        exists = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'traces' AND table_name = ?", [TABLE]
        ).fetchall()[0][0]
        if not exists:
            return []
        return conn.sql(f'SELECT trace_id, _dlt_load_id FROM "traces"."{TABLE}" ORDER BY trace_id').fetchall()


def start_shipment_by_hand(jnl: Journal, trace_file: str, *, assign: bool = True) -> tuple[object, str]:
    """OutboxShipper._ship's first steps for the whole outbox: mark in flight, extract, record the load id."""
    pending = jnl.outbox("traces").unshipped(PIPELINE)
    jnl.outbox("traces").assign_ship_load_id([t.id for t in pending], IN_FLIGHT)
    pipeline = trace_pipeline(trace_file)
    info = pipeline.extract(trace_resources(PIPELINE)(pending))
    load_id = info.loads_ids[-1]
    if assign:
        jnl.outbox("traces").assign_ship_load_id([t.id for t in pending], load_id)
    return pipeline, load_id


def assert_all_shipped(jnl: Journal, ids: list[int], load_id: str) -> None:
    assert jnl.outbox("traces").unshipped(PIPELINE) == []
    by_id = {t.id: t for t in jnl.get_story(jnl.list_runs(pipeline=PIPELINE)[0].id).traces}
    for trace_id in ids:
        assert by_id[trace_id].shipped_at is not None
        assert by_id[trace_id].ship_error is None
        assert by_id[trace_id].ship_load_id == load_id


def test_crash_after_load_before_mark_shipped_marks_without_loading_again(jnl, trace_file):
    run_id, ids = add_traces(jnl, 2)
    pipeline, load_id = start_shipment_by_hand(jnl, trace_file)
    pipeline.normalize()
    pipeline.load()
    assert pipeline.list_completed_load_packages() == [load_id]
    # ... the process dies here: the journal never heard that the load went through
    assert [t.id for t in jnl.outbox("traces").unshipped(PIPELINE)] == ids
    expected = [(f"{run_id}-1", load_id), (f"{run_id}-2", load_id)]
    assert destination_rows(trace_file) == expected

    report = shipper(jnl, trace_file).ship()

    assert report == {"traces_shipped": 2}
    assert_all_shipped(jnl, ids, load_id)
    assert destination_rows(trace_file) == expected  # one row per trace, from the one package
    # and a further ship has nothing to do
    assert shipper(jnl, trace_file).ship() == {"traces_shipped": 0}
    assert destination_rows(trace_file) == expected


@pytest.mark.parametrize("normalized", [False, True], ids=["extracted", "normalized"])
def test_crash_before_load_finishes_the_pending_package(jnl, trace_file, normalized):
    run_id, ids = add_traces(jnl, 2)
    pipeline, load_id = start_shipment_by_hand(jnl, trace_file)
    if normalized:
        pipeline.normalize()
    # ... the process dies here: the package is pending in the trace pipeline's working dir
    assert pipeline.has_pending_data
    assert destination_rows(trace_file) == []

    report = shipper(jnl, trace_file).ship()

    assert report == {"traces_shipped": 2}
    assert_all_shipped(jnl, ids, load_id)
    # the pending package was finished: the traces arrived once, in it
    assert destination_rows(trace_file) == [(f"{run_id}-1", load_id), (f"{run_id}-2", load_id)]
    assert not trace_pipeline(trace_file).has_pending_data


def test_crash_after_load_with_new_traces_waiting_ships_each_once(jnl, trace_file):
    """The crashed batch is only marked; traces added since go out in a new package."""
    run_id, ids = add_traces(jnl, 1)
    pipeline, load_id = start_shipment_by_hand(jnl, trace_file)
    pipeline.normalize()
    pipeline.load()
    later_run, later_ids = add_traces(jnl, 1)

    assert shipper(jnl, trace_file).ship() == {"traces_shipped": 2}

    assert jnl.outbox("traces").unshipped(PIPELINE) == []
    rows = destination_rows(trace_file)
    assert sorted(r[0] for r in rows) == sorted([f"{run_id}-1", f"{later_run}-1"])
    assert dict(rows)[f"{run_id}-1"] == load_id
    assert dict(rows)[f"{later_run}-1"] != load_id


def test_crash_between_extract_and_assign_ship_load_id_ships_once(jnl, trace_file):
    """The narrowest window: the package is extracted but the journal has no load id for it yet.

    The journal marked the traces in flight before the extract, so the orphan package is
    adopted and loaded: no second copy is extracted next to it.
    """
    run_id, ids = add_traces(jnl, 1)
    pipeline, orphan_id = start_shipment_by_hand(jnl, trace_file, assign=False)
    # ... the process dies here: extract committed its package, assign_ship_load_id never ran
    assert pipeline.has_pending_data
    assert [t.ship_load_id for t in jnl.outbox("traces").unshipped(PIPELINE)] == [IN_FLIGHT]

    assert shipper(jnl, trace_file).ship() == {"traces_shipped": 1}

    assert jnl.outbox("traces").unshipped(PIPELINE) == []
    assert [r[0] for r in destination_rows(trace_file)] == [f"{run_id}-1"]


def test_crash_after_marking_in_flight_before_extract_ships_once(jnl, trace_file):
    """The journal says "in flight" but the extract never committed: nothing is pending, ship anew."""
    run_id, ids = add_traces(jnl, 1)
    jnl.outbox("traces").assign_ship_load_id(ids, IN_FLIGHT)

    assert shipper(jnl, trace_file).ship() == {"traces_shipped": 1}

    assert [r[0] for r in destination_rows(trace_file)] == [f"{run_id}-1"]
    assert jnl.outbox("traces").unshipped(PIPELINE) == []

"""Pipeline names that are not identifiers still get their traces shipped (dlt+ breaks on them).

The default trace pipeline is named ``_trace_<name>`` and its table ``<name>_trace``; dlt
normalizes that table name for the destination (snake_case: ``my-pipe_trace`` -> ``my_pipe_trace``).
"""

from __future__ import annotations

import json

import dlt
import duckdb
import pytest
from dlt.common.normalizers.naming.snake_case import NamingConvention

from runjournal import runner
from runjournal.journal import Journal
from tests._support import story


@pytest.mark.parametrize("name", ["my-pipe", "2024 Orders Pipe"])
def test_non_identifier_pipeline_name_ships_its_trace(tmp_path, journal_url, name):
    path = str(tmp_path / "main.duckdb")
    pipeline = dlt.pipeline(name, destination=dlt.destinations.duckdb(path), dataset_name="shop")
    r = runner(pipeline, store_trace_info=True, journal=journal_url)
    info = r.run([{"id": 1}], table_name="items")
    assert info is not None and not info.has_failed_jobs

    st = story(journal_url, r.last_run_id)
    assert st.run.status == "done"
    assert st.run.pipeline_name == name
    (trace,) = st.traces
    assert trace.pipeline_name == name
    assert trace.shipped_at is not None and trace.ship_error is None
    assert json.loads(trace.payload)["pipeline_name"] == name
    assert st.transitions[-1].details == {"traces_shipped": 1}
    with Journal.open(journal_url) as jnl:
        assert jnl.outbox("traces").unshipped(name) == []

    table = NamingConvention().normalize_table_identifier(f"{name}_trace")
    if name == "my-pipe":
        assert table == "my_pipe_trace"
    with duckdb.connect(path, read_only=True) as conn:
        tables = conn.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '_trace_shop'"
        ).fetchall()
        assert (table,) in tables
        rows = conn.sql(f'SELECT run_id, attempt, pipeline_name, trace_id FROM "_trace_shop"."{table}"').fetchall()
    assert rows == [(r.last_run_id, 1, name, f"{r.last_run_id}-1")]

    # a second run ships its own trace into the same table, the first one untouched
    r.run([{"id": 2}], table_name="items")
    with duckdb.connect(path, read_only=True) as conn:
        rows = conn.sql(f'SELECT trace_id FROM "_trace_shop"."{table}" ORDER BY trace_id').fetchall()
    assert [row[0] for row in rows] == sorted([st.run.id + "-1", r.last_run_id + "-1"])


def test_non_identifier_name_with_default_duckdb_credentials(tmp_path, journal_url):
    """destination="duckdb" without credentials: dlt names the file after the pipeline."""
    pipeline = dlt.pipeline("my-pipe", destination="duckdb", dataset_name="shop")
    r = runner(pipeline, store_trace_info=True, journal=journal_url)
    assert r.run([{"id": 1}], table_name="items") is not None
    st = story(journal_url, r.last_run_id)
    assert st.transitions[-1].details == {"traces_shipped": 1}

    files = sorted(p.name for p in tmp_path.glob("*.duckdb"))
    assert len(files) == 1, files
    with duckdb.connect(str(tmp_path / files[0]), read_only=True) as conn:
        rows = conn.sql('SELECT run_id, outcome FROM "_trace_shop"."my_pipe_trace"').fetchall()
    assert rows == [(r.last_run_id, "succeeded")]

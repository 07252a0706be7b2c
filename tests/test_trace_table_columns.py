"""The trace table's columns are declared: a recovery whose only trace is reconstructed (no dlt
transaction id) ships it without dlt's warning that `transaction_id` "did not receive any data",
and the column exists, typed, from the first shipment on."""

from __future__ import annotations

import signal

import duckdb

from . import crash_child as cc
from ._crash_support import Destination, recover_cli


def test_reconstructed_trace_ships_without_a_missing_column_warning(tmp_path, journal_url, request):
    dest = Destination("duckdb", tmp_path, request)
    # killed before any step: the only trace of the run is the one the journal reconstructs
    killed = cc.spawn(tmp_path, journal_url, "--store-trace", *dest.args(), "--ids", "0:3", "--kill-at", "extract",
                      env=dest.env)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    recovered = recover_cli(journal_url, dest)
    assert recovered.returncode == 0, recovered.stderr
    assert "did not receive any data" not in recovered.stderr + recovered.stdout
    traces = dest.traces()  # the dead attempt's, reconstructed, and the recovery's own
    assert sorted(str(t["reconstructed"]) for t in traces.values()) == ["None", "True"]
    with duckdb.connect(str(tmp_path / "crash.duckdb"), read_only=True) as conn:
        types = dict(conn.sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '_trace_{dest.dataset}' AND table_name = '{cc.PIPELINE_NAME}_trace'"
        ).fetchall())
    assert types["transaction_id"] == "VARCHAR" and types["trace_id"] == "VARCHAR"

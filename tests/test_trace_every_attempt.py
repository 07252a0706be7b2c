"""Every attempt has a trace at the destination, also one in which dlt ran no step: a recovery with
nothing pending, a run with nothing to do, an attempt that failed in clean_folder. Its trace tells
the states the attempt walked and why it did nothing (or why it failed)."""

from __future__ import annotations

import json

import dlt
import duckdb
import pytest

from runjournal import PendingPackagesError, runner
from runjournal.journal import Journal

from . import crash_child as cc
from ._crash_support import Destination, recover_cli


def _trace_rows(path: str, pipeline: str, dataset: str) -> dict[str, dict]:
    with duckdb.connect(path, read_only=True) as conn:
        cursor = conn.execute(f'SELECT * FROM "_trace_{dataset}"."{pipeline}_trace"')
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    assert len({r["trace_id"] for r in rows}) == len(rows), "a trace shipped twice"
    return {r["trace_id"]: r for r in rows}


def _attempt_ids(journal_url: str, run_id: str) -> set[str]:
    with Journal.open(journal_url) as jnl:
        return {f"{run_id}-{a.number}" for a in jnl.get_story(run_id).attempts}


def test_a_run_with_nothing_to_do_is_traced_with_its_reasons(tmp_path, journal_url):
    path = str(tmp_path / "idle.duckdb")
    pipeline = dlt.pipeline("idle", pipelines_dir=str(tmp_path / "p"), destination=dlt.destinations.duckdb(path),
                            dataset_name="ds")
    r = runner(pipeline, store_trace_info=True, journal=journal_url)
    assert r.run() is None

    traces = _trace_rows(path, "idle", "ds")
    assert set(traces) == _attempt_ids(journal_url, r.last_run_id)
    [trace] = traces.values()
    assert (trace["outcome"], trace["phase"]) == ("succeeded", "run")
    assert json.loads(trace["states"]) == ["clean_folder", "sync", "finalize_pending", "extract", "normalize", "load",
                                           "store_trace"]
    assert "finalize_pending: no pending packages" in trace["reason"] and "extract: no data given" in trace["reason"]


def test_an_attempt_that_failed_in_clean_folder_is_traced(tmp_path, journal_url):
    path = str(tmp_path / "clean.duckdb")
    pipeline = dlt.pipeline("clean", pipelines_dir=str(tmp_path / "p"), destination=dlt.destinations.duckdb(path),
                            dataset_name="ds")
    pipeline.extract([{"id": 1}], table_name="t")  # a pending package: the clean folder refuses to delete it
    r = runner(pipeline, run_from_clean_folder=True, store_trace_info=True, journal=journal_url)
    with pytest.raises(PendingPackagesError):
        r.run([{"id": 2}], table_name="t")

    traces = _trace_rows(path, "clean", "ds")
    assert set(traces) == _attempt_ids(journal_url, r.last_run_id)
    [trace] = traces.values()
    assert (trace["outcome"], trace["failed_step"]) == ("terminal", "clean_folder")
    assert json.loads(trace["states"]) == ["clean_folder", "store_trace"]
    assert "would delete 1 unloaded load package" in trace["reason"]


def test_a_recovery_with_nothing_pending_is_traced(tmp_path, journal_url, request):
    """Killed right after its first transition (nothing extracted): the recovery finds nothing to finalize."""
    dest = Destination("duckdb", tmp_path, request)
    child = cc.spawn(tmp_path, journal_url, *dest.args(), "--ids", "0:10", "--store-trace", "--kill-at", "sync")
    assert cc.finish(child, timeout=120) != 0, cc.output_of(child)

    recovered = recover_cli(journal_url, dest)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    [outcome] = json.loads(recovered.stdout)["runs"]
    run_id = outcome["run_id"]

    traces = _trace_rows(str(tmp_path / "crash.duckdb"), cc.PIPELINE_NAME, dest.dataset)
    assert set(traces) == _attempt_ids(journal_url, run_id) == {f"{run_id}-1", f"{run_id}-2"}
    dead, recovery = traces[f"{run_id}-1"], traces[f"{run_id}-2"]
    assert (dead["outcome"], dead["reconstructed"]) == ("crashed", True)
    assert (recovery["outcome"], recovery["phase"]) == ("succeeded", "recover")
    assert json.loads(recovery["states"]) == ["clean_folder", "sync", "finalize_pending", "store_trace"]
    assert "finalize_pending: no pending packages" in recovery["reason"]

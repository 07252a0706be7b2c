"""A run killed while shipping its traces, inside dlt's normalize of the trace pipeline: the normalized
package is committed, the extracted one not yet deleted, so both are there. dlt's next normalize of that
pipeline would fail on it forever ("Directory not empty"); the recovery repairs the trace pipeline's
folder as clean_folder does the pipeline's, and ships each trace once. Found by the chaos soak."""

from __future__ import annotations

import json

import duckdb

from . import crash_child as cc
from ._crash_support import Destination, recover_cli

TRACE_PIPELINE = f"_trace_{cc.PIPELINE_NAME}"


def test_killed_between_normalize_commit_and_cleanup_of_the_trace_pipeline(tmp_path, journal_url, request):
    dest = Destination("duckdb", tmp_path, request)
    child = cc.spawn(tmp_path, journal_url, *dest.args(), "--ids", "0:10", "--store-trace",
                     "--kill-before-extracted-delete", TRACE_PIPELINE)
    assert cc.finish(child, timeout=120) != 0, cc.output_of(child)
    working = tmp_path / "pipelines" / TRACE_PIPELINE
    [left] = [p.name for p in (working / "normalize" / "extracted").iterdir()]
    assert (working / "load" / "normalized" / left).is_dir(), "the kill did not land between commit and cleanup"

    recovered = recover_cli(journal_url, dest)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    [outcome] = json.loads(recovered.stdout)["runs"]
    assert outcome["status"] == "recovered"
    run_id = outcome["run_id"]

    with duckdb.connect(str(tmp_path / "crash.duckdb"), read_only=True) as conn:
        traces = [r[0] for r in conn.sql(f'SELECT trace_id FROM "_trace_{dest.dataset}"."{cc.PIPELINE_NAME}_trace"').fetchall()]
    assert sorted(traces) == [f"{run_id}-1", f"{run_id}-2"]
    leftovers = [p.name for folder in ("normalize/extracted", "load/normalized") if (working / folder).is_dir()
                 for p in (working / folder).iterdir()]
    assert leftovers == []
    assert sorted(r[0] for r in dest.rows()) == list(range(10))

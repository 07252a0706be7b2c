"""A successful run walks every state once, journals each edge before its work, and returns dlt's LoadInfo."""

import dlt
from dlt.common.pipeline import LoadInfo

from runjournal import runner
from tests._support import counted_rows, duckdb_rows, path_of, story


def test_success_walks_the_machine_and_loads_the_rows(tmp_path, journal_url):
    extracts: list = []
    pipeline = dlt.pipeline(
        "orders", pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "orders.duckdb")), dataset_name="shop",
    )
    r = runner(pipeline, journal=journal_url)

    info = r.run(counted_rows("orders", 10, extracts))

    assert isinstance(info, LoadInfo) and not info.has_failed_jobs
    assert len(duckdb_rows(str(tmp_path / "orders.duckdb"), "shop", "orders")) == 10
    s = story(journal_url, r.last_run_id)
    assert path_of(s) == [
        "created", "clean_folder", "sync", "finalize_pending", "extract", "normalize", "load", "store_trace", "done",
    ]
    assert [t.seq for t in s.transitions] == list(range(1, 9))
    assert s.run.status == "done" and s.run.state == "done" and s.run.finished_at is not None
    assert s.run.pipeline_name == "orders" and s.run.dataset_name == "shop"
    assert s.run.destination_type == "dlt.destinations.duckdb"
    [attempt] = s.attempts
    assert attempt.outcome == "succeeded" and attempt.phase == "run"
    assert attempt.load_ids == tuple(info.loads_ids)
    by_dest = {t.dest: t for t in s.transitions}
    assert by_dest["normalize"].details == {"load_ids": list(info.loads_ids)}
    assert by_dest["load"].details["row_counts"]["orders"] == 10
    assert by_dest["extract"].details == {"skipped": "no pending packages"}
    assert extracts == [1]


def test_nothing_to_do_is_journaled_with_reasons_and_returns_none(tmp_path, journal_url):
    pipeline = dlt.pipeline("idle", pipelines_dir=str(tmp_path / "p"), destination="duckdb")
    r = runner(pipeline, journal=journal_url)

    assert r.run() is None

    s = story(journal_url, r.last_run_id)
    skipped = {t.source: t.details["skipped"] for t in s.transitions if t.details and "skipped" in t.details}
    assert skipped == {
        "clean_folder": "nothing to clean",
        "finalize_pending": "no pending packages",
        "extract": "no data given",
        "normalize": "nothing extracted",
        "load": "nothing to load",
    }
    assert s.run.status == "done"
    assert s.traces == ()  # store_trace_info is off


def test_run_kwargs_reach_dlt_like_pipeline_run(tmp_path, journal_url):
    pipeline = dlt.pipeline("kw", pipelines_dir=str(tmp_path / "p"))
    r = runner(pipeline, journal=journal_url)

    r.run(
        [{"id": 1, "v": "a"}, {"id": 1, "v": "b"}],
        table_name="items", write_disposition="merge", primary_key="id",
        destination=dlt.destinations.duckdb(str(tmp_path / "kw.duckdb")), dataset_name="kwds",
    )

    assert duckdb_rows(str(tmp_path / "kw.duckdb"), "kwds", "items")[0][:2] in [(1, "a"), (1, "b")]
    assert len(duckdb_rows(str(tmp_path / "kw.duckdb"), "kwds", "items")) == 1
    s = story(journal_url, r.last_run_id)
    assert s.run.config["run_kwargs"] == {"table_name": "items", "write_disposition": "merge", "primary_key": "id"}

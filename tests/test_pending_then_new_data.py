"""Pending packages found at start are finalized first, then the caller's data runs in the same call."""

import dlt
import pytest

from runjournal import runner
from tests._support import duckdb_rows, failing_sink, path_of, story


def make_pipeline(tmp_path, name="pending"):
    return dlt.pipeline(name, pipelines_dir=str(tmp_path / "p"),
                        destination=dlt.destinations.duckdb(str(tmp_path / "db.duckdb")), dataset_name="ds")


@pytest.mark.parametrize("left_at", ["extracted", "normalized"])
def test_pending_package_is_loaded_before_the_new_data(tmp_path, journal_url, left_at):
    pipeline = make_pipeline(tmp_path)
    pipeline.extract([{"id": 1}, {"id": 2}], table_name="t")
    if left_at == "normalized":
        pipeline.normalize()
    [pending_id] = sorted(set(pipeline.list_extracted_load_packages()) | set(pipeline.list_normalized_load_packages()))

    r = runner(pipeline, journal=journal_url)
    info = r.run([{"id": 3}], table_name="t")

    assert sorted(row[0] for row in duckdb_rows(str(tmp_path / "db.duckdb"), "ds", "t")) == [1, 2, 3]
    assert pending_id not in info.loads_ids, "run() returns the LoadInfo of the caller's data"
    s = story(journal_url, r.last_run_id)
    assert [(a.phase, a.outcome) for a in s.attempts] == [("finalize", "succeeded"), ("run", "succeeded")]
    assert s.attempts[0].load_ids == (pending_id,)
    assert path_of(s) == [
        "created", "clean_folder", "sync", "finalize_pending", "store_trace",
        "extract", "normalize", "load", "store_trace", "done",
    ]
    sync = next(t for t in s.transitions if t.source == "sync")
    assert "pending package" in sync.details["skipped"]


def test_finalize_loads_pending_packages_only(tmp_path, journal_url):
    pipeline = make_pipeline(tmp_path, "finalize_only")
    pipeline.extract([{"id": 1}], table_name="t")

    r = runner(pipeline, journal=journal_url)
    info = r.finalize()

    assert info is not None and len(info.loads_ids) == 1
    assert duckdb_rows(str(tmp_path / "db.duckdb"), "ds", "t")[0][0] == 1
    s = story(journal_url, r.last_run_id)
    assert path_of(s) == ["created", "clean_folder", "sync", "finalize_pending", "store_trace", "done"]
    assert s.run.config["call"] == "finalize"
    assert r.finalize() is None  # nothing pending any more


def test_failed_finalization_is_retried_and_stops_the_new_data(tmp_path, journal_url, monkeypatch):
    from tenacity import Retrying, stop_after_attempt
    from dlt.pipeline.exceptions import PipelineStepFailed

    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")
    sink_calls: list = []
    pipeline = dlt.pipeline("finalize_fails", pipelines_dir=str(tmp_path / "p"),
                            destination=failing_sink(10, calls=sink_calls))
    pipeline.extract([{"id": 1}], table_name="t")
    new_data_extracts = []

    @dlt.resource(table_name="t")
    def new_rows():
        new_data_extracts.append(1)
        yield {"id": 2}

    r = runner(pipeline, retry_policy=Retrying(stop=stop_after_attempt(2), reraise=True), journal=journal_url)
    with pytest.raises(PipelineStepFailed):
        r.run(new_rows())

    assert new_data_extracts == []
    s = story(journal_url, r.last_run_id)
    assert [(a.phase, a.outcome) for a in s.attempts] == [("finalize", "failed"), ("finalize", "failed")]
    assert [t.dest for t in s.transitions if t.source == "retry_wait"] == ["finalize_pending"]

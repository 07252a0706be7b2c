"""run_from_clean_folder restores state from the destination and never deletes unloaded packages."""

import os

import dlt
import pytest

from runjournal import PendingPackagesError, runner
from tests._support import duckdb_rows, story


def incremental_source(seen: list):
    @dlt.resource(table_name="events", primary_key="id", write_disposition="append")
    def events(cursor=dlt.sources.incremental("id", initial_value=0)):
        rows = [{"id": i} for i in range(1, 8) if i > cursor.start_value]
        seen.append([r["id"] for r in rows])
        yield rows

    return events


def make_pipeline(tmp_path):
    return dlt.pipeline("clean", pipelines_dir=str(tmp_path / "p"),
                        destination=dlt.destinations.duckdb(str(tmp_path / "clean.duckdb")), dataset_name="ds")


def test_clean_folder_drops_the_working_dir_and_restores_state_from_the_destination(tmp_path, journal_url):
    seen: list = []
    pipeline = make_pipeline(tmp_path)
    runner(pipeline, journal=journal_url).run(incremental_source(seen)())
    marker = os.path.join(pipeline.working_dir, "left-behind.txt")
    open(marker, "w").close()

    r = runner(pipeline, run_from_clean_folder=True, journal=journal_url)
    r.run(incremental_source(seen)())

    assert seen == [[1, 2, 3, 4, 5, 6, 7], []], "the cursor must come back from the destination"
    assert not os.path.exists(marker)
    assert len(duckdb_rows(str(tmp_path / "clean.duckdb"), "ds", "events")) == 7
    s = story(journal_url, r.last_run_id)
    clean = next(t for t in s.transitions if t.source == "clean_folder")
    assert clean.details == {"dropped_working_dir": True}
    assert s.run.config["run_from_clean_folder"] is True


def test_clean_folder_with_pending_packages_stops_and_names_them(tmp_path, journal_url):
    pipeline = make_pipeline(tmp_path)
    pipeline.extract([{"id": 1}], table_name="t")
    [load_id] = pipeline.list_extracted_load_packages()

    r = runner(pipeline, run_from_clean_folder=True, journal=journal_url)
    with pytest.raises(PendingPackagesError) as raised:
        r.run([{"id": 2}], table_name="t")

    assert load_id in str(raised.value) and raised.value.load_ids == [load_id]
    assert pipeline.list_extracted_load_packages() == [load_id], "the package must not be deleted"
    s = story(journal_url, r.last_run_id)
    assert s.run.status == "failed" and s.attempts[0].error_class == "terminal"
    assert s.attempts[0].failed_step == "clean_folder"

    # the way out the message names: finalize, then the clean-folder run works
    runner(pipeline, journal=journal_url).finalize()
    runner(pipeline, run_from_clean_folder=True, journal=journal_url).run([{"id": 2}], table_name="t")
    assert sorted(r[0] for r in duckdb_rows(str(tmp_path / "clean.duckdb"), "ds", "t")) == [1, 2]


def test_finalize_refuses_run_from_clean_folder(tmp_path, journal_url):
    r = runner(make_pipeline(tmp_path), run_from_clean_folder=True, journal=journal_url)
    with pytest.raises(ValueError, match="run_from_clean_folder"):
        r.finalize()


def test_orphan_temp_extract_folders_are_removed(tmp_path, journal_url):
    @dlt.resource(table_name="t")
    def broken():
        yield {"id": 1}
        raise RuntimeError("boom")

    pipeline = make_pipeline(tmp_path)
    with pytest.raises(Exception):
        pipeline.extract(broken())
    normalize_dir = os.path.join(pipeline.working_dir, "normalize")
    orphans = [d for d in os.listdir(normalize_dir) if len(d) == 16]
    assert orphans, "dlt leaves a temporary extract folder behind after a failed extract"

    r = runner(pipeline, journal=journal_url)
    r.run([{"id": 2}], table_name="t")

    assert not [d for d in os.listdir(normalize_dir) if len(d) == 16]
    clean = next(t for t in story(journal_url, r.last_run_id).transitions if t.source == "clean_folder")
    assert clean.details == {"removed_temp_extract_dirs": orphans}

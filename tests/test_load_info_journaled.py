"""Every run journals its load info: packages with their state, jobs with status, size, retry
count and normalize's row count, on SQLite and PostgreSQL journals alike."""

import dlt
import pytest

from runjournal import runner
from tests._support import counted_rows, failing_sink, story


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request) -> str:
    return request.getfixturevalue("journal_url" if request.param == "sqlite" else "pg_journal_url")


def test_packages_and_jobs_of_a_duckdb_run_are_journaled(tmp_path, url):
    pipeline = dlt.pipeline(
        "orders_load_info", pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "orders.duckdb")), dataset_name="shop",
    )
    r = runner(pipeline, journal=url)

    info = r.run(counted_rows("orders", 7, []))

    s = story(url, r.last_run_id)
    [package] = info.load_packages
    assert [(p.load_id, p.attempt, p.state, p.schema_name) for p in s.packages] == [
        (package.load_id, 1, "loaded", "orders_load_info")
    ]
    assert s.packages[0].completed_at == pytest.approx(package.completed_at.timestamp())
    # the same jobs, sizes and retry counts as dlt's LoadInfo
    reported = {(j.job_file_info.job_id(), j.file_size, j.job_file_info.retry_count) for j in package.jobs["completed_jobs"]}
    assert {(j.job_id, j.file_size, j.retry_count) for j in s.jobs} == reported
    assert all(j.state == "completed" and j.failed_message is None for j in s.jobs)
    [orders] = [j for j in s.jobs if j.table_name == "orders"]
    assert orders.row_count == 7 and orders.file_size > 0 and orders.file_format == "insert_values"


def test_retried_jobs_keep_their_retry_count(tmp_path, url):
    calls: list = []
    pipeline = dlt.pipeline("sink_load_info", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=failing_sink(2, calls=calls))
    r = runner(pipeline, journal=url)

    r.run(counted_rows("items", 3, []))

    s = story(url, r.last_run_id)
    [items] = [j for j in s.jobs if j.table_name == "items"]
    assert (items.state, items.retry_count, items.row_count) == ("completed", 2, 3)
    assert len(calls) == 3

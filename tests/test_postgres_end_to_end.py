"""The journal on PostgreSQL and a PostgreSQL destination: the same story as with SQLite and duckdb."""

import uuid

import dlt
import pytest
from tenacity import Retrying, stop_after_attempt, wait_fixed

from runjournal import runner
from tests._support import path_of, story

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_destination(pg_database):
    dataset = f"e2e_{uuid.uuid4().hex[:8]}"
    from sqlalchemy.engine import make_url

    # dlt insists on a password; the local server's trust auth ignores it
    credentials = make_url(pg_database).set(password="trust-ignores-this").render_as_string(hide_password=False)
    destination = dlt.destinations.postgres(credentials=credentials)
    yield destination, dataset
    import psycopg2

    with psycopg2.connect(pg_database) as conn, conn.cursor() as cur:
        for schema in (dataset, f"_trace_{dataset}"):
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_run_with_retries_and_traces_on_postgres(tmp_path, pg_database, pg_destination):
    destination, dataset = pg_destination
    calls = []

    @dlt.resource(table_name="events", primary_key="id", write_disposition="merge")
    def events():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("upstream API hiccup")
        yield [{"id": i} for i in range(20)]

    pipeline = dlt.pipeline(f"pg_{dataset}", pipelines_dir=str(tmp_path / "p"), destination=destination,
                            dataset_name=dataset)
    r = runner(pipeline, store_trace_info=True, journal=pg_database,
               retry_policy=Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0), reraise=True),
               retry_pipeline_steps=["extract", "load"])

    info = r.run(events())

    assert info is not None
    with pipeline.sql_client() as client:
        assert client.execute_sql(f"SELECT count(*) FROM {dataset}.events")[0][0] == 20
        traces = client.execute_sql(
            f"SELECT attempt, outcome FROM _trace_{dataset}.{pipeline.pipeline_name}_trace ORDER BY attempt")
    assert [tuple(t) for t in traces] == [(1, "transient"), (2, "succeeded")]
    s = story(pg_database, r.last_run_id)
    assert s.run.status == "done" and [a.outcome for a in s.attempts] == ["failed", "succeeded"]
    assert path_of(s)[-6:] == ["retry_wait", "extract", "normalize", "load", "store_trace", "done"]
    assert all(t.shipped_at is not None for t in s.traces)

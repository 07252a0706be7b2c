"""store_load_info: each finished package's load info also reaches the destination, next to the data,
in ``_load_info`` (jobs in ``_load_info__jobs``) and ``_new_tables``, exactly once, across real kills."""

from __future__ import annotations

import signal
import subprocess
import sys

import dlt
import duckdb
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException

from runjournal import runner
from tests._cli_support import cli
from tests._support import story

DATASET = "shop"


def catalog_pipeline(tmp_path):
    return dlt.pipeline(
        "catalog", pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "catalog.duckdb")), dataset_name=DATASET,
    )


def query(tmp_path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True) as conn:
        return conn.sql(sql).fetchall()


def test_each_package_lands_in_load_info_and_new_tables(tmp_path, journal_url):
    r = runner(catalog_pipeline(tmp_path), journal=journal_url, store_load_info=True)
    first = r.run([{"id": 1, "name": "lamp"}], table_name="products")
    first_run = r.last_run_id
    second = r.run([{"id": 2, "name": "desk", "price": 9.5}], table_name="products")
    second_run = r.last_run_id

    packages = query(tmp_path, f"SELECT run_id, load_id, state, attempt, pipeline_name, dataset_name, destination_type "
                               f"FROM {DATASET}._load_info ORDER BY load_id")
    assert packages == [
        (first_run, first.loads_ids[0], "loaded", 1, "catalog", DATASET, "dlt.destinations.duckdb"),
        (second_run, second.loads_ids[0], "loaded", 1, "catalog", DATASET, "dlt.destinations.duckdb"),
    ]
    # the jobs, nested under their package, with what normalize counted
    jobs = query(tmp_path, f"SELECT p.load_id, j.table_name, j.state, j.row_count FROM {DATASET}._load_info p "
                           f"JOIN {DATASET}._load_info__jobs j ON j._dlt_parent_id = p._dlt_id "
                           f"WHERE j.table_name = 'products' ORDER BY p.load_id")
    assert jobs == [(first.loads_ids[0], "products", "completed", 1), (second.loads_ids[0], "products", "completed", 1)]
    new = query(tmp_path, f"SELECT run_id, column_name, data_type, new_table FROM {DATASET}._new_tables "
                          f"WHERE table_name = 'products' ORDER BY run_id, column_name")
    assert new == [
        (first_run, "_dlt_id", "text", True), (first_run, "_dlt_load_id", "text", True),
        (first_run, "id", "bigint", True), (first_run, "name", "text", True),
        (second_run, "price", "double", False),
    ]
    completed = query(tmp_path, f"SELECT completed_at FROM {DATASET}._load_info ORDER BY load_id")
    assert all(type(at).__name__ == "datetime" for (at,) in completed)
    # the journal says it shipped, once per run
    for run_id in (first_run, second_run):
        assert story(journal_url, run_id).transitions[-1].details == {"load_info_shipped": 1}


def test_off_by_default_and_checked(tmp_path, journal_url):
    r = runner(catalog_pipeline(tmp_path), journal=journal_url)
    r.run([{"id": 1}], table_name="products")
    tables = {name for (name,) in query(tmp_path, "SELECT table_name FROM information_schema.tables")}
    assert "_load_info" not in tables and "_new_tables" not in tables
    with pytest.raises(TypeError, match="store_load_info must be True or False, got 'yes'"):
        runner(catalog_pipeline(tmp_path), journal=journal_url, store_load_info="yes")
    with pytest.raises(ValueError, match="has no destination"):
        runner(dlt.pipeline("nowhere", pipelines_dir=str(tmp_path / "p2")), journal=journal_url, store_load_info=True)


# A child that runs the catalog pipeline with store_load_info and SIGKILLs itself as soon as the
# journal has committed the transition into ``KILL_AT`` (the state's work has not begun).
CHILD = """
import os, signal, sys
import dlt
from runjournal import RunnerCollector, runner

class KillAt(RunnerCollector):
    def on_transition(self, pipeline, transition):
        if transition.dest == sys.argv[3]:
            os.kill(os.getpid(), signal.SIGKILL)

base, journal_url = sys.argv[1], sys.argv[2]
pipeline = dlt.pipeline("catalog", pipelines_dir=os.path.join(base, "pipelines"), progress=KillAt(),
                        destination=dlt.destinations.duckdb(os.path.join(base, "catalog.duckdb")), dataset_name="shop")
runner(pipeline, journal=journal_url, store_load_info=True).run(
    [{"id": i} for i in range(100)], table_name="products")
"""


@pytest.mark.parametrize("kill_at", ["load", "store_trace"])
def test_killed_run_ships_its_load_info_once_after_recover(tmp_path, journal_url, kill_at):
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), journal_url, kill_at],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr

    for _ in range(2):  # a second recover has nothing left to do
        done = cli("recover", url=journal_url, cwd="/")
        assert done.returncode == 0, done.stdout + done.stderr

    assert query(tmp_path, f"SELECT count(*) FROM {DATASET}.products") == [(100,)]
    [(run_id, load_id, state, attempt)] = query(
        tmp_path, f"SELECT run_id, load_id, state, attempt FROM {DATASET}._load_info")
    s = story(journal_url, run_id)
    assert s.run.status == "recovered"
    [package] = s.packages
    assert (load_id, state) == (package.load_id, "loaded")
    # killed entering load, the recovery's attempt loaded the package; killed after, the first attempt did
    assert attempt == (2 if kill_at == "load" else 1)
    assert query(tmp_path, f"SELECT count(*) FROM {DATASET}._new_tables WHERE table_name = 'products'") == [(3,)]
    assert not dlt.attach("_load_info_catalog", pipelines_dir=str(tmp_path / "pipelines")).has_pending_data


def test_failed_job_message_reaches_load_info_scrubbed(tmp_path, journal_url, monkeypatch):
    """A failed job's message carries a password: the load info the destination gets has it masked."""
    monkeypatch.setenv("LOAD__RAISE_ON_FAILED_JOBS", "false")
    received: dict[str, list] = {}

    @dlt.destination(batch_size=100, name="picky_sink")
    def sink(items, table):
        if table["name"] == "bad":
            raise DestinationTerminalException("postgresql://loader:hunter22@warehouse/db rejected the rows")
        received.setdefault(table["name"], []).extend(items)

    pipeline = dlt.pipeline("picky", pipelines_dir=str(tmp_path / "pipelines"), destination=sink)
    r = runner(pipeline, journal=journal_url, store_load_info=True)
    r.run([dlt.resource([{"id": 1}], name="good"), dlt.resource([{"id": 2}], name="bad")])

    [package] = received["_load_info"]
    assert (package["run_id"], package["state"]) == (r.last_run_id, "loaded")
    # a sink gets nested data as JSON (dlt.destination's max_table_nesting=0), not as _load_info__jobs
    [failed] = [job for job in package["jobs"] if job["state"] == "failed"]
    assert failed["table_name"] == "bad"
    assert "postgresql://loader:***@warehouse/db rejected the rows" in failed["failed_message"]
    assert "hunter22" not in repr(received)


@pytest.mark.postgres
def test_load_info_lands_next_to_the_data_in_postgresql(tmp_path, journal_url, pg_database):
    import psycopg2
    from sqlalchemy.engine import make_url

    dataset = "shop_pg"  # pg_database is a fresh database of this test session
    # dlt insists on a password, which the local server's trust auth ignores
    credentials = make_url(pg_database).set(password="trust-ignores-this").render_as_string(hide_password=False)
    pipeline = dlt.pipeline("catalog_pg", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=dlt.destinations.postgres(credentials), dataset_name=dataset)
    r = runner(pipeline, journal=journal_url, store_load_info=True)
    first = r.run([{"id": 1}], table_name="products")
    second = r.run([{"id": 2, "price": 9.5}], table_name="products")

    with psycopg2.connect(pg_database) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT load_id, state FROM "{dataset}"."_load_info" ORDER BY load_id')
        assert cur.fetchall() == [(first.loads_ids[0], "loaded"), (second.loads_ids[0], "loaded")]
        cur.execute(f'SELECT count(*) FROM "{dataset}"."_load_info__jobs" WHERE table_name = %s', ("products",))
        assert cur.fetchone() == (2,)
        cur.execute(f'SELECT column_name, new_table FROM "{dataset}"."_new_tables" '
                    "WHERE table_name = 'products' AND column_name IN ('id', 'price') ORDER BY column_name")
        assert cur.fetchall() == [("id", True), ("price", False)]
    conn.close()

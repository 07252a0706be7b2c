"""Failed jobs: with load.raise_on_failed_jobs off the run ends done with them journaled, shown and
counted (and a warning); with it on (dlt 1.31's default) the run fails and the package stays pending,
until `runjournal abort-package` discards it the way dlt does and journals who did it."""

import logging

import dlt
import duckdb
from dlt.common.destination.exceptions import DestinationTerminalException

from runjournal import runner
from runjournal.journal import Journal
from tests._cli_support import cli, cli_json
from tests._support import story


def sink_refusing(table_name: str):
    @dlt.destination(batch_size=100, name="picky_sink")
    def sink(items, table):
        if table["name"] == table_name:
            raise DestinationTerminalException("postgresql://loader:hunter22@warehouse/db rejected the rows")

    return sink


def test_failed_job_with_raise_off_ends_done_and_is_counted(tmp_path, journal_url, monkeypatch, caplog):
    monkeypatch.setenv("LOAD__RAISE_ON_FAILED_JOBS", "false")
    pipeline = dlt.pipeline("picky", pipelines_dir=str(tmp_path / "pipelines"), destination=sink_refusing("bad"))
    r = runner(pipeline, journal=journal_url)
    source = [dlt.resource([{"id": 1}], name="good"), dlt.resource([{"id": 2}], name="bad")]

    logger = logging.getLogger("dlt.runjournal")  # dlt's loggers do not propagate to the root
    logger.addHandler(caplog.handler)
    try:
        info = r.run(source)
    finally:
        logger.removeHandler(caplog.handler)

    assert info.has_failed_jobs
    s = story(journal_url, r.last_run_id)
    assert s.run.status == "done"
    [failed] = [j for j in s.jobs if j.state == "failed"]
    assert failed.table_name == "bad" and "rejected the rows" in failed.failed_message
    assert "hunter22" not in failed.failed_message  # the run's scrubber removed the password
    assert {j.table_name for j in s.jobs if j.state == "completed"} >= {"good"}
    # one record; caplog may hold it twice when dlt's logger propagates to the root, where caplog also listens
    [warning] = {id(rec): rec for rec in caplog.records if "1 job(s) failed" in rec.getMessage()}.values()
    assert warning.levelno == logging.WARNING and "DestinationTerminalException" in warning.getMessage()

    [listed] = cli_json("runs", url=journal_url)["runs"]
    assert (listed["status"], listed["failed_jobs"]) == ("done", 1)
    table = cli("runs", url=journal_url)
    assert "1 failed job" in table.stdout
    shown = cli("show", r.last_run_id, url=journal_url)
    assert "failed jobs  1" in shown.stdout and "DestinationTerminalException" in shown.stdout
    assert "DestinationTerminalException: postgre" in shown.stdout


def test_failed_job_with_raise_on_fails_the_run_and_names_the_way_out(tmp_path, journal_url):
    pipeline = dlt.pipeline("picky", pipelines_dir=str(tmp_path / "pipelines"), destination=sink_refusing("bad"))
    r = runner(pipeline, journal=journal_url, retry_policy=None)

    try:
        r.run([dlt.resource([{"id": 2}], name="bad")])
    except Exception:  # noqa: BLE001 - the journal is what is tested
        pass

    s = story(journal_url, r.last_run_id)
    assert s.run.status == "failed"
    [pending] = pipeline.list_normalized_load_packages()
    failed = next(t for t in s.transitions if t.trigger == "attempt_failed")
    assert failed.details["abort_with"].startswith(f"runjournal abort-package picky {pending}")
    assert [(p.load_id, p.state) for p in s.packages] == [(pending, "normalized")]
    assert cli_json("runs", url=journal_url)["runs"][0]["failed_jobs"] == 0


def test_abort_package_unblocks_the_next_run(tmp_path, journal_url):
    database = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(database) as conn:  # a column type the data cannot be loaded into: a terminal error
        conn.execute("CREATE SCHEMA shop; CREATE TABLE shop.items (id BIGINT, price BIGINT)")
    pipeline = dlt.pipeline("shop", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=dlt.destinations.duckdb(database), dataset_name="shop")
    r = runner(pipeline, journal=journal_url, retry_policy=None)
    for _ in range(2):  # the stuck package fails every run
        try:
            r.run([{"id": 1, "price": "not a number"}], table_name="items")
        except Exception:  # noqa: BLE001
            pass
        assert story(journal_url, r.last_run_id).run.status == "failed"
    [stuck] = pipeline.list_normalized_load_packages()

    result = cli("abort-package", "shop", stuck, "--json", url=journal_url, cwd=str(tmp_path))

    assert result.returncode == 0, result.stderr
    with Journal.open(journal_url) as jnl:
        [operation] = jnl.list_operations(pipeline="shop")
    assert (operation.kind, operation.load_id, operation.details["aborted"]) == ("abort_package", stuck, stuck)
    again = cli("abort-package", "shop", stuck, url=journal_url, cwd=str(tmp_path))
    assert again.returncode == 2 and "no pending package" in again.stderr

    fresh = dlt.pipeline("shop", pipelines_dir=str(tmp_path / "pipelines"),
                         destination=dlt.destinations.duckdb(database), dataset_name="shop")
    r = runner(fresh, journal=journal_url, retry_policy=None)
    r.run([{"id": 2, "price": 5}], table_name="items")
    assert story(journal_url, r.last_run_id).run.status == "done"
    assert fresh.get_load_package_info(stuck).state == "aborted"

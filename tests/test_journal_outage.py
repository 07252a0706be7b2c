"""The journal's PostgreSQL goes away in the middle of a run: the run waits for it (doing none of the
next state's work meanwhile) and goes on when it is back; past its patience it stops cleanly and is
recovered later. Errors that waiting cannot fix fail at once.

The server is a private one (tests/_private_postgres.py), really stopped with ``pg_ctl stop -m fast``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import threading
import time

import dlt
import pytest

from runjournal import runner
from runjournal.journal import Journal, JournalError, JournalOutage, JournalSchemaError, JournalUnavailable, NewRun
from tests._cli_support import RUNJOURNAL, cli
from tests._private_postgres import private_pg  # noqa: F401 - a fixture
from tests._project_cli_support import rows, wait_for, write_project
from tests._support import duckdb_rows, path_of

pytestmark = pytest.mark.postgres

OUTAGE_S = 30
PASSWORD = "never-shown-pw"  # trust auth ignores it; the URL carries it as a real one would
RUN_PATH = ["created", "clean_folder", "sync", "finalize_pending", "extract", "normalize", "load", "store_trace",
            "done"]


class Lines(logging.Handler):
    """The engine's and the journal's log lines (logger dlt.runjournal), as the test saw them."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int, containing: str) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level and containing in r.getMessage()]


@pytest.fixture
def log_lines():
    logger = logging.getLogger("dlt.runjournal")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def journal_url(private_pg, request):  # noqa: F811 - a journal database of its own on the private server
    name = f"jnl_{request.node.name[:40].lower().replace('[', '_').replace(']', '')}_{int(time.time() * 1000) % 10**6}"
    url = private_pg.create_database(name)
    return url.replace("postgres@", f"postgres:{PASSWORD}@")


@pytest.fixture
def fast_heartbeat(monkeypatch):
    monkeypatch.setenv("RUNJOURNAL_HEARTBEAT_SECONDS", "1")


def _pipeline(tmp_path):
    return dlt.pipeline("outage", pipelines_dir=str(tmp_path / "pipelines"),
                        destination=dlt.destinations.duckdb(str(tmp_path / "outage.duckdb")), dataset_name="ds")


def _rows_that_stop_the_journal(server, ids, *, then=None):
    """A resource that stops the journal's server in the middle of its extract (``then`` runs after)."""

    @dlt.resource(name="items", table_name="items", write_disposition="append")
    def items():
        yield [{"id": i} for i in ids[: len(ids) // 2]]
        server.stop()
        if then is not None:
            then()
        yield [{"id": i} for i in ids[len(ids) // 2:]]

    return items()


def _ids_at_destination(tmp_path) -> collections.Counter:
    return collections.Counter(row[0] for row in duckdb_rows(str(tmp_path / "outage.duckdb"), "ds", "items"))


def test_a_30_s_outage_in_the_middle_of_a_run_is_waited_out(tmp_path, private_pg, journal_url, log_lines,
                                                            fast_heartbeat):
    back_at: list[float] = []

    def back_in_30_s():
        def start():
            time.sleep(OUTAGE_S)
            private_pg.start()
            back_at.append(time.time())
        threading.Thread(target=start, daemon=True).start()

    r = runner(_pipeline(tmp_path), journal=journal_url, journal_patience=180)
    started = time.monotonic()
    r.run(_rows_that_stop_the_journal(private_pg, list(range(1000)), then=back_in_30_s))
    took = time.monotonic() - started

    assert back_at and took >= OUTAGE_S, "the run went on without its journal"
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(r.last_run_id)
    assert (story.run.status, story.run.state) == ("done", "done")
    assert path_of(story) == RUN_PATH
    assert [t.seq for t in story.transitions] == list(range(1, len(RUN_PATH)))
    assert all(t.dest != "crashed" for t in story.transitions)
    assert [(a.number, a.outcome) for a in story.attempts] == [(1, "succeeded")]
    assert _ids_at_destination(tmp_path) == collections.Counter(range(1000))

    began = log_lines.at(logging.WARNING, "unreachable")
    ended = log_lines.at(logging.INFO, "reachable again after an outage of")
    assert len(began) == 1 and len(ended) == 1, [r.getMessage() for r in log_lines.records]
    assert PASSWORD not in began[0] + ended[0] and "***" in began[0]
    # normalize's work began once extract -> normalize was journaled, after the server was back
    messages = [r.getMessage() for r in log_lines.records]
    assert messages.index(ended[0]) < next(i for i, m in enumerate(messages) if "extract -> normalize" in m)


def test_an_outage_past_the_patience_stops_the_run_cleanly_and_it_is_recovered(
    tmp_path, private_pg, journal_url, log_lines, fast_heartbeat
):
    pipeline = _pipeline(tmp_path)
    r = runner(pipeline, journal=journal_url, journal_patience=3)
    started = time.monotonic()
    with pytest.raises(JournalOutage) as stopped:
        r.run(_rows_that_stop_the_journal(private_pg, list(range(500))))
    waited = time.monotonic() - started
    assert waited >= 3
    message = str(stopped.value)
    assert "unreachable for" in message and "patience of 3.0 s" in message and "***" in message
    assert PASSWORD not in message
    assert stopped.value.exit_code == 7
    [error] = [r.getMessage() for r in log_lines.records if r.levelno == logging.ERROR]
    assert "run stopped in extract, its work not begun" in error and PASSWORD not in error
    # nothing unjournaled was done: the extracted package was never normalized
    assert pipeline.list_extracted_load_packages() and not pipeline.list_normalized_load_packages()

    private_pg.start()
    stopped_run = r.last_run_id
    with Journal.open(journal_url) as jnl:
        assert (jnl.get_run(stopped_run).status, jnl.get_run(stopped_run).state) == ("running", "extract")
    # the same process's next run finds it stopped, journals it crashed and recovers it, then runs
    r.run([{"id": i} for i in range(500, 600)], table_name="items")

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(stopped_run)
    assert story.run.status == "recovered"
    crash = next(t for t in story.transitions if t.dest == "crashed")
    assert (crash.source, crash.details["reason"]) == ("extract", "stopped by a journal outage")
    assert [a.outcome for a in story.attempts] == ["crashed", "succeeded"]
    assert _ids_at_destination(tmp_path) == collections.Counter(range(600))


def test_errors_waiting_cannot_fix_fail_at_once(private_pg, journal_url, tmp_path):
    """Permission denied, a newer schema, a full disk: no waiting, even with a long patience."""
    import psycopg2

    with Journal.open(journal_url, patience=120) as jnl:
        run_id = jnl.start_run(NewRun(pipeline_name="p", host="h", pid=1, config={}))
    admin = psycopg2.connect(journal_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE ROLE reader LOGIN")
        cur.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    reader_url = journal_url.replace(f"postgres:{PASSWORD}@", f"reader:{PASSWORD}@")
    with Journal.open(reader_url, patience=120) as jnl:
        started = time.monotonic()
        with pytest.raises(JournalUnavailable, match="permission denied") as denied:
            jnl.beat(run_id)
        assert not isinstance(denied.value, JournalOutage) and time.monotonic() - started < 5

    with admin.cursor() as cur:
        cur.execute("UPDATE alembic_version SET version_num = '9999'")
    started = time.monotonic()
    with pytest.raises(JournalSchemaError, match="newer runjournal"):
        Journal.open(journal_url, patience=120)
    assert time.monotonic() - started < 5
    admin.close()

    sqlite_url = f"sqlite:///{tmp_path / 'full.sqlite'}"
    with Journal.open(sqlite_url, patience=120) as jnl:
        full_at = jnl.database._connected().conn.execute("PRAGMA page_count").fetchone()[0]
        jnl.database._connected().conn.execute(f"PRAGMA max_page_count = {full_at}")  # the disk is full now
        started = time.monotonic()
        with pytest.raises(JournalError, match="full"):
            jnl.start_run(NewRun(pipeline_name="p", host="h", pid=1, config={"big": "x" * 200_000}))
        assert time.monotonic() - started < 5


def test_a_heartbeat_gap_counts_only_when_the_host_reached_the_journal(journal_url):
    """Another host: a run silent longer than 3 beats is crashed only if its host wrote the journal meanwhile,
    or once the silence outlasts its journal patience (then it would have stopped by itself)."""
    from runjournal import _crashes
    from runjournal.journal import Transition

    now = time.time()

    def running(pipeline: str, silent_for: float, host: str = "far-host") -> str:
        run_id = jnl.start_run(NewRun(pipeline_name=pipeline, host=host, pid=7, config={
            "heartbeat_interval": 10.0, "journal_patience": 300.0}), at=now - silent_for)
        jnl.record_transition(run_id, Transition(1, 1, "created", "load", "start", now - silent_for))
        return run_id

    with Journal.open(journal_url) as jnl:
        waiting = running("waiting", 120)  # 2 min of silence: perhaps the journal was down for its host
        assert _crashes.detect(jnl) == []
        # longer than patience + 3 beats (its host silent too): it would have stopped by itself
        long_gone = running("long_gone", 400, host="gone-host")
        assert [r.id for r in _crashes.detect(jnl)] == [long_gone]
        assert jnl.get_story(long_gone).transitions[-1].details["reason"] == "heartbeat stale past patience"

        running("neighbour", 1)  # the same host reached the journal a second ago: the silence is the run's own
        assert [r.id for r in _crashes.detect(jnl)] == [waiting]
        details = jnl.get_story(waiting).transitions[-1].details
        assert details["reason"] == "heartbeat stale" and details["host_heard_from_s_ago"] < 60


PROJECT_SOURCE = '''
import os, pathlib, time
import dlt

HERE = pathlib.Path(__file__).parent

@dlt.resource(table_name="numbers", write_disposition="merge", primary_key="id")
def numbers():
    yield [{"id": i} for i in range(5)]
    (HERE / "marker_extract").write_text(str(os.getpid()))
    time.sleep(3)  # the test stops the journal's server meanwhile
    yield [{"id": i} for i in range(5, 10)]
'''

PROJECT_YML = '''
sources:
  numbers: {type: numbers_source.numbers}
destinations:
  warehouse: {type: duckdb, credentials: warehouse.duckdb}
pipelines:
  numbers_pipe: {source: numbers, destination: warehouse, dataset_name: nums}
'''


def test_runjournal_run_exits_7_when_the_outage_outlasts_the_patience(tmp_path, private_pg, journal_url):
    project = write_project(tmp_path / "project", PROJECT_YML)
    (project / "numbers_source.py").write_text(PROJECT_SOURCE)
    env = {"RUNJOURNAL__JOURNAL_PATIENCE": "2", "DLT_DATA_DIR": str(tmp_path / "dlt")}
    run = subprocess.Popen([str(RUNJOURNAL), "run", "numbers_pipe", "--project", str(project)],
                           env={**os.environ, "RUNJOURNAL_URL": journal_url, **env},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    wait_for(project / "marker_extract", timeout=120)
    private_pg.stop()
    out, err = run.communicate(timeout=120)
    private_pg.start()

    assert run.returncode == 7, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("runjournal: run ") and "stopped, its next state's work not begun" in last, err
    assert "patience of 2.0 s" in last and "***" in last and PASSWORD not in out + err
    assert "Traceback" not in err

    recovered = cli("recover", "--json", url=journal_url, cwd="/", **env)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    [outcome] = json.loads(recovered.stdout)["runs"]
    assert (outcome["stopped_in"], outcome["status"]) == ("extract", "recovered")
    assert rows(project) == list(range(10))


def test_the_patience_comes_from_the_argument_else_the_config_and_bad_values_are_named(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    pipeline = _pipeline(tmp_path)
    assert runner(pipeline, journal=url).journal.patience == 300.0
    monkeypatch.setenv("RUNJOURNAL__JOURNAL_PATIENCE", "45")
    assert runner(pipeline, journal=url).journal.patience == 45.0
    assert runner(pipeline, journal=url, journal_patience=0).journal.patience == 0.0
    with pytest.raises(ValueError, match=r"^journal_patience must be a number of seconds, 0 or more.*got -1"):
        runner(pipeline, journal=url, journal_patience=-1)
    monkeypatch.setenv("RUNJOURNAL__JOURNAL_PATIENCE", "-5")
    with pytest.raises(ValueError, match=r"runjournal.journal_patience \(RUNJOURNAL__JOURNAL_PATIENCE\) must be"):
        runner(pipeline, journal=url)

"""The destination's password appears nowhere the engine writes: journal bytes, shipped traces, log records.

Real PostgreSQL destinations on the local server (trust auth: any password is accepted, so the
secret below really is the password dlt connects with), real dlt pipelines with
``store_trace_info=True`` and ``store_load_info=True`` (traces and load info shipped to the same PostgreSQL), a real SQLite journal
(searched byte by byte, WAL included, before and after a checkpoint) and a real PostgreSQL
journal (dumped as text through SQL).

Every search is paired with a positive check that the place searched holds the scrubbed text
(``***`` where the secret was), so an empty or missing record cannot pass for a clean one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote

import dlt
import psycopg2
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from sqlalchemy.engine import make_url

from runjournal import runner
from runjournal.journal import Journal
from runjournal.journal._sql import bind_list
from tests._support import story

PG_HOST, PG_PORT, PG_DATABASE = "127.0.0.1", 5432, "test"
pytestmark = pytest.mark.postgres


def new_secret(special: bool = False) -> str:
    core = uuid.uuid4().hex[:12]
    return f'Pw"{core}\\x/y' if special else f"Pw{core}Zz9"


def forms(secret: str) -> list[bytes]:
    """The secret as it would appear raw, JSON-escaped and URL-encoded."""
    variants = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), json.dumps(json.dumps(secret))[3:-3]}
    return sorted(v.encode() for v in variants)


def strings_in(value) -> list[str]:
    """Every string a JSON reader gets out of ``value``: keys and values, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def leaks_in(secret: str, haystack: bytes | str, where: str) -> list[str]:
    """Where and in which form the secret shows up; every place is searched before a test fails."""
    data = haystack.encode() if isinstance(haystack, str) else haystack
    return [f"{where}: {form!r}" for form in forms(secret) if form in data]


# fixtures


@pytest.fixture
def pg_datasets(pg_database):
    """Unique dataset names in the `test` database; every schema handed out is dropped at the end.

    Depends on pg_database only for its skip/fail rule when the server is not there.
    """
    names: list[str] = []

    def new(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        names.extend([name, f"_trace_{name}"])
        return name

    yield new
    with psycopg2.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user="postgres") as conn:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    conn.close()


@pytest.fixture
def dlt_log(caplog, monkeypatch):
    """Records of logger "dlt" (and its children) at INFO; dlt's logger does not propagate to the root."""
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "INFO")
    logger = logging.getLogger("dlt")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="dlt")
    yield caplog
    logger.removeHandler(caplog.handler)


# what each run does


def run_success_and_failure(pipeline, journal, secret: str) -> tuple[str, str, Exception]:
    ok = runner(pipeline, store_trace_info=True, store_load_info=True, journal=journal)
    info = ok.run([{"id": 1}, {"id": 2}], table_name="items")
    assert info is not None and not info.has_failed_jobs

    @dlt.resource(name="items")
    def items():
        yield {"id": 3}
        raise RuntimeError(
            f"could not reach postgresql://postgres:{secret}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}; "
            f"the password {secret} was rejected"
        )

    failing = runner(pipeline, store_trace_info=True, store_load_info=True, journal=journal)
    with pytest.raises(PipelineStepFailed) as raised:
        failing.run(items)
    # the caller gets dlt's error as it is: the secret was really there to be scrubbed
    assert secret in str(raised.value)
    assert ok.last_run_id != failing.last_run_id
    return ok.last_run_id, failing.last_run_id, raised.value


def destination_trace_text(pipeline_name: str, dataset: str) -> str:
    table = f"{pipeline_name}_trace"
    with psycopg2.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user="postgres") as conn:
        with conn.cursor() as cur:
            cur.execute(f'SELECT row_to_json(t)::text FROM "_trace_{dataset}"."{table}" t')
            rows = [r[0] for r in cur.fetchall()]
    conn.close()
    assert len(rows) == 2, rows  # the success and the failure both arrived
    return "\n".join(rows)


def assert_scrubbed_failure_recorded(journal_url: str, run_id: str) -> None:
    st = story(journal_url, run_id)
    assert st.run.status == "failed"
    assert "***" in st.run.error_message and "could not reach postgresql://postgres:***@" in st.run.error_message
    (trace,) = st.traces
    assert trace.shipped_at is not None
    payload = json.loads(trace.payload)
    assert payload["outcome"] == "transient" and payload["failed_step"] == "extract"
    assert "the password *** was rejected" in trace.payload


def log_leaks(dlt_log, secret: str) -> list[str]:
    messages = [record.getMessage() for record in dlt_log.records]
    # the capture works: the runner's INFO lines about both runs are in it
    assert any("-> done" in m for m in messages), messages[:20]
    assert any("-> failed" in m for m in messages), messages[:20]
    return [
        *leaks_in(secret, "\n".join(messages), "log messages"),
        *leaks_in(secret, dlt_log.text, "formatted log records (with tracebacks)"),
    ]


def journal_file_bytes(journal_url: str) -> dict[str, bytes]:
    db = Path(make_url(journal_url).database)
    found = {}
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            found[path.name] = path.read_bytes()
    return found


def sql_dump(url: str, run_ids: list[str]) -> str:
    """Every journal row of these runs, as text."""
    lines = []
    params: dict = {}
    ids = bind_list(params, "id", run_ids)
    with Journal.open(url) as jnl, jnl._read() as session:
        for table, key in (("runs", "id"), ("attempts", "run_id"), ("transitions", "run_id"), ("traces", "run_id"),
                           ("load_info_outbox", "run_id")):
            rows = session.rows(f"SELECT * FROM {table} WHERE {key} IN {ids}", params)
            assert rows, f"no {table} rows for {run_ids}"
            lines.extend("\t".join(map(str, row.values())) for row in rows)
    return "\n".join(lines)


# the tests


def test_secret_in_connection_string_never_reaches_the_journal_file_traces_or_logs(
    journal_url, pg_datasets, dlt_log
):
    secret = new_secret()
    dataset = pg_datasets("sec")
    name = f"sec_{uuid.uuid4().hex[:8]}"
    credentials = f"postgresql://postgres:{secret}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
    pipeline = dlt.pipeline(name, destination=dlt.destinations.postgres(credentials=credentials), dataset_name=dataset)

    ok_run, failed_run, _ = run_success_and_failure(pipeline, journal_url, secret)

    assert story(journal_url, ok_run).run.status == "done"
    assert_scrubbed_failure_recorded(journal_url, failed_run)

    leaks: list[str] = []
    files = journal_file_bytes(journal_url)
    assert "journal.sqlite" in files and "journal.sqlite-wal" in files
    for file_name, data in files.items():
        leaks += leaks_in(secret, data, file_name)
    # and once the WAL is folded into the database file
    with sqlite3.connect(make_url(journal_url).database) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    files = journal_file_bytes(journal_url)
    assert b"could not reach postgresql://postgres:***@" in files["journal.sqlite"]
    for file_name, data in files.items():
        leaks += leaks_in(secret, data, f"{file_name} after checkpoint")
    leaks += leaks_in(secret, sql_dump(journal_url, [ok_run, failed_run]), "journal rows")

    shipped = destination_trace_text(name, dataset)
    assert "could not reach postgresql://postgres:***@" in shipped
    leaks += leaks_in(secret, shipped, "trace table at the destination")

    leaks += log_leaks(dlt_log, secret)
    assert not leaks, "secret found in:\n" + "\n".join(leaks)


@pytest.mark.parametrize("special", [False, True], ids=["plain", "quote-and-backslash"])
def test_secret_from_env_credentials_never_reaches_the_journal_traces_or_logs(
    journal_url, pg_datasets, dlt_log, monkeypatch, special
):
    secret = new_secret(special)
    dataset = pg_datasets("secenv")
    name = f"secenv_{uuid.uuid4().hex[:8]}"
    for key, value in (
        ("DATABASE", PG_DATABASE), ("USERNAME", "postgres"), ("PASSWORD", secret),
        ("HOST", PG_HOST), ("PORT", str(PG_PORT)),
    ):
        monkeypatch.setenv(f"DESTINATION__POSTGRES__CREDENTIALS__{key}", value)
    pipeline = dlt.pipeline(name, destination="postgres", dataset_name=dataset)

    ok_run, failed_run, _ = run_success_and_failure(pipeline, journal_url, secret)
    assert story(journal_url, ok_run).run.status == "done"
    st = story(journal_url, failed_run)
    assert st.run.status == "failed"
    assert "the password *** was rejected" in st.run.error_message
    assert "the password *** was rejected" in st.traces[0].payload

    leaks: list[str] = []
    for file_name, data in journal_file_bytes(journal_url).items():
        leaks += leaks_in(secret, data, file_name)
    with sqlite3.connect(make_url(journal_url).database) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    for file_name, data in journal_file_bytes(journal_url).items():
        leaks += leaks_in(secret, data, f"{file_name} after checkpoint")
    leaks += leaks_in(secret, sql_dump(journal_url, [ok_run, failed_run]), "journal rows")
    # what a reader of the journal gets after decoding the trace JSON
    for trace in story(journal_url, ok_run).traces + st.traces:
        leaks += leaks_in(secret, "\n".join(strings_in(json.loads(trace.payload))), "decoded trace payload")

    shipped = destination_trace_text(name, dataset)
    assert "the password *** was rejected" in shipped
    leaks += leaks_in(secret, shipped, "trace table at the destination")

    leaks += log_leaks(dlt_log, secret)
    assert not leaks, "secret found in:\n" + "\n".join(leaks)


def test_secret_never_reaches_a_postgresql_journal(pg_database, pg_datasets, dlt_log):
    secret = new_secret()
    dataset = pg_datasets("secpg")
    name = f"secpg_{uuid.uuid4().hex[:8]}"
    credentials = f"postgresql://postgres:{secret}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
    pipeline = dlt.pipeline(name, destination=dlt.destinations.postgres(credentials=credentials), dataset_name=dataset)

    ok_run, failed_run, _ = run_success_and_failure(pipeline, pg_database, secret)

    assert_scrubbed_failure_recorded(pg_database, failed_run)
    dump = sql_dump(pg_database, [ok_run, failed_run])
    assert "could not reach postgresql://postgres:***@" in dump
    leaks = leaks_in(secret, dump, "PostgreSQL journal rows")
    # the whole journal database as PostgreSQL renders it, JSON columns included
    with psycopg2.connect(pg_database) as conn, conn.cursor() as cur:
        chunks = []
        for table in ("runs", "attempts", "transitions", "traces"):
            cur.execute(f"SELECT row_to_json(t)::text FROM {table} t")
            chunks.extend(r[0] for r in cur.fetchall())
    conn.close()
    assert len(chunks) > 10
    leaks += leaks_in(secret, "\n".join(chunks), "PostgreSQL journal tables")

    shipped = destination_trace_text(name, dataset)
    leaks += leaks_in(secret, shipped, "trace table at the destination")
    leaks += log_leaks(dlt_log, secret)
    assert not leaks, "secret found in:\n" + "\n".join(leaks)

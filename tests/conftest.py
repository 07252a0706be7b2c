"""Shared fixtures: every test gets its own dlt data dir, working directory and journal file.

PostgreSQL tests use RUNJOURNAL_TEST_PG_URL (default: the local server's `postgres` database).
Without a server they are skipped with the reason; with RUNJOURNAL_REQUIRE_POSTGRES=1 (set by
.ci/run) a missing server fails them instead.
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_ADMIN_URL = os.environ.get("RUNJOURNAL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    data_dir = tmp_path / "dlt"
    monkeypatch.setenv("DLT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.delenv("RUNJOURNAL_URL", raising=False)
    # duckdb files of pipelines without explicit credentials land in the working directory
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def journal_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'journal.sqlite'}"


def _pg_admin_connection():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).strip()}"
        if os.environ.get("RUNJOURNAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (RUNJOURNAL_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this test session, dropped at the end; yields its URL."""
    from sqlalchemy.engine import make_url

    admin = _pg_admin_connection()
    name = f"runjournal_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    url = make_url(PG_ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    admin = _pg_admin_connection()  # a new one: a test may have restarted the server meanwhile
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.fixture
def fresh_pg_database(pg_database) -> str:
    """A PostgreSQL database of this test's own, empty, dropped after it (the session's is shared by
    every test, so a test that prunes or counts across the whole journal needs its own)."""
    from sqlalchemy.engine import make_url

    name = f"runjournal_fresh_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_connection()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    yield make_url(pg_database).set(database=name).render_as_string(hide_password=False)
    admin = _pg_admin_connection()
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.fixture
def select_only_reader():
    """``reader_for(database_url)``: the URL of a new login role that may only SELECT that database's
    tables as they are now (an auditor's); the roles are dropped after the test."""
    import psycopg2
    from sqlalchemy.engine import make_url

    made: list[tuple[str, str]] = []

    def reader_for(database_url: str) -> str:
        url, role = make_url(database_url), f"rj_reader_{uuid.uuid4().hex[:8]}"
        conn = psycopg2.connect(database_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'reader-pw'")
            cur.execute(f'GRANT CONNECT ON DATABASE "{url.database}" TO "{role}"')
            cur.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
            cur.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        conn.close()
        made.append((database_url, role))
        return url.set(username=role, password="reader-pw").render_as_string(hide_password=False)

    yield reader_for
    for database_url, role in made:
        try:  # its grants first, where the database still exists
            conn = psycopg2.connect(database_url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP OWNED BY "{role}"')
            conn.close()
        except psycopg2.OperationalError:
            pass  # the database is gone, and its grants with it
        admin = _pg_admin_connection()
        with admin.cursor() as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


@pytest.fixture
def pg_journal_url(pg_database) -> str:
    return pg_database

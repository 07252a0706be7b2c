"""`runjournal serve` over a PostgreSQL journal with a SELECT-only role: every page, the JSON and the
metrics answer, a dead run is shown crashed, and the role could not have written anything."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _pg_admin_connection
from tests._serve_support import fleet, get, served

pytestmark = pytest.mark.postgres


@pytest.fixture
def journal_and_reader():
    """A database of its own holding a journal, and the URL of a role that may only SELECT from it."""
    admin = _pg_admin_connection()
    suffix = uuid.uuid4().hex[:8]
    database, role = f"runjournal_serve_{suffix}", f"rj_reader_{suffix}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
        cur.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'reader-pw'")
    writer_url = make_url("postgresql://postgres@127.0.0.1:5432/x").set(database=database)
    writer = writer_url.render_as_string(hide_password=False)
    runs = fleet(writer)
    import psycopg2

    conn = psycopg2.connect(writer)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
        cur.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        cur.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    conn.close()
    reader = writer_url.set(username=role, password="reader-pw").render_as_string(hide_password=False)
    yield runs, reader
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
        cur.execute(f'DROP DATABASE IF EXISTS "{database}"')
        cur.execute(f'DROP ROLE IF EXISTS "{role}"')
    admin.close()


def test_every_page_works_with_a_select_only_role(journal_and_reader):
    runs, reader = journal_and_reader
    import psycopg2

    with psycopg2.connect(reader) as conn, conn.cursor() as cur:  # the role really is read-only
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("UPDATE runs SET status = 'crashed'")
    with served(reader) as base:
        overview = get(base + "/")
        assert overview.status == 200
        order = re.findall(r'data-pipeline="([^"]*)"', overview.body)
        assert order[:1] == ["payments"] and "heartbeat stale" in overview.body
        assert runs.crashed[:12] in get(base + "/runs?status=crashed").body
        crashed_page = get(base + f"/runs/{runs.crashed}")
        assert crashed_page.status == 200 and "died in sync" in crashed_page.body
        assert get(base + f"/runs/{runs.failed}").status == 200
        assert get(base + "/api/runs").status == 200
        metrics = get(base + "/metrics")
        assert metrics.status == 200
        assert 'runjournal_crashed_runs{pipeline="payments"} 1.0' in metrics.body
        assert "reader-pw" not in overview.body + metrics.body + crashed_page.body

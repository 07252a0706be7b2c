"""`runjournal serve` over a PostgreSQL journal with a SELECT-only role: every page, the JSON and the
metrics answer, a dead run is shown crashed, and the role could not have written anything."""

from __future__ import annotations

import re

import pytest

from tests._serve_support import fleet, get, served

pytestmark = pytest.mark.postgres


@pytest.fixture
def journal_and_reader(fresh_pg_database, select_only_reader):
    """A database of its own holding a journal, and the URL of a role that may only SELECT from it."""
    runs = fleet(fresh_pg_database)
    return runs, select_only_reader(fresh_pg_database)


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

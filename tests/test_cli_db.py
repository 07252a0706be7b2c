"""`runjournal db path | check | upgrade`: where the journal is and where its schema stands."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from sqlalchemy.engine import make_url

from runjournal import migrations
from runjournal.journal import default_url

from ._cli_support import Filler, assert_no_traceback, cli, cli_json, create_empty

HEAD = migrations.head()


def test_path_prints_the_url_password_hidden(journal_url):
    assert cli("db", "path", url=journal_url).stdout.strip() == journal_url
    secret = "postgresql+psycopg2://user:s3cr3t-pw@db.example:5432/runs"
    result = cli("db", "path", url=secret)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgresql+psycopg2://user:***@db.example:5432/runs"
    assert "s3cr3t" not in result.stdout + result.stderr


def test_path_defaults_to_dlt_data_dir(isolated_env):
    result = cli("db", "path", RUNJOURNAL_URL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == default_url() == f"sqlite:///{isolated_env / 'dlt' / 'runjournal.sqlite'}"
    override = cli("--journal", "sqlite:///x.sqlite", "db", "path")
    assert override.stdout.strip() == "sqlite:///x.sqlite"


def test_check_upgrade_lifecycle(journal_url, tmp_path):
    missing = cli("db", "check", url=journal_url)
    assert missing.returncode == 3
    assert "revision: none" in missing.stdout and "schema:   missing" in missing.stdout
    assert "runjournal db upgrade" in missing.stderr
    assert not (tmp_path / "journal.sqlite").exists()  # checking does not create it

    upgraded = cli("db", "upgrade", url=journal_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded from revision none to {HEAD}" in upgraded.stdout
    assert cli_json("runs", url=journal_url) == {"runs": []}

    again = cli("db", "upgrade", url=journal_url)
    assert again.returncode == 0 and f"already at revision {HEAD}" in again.stdout

    current = cli("db", "check", url=journal_url)
    assert current.returncode == 0, current.stderr
    assert f"revision: {HEAD} (this runjournal: {HEAD})" in current.stdout
    assert "schema:   current" in current.stdout
    assert current.stderr == ""


def test_check_behind(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # an old journal: a database without the current schema
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    url = f"sqlite:///{path}"
    result = cli("db", "check", url=url)
    assert result.returncode == 3
    assert "schema:   behind" in result.stdout
    assert "run `runjournal db upgrade`" in result.stderr
    runs = cli("runs", url=url)  # reads refuse to migrate
    assert runs.returncode == 3 and "runjournal db upgrade" in runs.stderr
    assert cli("db", "upgrade", url=url).returncode == 0
    assert cli("db", "check", url=url).returncode == 0


def test_check_and_upgrade_refuse_a_newer_journal(journal_url, tmp_path):
    create_empty(journal_url)
    with sqlite3.connect(tmp_path / "journal.sqlite") as conn:
        conn.execute("INSERT INTO alembic_version VALUES ('9999')")
    check = cli("db", "check", url=journal_url)
    assert check.returncode == 3
    assert "schema:   newer" in check.stdout and "9999" in check.stdout
    assert "newer runjournal" in check.stderr
    upgrade = cli("db", "upgrade", url=journal_url)
    assert upgrade.returncode == 3
    assert "9999" in upgrade.stderr and "newer runjournal" in upgrade.stderr
    assert_no_traceback(upgrade)
    with sqlite3.connect(tmp_path / "journal.sqlite") as conn:
        assert sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version")) == [HEAD, "9999"]


@pytest.mark.postgres
def test_postgres_journal(pg_journal_url):
    # The driver is named: the bare postgresql:// form needs psycopg 3 under SQLAlchemy 2.1 (journal issue).
    url = make_url(pg_journal_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    pipeline = f"cli_pg_{uuid.uuid4().hex[:8]}"
    filler = Filler(url)
    run_id = filler.failed(pipeline)
    filler.close()
    check = cli("db", "check", url=url)
    assert check.returncode == 0 and "schema:   current" in check.stdout, check.stderr
    assert [r["id"] for r in cli_json("runs", "--pipeline", pipeline, url=url)["runs"]] == [run_id]
    story = cli_json("show", run_id[:16], url=url)
    assert story["run"]["pipeline"] == pipeline and len(story["transitions"]) == 9

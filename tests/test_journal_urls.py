"""SQLite journal URLs, read without SQLAlchemy: the file each names, and the forms refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runjournal.journal import Journal, NewRun, redacted
from runjournal.journal._urls import URLError, sqlite_path


def test_sqlite_urls_name_files_as_sqlalchemy_reads_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sqlite_path("sqlite:///runs.sqlite") == "runs.sqlite"  # relative to the working directory
    assert sqlite_path("sqlite:////var/lib/runs.sqlite") == "/var/lib/runs.sqlite"
    assert sqlite_path("sqlite+pysqlite:///a%20b.sqlite") == "a b.sqlite"
    assert sqlite_path("sqlite:///~/runs.sqlite") == str(tmp_path / "runs.sqlite")
    assert sqlite_path("postgresql://u:pw@host/db") is None


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///runs.sqlite?mode=ro", "sqlite+aiosqlite:///runs.sqlite"]
)
def test_sqlite_urls_without_a_file_for_sqlite3_are_refused(url):
    with pytest.raises(URLError):
        Journal.open(url)


def test_a_relative_sqlite_url_is_opened_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Journal.open("sqlite:///nested/runs.sqlite") as jnl:
        jnl.start_run(NewRun(pipeline_name="p", host="h", pid=1, config={}))
        assert jnl.url == "sqlite:///nested/runs.sqlite"
    assert (tmp_path / "nested" / "runs.sqlite").is_file()


def test_showing_an_sqlite_url_loads_no_sqlalchemy():
    code = "import sys; from runjournal import journal; journal.redacted('sqlite:///x.sqlite'); print('sqlalchemy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert done.stdout.strip() == "False"
    assert redacted("postgresql://u:S3cret@h/db") == "postgresql://u:***@h/db"

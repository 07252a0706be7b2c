"""The root command: version, help, and how journal errors become exit codes on every command."""

from __future__ import annotations

import sqlite3

import pytest

from runjournal import __version__

from ._cli_support import Filler, assert_no_traceback, cli, create_empty

UNREACHABLE = "postgresql://u:pw@127.0.0.1:1/x"


def test_version():
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"runjournal {__version__}\n"


def test_help_documents_exit_codes():
    result = cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for expected in ("runs", "show", "graph", "db", "--journal", "Exit codes: 0 success", "1 a run failed", "4 `run`: the run failed on a transient error",
                     "5 `run`: the run was interrupted", "6 another run holds the pipeline's lease",
                     "2 usage or configuration error", "3 journal unreachable or incompatible"):
        assert expected in text


def test_no_arguments_shows_usage():
    result = cli()
    assert result.returncode == 2
    assert "Usage" in result.stdout + result.stderr


@pytest.fixture
def newer_journal(journal_url, tmp_path):
    filler = Filler(journal_url)
    run_id = filler.succeeded()
    filler.close()
    with sqlite3.connect(tmp_path / "journal.sqlite") as conn:
        conn.execute("INSERT INTO alembic_version VALUES ('9999')")
    return run_id


@pytest.mark.parametrize("args", [("runs",), ("show", "RUN", "--json")])
def test_newer_schema_exits_3_with_one_line(journal_url, newer_journal, args):
    args = tuple(newer_journal if a == "RUN" else a for a in args)
    result = cli(*args, url=journal_url)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "9999" in result.stderr and "newer runjournal" in result.stderr
    assert_no_traceback(result)


# The bare postgresql:// form currently fails before connecting (SQLAlchemy 2.1 maps it to psycopg 3,
# which is not installed): also exit 3. Naming psycopg2 reaches the (refused) connection itself.
PSYCOPG2 = UNREACHABLE.replace("postgresql:", "postgresql+psycopg2:")


@pytest.mark.parametrize(
    "url, args",
    [
        (UNREACHABLE, ("runs",)),
        (UNREACHABLE, ("show", "abc")),
        (UNREACHABLE, ("db", "check")),
        (UNREACHABLE, ("db", "upgrade")),
        (PSYCOPG2, ("runs", "--json")),
        (PSYCOPG2, ("db", "upgrade")),
    ],
)
def test_unreachable_journal_exits_3_without_traceback_or_password(url, args):
    result = cli(*args, url=url)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("runjournal: journal postgresql")
    assert "unreachable" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "u:***@127.0.0.1:1/x" in result.stderr
    assert ":pw@" not in result.stdout + result.stderr
    assert_no_traceback(result)


def test_malformed_url_is_a_configuration_error():
    for url in ("not a url", "nosuchdialect://x/y"):
        result = cli("runs", url=url)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("runjournal: ")
        assert_no_traceback(result)


def test_errors_go_to_stderr_output_to_stdout(journal_url):
    create_empty(journal_url)
    assert cli("show", "nope", url=journal_url).stdout == ""
    assert cli("--version").stderr == ""

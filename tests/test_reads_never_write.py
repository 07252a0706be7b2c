"""Reads never write: `runs`, `show`, `schema-changes` and `db check` work with a SELECT-only
PostgreSQL role and with an SQLite journal on a read-only mount, change nothing, and still show a
run whose process is gone as crashed, with the evidence, before anyone has journaled the crash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest

from runjournal.journal import Journal, JournalUnavailable, NewRun, open_existing
from tests._cli_support import Filler, cli

READ_COMMANDS = (["runs"], ["runs", "--json"], ["runs", "--status", "crashed", "--json"], ["schema-changes"],
                 ["db", "check"])


def _fill(url: str) -> tuple[str, str]:
    """A finished run, and a run the journal calls running whose heartbeat stopped an hour ago."""
    filler = Filler(url)
    done = filler.succeeded("orders")
    filler.close()
    with Journal.open(url) as jnl:
        dead = jnl.start_run(NewRun(pipeline_name="orders", host="gone-host", pid=4242,
                                    config={"heartbeat_interval": 1.0}), at=time.time() - 3600)
    return done, dead


def _check_reads(url: str, done: str, dead: str) -> None:
    for args in READ_COMMANDS + (["show", dead], ["show", dead, "--json"], ["show", done]):
        result = cli(*args, url=url)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
    listed = json.loads(cli("runs", "--json", url=url).stdout)["runs"]
    seen = {run["id"]: run for run in listed}
    assert seen[dead]["status"] == "crashed"
    assert seen[dead]["presumed_crash"]["reason"] == "heartbeat stale"
    assert seen[dead]["presumed_crash"]["host"] == "gone-host"
    assert seen[done]["status"] == "done" and seen[done]["presumed_crash"] is None
    only_crashed = json.loads(cli("runs", "--status", "crashed", "--json", url=url).stdout)["runs"]
    assert [run["id"] for run in only_crashed] == [dead]
    assert json.loads(cli("runs", "--status", "running", "--json", url=url).stdout)["runs"] == []
    shown = cli("show", dead, url=url).stdout
    assert "crashed" in shown and "heartbeat stale" in shown and "not journaled yet" in shown


def _read_only_mount(source: Path, target: Path) -> None:
    target.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"a read-only bind mount needs root and mount(8): {exc}")
    subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True, capture_output=True)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("writer_open", [True, False], ids=["writer-open", "closed-cleanly"])
def test_sqlite_journal_on_a_read_only_mount(tmp_path, writer_open):
    data = tmp_path / "data"
    data.mkdir()
    source_url = f"sqlite:///{data / 'journal.sqlite'}"
    done, dead = _fill(source_url)
    writer = None
    if writer_open:  # a live journal: its latest commits are in the write-ahead log, not yet in the file
        writer = Journal.open(source_url)
        writer.beat(done)
        assert (data / "journal.sqlite-wal").stat().st_size > 0
    mounted = tmp_path / "ro"
    _read_only_mount(data, mounted)
    try:
        before = _digest(data)
        _check_reads(f"sqlite:///{mounted / 'journal.sqlite'}", done, dead)
        assert _digest(data) == before  # not a byte changed, and no file added
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
        if writer is not None:
            writer.close()
    with Journal.open(source_url) as jnl:
        assert jnl.get_run(dead).status == "running"  # the crash is for writers to journal


def test_sqlite_read_only_journal_refuses_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    _, dead = _fill(url)
    jnl = open_existing(url)
    with jnl, pytest.raises(JournalUnavailable, match="readonly|read-only"):
        jnl.mark_crashed(dead, expected_state="created", details={"reason": "test"})


@pytest.mark.postgres
def test_postgres_journal_with_a_select_only_role(fresh_pg_database, select_only_reader):
    import psycopg2

    done, dead = _fill(fresh_pg_database)
    url = select_only_reader(fresh_pg_database)
    admin = psycopg2.connect(fresh_pg_database)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT status, state, heartbeat_at FROM runs ORDER BY id")
        before = cur.fetchall()
        cur.execute("SELECT count(*) FROM transitions")
        transitions_before = cur.fetchone()
    _check_reads(url, done, dead)
    with admin.cursor() as cur:
        cur.execute("SELECT status, state, heartbeat_at FROM runs ORDER BY id")
        assert cur.fetchall() == before
        cur.execute("SELECT count(*) FROM transitions")
        assert cur.fetchone() == transitions_before
    # and the role really cannot write: a writer's command is refused by the server, clearly
    recovered = cli("recover", url=url)
    assert recovered.returncode == 3, recovered.stderr
    assert "permission denied" in recovered.stderr and "Traceback" not in recovered.stderr
    assert "reader-pw" not in recovered.stderr
    admin.close()

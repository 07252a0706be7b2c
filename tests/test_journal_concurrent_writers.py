"""Many processes write one SQLite journal at once, starting from a file that does not exist yet.

The processes are real (``sys.executable`` running a small script), released together once all
of them have imported everything, so that their migrations and their writes really overlap.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import text

import migrations
from journal import Journal

WRITERS = 4
TRANSITIONS = 200

# Each child: import, say "ready", wait for "go" on stdin, then work; prints one JSON line.
WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from journal import AttemptEnd, AttemptStart, Journal, NewRun, RunChange, Transition

    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()
    with Journal.open(url) as jnl:
        run_id = jnl.start_run(NewRun(pipeline_name=name, host="h", pid=os.getpid(), config={"writer": name}))
        jnl.record_transition(
            run_id,
            Transition(seq=1, attempt=1, source="created", dest="s1", trigger="start", at=time.time()),
            attempt_start=AttemptStart(number=1, phase="run", started_at=time.time()),
        )
        for seq in range(2, count):
            jnl.record_transition(
                run_id,
                Transition(seq=seq, attempt=1, source=f"s{seq - 1}", dest=f"s{seq}", trigger="advance",
                           at=time.time(), details={"writer": name, "seq": seq}),
            )
            if seq % 20 == 0:
                jnl.beat(run_id)
        jnl.record_transition(
            run_id,
            Transition(seq=count, attempt=1, source=f"s{count - 1}", dest="done", trigger="advance", at=time.time()),
            change=RunChange(status="done", finished=True),
            attempt_end=AttemptEnd(number=1, finished_at=time.time(), outcome="succeeded", load_ids=(name,)),
        )
        jnl.add_trace(run_id, 1, name + "_trace", json.dumps({"writer": name}))
    print(json.dumps({"run_id": run_id}), flush=True)
    """
)

# Only opens the journal (racing the writers' migration) and reads from it.
OPENER = textwrap.dedent(
    """
    import json, sys
    from journal import Journal

    url = sys.argv[1]
    print("ready", flush=True)
    sys.stdin.readline()
    with Journal.open(url) as jnl:
        listed = jnl.list_runs(limit=None)
    print(json.dumps({"listed": len(listed)}), flush=True)
    """
)


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    return env


def run_together(scripts: list[list[str]], cwd: Path, timeout: float = 60) -> list[tuple[int, str, str]]:
    """Start every script, wait until each has said "ready", release them all at once, collect."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=_child_env(),
        )
        for args in scripts
    ]
    try:
        for proc in procs:
            line = proc.stdout.readline()
            assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_four_writers_and_an_opener_share_a_brand_new_journal(tmp_path):
    db = tmp_path / "shared" / "journal.sqlite"
    url = f"sqlite:///{db}"
    assert not db.exists()
    names = [f"writer_{i}" for i in range(WRITERS)]

    results = run_together(
        [[WRITER, url, name, str(TRANSITIONS)] for name in names] + [[OPENER, url]],
        cwd=tmp_path,
    )

    for returncode, out, err in results:
        assert "database is locked" not in out + err
        assert returncode == 0, err
    run_ids = {name: json.loads(out.strip().splitlines()[-1])["run_id"] for name, (_, out, _) in zip(names, results)}
    assert json.loads(results[-1][1].strip().splitlines()[-1])["listed"] <= WRITERS

    with Journal.open(url) as jnl:
        assert {r.pipeline_name for r in jnl.list_runs(limit=None)} == set(names)
        for name, run_id in run_ids.items():
            story = jnl.get_story(run_id)
            assert story.run.pipeline_name == name
            assert (story.run.status, story.run.state) == ("done", "done")
            assert story.run.config == {"writer": name}
            assert [t.seq for t in story.transitions] == list(range(1, TRANSITIONS + 1))
            # each transition starts where the previous one ended, and time never runs backwards
            assert all(a.dest == b.source for a, b in zip(story.transitions, story.transitions[1:]))
            assert all(a.at <= b.at for a, b in zip(story.transitions, story.transitions[1:]))
            assert all(t.details == {"writer": name, "seq": t.seq} for t in story.transitions[1:-1])
            assert [(a.number, a.outcome, tuple(a.load_ids)) for a in story.attempts] == [(1, "succeeded", (name,))]
            assert [json.loads(t.payload) for t in story.traces] == [{"writer": name}]

        with jnl.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
            assert conn.execute(text("SELECT count(*) FROM transitions")).scalar() == WRITERS * TRANSITIONS
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == WRITERS
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
                migrations.head()
            ]

    # and what a plain sqlite3 client sees once the journal is closed
    plain = sqlite3.connect(db)
    try:
        assert plain.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        plain.close()


def test_simultaneous_first_opens_migrate_once(tmp_path):
    """Six processes open the same missing file at the same instant: one migrates, none fails."""
    db = tmp_path / "race.sqlite"
    url = f"sqlite:///{db}"
    results = run_together([[OPENER, url] for _ in range(6)], cwd=tmp_path)
    for returncode, out, err in results:
        assert "database is locked" not in out + err
        assert returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"listed": 0}

    plain = sqlite3.connect(db)
    try:
        assert plain.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.head(),)]
        tables = {row[0] for row in plain.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "attempts", "transitions", "traces", "alembic_version"} <= tables
        assert plain.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        plain.close()

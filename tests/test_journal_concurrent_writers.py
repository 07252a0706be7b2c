"""Many processes write one SQLite journal at once; many processes create one journal at once.

The processes are real (``sys.executable`` running a small script, or multiprocessing with
"spawn"), released together once all of them have imported everything, so that their
migrations and their writes really overlap.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from runjournal import journal
from runjournal import migrations
from runjournal.journal import Journal
from runjournal.journal._sql import scalar

WRITERS = 4
TRANSITIONS = 200

# Each child: import, say "ready", wait for "go" on stdin, then work; prints one JSON line.
WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from runjournal.journal import AttemptEnd, AttemptStart, Journal, NewRun, RunChange, Transition

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

# Opens each journal it is given (creating those that do not exist yet) and reads from it.
OPENER = textwrap.dedent(
    """
    import json, sys
    from runjournal.journal import Journal

    print("ready", flush=True)
    sys.stdin.readline()
    listed = []
    for url in sys.argv[1:]:
        with Journal.open(url) as jnl:
            listed.append(len(jnl.list_runs(limit=None)))
    print(json.dumps({"listed": listed}), flush=True)
    """
)


def _child_env() -> dict:
    """The environment, with the journal this process imported first on the children's path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(journal.__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p
    )
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


def last_json(out: str):
    return json.loads(out.strip().splitlines()[-1])


def test_four_writers_share_one_journal_while_another_is_created(tmp_path):
    db = tmp_path / "shared" / "journal.sqlite"
    url = f"sqlite:///{db}"
    Journal.open(url).close()
    new_db = tmp_path / "other" / "new.sqlite"
    names = [f"writer_{i}" for i in range(WRITERS)]

    results = run_together(
        [[WRITER, url, name, str(TRANSITIONS)] for name in names] + [[OPENER, f"sqlite:///{new_db}", url]],
        cwd=tmp_path,
    )

    for returncode, out, err in results:
        assert "database is locked" not in out + err
        assert returncode == 0, err
    run_ids = {name: last_json(out)["run_id"] for name, (_, out, _) in zip(names, results)}
    new_listed, shared_listed = last_json(results[-1][1])["listed"]
    assert new_listed == 0 and 0 <= shared_listed <= WRITERS

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

        with jnl._read() as session:  # the journal's own connection, with its own settings
            assert scalar(session, "PRAGMA journal_mode") == "wal"
            assert scalar(session, "PRAGMA synchronous") == 2  # FULL
            assert scalar(session, "PRAGMA foreign_keys") == 1
            assert scalar(session, "PRAGMA busy_timeout") == 60_000
            assert scalar(session, "PRAGMA integrity_check") == "ok"
            assert session.rows("PRAGMA foreign_key_check") == []
            assert scalar(session, "SELECT count(*) FROM transitions") == WRITERS * TRANSITIONS
            assert scalar(session, "SELECT count(*) FROM runs") == WRITERS
            assert session.rows("SELECT version_num FROM alembic_version") == [{"version_num": migrations.head()}]

    # what a plain sqlite3 client sees once every journal is closed
    for path in (db, new_db):
        plain = sqlite3.connect(path)
        try:
            assert plain.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert plain.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.head(),)]
        finally:
            plain.close()


# The migration race, many times over: every round, RACERS processes open the same missing file.
RACERS = 4
ROUNDS = 30


def _race_opener(barrier, directory: str, failed, queue) -> None:
    from runjournal.journal import Journal

    errors = []
    for round_no in range(ROUNDS):
        barrier.wait(timeout=60)
        started = time.monotonic()
        try:
            with Journal.open(f"sqlite:///{directory}/round_{round_no}.sqlite") as jnl:
                jnl.list_runs()
        except Exception as exc:  # reported to the parent, which fails the test
            errors.append(
                f"round {round_no}: {type(exc).__name__} after {time.monotonic() - started:.3f}s: {exc}"
            )
            failed.value = 1
        barrier.wait(timeout=60)
        if failed.value:
            break
    queue.put((round_no + 1, errors))


def test_simultaneous_first_opens_of_a_new_journal_never_fail(tmp_path):
    """Creating a journal is safe when several processes do it at the same instant.

    Each round RACERS processes (multiprocessing, "spawn") pass a barrier together and
    ``Journal.open`` the same missing file; one migrates, the others wait and find it current.
    The SQLite busy timeout is 60 s, so nothing may fail with "database is locked".
    A race is probabilistic (a few percent of rounds hit it on a quiet machine);
    test_first_open_of_a_new_file_waits_for_another_process_holding_the_write_lock below
    sets up the losing side of it deterministically.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier, failed, queue = ctx.Barrier(RACERS), ctx.Value("i", 0), ctx.Queue()
    procs = [ctx.Process(target=_race_opener, args=(barrier, str(tmp_path), failed, queue)) for _ in range(RACERS)]
    for proc in procs:
        proc.start()
    try:
        reports = [queue.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs)
    errors = [error for _, process_errors in reports for error in process_errors]
    rounds = max(done for done, _ in reports)
    assert errors == [], f"within the first {rounds} of {ROUNDS} rounds: " + "; ".join(errors)
    assert rounds == ROUNDS

    for round_no in range(ROUNDS):
        plain = sqlite3.connect(tmp_path / f"round_{round_no}.sqlite")
        try:
            assert plain.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.head(),)]
            tables = {row[0] for row in plain.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert {"runs", "attempts", "transitions", "traces", "alembic_version"} <= tables
            assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            plain.close()


# The same lock, held on purpose: a second client must wait for it (busy timeout 60 s), never fail at once.
LOCK_HELD_S = 1.5

TIMED_OPEN_AND_WRITE = textwrap.dedent(
    """
    import sys, time
    from runjournal.journal import Journal, NewRun

    started = time.monotonic()
    with Journal.open(sys.argv[1]) as jnl:
        jnl.start_run(NewRun(pipeline_name="waiter", host="h", pid=1, config={}))
    print(round(time.monotonic() - started, 3), flush=True)
    """
)


def open_and_write_while_locked(path: Path, cwd: Path) -> tuple[int, str, str, float]:
    """Hold SQLite's write lock on ``path`` from this process while a child opens the journal and writes."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        child = subprocess.Popen(
            [sys.executable, "-c", TIMED_OPEN_AND_WRITE, f"sqlite:///{path}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=_child_env(),
        )
        released_at = time.monotonic() + LOCK_HELD_S
        while time.monotonic() < released_at and child.poll() is None:
            time.sleep(0.05)
        holder.execute("COMMIT")
    finally:
        holder.close()
    out, err = child.communicate(timeout=60)
    return child.returncode, out, err, released_at


def test_a_writer_waits_for_another_process_holding_the_write_lock(tmp_path):
    db = tmp_path / "busy.sqlite"
    Journal.open(f"sqlite:///{db}").close()
    returncode, out, err, _ = open_and_write_while_locked(db, tmp_path)
    assert "database is locked" not in out + err
    assert returncode == 0, err
    with Journal.open(f"sqlite:///{db}") as jnl:
        assert [r.pipeline_name for r in jnl.list_runs()] == ["waiter"]


def test_first_open_of_a_new_file_waits_for_another_process_holding_the_write_lock(tmp_path):
    """The deterministic form of the migration race above.

    The file exists but is not yet in WAL mode and another process holds its write lock (as a
    process creating the journal does, for an instant). The journal must wait for the lock, as
    it does for writes (busy timeout 60 s), and then open and write.
    """
    db = tmp_path / "new.sqlite"
    sqlite3.connect(db).close()  # an empty database file, as the first opener leaves it for an instant
    returncode, out, err, _ = open_and_write_while_locked(db, tmp_path)
    assert "database is locked" not in out + err, err.strip().splitlines()[-1]
    assert returncode == 0, err
    with Journal.open(f"sqlite:///{db}") as jnl:
        assert [r.pipeline_name for r in jnl.list_runs()] == ["waiter"]

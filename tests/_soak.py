"""The chaos soak's worlds and its invariants (tests/test_chaos_soak.py drives them).

A world is one pipeline with its own working folder, journal (SQLite or the private PostgreSQL) and
destination (a duckdb file or a dataset in the private PostgreSQL), loaded with one write disposition.
Its runs are tests/crash_child.py processes, killed with SIGKILL at random moments.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from runjournal.journal import Journal

from . import crash_child as cc
from ._cli_support import cli

ROWS_PER_ROUND = 40
PASSWORD = "soak-secret-pw"  # trust auth ignores it; it must show up nowhere


@dataclass
class Figures:
    rounds: int = 0
    kills: int = 0
    recoveries_cli: int = 0
    recoveries_next_run: int = 0
    recovery_kills: int = 0
    restarts: int = 0
    runs: int = 0
    attempts: int = 0
    append_duplicates: int = 0
    trace_duplicates: int = 0  # a trace row twice in the one package that carried it (dlt re-ran its job)

    def line(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in vars(self).items())


@dataclass
class World:
    name: str
    base: Path
    journal_url: str
    destination: str  # duckdb | postgres
    disposition: str
    pg_url: Optional[str] = None  # the destination database, for postgres
    dataset: str = cc.DATASET
    round_ids: dict[int, range] = field(default_factory=dict)
    #: rounds whose rows must be at the destination: (round, pid of the child that ran it, finished ok)
    runs_of_rounds: list[tuple[int, int, bool]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {"RUNTIME__LOG_LEVEL": "WARNING", "RUNJOURNAL_HEARTBEAT_SECONDS": "1",
               "RUNJOURNAL__JOURNAL_PATIENCE": "60"}
        if self.destination == "postgres":
            with_password = self.pg_url.replace("postgres@", f"postgres:{PASSWORD}@")
            env["DESTINATION__POSTGRES__CREDENTIALS"] = with_password
            # dlt's unique index on _dlt_id makes a package killed mid-load fail terminally when it is loaded
            # again (its jobs that had committed insert the same _dlt_ids): the soak measures duplicates instead
            env["DESTINATION__POSTGRES__CREATE_INDEXES"] = "false"
        return env

    def spawn(self, round_no: int) -> subprocess.Popen:
        """A run of the round's rows; it writes ``marker_clean_folder`` once its run is journaled."""
        ids = range(round_no * ROWS_PER_ROUND, (round_no + 1) * ROWS_PER_ROUND)
        self.round_ids[round_no] = ids
        (self.base / "marker_clean_folder").unlink(missing_ok=True)
        return cc.spawn(self.base, self.journal_url, "--destination", self.destination, "--dataset", self.dataset,
                        "--disposition", self.disposition, "--ids", f"{ids.start}:{ids.stop}", "--tag", f"r{round_no}-",
                        "--store-trace", "--attempts", "2", "--wait", "0.2", "--marker-on", "clean_folder",
                        env=self.env())

    def spawn_recover(self) -> subprocess.Popen:
        (self.base / "marker_clean_folder").unlink(missing_ok=True)
        return cc.spawn(self.base, self.journal_url, "--recover", "--marker-on", "clean_folder", env=self.env())

    def recover_cli(self) -> subprocess.CompletedProcess:
        return cli("recover", "--json", url=self.journal_url, cwd="/", timeout=300, DLT_DATA_DIR=str(self.base / "dlt"),
                   **self.env())

    # what the destination holds

    def _select(self, dataset: str, table: str, columns: str, where: str = "") -> list[tuple]:
        """Rows of ``dataset.table`` at the destination; none before the table exists."""
        if self.destination == "postgres":
            import psycopg2

            with psycopg2.connect(self.pg_url) as conn, conn.cursor() as cur:
                cur.execute("SELECT to_regclass(%s)", (f'"{dataset}"."{table}"',))
                if cur.fetchone()[0] is None:
                    return []
                cur.execute(f'SELECT {columns} FROM "{dataset}"."{table}" {where}')
                return cur.fetchall()
        import duckdb

        if not (self.base / "crash.duckdb").exists():
            return []
        with duckdb.connect(str(self.base / "crash.duckdb"), read_only=True) as conn:
            try:
                return conn.sql(f'SELECT {columns} FROM "{dataset}"."{table}" {where}').fetchall()
            except duckdb.CatalogException:
                return []

    def rows(self) -> list[tuple]:
        return self._select(self.dataset, cc.TABLE, "id, value, _dlt_load_id")

    def loaded_ids(self) -> set[str]:
        """Load ids dlt completed at the destination (its _dlt_loads table)."""
        return {r[0] for r in self._select(self.dataset, "_dlt_loads", "load_id", "WHERE status = 0")}

    def trace_rows(self) -> collections.Counter:
        """(trace id, load id of the package that carried it) -> rows."""
        rows = self._select(f"_trace_{self.dataset}", f"{cc.PIPELINE_NAME}_trace", "trace_id, _dlt_load_id")
        return collections.Counter((r[0], r[1]) for r in rows)


def kill_at_random(proc: subprocess.Popen, base: Path, rng, within: float) -> Optional[float]:
    """SIGKILL the child at a random moment of its first ``within`` seconds after its run began (its
    first transition committed: Python's start and dlt's imports are no moment worth killing in).

    Returns the seconds from that beginning to the kill; None if the child ended first.
    """
    marker = base / "marker_clean_folder"
    while not marker.exists():
        if proc.poll() is not None:
            return None
        time.sleep(0.01)
    began = time.monotonic()
    delay = rng.uniform(0, within)
    while time.monotonic() < began + delay:
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return delay


def pending_packages(base: Path) -> list[str]:
    found = []
    for pipeline in (cc.PIPELINE_NAME, f"_trace_{cc.PIPELINE_NAME}"):
        working = base / "pipelines" / pipeline
        for folder in ("normalize/extracted", "load/normalized"):
            if (working / folder).is_dir():
                found += [f"{pipeline}:{p.name}" for p in (working / folder).iterdir()]
    return found


def check(world: World) -> tuple[int, int]:
    """The invariants, after a round and its recovery; AssertionError names the one broken.

    Returns how many append rows, and how many trace rows, are at the destination more than once within
    the package that carried them: counted, not an error. dlt loads a package at least once: a job killed
    after the destination committed its rows, before dlt recorded the job as done, runs again.
    """
    with Journal.open(world.journal_url) as jnl:
        runs = jnl.list_runs(limit=None)
        stories = [jnl.get_story(run.id) for run in runs]
    live = [(r.id, r.status, r.state) for r in runs if r.status == "running"]
    assert not live, f"{world.name}: runs left in a live state: {live}"
    assert not pending_packages(world.base), f"{world.name}: pending packages left: {pending_packages(world.base)}"

    for story in stories:
        seqs = [t.seq for t in story.transitions]
        assert seqs == list(range(1, len(seqs) + 1)), f"{world.name}: run {story.run.id} seqs {seqs}"
        open_attempts = [a.number for a in story.attempts if a.outcome == "running"]
        assert not open_attempts, f"{world.name}: run {story.run.id} attempts never closed: {open_attempts}"
    if world.journal_url.startswith("sqlite"):
        assert cc.sqlite_integrity(world.journal_url) == ["ok"], f"{world.name}: journal integrity"

    # every journaled attempt's trace at the destination, shipped once (in one package), and nothing else
    carried = world.trace_rows()
    packages = collections.Counter(trace_id for trace_id, _ in carried)
    twice = {trace_id: n for trace_id, n in packages.items() if n > 1}
    assert not twice, f"{world.name}: traces shipped in more than one package: {twice}"
    traces = set(packages)
    attempts = {f"{s.run.id}-{a.number}" for s in stories for a in s.attempts}
    assert traces == attempts, (
        f"{world.name}: attempts without trace {sorted(attempts - traces)}, traces without attempt "
        f"{sorted(traces - attempts)}")
    trace_duplicates = sum(n - 1 for n in carried.values())

    # what the journal says loaded did load
    journal_loaded = {p.load_id for s in stories for p in s.packages if p.state == "loaded"}
    missing = journal_loaded - world.loaded_ids()
    assert not missing, f"{world.name}: packages journaled loaded, not at the destination: {sorted(missing)}"

    rows = world.rows()
    counts = collections.Counter(r[0] for r in rows)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    if world.disposition in ("merge", "replace"):
        assert duplicates == 0, f"{world.name}: {world.disposition} rows more than once: " \
                                f"{[i for i, n in counts.items() if n > 1][:10]}"
    if world.disposition == "replace":
        assert len({r[2] for r in rows}) <= 1, f"{world.name}: replace left rows of several loads"
    else:
        for round_no in _rounds_that_reached_a_package(world, stories):
            absent = [i for i in world.round_ids[round_no] if i not in counts]
            assert not absent, (f"{world.name}: round {round_no} reached a package, rows missing: {absent[:10]}; "
                                f"runs: {[(s.run.id, s.run.status, [t.dest for t in s.transitions]) for s in stories]}")
    return (duplicates if world.disposition == "append" else 0), trace_duplicates


def _rounds_that_reached_a_package(world: World, stories) -> list[int]:
    """Rounds whose data reached a load package: a child that ended well, or a killed one whose run's
    extract had committed its package (its dead pid is in the crash evidence) and was recovered."""
    reached = []
    for round_no, pid, finished in world.runs_of_rounds:
        if finished:
            reached.append(round_no)
            continue
        for story in stories:
            first_attempt = [t for t in story.transitions if t.attempt == 1]
            crash = next((t for t in first_attempt if t.trigger == "crash"), None)
            if crash is None or (crash.details or {}).get("pid") != pid:
                continue
            if any(t.source == "extract" and t.trigger == "advance" and (t.details or {}).get("load_ids")
                   for t in first_attempt):
                reached.append(round_no)
    return reached

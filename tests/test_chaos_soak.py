"""Chaos soak: real runs killed with SIGKILL at random moments, recovered alternately by `runjournal
recover` and by the pipeline's next run, on duckdb and PostgreSQL destinations with SQLite and
PostgreSQL journals; between rounds the private PostgreSQL (journal, destination or both) is
restarted at random. After every round the invariants of tests/_soak.py hold.

Seeded: the seed is printed (``-s`` shows it; a failure's message has it too); ``SOAK_SEED=N`` replays
a soak's choices (which world, which delay before the kill, which recovery, which restart; the
processes' own speed still varies). Without ``SOAK_ROUNDS`` the soak is bounded by time for CI (``SOAK_SECONDS``, default 120 s of
rounds, about 2.5 minutes with setup); ``SOAK_ROUNDS=300`` runs 300 rounds, however long they take.
``SOAK_REPORT=path`` writes the figures as JSON.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest

from runjournal.journal import Journal

from . import crash_child as cc
from ._private_postgres import private_pg  # noqa: F401 - a fixture
from ._soak import PASSWORD, Figures, World, check, kill_at_random

SEED = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(2**32))
ROUNDS = int(os.environ["SOAK_ROUNDS"]) if os.environ.get("SOAK_ROUNDS") else None
SECONDS = float(os.environ.get("SOAK_SECONDS", 120))
#: Chances, per round: PostgreSQL restarted before it; the run killed; a killed recovery first.
RESTART, KILL, KILL_RECOVERY = 0.25, 0.75, 0.3
#: Data of a "next run" that recovers a killed round is numbered apart from the rounds' own.
NEXT_RUN = 1_000_000

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(ROUNDS * 90 if ROUNDS else 280)]


def _worlds(base: Path, server, rng: random.Random) -> list[World]:
    dispositions = ["append", "merge", "replace", rng.choice(["append", "merge"])]
    rng.shuffle(dispositions)
    worlds = []
    for i, (journal, destination) in enumerate(
            [("sqlite", "duckdb"), ("postgres", "duckdb"), ("sqlite", "postgres"), ("postgres", "postgres")]):
        folder = base / f"world{i}"
        folder.mkdir()
        if journal == "sqlite":
            journal_url = f"sqlite:///{folder / 'journal.sqlite'}"
        else:
            journal_url = server.create_database(f"soak_journal_{i}").replace("postgres@", f"postgres:{PASSWORD}@")
        Journal.open(journal_url).close()  # a journal that exists, as in production
        pg_url = server.create_database(f"soak_dest_{i}") if destination == "postgres" else None
        worlds.append(World(f"world{i}({journal} journal, {destination}, {dispositions[i]})", folder, journal_url,
                            destination, dispositions[i], pg_url=pg_url, dataset=f"soak_{i}"))
    return worlds


def test_chaos_soak(tmp_path, private_pg):  # noqa: F811 - a fixture
    rng = random.Random(SEED)
    print(f"\nchaos soak seed {SEED}: replay with SOAK_SEED={SEED}" + (f" SOAK_ROUNDS={ROUNDS}" if ROUNDS else ""))
    worlds = _worlds(tmp_path, private_pg, rng)
    figures = Figures()
    typical = 3.0  # seconds a child's run takes from its first transition (learned as the soak goes)
    started = time.monotonic()
    round_no = 0
    while (round_no < ROUNDS) if ROUNDS else (time.monotonic() - started < SECONDS):
        world = rng.choice(worlds)
        where = f"seed {SEED}, round {round_no}, {world.name}"
        if rng.random() < RESTART:
            private_pg.restart()
            figures.restarts += 1
        child = world.spawn(round_no)
        kill = rng.random() < KILL
        if not kill or kill_at_random(child, world.base, rng, within=typical * 1.2) is None:
            _finished_well(child, where)
            typical = 0.8 * typical + 0.2 * cc.result_of(child)["elapsed"]
            world.runs_of_rounds.append((round_no, child.pid, True))
        else:
            figures.kills += 1
            world.runs_of_rounds.append((round_no, child.pid, False))
            if rng.random() < 0.5:
                if rng.random() < KILL_RECOVERY:
                    recovering = world.spawn_recover()
                    if kill_at_random(recovering, world.base, rng, within=typical) is not None:
                        figures.recovery_kills += 1
                    else:
                        _finished_well(recovering, where)
                recovered = world.recover_cli()
                assert recovered.returncode == 0, f"{where}: recover failed:\n{recovered.stdout}{recovered.stderr}"
                figures.recoveries_cli += 1
            else:
                next_run = world.spawn(NEXT_RUN + round_no)
                _finished_well(next_run, where)
                world.runs_of_rounds.append((NEXT_RUN + round_no, next_run.pid, True))
                figures.recoveries_next_run += 1
        try:
            check(world)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
        round_no += 1
    figures.rounds = round_no
    counts = [check(world) for world in worlds]
    figures.append_duplicates = sum(rows for rows, _ in counts)
    figures.trace_duplicates = sum(traces for _, traces in counts)
    _count_runs(worlds, figures)
    _assert_no_password(tmp_path)
    elapsed = time.monotonic() - started
    print(f"chaos soak seed {SEED}: {figures.line()}, {elapsed:.0f} s")
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).write_text(json.dumps({"seed": SEED, "seconds": round(elapsed), **vars(figures)}))
    assert figures.rounds >= 5 and figures.kills >= 1, f"seed {SEED}: too short a soak to tell: {figures.line()}"


def _finished_well(child, where: str) -> None:
    assert cc.finish(child, timeout=300) == 0, f"{where}: child died unasked:\n{cc.output_of(child)}"
    result = cc.result_of(child)
    assert result["outcome"] == "ok", f"{where}: {result}\n{cc.output_of(child)}"


def _count_runs(worlds: list[World], figures: Figures) -> None:
    for world in worlds:
        with Journal.open(world.journal_url) as jnl:
            runs = jnl.list_runs(limit=None)
            figures.runs += len(runs)
            figures.attempts += sum(run.attempt for run in runs)


def _assert_no_password(base: Path) -> None:
    """The journal URL's password is in no output of any child (logs, errors, RESULT lines) nor SQLite journal."""
    for path in base.rglob("*"):
        if path.is_file() and (path.name.startswith("child_") or path.suffix == ".sqlite"):
            assert PASSWORD.encode() not in path.read_bytes(), f"the password leaked into {path}"

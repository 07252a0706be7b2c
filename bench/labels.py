"""Issue 13: ``runjournal runs --label KEY=VALUE`` on a journal of 1,000,000 labelled runs (2,000 with ``--smoke``),
SQLite and PostgreSQL (when the server at RUNJOURNAL_TEST_PG_URL answers).

Each run has three labels, as a fleet run by Airflow on Kubernetes would: ``airflow.run_id`` (one run each),
``airflow.dag_id`` (100 DAGs: 10,000 runs each) and ``k8s.namespace`` (prod for 9 runs in 10). The three
filters are timed through the console script (``--json --limit 50``, Python's start included): the rarest
label is found through the (key, value, run_id) index, the commonest one walks runs newest first. Generation
(bulk inserts after the real migrations) is not measured; the PostgreSQL database is dropped afterwards.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from ._common import MISS, PASS, SKIPPED, Context, Result, error_result, log, median, ms, spread
from .inspection import cli_path

#: What a label filter may add to the same `runs --limit 50` without one (whose time is Python's start and the
#: journal's open, measured beside it: on a loaded machine that alone can pass any absolute target).
TARGET_S = 0.100
PG_ADMIN_URL = os.environ.get("RUNJOURNAL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FILTERS = {
    "unique": "airflow.run_id=scheduled__{middle}",  # one run among all
    "dag": "airflow.dag_id=dag_7",  # one run in 100
    "namespace": "k8s.namespace=prod",  # nine runs in ten
}


def run(ctx: Context) -> list[Result]:
    n_runs = 2_000 if ctx.smoke else 1_000_000
    script = cli_path(ctx)
    results: list[Result] = []
    for database, make in (("sqlite", _sqlite_journal), ("postgresql", _postgres_journal)):
        titles = {name: f"`runs --label {f.split('=')[0]}=...` ({name}), {n_runs:,} runs, {database}"
                  for name, f in FILTERS.items()}
        if script is None:
            results += [_skipped(database, name, title, "CLI missing") for name, title in titles.items()]
            continue
        try:
            with make(ctx, n_runs) as url:
                if url is None:
                    results += [_skipped(database, name, title, "PostgreSQL not reachable")
                                for name, title in titles.items()]
                    continue
                results += _measure(ctx, script, url, database, n_runs, titles)
        except Exception as exc:  # noqa: BLE001
            results += [error_result(f"labels.{database}.{name}", title, exc) for name, title in titles.items()]
    return results


def _skipped(database: str, name: str, title: str, why: str) -> Result:
    return Result(f"labels.{database}.{name}", title, result=f"skipped: {why}", target=f"< +{TARGET_S * 1000:.0f} ms",
                  status=SKIPPED, note=f"skipped: {why}")


def _measure(ctx: Context, script: Path, url: str, database: str, n_runs: int, titles: dict[str, str]) -> list[Result]:
    """Each filter beside the same command without one (the baseline: Python's start, the journal's open)."""
    plain = [str(script), "--journal", url, "runs", "--limit", "50", "--json"]
    results = []
    _timed(ctx, plain)  # untimed: page cache, .pyc files
    for name, label in FILTERS.items():
        label = label.format(middle=n_runs // 2)
        command = [*plain, "--label", label]
        wall: list[float] = []
        base: list[float] = []
        for _ in range(ctx.rounds):
            wall.append(_timed(ctx, command))
            base.append(_timed(ctx, plain))
        value, added = median(wall), median(wall) - median(base)
        results.append(Result(
            f"labels.{database}.{name}", titles[name], ours=ms(value), baseline=ms(median(base)), result=f"+{ms(added)}",
            target=f"< +{TARGET_S * 1000:.0f} ms", status=PASS if added < TARGET_S else MISS,
            note=f"--label {label}; baseline: the same `runs --limit 50` without --label",
            data={"wall_s": spread(wall), "baseline_wall_s": spread(base), "runs": n_runs, "samples_wall_s": wall},
        ))
    return results


def _timed(ctx: Context, command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ctx.env, cwd=ctx.workdir("cwd"), timeout=300)
    wall = time.perf_counter() - start
    if done.returncode != 0 or '"labels"' not in done.stdout:
        raise RuntimeError(f"`{' '.join(command[3:])}` exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return wall


def _rows(n_runs: int):
    """(runs row, its three labels) for each run, oldest first."""
    now = time.time()
    for i in range(n_runs):
        run_id = f"{i:020x}"
        started = now - (n_runs - i) * 60.0
        run = (run_id, f"pipe_{i % 20}", "done", "done", 1, "bench-host", 1, started, started + 30, started + 30, "{}")
        labels = ((run_id, "airflow.run_id", f"scheduled__{i}"), (run_id, "airflow.dag_id", f"dag_{i % 100}"),
                  (run_id, "k8s.namespace", "staging" if i % 10 == 0 else "prod"))
        yield run, labels


RUN_COLUMNS = "id, pipeline_name, status, state, attempt, host, pid, started_at, finished_at, heartbeat_at, config"


class _sqlite_journal:
    def __init__(self, ctx: Context, n_runs: int):
        self.path = ctx.workdir("labels") / "labels.sqlite"
        self.n_runs = n_runs

    def __enter__(self) -> str:
        from runjournal.journal import Journal

        url = f"sqlite:///{self.path}"
        Journal.open(url).close()  # the real schema, through the real migrations
        log(f"labels: generating {self.n_runs:,} labelled runs in SQLite")
        conn = sqlite3.connect(self.path)
        conn.execute("PRAGMA synchronous=OFF")
        _chunked(self.n_runs, lambda runs, labels: (
            conn.executemany(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", runs),
            conn.executemany("INSERT INTO run_labels (run_id, key, value) VALUES (?,?,?)", labels),
            conn.commit(),
        ))
        conn.execute("ANALYZE")
        conn.close()
        return url

    def __exit__(self, *exc_info: Any) -> None:
        self.path.unlink(missing_ok=True)


class _postgres_journal:
    def __init__(self, ctx: Context, n_runs: int):
        self.n_runs = n_runs
        self.name = f"runjournal_bench_labels_{uuid.uuid4().hex[:8]}"
        self.created = False

    def _admin(self):
        import psycopg2

        conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
        conn.autocommit = True
        return conn

    def __enter__(self) -> Optional[str]:
        try:
            admin = self._admin()
        except Exception:  # noqa: BLE001 - no server: the PostgreSQL cases are skipped
            return None
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.name}"')
        admin.close()
        self.created = True
        from sqlalchemy.engine import make_url

        from runjournal.journal import Journal

        url = make_url(PG_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)
        Journal.open(url).close()
        log(f"labels: generating {self.n_runs:,} labelled runs in PostgreSQL database {self.name}")
        import psycopg2

        conn = psycopg2.connect(url)

        def copy(runs: list, labels: list) -> None:
            with conn.cursor() as cursor:
                cursor.copy_expert(f"COPY runs ({RUN_COLUMNS}) FROM STDIN", _tsv(runs))
                cursor.copy_expert("COPY run_labels (run_id, key, value) FROM STDIN", _tsv(labels))
            conn.commit()

        _chunked(self.n_runs, copy)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE runs")
            cursor.execute("VACUUM ANALYZE run_labels")
        conn.close()
        return url

    def __exit__(self, *exc_info: Any) -> None:
        if not self.created:
            return
        admin = self._admin()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        admin.close()


def _chunked(n_runs: int, write: Callable[[list, list], Any], chunk: int = 50_000) -> None:
    runs: list = []
    labels: list = []
    for run, its_labels in _rows(n_runs):
        runs.append(run)
        labels.extend(its_labels)
        if len(runs) >= chunk:
            write(runs, labels)
            runs, labels = [], []
    if runs:
        write(runs, labels)


def _tsv(rows: list) -> io.StringIO:
    return io.StringIO("".join("\t".join(str(value) for value in row) + "\n" for row in rows))

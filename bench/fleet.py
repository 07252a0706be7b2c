"""Issue 14, item 5: the fleet view at scale. ``python -m bench.fleet --backend sqlite|postgres [--runs N]``.

With 1,000,000 runs and ~10,000,000 transitions (``bench.fleet_data``) it measures the server time
(the ``Server-Timing`` each response carries, the app called in-process) of the overview, runs pages,
a run page and ``/metrics``, and the wall time of ``runjournal runs`` and ``runjournal show`` as
subprocesses (Python's start included, ``--version`` timed beside them as that floor). Targets:
pages < 300 ms, ``/metrics`` < 1 s, the two commands < 300 ms. Medians of ``--rounds`` after one
untimed call. The SQLite journal is kept in bench/.cache/ and the PostgreSQL database
``runjournal_bench_fleet_<N>`` is kept too, both reused while their row counts match.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ._common import CACHE_DIR, RESULTS_DIR
from .fleet_data import generate

PG_ADMIN = os.environ.get("RUNJOURNAL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PAGE_TARGET_MS, METRICS_TARGET_MS, CLI_TARGET_MS = 300, 1000, 300


def _journal(backend: str, runs: int) -> str:
    """The journal's URL, generated if needed, and upgraded to this code's schema (timed: an index built on a
    big journal is part of the cost of an upgrade)."""
    url = _generated(backend, runs)
    from runjournal.journal import upgrade

    started = time.perf_counter()
    before, after = upgrade(url)
    if before != after:
        print(f"upgraded {before} -> {after} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return url


def _generated(backend: str, runs: int) -> str:
    if backend == "sqlite":
        CACHE_DIR.mkdir(exist_ok=True)
        path = CACHE_DIR / f"fleet-{runs}.sqlite"
        url = f"sqlite:///{path}"
        if not path.exists() or _count(url) != runs:
            for stale in CACHE_DIR.glob(path.name + "*"):
                stale.unlink()
            print(f"generating {runs:,} runs in {path} ...", file=sys.stderr)
            print(json.dumps(generate(url, runs)), file=sys.stderr)
        return url
    import psycopg2
    from sqlalchemy.engine import make_url

    name = f"runjournal_bench_fleet_{runs}"
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        exists = cur.fetchone() is not None
        if exists and _count(url) == runs:
            return url
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    print(f"generating {runs:,} runs in PostgreSQL database {name} ...", file=sys.stderr)
    print(json.dumps(generate(url, runs)), file=sys.stderr)
    return url


def _count(url: str) -> int:
    """Runs in the journal at ``url`` whatever its schema revision; -1 if it cannot be read."""
    from runjournal.journal._dialects import open_database

    database = open_database(url, read_only=True)
    try:
        with database.transaction(write=False) as session:
            return session.rows("SELECT count(*) AS n FROM runs")[0]["n"]
    except Exception:  # noqa: BLE001 - an unusable cached journal is made again
        return -1
    finally:
        database.close()


def _server_ms(client, path: str, rounds: int) -> tuple[float, int]:
    client.get(path)  # untimed: warms the caches, as a page viewed twice would
    times = []
    for _ in range(rounds):
        response = client.get(path)
        times.append(float(re.search(r"dur=([0-9.]+)", response.headers["server-timing"]).group(1)))
    return statistics.median(times), response.status_code


def _cli_ms(url: str, args: list[str], rounds: int) -> tuple[float, float]:
    """Median wall time and CPU time (user + system, of the child) of the command, in ms."""
    command = [str(Path(sys.executable).parent / "runjournal"), "--journal", url, *args]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    subprocess.run(command, capture_output=True, env=env, check=True)
    walls, cpus = [], []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, check=True)
        walls.append((time.perf_counter() - started) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def measure(url: str, rounds: int) -> list[dict]:
    from starlette.testclient import TestClient

    from runjournal.journal import Journal
    from runjournal.web import create_app

    with Journal.open(url, read_only=True) as jnl:
        failed = jnl.list_runs(status="failed", limit=5000)[-1]  # one from deep in the history
        newest = jnl.list_runs(limit=60)
    client = TestClient(create_app(url))
    pages = [
        ("overview /", "/", PAGE_TARGET_MS),
        ("runs page /runs", "/runs", PAGE_TARGET_MS),
        ("runs page, older", f"/runs?before={newest[-1].id}", PAGE_TARGET_MS),
        ("runs page, one pipeline", "/runs?pipeline=pipeline_42", PAGE_TARGET_MS),
        ("runs page, status=crashed", "/runs?status=crashed", PAGE_TARGET_MS),
        ("runs page, status=failed, since 7d", "/runs?status=failed&since=7d", PAGE_TARGET_MS),
        ("run page /runs/<id>", f"/runs/{failed.id}", PAGE_TARGET_MS),
        ("/metrics", "/metrics", METRICS_TARGET_MS),
    ]
    results = []
    for name, path, target in pages:
        value, status = _server_ms(client, path, rounds)
        results.append({"what": name, "path": path, "ms": round(value, 1), "target_ms": target, "status": status,
                        "kind": "server time"})
    for name, args, target in (("runjournal runs", ["runs"], CLI_TARGET_MS),
                               ("runjournal show <id>", ["show", failed.id], CLI_TARGET_MS),
                               ("runjournal --version (the floor)", ["--version"], None)):
        wall, cpu = _cli_ms(url, args, rounds)
        results.append({"what": name, "ms": round(wall, 1), "cpu_ms": round(cpu, 1), "target_ms": target,
                        "kind": f"wall time of a subprocess (cpu {cpu:.0f} ms)"})
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="default: bench/results/fleet-<backend>-<runs>.json")
    args = parser.parse_args(argv)
    url = _journal(args.backend, args.runs)
    results = measure(url, args.rounds)
    print(f"runjournal fleet bench: {args.backend}, {args.runs:,} runs, medians of {args.rounds}")
    for r in results:
        verdict = "" if r["target_ms"] is None else ("PASS" if r["ms"] < r["target_ms"] else "MISS")
        target = f"< {r['target_ms']} ms" if r["target_ms"] else ""
        print(f"  {r['what']:<38} {r['ms']:>8.1f} ms  {target:<10} {verdict:<5} ({r['kind']})")
    out = args.json or RESULTS_DIR / f"fleet-{args.backend}-{args.runs}.json"
    out.write_text(json.dumps({"backend": args.backend, "runs": args.runs, "rounds": args.rounds,
                               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}, indent=2))
    return 0  # a figure is measured, not asserted: a missed target is reported, not a failure


if __name__ == "__main__":
    sys.exit(main())

"""Issue 5, item 3: journal throughput, one process and several at once, beside the disk's raw fsync rate.

Each round measures, in an order that rotates every round, on the same disk and directory:

- ``fsync``: write 512 bytes at the start of a small file and ``os.fsync`` it, in a loop (the journal's dir);
- ``one``: one process calling ``Journal.record_transition`` in a loop;
- ``many``: ``throughput_writers`` (4) processes doing the same at once on the same journal.

Writers are separate processes started before the window: each opens the journal with the production
settings (``Journal.open``: WAL, ``synchronous=FULL``, 60 s busy timeout, ``BEGIN IMMEDIATE``), starts a
run, says READY, and all start writing when the parent says GO. A transition is what the engine commits:
the transition row, the run row's update, and at an attempt's first and last transition the attempt row.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._common import (
    ERROR, MISS, PASS, Context, Result, alternate, error_result, log, median, parse_worker_output, run_worker,
    spread,
)

KINDS = ("fsync", "one", "many")
FSYNC_FRACTION = 0.5
LOCKED = "database is locked"


def run(ctx: Context) -> list[Result]:
    title_one = "journal throughput, 1 process"
    title_many = f"journal throughput, {ctx.sizes.throughput_writers} processes"
    try:
        return _measure(ctx, title_one, title_many)
    except Exception as exc:  # noqa: BLE001
        return [error_result("throughput.one", title_one, exc), error_result("throughput.many", title_many, exc)]


def _measure(ctx: Context, title_one: str, title_many: str) -> list[Result]:
    directory = ctx.workdir("throughput")
    url = f"sqlite:///{directory / 'runjournal.sqlite'}"
    seconds = ctx.sizes.throughput_seconds
    n_many = ctx.sizes.throughput_writers
    log(f"journal throughput: {ctx.rounds} rounds of fsync / 1 writer / {n_many} writers, {seconds} s each")
    run_worker(ctx, "writer", {"url": url, "seconds": 0.05, "handshake": False})  # create the journal, untimed
    fsync_rates: list[float] = []
    one_rates: list[float] = []
    many_rates: list[float] = []
    writers: list[dict[str, Any]] = []
    for r in range(ctx.rounds):
        for kind in alternate(KINDS, r):
            if kind == "fsync":
                # In this (idle) process: no isolation is needed for a loop of system calls.
                fsync_rates.append(worker_fsync({"dir": str(directory), "seconds": seconds})["rate"])
            else:
                n = 1 if kind == "one" else n_many
                rate, answers = _writers(ctx, url, n, seconds)
                (one_rates if kind == "one" else many_rates).append(rate)
                writers.extend({**a, "group": kind, "round": r} for a in answers)
    locked = sum(w["locked"] for w in writers)
    other = [w["first_error"] for w in writers if w["errors"]]
    fsync_rate, one_rate, many_rate = median(fsync_rates), median(one_rates), median(many_rates)
    fraction = one_rate / fsync_rate
    shared = {"seconds_per_measure": seconds, "rounds": ctx.rounds, "journal_settings": "production (Journal.open)"}
    one = Result(
        "throughput.one", title_one,
        ours=f"{one_rate:,.0f} transitions/s", baseline=f"fsync {fsync_rate:,.0f}/s (same dir)",
        result=f"{fraction:.2f} of fsync", target=f">= {FSYNC_FRACTION} of fsync",
        status=PASS if fraction >= FSYNC_FRACTION else MISS,
        note=f"per-round ratios {', '.join(f'{o / f:.2f}' for o, f in zip(one_rates, fsync_rates))}",
        data={**shared, "transitions_per_s": spread(one_rates), "fsync_per_s": spread(fsync_rates),
              "fraction": fraction, "samples": {"one": one_rates, "fsync": fsync_rates}},
    )
    per_process = [w["count"] / w["elapsed"] for w in writers if w["group"] == "many"]
    worst = max((w["latency_ms"]["max"] for w in writers if w["group"] == "many"), default=float("nan"))
    p99 = median([w["latency_ms"]["p99"] for w in writers if w["group"] == "many"])
    one_p99 = median([w["latency_ms"]["p99"] for w in writers if w["group"] == "one"])
    many = Result(
        "throughput.many", title_many,
        ours=f"{many_rate:,.0f} transitions/s (all)",
        result=f"{locked} locked error(s)", target='no "database is locked"',
        status=PASS if locked == 0 and not other else (MISS if locked else ERROR),
        note=(f"per process {min(per_process):,.0f}-{max(per_process):,.0f}/s; one transition: p99 {p99:,.1f} ms, "
              f"max {worst:,.0f} ms (1 process alone: p99 {one_p99:,.1f} ms)" if per_process else "")
        + (f"; other errors: {other[0]}" if other else ""),
        data={**shared, "writers": n_many, "transitions_per_s": spread(many_rates), "locked_errors": locked,
              "other_errors": other, "samples": many_rates, "per_writer": writers},
    )
    if ctx.wants_profile(one.status):
        from ._profile import attach_profile

        attach_profile(ctx, one, "profile_writer", {"url": url, "seconds": max(seconds, 1.0)}, "throughput")
    return [one, many]


def _writers(ctx: Context, url: str, n: int, seconds: float, *, during=None,
             **extra: Any) -> tuple[float, list[dict[str, Any]]]:
    """Start ``n`` writer processes, let them all start at once, return the combined rate and their answers.

    ``during()``, if given, runs in this process while they write (e.g. an outage); ``extra`` goes to the writers.
    """
    import json

    params = json.dumps({"url": url, "seconds": seconds, "handshake": True, **extra})
    procs = [
        subprocess.Popen([ctx.python, "-m", "bench._worker", "writer", params], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ctx.workdir("cwd"),
                         env=ctx.env)
        for _ in range(n)
    ]
    try:
        for proc in procs:
            line = proc.stdout.readline()
            if line.strip() != "READY":
                raise RuntimeError(f"writer did not get ready: {line!r} {proc.stderr.read()[-2000:]}")
        for proc in procs:
            proc.stdin.write("GO\n")
            proc.stdin.flush()
        if during is not None:
            during()
        answers = []
        for proc in procs:
            out, err = proc.communicate(timeout=seconds * 20 + 120)
            answers.append(parse_worker_output("writer", proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    start = min(a["start"] for a in answers)
    end = max(a["end"] for a in answers)
    return sum(a["count"] for a in answers) / (end - start), answers


# ---------------------------------------------------------------------------------------------- workers


def worker_fsync(params: dict[str, Any]) -> dict[str, Any]:
    path = Path(params["dir"]) / "fsync-probe.bin"
    block = b"\0" * 512
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, block, 0)
        os.fsync(fd)
        count, start = 0, time.perf_counter()
        deadline = start + params["seconds"]
        while time.perf_counter() < deadline:
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            count += 1
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    return {"rate": count / elapsed, "count": count, "elapsed": elapsed}


_PATH = (
    ("created", "clean_folder", "start", None),
    ("clean_folder", "sync", "advance", {"skipped": "nothing to clean"}),
    ("sync", "finalize_pending", "advance", {"first_run": False}),
    ("finalize_pending", "extract", "advance", {"skipped": "no pending packages"}),
    ("extract", "normalize", "advance", {"load_ids": ["1732170000.123456"]}),
    ("normalize", "load", "advance", {"load_ids": ["1732170000.123456"], "row_counts": {"items": 10}}),
    ("load", "store_trace", "attempt_done", {"load_ids": ["1732170000.123456"]}),
    ("store_trace", "done", "finish", None),
)


class _Writer:
    def __init__(self, url: str, patience: float = 0.0):
        from runjournal.journal import Journal, NewRun

        self.journal = Journal.open(url, patience=patience)
        self.run_id = self.journal.start_run(NewRun(
            pipeline_name="bench_throughput", host="bench", pid=os.getpid(), config={"origin": "bench"},
        ))
        self.seq = 0
        self.count = self.locked = self.errors = 0
        self.first_error = ""
        self.latencies: list[float] = []

    def write_one(self) -> None:
        from runjournal.journal import AttemptEnd, AttemptStart, Transition

        i = self.seq % len(_PATH)
        attempt = self.seq // len(_PATH) + 1
        source, dest, trigger, details = _PATH[i]
        now = time.time()
        transition = Transition(seq=self.seq + 1, attempt=attempt, source=source, dest=dest, trigger=trigger,
                                at=now, details=details)
        started = time.perf_counter()
        try:
            self.journal.record_transition(
                self.run_id, transition,
                attempt_start=AttemptStart(attempt, "run", now) if i == 0 else None,
                attempt_end=AttemptEnd(attempt, now, "succeeded") if i == len(_PATH) - 1 else None,
            )
            self.latencies.append(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - counted, and the loop goes on
            if LOCKED in str(exc):
                self.locked += 1
            else:
                self.errors += 1
                self.first_error = self.first_error or f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                if self.errors > 100:
                    raise
            return
        self.seq += 1
        self.count += 1


def worker_writer(params: dict[str, Any]) -> dict[str, Any]:
    """Write transitions for ``seconds``; with ``commits``, also say when each one committed (epoch s)."""
    writer = _Writer(params["url"], params.get("patience", 0.0))
    if params["handshake"]:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        sys.stdin.readline()
    start_wall, start = time.time(), time.perf_counter()
    deadline = start + params["seconds"]
    commits: list[float] = []
    while time.perf_counter() < deadline:
        before = writer.count
        writer.write_one()
        if params.get("commits") and writer.count > before:
            commits.append(time.time())
    elapsed = time.perf_counter() - start
    writer.journal.close()
    ordered = sorted(writer.latencies) or [float("nan")]
    return {"count": writer.count, "elapsed": elapsed, "start": start_wall, "end": start_wall + elapsed,
            "latency_ms": {"median": ordered[len(ordered) // 2] * 1000, "p99": ordered[int(len(ordered) * 0.99)] * 1000,
                           "max": ordered[-1] * 1000},
            "locked": writer.locked, "errors": writer.errors, "first_error": writer.first_error, "pid": os.getpid(),
            **({"commits": commits} if params.get("commits") else {})}


def worker_profile_writer(params: dict[str, Any]) -> dict[str, Any]:
    """Profile the journal's write loop, and measure beside it what SQLite alone does with the same settings."""
    from ._profile import pyinstrument_missing, start_profiler, write_profile

    fsync = worker_fsync({"dir": str(Path(params["url"].removeprefix("sqlite:///")).parent), "seconds": params["seconds"]})
    writer = _Writer(params["url"])
    deadline = time.perf_counter() + params["seconds"]
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        writer.write_one()
    plain_rate = writer.count / (time.perf_counter() - started)
    raw_rate = _raw_sqlite_rate(params["url"], params["seconds"])
    floor = [
        f"same {params['seconds']:.1f} s windows: fsync {fsync['rate']:,.0f}/s; Journal.record_transition "
        f"{plain_rate:,.0f}/s ({plain_rate / fsync['rate']:.2f}); the same SQL through the sqlite3 module alone "
        f"(same pragmas, BEGIN IMMEDIATE, one COMMIT per transition) {raw_rate:,.0f}/s ({raw_rate / fsync['rate']:.2f})",
    ]
    missing = pyinstrument_missing()
    if missing:
        return {"where": floor + missing["where"], "profile": None}
    writer.count = 0
    profiler = start_profiler()
    deadline = time.perf_counter() + params["seconds"]
    profiler.start()
    while time.perf_counter() < deadline:
        writer.write_one()
    profiler.stop()
    return write_profile(profiler, params["out"], max(1, writer.count),
                         header="one process, Journal.record_transition in a loop ('run' = one transition)",
                         extra=floor + [f"{writer.count} transitions profiled; 'run' below = one transition"])


def _raw_sqlite_rate(url: str, seconds: float) -> float:
    """Transitions per second written with the stdlib sqlite3 module and the journal's production settings:
    the floor any journal on this disk pays (the transition row and the run row's update, one transaction each)."""
    import json
    import sqlite3

    from runjournal.journal._sqlite import SQLITE_BUSY_TIMEOUT_MS

    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        run_id = f"raw{os.getpid():x}{time.time_ns():x}"[:32]
        conn.execute("INSERT INTO runs (id, pipeline_name, status, state, attempt, host, pid, started_at, config) "
                     "VALUES (?, 'bench_raw', 'running', 'created', 0, 'bench', ?, ?, '{}')", (run_id, os.getpid(), time.time()))
        count, started = 0, time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            source, dest, trigger, details = _PATH[count % len(_PATH)]
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute('INSERT INTO transitions (run_id, seq, attempt, source, dest, "trigger", at, details) '
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (run_id, count + 1, 1, source, dest, trigger, now, json.dumps(details) if details else None))
            conn.execute("UPDATE runs SET state = ?, attempt = ?, heartbeat_at = ? WHERE id = ?", (dest, 1, now, run_id))
            conn.execute("COMMIT")
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        conn.close()

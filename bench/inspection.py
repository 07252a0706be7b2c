"""Issue 5, item 4: ``runjournal runs --limit 50`` and ``runjournal show RUN_ID`` on a big journal.

The journal (100,000 runs, 1,000,000 transitions; 1,000 / 10,000 with ``--smoke``) is generated in bulk with
SQLAlchemy Core ``executemany`` on ``journal._schema``'s tables, after ``Journal.open`` created the schema
with the real migrations. Generation is not measured; the file is cached in ``bench/.cache/``, keyed by
size, schema revision and generator version, and copied into the temporary directory for each bench run.

The runs look like the engine's: the real state paths (success, retried loads, a finalize phase first,
failures), their attempts, and for every tenth run a trace per attempt. Each command is timed as a whole
(subprocess wall time, Python's start included), alternately, after one untimed run of each; ``--version``
is timed beside them as the floor of any ``runjournal`` command.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from ._common import (
    CACHE_DIR, MISS, PASS, SKIPPED, Context, Result, alternate, error_result, log, median, ms, spread,
)

GENERATOR_VERSION = 1
TARGET_S = 0.300
PIPELINES = tuple(f"{name}_{n}" for n in range(5) for name in ("orders", "customers", "events", "invoices", "stock"))


def cli_path(ctx: Context) -> Optional[Path]:
    """The console script beside this Python (the project's venv), else one on PATH."""
    beside = Path(ctx.python).parent / "runjournal"
    if beside.exists():
        return beside
    found = shutil.which("runjournal")
    return Path(found) if found else None


def cli_has(ctx: Context, script: Path, *commands: str) -> bool:
    for command in commands:
        done = subprocess.run([str(script), command, "--help"], capture_output=True, text=True, env=ctx.env,
                              cwd=ctx.workdir("cwd"), timeout=60)
        if done.returncode != 0:
            return False
    return True


def run(ctx: Context) -> list[Result]:
    n_runs, n_transitions = ctx.sizes.inspect_runs, ctx.sizes.inspect_transitions
    scale = f"{n_runs // 1000:,}k runs, {n_transitions // 1000:,}k transitions"
    titles = {"runs": f"`runs --limit 50`, {scale}", "show": f"`show RUN_ID`, {scale}"}
    script = cli_path(ctx)
    if script is None or not cli_has(ctx, script, "runs", "show"):
        return [Result(f"inspection.{k}", t, result="skipped: CLI missing", target=f"< {TARGET_S * 1000:.0f} ms",
                       status=SKIPPED, note="skipped: CLI missing") for k, t in titles.items()]
    try:
        cached, meta = cached_journal(n_runs, n_transitions)
        return _measure(ctx, script, cached, meta, titles)
    except Exception as exc:  # noqa: BLE001
        return [error_result(f"inspection.{k}", t, exc) for k, t in titles.items()]


def _measure(ctx: Context, script: Path, cached: Path, meta: dict[str, Any], titles: dict[str, str]) -> list[Result]:
    work = ctx.workdir("inspection")
    db = work / "runjournal.sqlite"
    shutil.copyfile(cached, db)
    url = f"sqlite:///{db}"
    commands = {
        "version": [str(script), "--version"],
        "runs": [str(script), "--journal", url, "runs", "--limit", "50"],
        "show": [str(script), "--journal", url, "show", meta["show_run_id"]],
    }
    log(f"inspection: {ctx.rounds} rounds of runs / show / --version on {db.stat().st_size / 2**20:.0f} MB journal")
    for name, command in commands.items():  # untimed: page cache, .pyc files
        _timed(ctx, name, command, meta)
    wall: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    for r in range(ctx.rounds):
        for name in alternate(tuple(commands), r):
            w, c = _timed(ctx, name, command=commands[name], meta=meta)
            wall[name].append(w)
            cpu[name].append(c)
    floor = median(wall["version"])
    results = []
    for name in ("runs", "show"):
        value = median(wall[name])
        result = Result(
            f"inspection.{name}", titles[name], ours=ms(value), result=ms(value), target=f"< {TARGET_S * 1000:.0f} ms",
            status=PASS if value < TARGET_S else MISS,
            note=f"cpu {ms(median(cpu[name]))}; `runjournal --version` takes {ms(floor)}",
            data={"wall_s": spread(wall[name]), "cpu_s": spread(cpu[name]), "version_wall_s": spread(wall["version"]),
                  "command": commands[name][1:], "journal_mb": db.stat().st_size / 2**20, "journal": meta,
                  "samples_wall_s": wall[name]},
        )
        if ctx.wants_profile(result.status):
            from ._profile import attach_profile

            attach_profile(ctx, result, "profile_cli", {"argv": commands[name][1:]}, f"cli-{name}")
        results.append(result)
    return results


def _timed(ctx: Context, name: str, command: list[str], meta: dict[str, Any]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ctx.env, cwd=ctx.workdir("cwd"), timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command[1:])}` exited {done.returncode}: {done.stderr.strip()[-500:]}")
    if name == "runs" and done.stdout.count("\n") < 50:
        raise RuntimeError(f"`runjournal runs --limit 50` printed {done.stdout.count(chr(10))} lines, expected >= 50")
    if name == "show" and meta["show_run_id"] not in done.stdout:
        raise RuntimeError("`runjournal show` did not print the run's id")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# ------------------------------------------------------------------------------------------ generation


def cached_journal(n_runs: int, n_transitions: int) -> tuple[Path, dict[str, Any]]:
    from runjournal import migrations

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"journal-{n_runs}r-{n_transitions}t-rev{migrations.head()}-gen{GENERATOR_VERSION}"
    path, meta_path = CACHE_DIR / f"{stem}.sqlite", CACHE_DIR / f"{stem}.json"
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    log(f"inspection: generating a journal of {n_runs:,} runs and {n_transitions:,} transitions (cached afterwards)")
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    meta = generate(partial, n_runs, n_transitions)
    meta["generation_s"] = round(time.perf_counter() - started, 1)
    os.replace(partial, path)
    meta_path.write_text(json.dumps(meta, indent=1))
    log(f"inspection: generated in {meta['generation_s']} s -> {path}")
    return path, meta


def plan_shapes(n_runs: int, n_transitions: int, rng: random.Random) -> list[list[int]]:
    """Per run ``[finalize (0/1), retries (0..3)]``; a run has ``8 + finalize + 3 * retries`` transitions."""
    if not 8 * n_runs <= n_transitions <= 17 * n_runs:
        raise ValueError("transitions per run must be between 8 and 17")
    shapes = [[1 if rng.random() < 0.1 else 0, rng.choices((0, 1, 2), (70, 20, 10))[0]] for _ in range(n_runs)]
    diff = n_transitions - sum(8 + f + 3 * a for f, a in shapes)
    while diff:
        shape = shapes[rng.randrange(n_runs)]
        if diff >= 3 and shape[1] < 3:
            shape[1] += 1
            diff -= 3
        elif 0 < diff < 3 and shape[0] == 0:
            shape[0] = 1
            diff -= 1
        elif diff <= -3 and shape[1] > 0:
            shape[1] -= 1
            diff += 3
        elif -3 < diff < 0 and shape[0] == 1:
            shape[0] = 0
            diff += 1
    return shapes


def _path(finalize: int, retries: int, failed: bool) -> list[tuple[str, str, str, int]]:
    """The engine's transitions for a run of this shape: (source, dest, trigger, attempt)."""
    steps = [("created", "clean_folder", "start", 1), ("clean_folder", "sync", "advance", 1),
             ("sync", "finalize_pending", "advance", 1)]
    attempt = 1
    if finalize:
        steps += [("finalize_pending", "store_trace", "attempt_done", 1), ("store_trace", "extract", "continue_run", 2)]
        attempt = 2
    else:
        steps += [("finalize_pending", "extract", "advance", 1)]
    steps += [("extract", "normalize", "advance", attempt), ("normalize", "load", "advance", attempt)]
    for k in range(retries):
        steps += [("load", "store_trace", "attempt_failed", attempt), ("store_trace", "retry_wait", "retry", attempt),
                  ("retry_wait", "load", "resume", attempt + 1)]
        attempt += 1
    if failed:
        steps += [("load", "store_trace", "attempt_failed", attempt), ("store_trace", "failed", "give_up", attempt)]
    else:
        steps += [("load", "store_trace", "attempt_done", attempt), ("store_trace", "done", "finish", attempt)]
    return steps


def generate(path: Path, n_runs: int, n_transitions: int) -> dict[str, Any]:
    from sqlalchemy import create_engine, event, insert

    from runjournal.journal import Journal
    from runjournal.journal._schema import attempts, runs, traces, transitions

    rng = random.Random(20240505)
    shapes = plan_shapes(n_runs, n_transitions, rng)
    Journal.open(f"sqlite:///{path}").close()  # the real schema, through the real migrations
    # Bulk inserts through a plain engine: the journal's own engine begins every transaction itself, and
    # durability does not matter while generating (a half-written file is never renamed into the cache).
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    now = time.time()
    chunk = 20_000
    buffers: dict[Any, list[dict]] = {runs: [], attempts: [], transitions: [], traces: []}
    counts = {"runs": 0, "attempts": 0, "transitions": 0, "traces": 0}
    show_run_id = None
    trace_payload = json.dumps({
        "transaction_id": "bench", "execution_context": {"python": "3.11", "os": {"name": "Linux"}},
        "steps": [{"step": s, "started_at": "2024-05-05T00:00:00", "finished_at": "2024-05-05T00:00:01",
                   "step_info": {"load_ids": ["1714867200.1"]}} for s in ("extract", "normalize", "load")],
        "resolved_config_values": [{"key": "credentials", "value": "***"}] * 5,
    })

    with engine.connect() as conn:

        def flush(force: bool = False) -> None:
            for table, rows in buffers.items():
                if rows and (force or len(rows) >= chunk):
                    with conn.begin():
                        conn.execute(insert(table), rows)
                    counts[table.name] += len(rows)
                    rows.clear()

        for i, (finalize, retries) in enumerate(shapes):
            started = now - (n_runs - i) * 300.0 - rng.random() * 60
            roll = rng.random()
            status = "failed" if roll < 0.06 else "interrupted" if roll < 0.07 else "done"
            run_id = f"{int(started * 1000):012x}{rng.getrandbits(32):08x}"
            path_steps = _path(finalize, retries, status != "done")
            if status == "interrupted":
                path_steps[-1] = (path_steps[-1][0], "interrupted", "halt", path_steps[-1][3])
            pipeline = PIPELINES[i % len(PIPELINES)]
            at = started
            for seq, (source, dest, trigger, attempt) in enumerate(path_steps, start=1):
                at += rng.random() * 3
                details = None
                if dest == "normalize":
                    details = {"load_ids": [f"{started:.6f}"]}
                elif source == "normalize":
                    details = {"load_ids": [f"{started:.6f}"], "row_counts": {pipeline: rng.randrange(1, 5000)}}
                elif trigger == "attempt_failed":
                    details = {"failed_step": "load", "error_class": "transient", "exception_type": "ConnectionError",
                               "exception_message": "connection reset by peer"}
                elif trigger == "retry":
                    details = {"wait_seconds": 2.0, "next_state": "load"}
                buffers[transitions].append({"run_id": run_id, "seq": seq, "attempt": attempt, "source": source,
                                             "dest": dest, "trigger": trigger, "at": at, "details": details})
            n_attempts = path_steps[-1][3]
            for number in range(1, n_attempts + 1):
                last = number == n_attempts
                ok = last and status == "done" or (finalize and number == 1)
                buffers[attempts].append({
                    "run_id": run_id, "number": number, "phase": "finalize" if finalize and number == 1 else "run",
                    "started_at": started + number, "finished_at": started + number + 1,
                    "outcome": "succeeded" if ok else ("interrupted" if status == "interrupted" and last else "failed"),
                    "failed_step": None if ok else "load", "exception_type": None if ok else "ConnectionError",
                    "exception_message": None if ok else "connection reset by peer",
                    "error_class": None if ok else "transient", "wait_seconds": None if last else 2.0,
                    "load_ids": [f"{started:.6f}"],
                })
                if i % 10 == 0:
                    buffers[traces].append({
                        "run_id": run_id, "attempt": number, "pipeline_name": pipeline, "created_at": at,
                        "payload": trace_payload, "ship_load_id": f"{at:.6f}", "shipped_at": at + 1,
                    })
            buffers[runs].append({
                "id": run_id, "pipeline_name": pipeline, "pipelines_dir": "/var/dlt/pipelines",
                "destination_type": "dlt.destinations.duckdb", "destination_name": "duckdb", "dataset_name": pipeline,
                "status": status, "state": path_steps[-1][1], "attempt": n_attempts, "host": "bench-host",
                "pid": 1000 + i % 30000, "process_started_at": started - 1, "started_at": started, "finished_at": at,
                "heartbeat_at": at, "error_type": None if status == "done" else "PipelineStepFailed",
                "error_message": None if status == "done" else "Pipeline execution failed at stage load",
                "config": {"origin": "python", "call": "run", "run_from_clean_folder": False,
                           "store_trace_info": i % 10 == 0, "retry_pipeline_steps": ["load"],
                           "retry_policy": {"stop": "stop_after_attempt(max_attempt_number=5)", "reraise": "True"},
                           "run_kwargs": {"table_name": pipeline}},
            })
            if show_run_id is None and i >= n_runs // 2 and retries and i % 10 == 0:
                show_run_id = run_id  # a run in the middle with retries and traces: a full story
            if len(buffers[transitions]) >= chunk:
                flush()
        flush(force=True)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return {"runs": counts["runs"], "transitions": counts["transitions"], "attempts": counts["attempts"],
            "traces": counts["traces"], "show_run_id": show_run_id}


# ---------------------------------------------------------------------------------------------- workers


def worker_profile_cli(params: dict[str, Any]) -> dict[str, Any]:
    """One whole ``runjournal`` command in this process under pyinstrument, imports included."""
    import contextlib
    import io
    import sys

    from ._profile import profile_runs

    def command() -> None:
        sys.argv = ["runjournal", *params["argv"]]
        with contextlib.redirect_stdout(io.StringIO()):
            from runjournal.cli import main

            try:
                main()
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise

    return profile_runs(lambda: command, 1, params["out"], header=f"runjournal {' '.join(params['argv'])} (one process)")

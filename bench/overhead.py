"""Issue 5, item 1: the engine's overhead over plain ``pipeline.run``, and the journal's first-open cost.

Comparability: dlt's ``Pipeline.run`` syncs with the destination once per Pipeline *instance*
(``_state_restored``), while the runner's ``sync`` state calls ``sync_destination()`` on every run.
Reusing one instance across rounds would give plain dlt a free pass (no sync after round 1) that the
engine never gets. Production jobs create their pipeline afresh for each run (one process per scheduled
run), so both sides get a fresh ``dlt.pipeline(...)`` instance every round, created outside the timing,
with the same pipelines_dir and the same name every round: each round attaches to the working folder
and the duckdb dataset that earlier rounds left, as a daily job does, and each side syncs exactly once.

The journal exists before round 1 and is opened once per process, as in production: ``runner`` caches
the open journal per URL, and the untimed warm-up run opens it. The first open is measured apart, in
fresh processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ._common import (
    INFO, MISS, PASS, Context, Result, alternate, bootstrap_ci, error_result, log, median, ms, run_worker, secs,
    spread,
)

SIDES = ("plain", "engine")
TINY_BUDGET_S = 0.020
MEDIUM_RATIO = 1.03


def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    for size in ("tiny", "medium"):
        title = f"overhead, {size} ({_rows(ctx, size):,} rows)"
        try:
            results.append(_overhead(ctx, size, title))
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            results.append(error_result(f"overhead.{size}", title, exc))
    for kind in ("existing", "new"):
        title = f"journal first open, {'existing file' if kind == 'existing' else 'new file'}"
        try:
            results.append(_first_open(ctx, kind, title))
        except Exception as exc:  # noqa: BLE001
            results.append(error_result(f"overhead.first_open_{kind}", title, exc))
    return results


def _rows(ctx: Context, size: str) -> int:
    return ctx.sizes.tiny_rows if size == "tiny" else ctx.sizes.medium_rows


def _overhead(ctx: Context, size: str, title: str) -> Result:
    base = ctx.workdir(f"overhead-{size}")
    params = {
        "base": str(base),
        "journal": ctx.journal_url(f"overhead-{size}-journal"),
        "rows": _rows(ctx, size),
        "warmup_rows": ctx.sizes.warmup_rows if ctx.sizes.warmup else 0,
        "rounds": ctx.rounds,
        "reps": ctx.sizes.tiny_reps if size == "tiny" else 1,
    }
    log(f"{title}: {params['rounds']} rounds x {params['reps']} runs per side")
    out = run_worker(ctx, "overhead", params)
    plain, engine = out["wall"]["plain"], out["wall"]["engine"]
    mp, me = median(plain), median(engine)
    paired = [e - p for p, e in zip(plain, engine)]
    data = {
        "rows": params["rows"], "rounds": ctx.rounds, "reps": params["reps"],
        "wall_s": {"plain": spread(plain), "engine": spread(engine)},
        "cpu_s": {side: spread(out["cpu"][side]) for side in SIDES},
        "median_paired_difference_s": median(paired),
        "samples_wall_s": out["wall"],
        "loader_file_format": out["loader_file_format"],
    }
    result = Result(f"overhead.{size}", title, ours=f"engine {secs(me)}", baseline=f"plain {secs(mp)}", data=data)
    if size == "tiny":
        diff = me - mp
        data["difference_of_medians_ms"] = diff * 1000
        result.result = f"{diff * 1000:+.1f} ms"
        result.target = f"<= +{TINY_BUDGET_S * 1000:.0f} ms"
        result.status = PASS if diff <= TINY_BUDGET_S else MISS
        low, high = bootstrap_ci(engine, plain, lambda e, p: e - p)
        data["difference_ci95_ms"] = [low * 1000, high * 1000]
        result.note = f"95% CI {low * 1000:+.0f}..{high * 1000:+.0f} ms; paired median {median(paired) * 1000:+.1f} ms"
    else:
        ratio = me / mp
        data["ratio"] = ratio
        result.result = f"x{ratio:.3f} ({(me - mp) * 1000:+.0f} ms)"
        result.target = f"<= x{MEDIUM_RATIO}"
        result.status = PASS if ratio <= MEDIUM_RATIO else MISS
        low, high = bootstrap_ci(engine, plain, lambda e, p: e / p)
        data["ratio_ci95"] = [low, high]
        result.note = f"95% CI x{low:.3f}..x{high:.3f}; cpu x{median(out['cpu']['engine']) / median(out['cpu']['plain']):.3f}"
    if ctx.wants_profile(result.status):
        from ._profile import attach_profile

        attach_profile(ctx, result, "profile_overhead", {**params, "rounds": 1, "reps": 10 if size == "tiny" else 1},
                       f"overhead-{size}")
    return result


def _first_open(ctx: Context, kind: str, title: str) -> Result:
    """``Journal.open`` in a fresh process (imports done first, untimed): what the first ``runner`` pays."""
    base = ctx.workdir("first-open")
    existing = f"sqlite:///{base / 'existing.sqlite'}"
    if kind == "existing":
        run_worker(ctx, "first_open", {"url": existing})  # create it once, untimed
    samples, imports = [], []
    for r in range(ctx.sizes.first_open_rounds):
        url = existing if kind == "existing" else f"sqlite:///{base / f'new-{r}-{time.time_ns()}.sqlite'}"
        out = run_worker(ctx, "first_open", {"url": url})
        samples.append(out["open_s"])
        imports.append(out["import_s"])
    value = median(samples)
    return Result(
        f"overhead.first_open_{kind}", title, ours=ms(value), result=ms(value), target="(reported)", status=INFO,
        note=f"once per process and URL; import journal {ms(median(imports))}",
        data={"open_s": spread(samples), "import_journal_s": spread(imports), "fresh_process_per_sample": True},
    )


# ---------------------------------------------------------------------------------------------- workers


def worker_overhead(params: dict[str, Any]) -> dict[str, Any]:
    from . import _data
    from runjournal import runner

    base, url = Path(params["base"]), params["journal"]
    from runjournal.journal import Journal

    Journal.open(url).close()  # the journal exists before the first run (created untimed)

    def plain(pipeline, data):
        return pipeline.run(data, loader_file_format=_data.LOADER_FILE_FORMAT)

    def engine(pipeline, data):
        return runner(pipeline, journal=url).run(data, loader_file_format=_data.LOADER_FILE_FORMAT)

    run_side = {"plain": plain, "engine": engine}

    def one(side: str, n: int):
        pipeline = _data.duckdb_pipeline(f"overhead_{side}", base)
        data = _data.rows(n)
        wall, cpu, info = _data.timed(lambda: run_side[side](pipeline, data))
        _data.check_loaded(info, f"{side} run")
        return wall, cpu

    if params["warmup_rows"]:
        for side in SIDES:  # imports, duckdb tables, the journal's open: all before round 1
            one(side, params["warmup_rows"])
    wall: dict[str, list[float]] = {s: [] for s in SIDES}
    cpu: dict[str, list[float]] = {s: [] for s in SIDES}
    for r in range(params["rounds"]):
        for _ in range(params["reps"]):
            for side in alternate(SIDES, r):
                w, c = one(side, params["rows"])
                wall[side].append(w)
                cpu[side].append(c)
    return {"wall": wall, "cpu": cpu, "loader_file_format": _data.LOADER_FILE_FORMAT}


def worker_profile_overhead(params: dict[str, Any]) -> dict[str, Any]:
    """Profile both sides, alternately, after the same warm-up: the engine's summary, and dlt's steps on each side."""
    from . import _data
    from ._profile import dlt_steps, pyinstrument_missing, start_profiler, summarize
    from runjournal import runner

    missing = pyinstrument_missing()
    if missing:
        return missing
    base, url = Path(params["base"]), params["journal"]

    def call(side: str):
        pipeline = _data.duckdb_pipeline(f"overhead_{side}", base)
        data = _data.rows(params["rows"])
        if side == "plain":
            return lambda: pipeline.run(data, loader_file_format=_data.LOADER_FILE_FORMAT)
        return lambda: runner(pipeline, journal=url).run(data, loader_file_format=_data.LOADER_FILE_FORMAT)

    for side in SIDES:
        call(side)()  # warm
    runs = params["reps"]
    timed_lines = _timed_breakdown(call, runs)
    profilers = {side: start_profiler() for side in SIDES}
    for r in range(params["reps"]):
        for side in alternate(SIDES, r):
            fn = call(side)
            profilers[side].start()
            fn()
            profilers[side].stop()
    sessions = {side: profilers[side].last_session for side in SIDES}
    steps = {side: dlt_steps(sessions[side].root_frame()) for side in SIDES}
    compare = ["per run, plain vs engine (same process, alternating):",
               f"  total            plain {sessions['plain'].duration * 1000 / runs:8.1f} ms"
               f"   engine {sessions['engine'].duration * 1000 / runs:8.1f} ms"]
    for step in sorted(set(steps["plain"]) | set(steps["engine"])):
        compare.append(f"  Pipeline.{step + '()':<18} plain {steps['plain'].get(step, 0) * 1000 / runs:8.1f} ms"
                       f"   engine {steps['engine'].get(step, 0) * 1000 / runs:8.1f} ms")
    engine_lines = summarize(sessions["engine"].root_frame(), sessions["engine"].duration, runs)
    plain_lines = summarize(sessions["plain"].root_frame(), sessions["plain"].duration, runs)
    text = [f"overhead profile: {params['rows']:,} rows, {runs} run(s) per side", "", *timed_lines, "", *compare, "",
            "ENGINE side", *engine_lines, "", "PLAIN side", *plain_lines, ""]
    for side in ("engine", "plain"):
        text += [f"pyinstrument call tree, {side} side (all runs combined)",
                 profilers[side].output_text(unicode=False, color=False, show_all=False)]
    Path(params["out"]).write_text("\n".join(text))
    return {"where": timed_lines + ["pyinstrument " + compare[0], *compare[1:], "engine side under pyinstrument:"]
            + engine_lines[1:], "profile": params["out"]}


def _timed_breakdown(call, runs: int) -> list[str]:
    """Both sides alternately without a profiler; the engine's parts timed by plain timers (means per run)."""
    from ._data import timed
    from ._timers import ENGINE_TARGETS, instrument, journal_targets

    walls: dict[str, list[float]] = {side: [] for side in SIDES}
    with instrument([*ENGINE_TARGETS, *journal_targets()]) as timers:
        for r in range(runs):
            for side in alternate(SIDES, r):
                wall, _cpu, _ = timed(call(side))
                walls[side].append(wall)
    mean = {side: sum(walls[side]) / len(walls[side]) for side in SIDES}
    return [f"timed without a profiler ({runs} runs per side, means): engine {mean['engine'] * 1000:.1f} ms, "
            f"plain {mean['plain'] * 1000:.1f} ms, difference {(mean['engine'] - mean['plain']) * 1000:+.1f} ms; "
            "the engine's parts (nested calls counted in each):", *timers.lines(runs)]


def worker_first_open(params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    from runjournal.journal import Journal

    imported = time.perf_counter()
    journal = Journal.open(params["url"])
    opened = time.perf_counter()
    journal.close()
    return {"import_s": imported - started, "open_s": opened - imported, "pid": os.getpid()}

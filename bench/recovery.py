"""Issue 5, item 5: `runjournal recover` after a ``kill -9`` in the load of a medium run, against that load alone.

Each round, alternating which side goes first:

- recover: a child runs ``runner(pipeline).run(rows)`` to duckdb and SIGKILLs itself as soon as the
  transition into ``load`` is committed (the whole load is left to do). A fresh process then imports
  what `runjournal recover` imports and builds a throwaway duckdb pipeline, as the plain side builds
  its own (untimed), and times ``runjournal._recovery.recover(journal)``: crash
  detection, attaching to the pipeline from the journal, repairs, finalizing the package, traces off.
  The journal must show that recovery neither extracted nor normalized again.
- plain: a fresh process extracts and normalizes the same rows with plain dlt (untimed) and times
  ``pipeline.load()``: the time of that load alone.

The whole `runjournal recover` command also pays Python's start and dlt's import (~1 s here); that
is reported beside the verdict, which compares the work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ._common import (
    MISS, PASS, Context, Result, alternate, bootstrap_ci, error_result, log, median, run_worker, secs, spread,
)

SIDES = ("recover", "plain")
TARGET_RATIO = 1.2
PIPELINE = "bench_recovery"


def run(ctx: Context) -> list[Result]:
    title = f"recovery after kill -9 in load, medium ({ctx.sizes.medium_rows:,} rows)"
    try:
        return [_measure(ctx, title)]
    except Exception as exc:  # noqa: BLE001
        return [error_result("recovery.recover", title, exc)]


def _measure(ctx: Context, title: str) -> Result:
    log(f"{title}: {ctx.rounds} rounds")
    samples: dict[str, list[float]] = {s: [] for s in SIDES}
    redone: list[list[str]] = []
    whole_command: list[float] = []
    for r in range(ctx.rounds):
        for side in alternate(SIDES, r):
            base = ctx.workdir(f"recovery/{r}-{side}")
            params = {"base": str(base), "rows": ctx.sizes.medium_rows, "journal": f"sqlite:///{base / 'j.sqlite'}"}
            if side == "plain":
                samples[side].append(run_worker(ctx, "recovery_plain_load", params)["load_s"])
                continue
            _kill_in_load(ctx, params)
            out = run_worker(ctx, "recovery_recover", params)
            samples[side].append(out["recover_s"])
            redone.append(out["redone"])
            whole_command.append(out["process_s"])
    ratio = median(samples["recover"]) / median(samples["plain"])
    low, high = bootstrap_ci(samples["recover"], samples["plain"], lambda a, b: a / b)
    nothing_redone = not any(redone)
    status = PASS if ratio <= TARGET_RATIO and nothing_redone else MISS
    return Result(
        "recovery.recover", title, ours=f"recover {secs(median(samples['recover']))}",
        baseline=f"load alone {secs(median(samples['plain']))}",
        result=f"x{ratio:.2f} (95% CI {low:.2f}..{high:.2f}); "
               f"{'nothing redone' if nothing_redone else 'REDONE: ' + ', '.join(sorted({s for r in redone for s in r}))}",
        target=f"<= x{TARGET_RATIO}, no extract or normalize", status=status,
        note=f"whole command incl. Python start and imports {secs(median(whole_command))}",
        data={"rows": ctx.sizes.medium_rows, "rounds": ctx.rounds, "recover_s": spread(samples["recover"]),
              "load_alone_s": spread(samples["plain"]), "ratio": ratio, "ci95": [low, high], "redone": redone,
              "whole_process_s": spread(whole_command)},
    )


def _kill_in_load(ctx: Context, params: dict[str, Any]) -> None:
    command = [ctx.python, "-m", "bench._worker", "recovery_victim", __import__("json").dumps(params)]
    env = {**ctx.env, "RUNJOURNAL_URL": params["journal"]}
    victim = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ctx.workdir("cwd"), env=env)
    if victim.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the victim was not killed in load (exit {victim.returncode}): {victim.stderr[-2000:]}")


# ---------------------------------------------------------------------------------------------- workers


def worker_victim(params: dict[str, Any]) -> dict[str, Any]:
    from dlt.common.runtime.collector import NullCollector

    from . import _data
    from runjournal import runner

    class KillInLoad(NullCollector):
        def on_transition(self, pipeline, transition) -> None:
            if transition.dest == "load":
                os.kill(os.getpid(), signal.SIGKILL)

    pipeline = _data.duckdb_pipeline(PIPELINE, Path(params["base"]))
    pipeline.collector = KillInLoad()
    runner(pipeline, journal=params["journal"]).run(
        _data.rows(params["rows"]), loader_file_format=_data.LOADER_FILE_FORMAT
    )
    raise RuntimeError("the victim was not killed")


def worker_recover(params: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic() - _process_age()
    from runjournal._recovery import recover
    from runjournal.journal import Journal

    from . import _data

    # What the plain side pays before its timer when it builds its pipeline, this side pays here too:
    # dlt initializing its runtime (logging, requests) and importing SQLAlchemy for duckdb's credentials.
    _data.duckdb_pipeline("bench_warmup", Path(params["base"]) / "warmup")

    with Journal.open(params["journal"]) as journal:
        t0 = time.perf_counter()
        outcomes = recover(journal)
        elapsed = time.perf_counter() - t0
        (outcome,) = outcomes
        story = journal.get_story(outcome.run_id)
    if outcome.status != "recovered":
        raise RuntimeError(f"recovery ended {outcome.status}: {outcome.error}")
    recovery = [t for t in story.transitions if t.attempt == 2]
    redone = sorted({t.dest for t in recovery if t.dest in ("extract", "normalize")}
                    | {"normalize" for t in recovery if (t.details or {}).get("row_counts")})
    return {"recover_s": elapsed, "redone": redone, "process_s": time.monotonic() - started}


def worker_plain_load(params: dict[str, Any]) -> dict[str, Any]:
    from . import _data

    pipeline = _data.duckdb_pipeline(PIPELINE, Path(params["base"]))
    pipeline.extract(_data.rows(params["rows"]), loader_file_format=_data.LOADER_FILE_FORMAT)
    pipeline.normalize()
    t0 = time.perf_counter()
    pipeline.load()
    return {"load_s": time.perf_counter() - t0}


def _process_age() -> float:
    """Seconds since this process started (its start time from /proc), so the whole command is counted."""
    import psutil

    return time.time() - psutil.Process().create_time()

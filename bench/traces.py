"""Issue 5, item 2: the cost of storing traces, ours against dlt+'s.

Four variants run alternately on the same data, each with a fresh Pipeline instance every run:

- ``plain``          dlt alone under the retry policy (``pipeline.run``), no traces;
- ``dltplus``        the same, plus dlt+'s trace storage after each attempt: a separate trace pipeline
                     ``drop()`` + ``run([pipeline.last_trace.asdict()], table_name=f"{name}_trace")``;
- ``ours``           ``runner(pipeline, store_trace_info=False)``;
- ``ours_traces``    ``runner(pipeline, store_trace_info=...)``.

Our trace cost is ``ours_traces - ours``, the baseline's ``dltplus - plain`` (medians); the target is
ours <= half of the baseline's.

Cases: ``tiny`` (10 rows to duckdb, one attempt; traces go to the same duckdb file through the default
trace pipeline, created inside the timed call by both dlt+ and us) and ``retries`` (three attempts: the main
destination is a real ``@dlt.destination`` sink failing its first two calls transiently; traces go to a
duckdb trace pipeline created before the timed call, passed as ``store_trace_info=`` to us). dlt's load
step waits its full 1 s poll interval after a job asks for a retry (it signals only finished jobs), so
each failed attempt costs every variant ~1 s: ``--smoke`` uses one failure, not two, to stay under 60 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import Context, MISS, PASS, Result, alternate, error_result, log, median, ms, run_worker, spread

VARIANTS = ("plain", "dltplus", "ours", "ours_traces")
TARGET_FRACTION = 0.5


def run(ctx: Context) -> list[Result]:
    results = []
    failures = ctx.sizes.retry_failures
    for case, title in (("tiny", f"trace cost, 1 attempt ({ctx.sizes.tiny_rows} rows)"),
                        ("retries", f"trace cost, {failures + 1} attempts ({failures} failed)")):
        try:
            results.append(_case(ctx, case, title))
        except Exception as exc:  # noqa: BLE001
            results.append(error_result(f"traces.{case}", title, exc))
    return results


def _params(ctx: Context, case: str) -> dict[str, Any]:
    return {
        "case": case,
        "base": str(ctx.workdir(f"traces-{case}")),
        "journal": ctx.journal_url(f"traces-{case}-journal"),
        "rows": ctx.sizes.tiny_rows,
        "rounds": ctx.rounds,
        "reps": ctx.sizes.trace_reps if case == "tiny" else ctx.sizes.retry_reps,
        "warmup": ctx.sizes.warmup,
        "failures": ctx.sizes.retry_failures if case == "retries" else 0,
    }


def _env(case: str) -> dict[str, str]:
    # Each transient job failure ends the load step (dlt would otherwise retry the job 5 times within one
    # load() call), so each sink failure is one failed attempt of the run: the same for all variants.
    return {"LOAD__RAISE_ON_MAX_RETRIES": "1"} if case == "retries" else {}


def _case(ctx: Context, case: str, title: str) -> Result:
    params = _params(ctx, case)
    log(f"{title}: {params['rounds']} rounds x {params['reps']} runs per variant")
    out = run_worker(ctx, "traces", params, env=_env(case))
    wall = out["wall"]
    med = {v: median(wall[v]) for v in VARIANTS}
    ours_cost = med["ours_traces"] - med["ours"]
    base_cost = med["dltplus"] - med["plain"]
    fraction = ours_cost / base_cost if base_cost > 0 else float("inf")
    result = Result(
        f"traces.{case}", title,
        ours=f"+{ms(ours_cost)} ({med['ours_traces'] * 1000:,.0f} vs {med['ours'] * 1000:,.0f})",
        baseline=f"dlt+ +{ms(base_cost)} ({med['dltplus'] * 1000:,.0f} vs {med['plain'] * 1000:,.0f})",
        result=f"{fraction:.2f} of dlt+'s",
        target=f"<= {TARGET_FRACTION}",
        status=PASS if ours_cost <= TARGET_FRACTION * base_cost else MISS,
        note=f"{out['traces_per_run']} trace(s) shipped per run; ours-with minus ours-without vs dlt+ minus plain",
        data={
            "case": case, "rows": params["rows"], "rounds": ctx.rounds, "reps": params["reps"],
            "wall_s": {v: spread(wall[v]) for v in VARIANTS},
            "ours_trace_cost_s": ours_cost, "dltplus_trace_cost_s": base_cost, "fraction": fraction,
            "samples_wall_s": wall, "checks": out["checks"],
        },
    )
    if ctx.wants_profile(result.status):
        from ._profile import attach_profile

        attach_profile(ctx, result, "profile_traces", {**params, "reps": 3}, f"traces-{case}", env=_env(case))
    return result


# ---------------------------------------------------------------------------------------------- workers


class _Variants:
    """The four ways to run, sharing one worker process (journal opened once, as in production)."""

    def __init__(self, params: dict[str, Any]):
        from . import _data

        self.data_mod = _data
        self.case = params["case"]
        self.base = Path(params["base"])
        self.url = params["journal"]
        self.rows = params["rows"]
        self.sink = _data.FlakySink() if self.case == "retries" else None
        self.failures = params["failures"]
        self.attempts = self.failures + 1
        self.last_runner = None

    def policy(self):
        return self.data_mod.attempts(self.attempts)

    def prepare(self, variant: str):
        """Untimed: a fresh main pipeline (and with retries a fresh duckdb trace pipeline) and fresh data."""
        d = self.data_mod
        name = f"traces_{variant}"
        if self.sink is not None:
            self.sink.reset(self.failures)
            pipeline = d.sink_pipeline(name, self.base, self.sink.destination)
            tracer = d.duckdb_pipeline(f"{name}_tracer", self.base, self.base / f"{name}_traces.duckdb", "traces")
        else:
            pipeline = d.duckdb_pipeline(name, self.base)
            tracer = None
        return pipeline, tracer, d.rows(self.rows)

    def call(self, variant: str, pipeline, tracer, data):
        from runjournal import runner

        d = self.data_mod
        kwargs = {"loader_file_format": d.LOADER_FILE_FORMAT} if self.sink is None else {}
        if variant in ("plain", "dltplus"):
            return lambda: d.dltplus_run(pipeline, data, retry_policy=self.policy(),
                                         store_traces=variant == "dltplus", trace_pipeline=tracer, **kwargs)
        store = (tracer if tracer is not None else True) if variant == "ours_traces" else False

        def ours():
            r = runner(pipeline, store_trace_info=store, retry_policy=self.policy(), journal=self.url)
            self.last_runner = r
            return r.run(data, **kwargs)

        return ours

    def check(self, variant: str, info) -> None:
        if info is None:
            raise RuntimeError(f"{variant}: nothing was loaded")
        if self.sink is not None and self.sink.calls != self.attempts:
            raise RuntimeError(f"{variant}: the sink was called {self.sink.calls} times, expected {self.attempts}")


def worker_traces(params: dict[str, Any]) -> dict[str, Any]:
    from runjournal.journal import Journal

    v = _Variants(params)
    Journal.open(v.url).close()
    checks: dict[str, Any] = {}

    def one(variant: str) -> float:
        pipeline, tracer, data = v.prepare(variant)
        wall, _cpu, info = v.data_mod.timed(v.call(variant, pipeline, tracer, data))
        v.check(variant, info)
        return wall

    # Untimed warm-up (or, in smoke mode, the first round doubles as it): imports, tables, the journal;
    # and a check that each variant does what it claims.
    traces_per_run = 0
    if params["warmup"]:
        for variant in VARIANTS:
            one(variant)
    wall: dict[str, list[float]] = {x: [] for x in VARIANTS}
    for r in range(params["rounds"]):
        for _ in range(params["reps"]):
            for variant in alternate(VARIANTS, r):
                wall[variant].append(one(variant))
                if variant == "ours_traces" and not checks:
                    with Journal.open(v.url) as journal:
                        story = journal.get_story(v.last_runner.last_run_id)
                    shipped = [t for t in story.traces if t.shipped_at is not None]
                    traces_per_run = len(shipped)
                    checks = {"ours_attempts": len(story.attempts), "ours_traces_shipped": len(shipped),
                              "ours_status": story.run.status}
                    if story.run.status != "done" or len(shipped) != v.attempts:
                        raise RuntimeError(f"ours_traces did not ship one trace per attempt: {checks}")
    return {"wall": wall, "attempts": v.attempts, "traces_per_run": traces_per_run, "checks": checks}


def worker_profile_traces(params: dict[str, Any]) -> dict[str, Any]:
    """Profile ours_traces runs (after a warm-up; pipelines made outside the profile): where the trace cost goes."""
    from ._profile import profile_runs

    v = _Variants(params)

    def prepare():
        pipeline, tracer, data = v.prepare("ours_traces")
        return v.call("ours_traces", pipeline, tracer, data)

    prepare()()  # warm
    timed_lines = _timed_breakdown(v, params["reps"])
    return profile_runs(prepare, params["reps"], params["out"], extra=timed_lines,
                        header=f"runner(store_trace_info=...) runs, case {params['case']}")


def _timed_breakdown(v: "_Variants", runs: int) -> list[str]:
    """ours and ours_traces alternately, without a profiler; the trace parts timed by plain timers."""
    from ._timers import ENGINE_TARGETS, Timers, instrument, journal_targets

    walls: dict[str, list[float]] = {"ours": [], "ours_traces": []}
    timers = {"ours": Timers(), "ours_traces": Timers()}
    targets = [*ENGINE_TARGETS, *journal_targets()]
    for r in range(runs):
        for variant in alternate(("ours", "ours_traces"), r):
            pipeline, tracer, data = v.prepare(variant)
            with instrument(targets, timers[variant]):
                wall, _cpu, _ = v.data_mod.timed(v.call(variant, pipeline, tracer, data))
            walls[variant].append(wall)
    mean = {k: sum(x) / len(x) for k, x in walls.items()}
    return [f"timed without a profiler ({runs} runs each, means): ours_traces {mean['ours_traces'] * 1000:.1f} ms, "
            f"ours {mean['ours'] * 1000:.1f} ms, trace cost {(mean['ours_traces'] - mean['ours']) * 1000:+.1f} ms",
            "ours_traces parts (nested calls counted in each):", *timers["ours_traces"].lines(runs),
            "ours (no traces) parts:", *timers["ours"].lines(runs, top=6)]

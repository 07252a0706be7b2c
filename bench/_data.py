"""The data, pipelines and baselines the workers run (imports dlt: workers only, never the parent)."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any, Callable, Optional

import dlt
from tenacity import Retrying, stop_after_attempt, wait_none

# dlt's preferred format for duckdb, insert_values, loads 200,000 rows in ~50 s on the 2-core bench machine
# (the load step parses huge INSERT statements); jsonl loads them in ~1 s. jsonl keeps the full bench within
# its time budget and makes the overhead ratio stricter, not looser: the faster the load, the more the
# engine's fixed costs weigh. Both sides always use the same format.
LOADER_FILE_FORMAT = "jsonl"
TABLE = "items"
DATASET = "bench"
_CATEGORIES = ("books", "games", "music", "tools", "toys")
_PAGE = 5_000


def rows(n: int, name: str = TABLE):
    """``n`` deterministic rows as a dlt resource made from a function, so it can be extracted again."""

    @dlt.resource(name=name, table_name=name)
    def items():
        for start in range(0, n, _PAGE):
            yield [
                {"id": i, "name": f"item-{i}", "price": i * 0.25, "in_stock": i % 3 == 0,
                 "category": _CATEGORIES[i % 5]}
                for i in range(start, min(n, start + _PAGE))
            ]

    return items()


def duckdb_pipeline(name: str, base: Path, duckdb_file: Optional[Path] = None, dataset: str = DATASET):
    """A fresh Pipeline instance; every pipeline of a worker shares ``base/pipelines`` (the same layout)."""
    duckdb_file = duckdb_file or base / f"{name}.duckdb"
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(base / "pipelines"),
        destination=dlt.destinations.duckdb(str(duckdb_file)),
        dataset_name=dataset,
    )


def sink_pipeline(name: str, base: Path, destination):
    return dlt.pipeline(pipeline_name=name, pipelines_dir=str(base / "pipelines"), destination=destination,
                        dataset_name=DATASET)


class FlakySink:
    """A real ``@dlt.destination`` that fails its first ``failures`` calls with a transient error.

    With ``LOAD__RAISE_ON_MAX_RETRIES=1`` each failed call ends the load step, so each failure is a
    failed attempt of the run, as a flaky API would cause.
    """

    def __init__(self):
        self.calls = 0
        self.failures = 0

        @dlt.destination(batch_size=10_000, name="flaky_sink")
        def flaky_sink(items, table) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise RuntimeError(f"transient sink failure {self.calls}")

        self.destination = flaky_sink

    def reset(self, failures: int) -> None:
        self.calls = 0
        self.failures = failures


def single_attempt() -> Retrying:
    return Retrying(stop=stop_after_attempt(1), reraise=True)


def attempts(n: int) -> Retrying:
    """Up to ``n`` attempts, no wait between them (the same policy for dlt+'s loop and for ours)."""
    return Retrying(stop=stop_after_attempt(n), wait=wait_none(), reraise=True)


def dltplus_trace_pipeline(pipeline):
    """dlt+'s default trace pipeline: ``_trace_<name>``, same destination, dataset ``_trace_<dataset>``
    (in the main pipeline's pipelines_dir, so that the bench stays in its temporary directory)."""
    return dlt.pipeline(
        pipeline_name=f"_trace_{pipeline.pipeline_name}",
        pipelines_dir=pipeline.pipelines_dir,
        destination=pipeline.destination,
        dataset_name=f"_trace_{pipeline.dataset_name}",
    )


def dltplus_run(pipeline, data, *, retry_policy: Optional[Retrying] = None, store_traces: bool,
                trace_pipeline=None, **run_kwargs):
    """The dlt+ runner's way, with public dlt only: ``pipeline.run`` under the retry policy and, after
    each attempt, the attempt's trace stored by a separate dlt pipeline: ``trace_pipeline.drop()`` then
    ``trace_pipeline.run([pipeline.last_trace.asdict()], table_name=f"{name}_trace")``.

    ``store_traces=False`` is the same loop without traces: plain dlt under the same retry policy.
    A retried ``pipeline.run(data)`` finds the failed package pending and only loads it, as dlt+'s does.
    """
    policy = (retry_policy or single_attempt()).copy()
    for attempt in policy:
        with attempt:
            try:
                return pipeline.run(data, **run_kwargs)
            finally:
                if store_traces:
                    if trace_pipeline is None:
                        trace_pipeline = dltplus_trace_pipeline(pipeline)
                    trace_pipeline.drop()
                    trace_pipeline.run([pipeline.last_trace.asdict()], table_name=f"{pipeline.pipeline_name}_trace")
                    pipeline.activate()
    return None


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process's threads, result); garbage is collected first, untimed."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def check_loaded(info, what: str) -> None:
    if info is None:
        raise RuntimeError(f"{what}: nothing was loaded")
    if info.has_failed_jobs:
        raise RuntimeError(f"{what}: failed jobs: {info}")

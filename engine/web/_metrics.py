"""``/metrics``: the journal in Prometheus's text format, computed at each scrape.

Labels are bounded: ``pipeline``, ``status`` and ``outcome``, never a run id. Runs the journal calls
running whose process is gone count as crashed, as every reader shows them. The duration summary is
over the runs started in the last ``RECENT`` seconds that have finished (its quantiles are of that
window, as a client library's summary quantiles are of theirs).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Callable, Iterator, Optional

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from runjournal._crashes import as_seen
from runjournal.journal import Journal, RUN_STATUSES

RECENT = 86400.0
QUANTILES = (0.5, 0.9, 0.99)


class JournalCollector:
    """A prometheus_client collector reading the journal that ``journal()`` returns (None: not there yet)."""

    def __init__(self, journal: Callable[[], Optional[Journal]]):
        self.journal = journal

    def collect(self) -> Iterator[Metric]:
        jnl, now = self.journal(), time.time()
        snapshot = None if jnl is None else jnl.metrics_snapshot(since=now - RECENT)
        runs: Counter = Counter(snapshot.run_counts if snapshot else {})
        running: Counter = Counter()
        for run in snapshot.running if snapshot else ():
            if as_seen(run, jnl, now).status == "crashed":  # journaled running, its process gone
                runs[(run.pipeline_name, "running")] -= 1
                runs[(run.pipeline_name, "crashed")] += 1
            else:
                running[run.pipeline_name] += 1
        pipelines = sorted({pipeline for pipeline, _ in runs})
        yield _last_success(jnl, pipelines)
        yield _counter("runjournal_runs", "Runs in the journal, by status (a run taken up again moves between statuses).",
                       "status", runs, pipelines, RUN_STATUSES)
        attempts = snapshot.attempt_counts if snapshot else {}
        yield _counter("runjournal_attempts", "Attempts in the journal, by outcome.", "outcome", attempts, pipelines,
                       sorted({outcome for _, outcome in attempts}))
        yield _gauge("runjournal_running_runs", "Runs running now, their process alive.",
                     {p: running[p] for p in pipelines})
        yield _gauge("runjournal_crashed_runs", "Runs that crashed and were not taken up again (recover, resume).",
                     {p: runs[(p, "crashed")] for p in pipelines})
        yield _durations(snapshot.durations if snapshot else [])


def _last_success(jnl: Optional[Journal], pipelines: list[str]) -> Metric:
    metric = GaugeMetricFamily("runjournal_last_success_timestamp_seconds",
                               "When the pipeline's last run that ended done finished (Unix time).",
                               labels=["pipeline"])
    if jnl is not None:
        for summary in jnl.pipeline_summaries(day_ago=time.time() - RECENT)[0]:
            if summary.last_success_finished_at is not None:
                metric.add_metric([summary.name], summary.last_success_finished_at)
    return metric


def _counter(name: str, documentation: str, label: str, counts, pipelines: list[str], values) -> Metric:
    metric = CounterMetricFamily(name, documentation, labels=["pipeline", label])
    for pipeline in pipelines:
        for value in values:
            metric.add_metric([pipeline, value], max(0, counts.get((pipeline, value), 0)))
    return metric


def _gauge(name: str, documentation: str, values: dict[str, float]) -> Metric:
    metric = GaugeMetricFamily(name, documentation, labels=["pipeline"])
    for pipeline, value in values.items():
        metric.add_metric([pipeline], value)
    return metric


def _durations(durations: list[tuple[str, str, float]]) -> Metric:
    metric = Metric("runjournal_run_duration_seconds",
                    f"Wall time of the runs started in the last {RECENT / 3600:g} h that have finished.", "summary")
    by_key: dict[tuple[str, str], list[float]] = defaultdict(list)
    for pipeline, status, seconds in durations:
        by_key[(pipeline, status)].append(max(0.0, seconds))
    for (pipeline, status), values in sorted(by_key.items()):
        values.sort()
        labels = {"pipeline": pipeline, "status": status}
        for quantile in QUANTILES:
            index = min(len(values) - 1, int(quantile * len(values)))
            metric.add_sample("runjournal_run_duration_seconds", {**labels, "quantile": str(quantile)}, values[index])
        metric.add_sample("runjournal_run_duration_seconds_count", labels, len(values))
        metric.add_sample("runjournal_run_duration_seconds_sum", labels, sum(values))
    return metric


def exposition(journal: Callable[[], Optional[Journal]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JournalCollector(journal))
    return generate_latest(registry)

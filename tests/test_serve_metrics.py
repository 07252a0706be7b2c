"""`/metrics` is the journal in Prometheus's text format: prometheus-client's parser reads it, its
figures are the journal's (a dead run counted crashed), and its labels never hold a run id."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tests._serve_support import EVIL_PIPELINE, fleet, get, served


def _samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_are_scraped_and_parsed(journal_url):
    runs = fleet(journal_url)
    with served(journal_url) as base:
        reply = get(base + "/metrics")
        story = json.loads(get(base + f"/api/runs/{runs.done}").body)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = _samples(reply.body)

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("runjournal_runs_total", pipeline="orders", status="done") == 1
    assert value("runjournal_runs_total", pipeline="orders", status="failed") == 1
    assert value("runjournal_runs_total", pipeline="payments", status="crashed") == 1  # journaled running, gone
    assert value("runjournal_runs_total", pipeline="payments", status="running") == 0
    assert value("runjournal_runs_total", pipeline=EVIL_PIPELINE, status="failed") == 1
    assert value("runjournal_attempts_total", pipeline="orders", outcome="failed") == 2
    assert value("runjournal_attempts_total", pipeline="orders", outcome="succeeded") == 1
    assert value("runjournal_running_runs", pipeline="inventory") == 1
    assert value("runjournal_running_runs", pipeline="payments") == 0
    assert value("runjournal_crashed_runs", pipeline="payments") == 1
    assert value("runjournal_crashed_runs", pipeline="orders") == 0
    finished = story["run"]["finished_at"]
    last_success = value("runjournal_last_success_timestamp_seconds", pipeline="orders")
    from datetime import datetime

    assert abs(last_success - datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()) < 0.01
    assert ("runjournal_last_success_timestamp_seconds", (("pipeline", "payments"),)) not in samples  # never
    assert value("runjournal_run_duration_seconds_count", pipeline="orders", status="done") == 1
    assert value("runjournal_run_duration_seconds_sum", pipeline="orders", status="done") == 1.5
    assert value("runjournal_run_duration_seconds", pipeline="orders", status="done", quantile="0.5") == 1.5
    # bounded labels: never a run id
    label_names = {name for _, labels in samples for name, _ in labels}
    assert label_names == {"pipeline", "status", "outcome", "quantile"}
    for run_id in (runs.done, runs.failed, runs.crashed, runs.running):
        assert run_id[:12] not in reply.body


def test_metrics_of_a_journal_not_there_yet_are_empty(tmp_path):
    url = f"sqlite:///{tmp_path / 'not-yet.sqlite'}"
    with served(url) as base:
        reply = get(base + "/metrics")
        overview = get(base + "/")
    assert reply.status == 200 and not [s for f in text_string_to_metric_families(reply.body) for s in f.samples]
    assert overview.status == 200 and "does not exist yet" in overview.body
    assert not (tmp_path / "not-yet.sqlite").exists()

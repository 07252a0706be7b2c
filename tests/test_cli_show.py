"""`runjournal show`: one run's story, by id or unique prefix, as tables or JSON."""

from __future__ import annotations

import time

import pytest

from ._cli_support import Filler, assert_no_traceback, cli, cli_json, create_empty

RUN_KEYS = {
    "id", "pipeline", "status", "state", "attempts", "host", "pid", "started_at", "finished_at",
    "duration_s", "heartbeat_at", "destination_type", "dataset_name", "error_type", "error_message", "failed_jobs", "config",
    "presumed_crash", "labels",
}
TRANSITION_KEYS = {"seq", "attempt", "source", "dest", "trigger", "at", "details"}
ATTEMPT_KEYS = {
    "number", "phase", "started_at", "finished_at", "outcome", "failed_step", "error_class",
    "exception_type", "exception_message", "wait_seconds", "load_ids",
}
TRACE_KEYS = {"attempt", "created_at", "shipped_at", "ship_load_id", "ship_error"}


@pytest.fixture
def runs(journal_url):
    now = time.time()
    filler = Filler(journal_url)
    ids = {"failed": filler.failed("orders", at=now - 600), "done": filler.succeeded("orders", at=now - 300)}
    filler.close()
    return ids


def test_show_by_prefix_tells_the_whole_story(journal_url, runs):
    run_id = runs["failed"]
    result = cli("show", run_id[:14], url=journal_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        run_id, "orders", "duckdb (warehouse)", "orders_data", "failed (attempt 2)", "worker-1:4242",
        "PipelineStepFailed: Pipeline execution failed at stage extract: row 3 has no id", "heartbeat    last ",
    ):
        assert expected in out
    assert " ago" not in out  # a finished run's heartbeat is a time, not an age
    assert "more detail" not in out
    timeline = out[out.index("timeline"):out.index("attempts")]
    rows = [line.split() for line in timeline.splitlines()[2:] if line.strip()]
    assert [row[0] for row in rows] == [str(n) for n in range(1, 10)]
    assert ["extract", "→", "store_trace", "attempt_failed", '{"step":"extract"}'] == rows[4][3:]
    assert rows[6][2:7] == ["2", "retry_wait", "→", "extract", "resume"]
    attempts = out[out.index("attempts"):out.index("traces")]
    assert "transient" in attempts and "ConnectionError: api.example.com timed out [after 30s]" in attempts
    assert "2.0s" in attempts
    assert "terminal" in attempts and "ValueError: row 3 has no id" in attempts
    traces = out[out.index("\ntraces"):]
    assert "not shipped: destination refused the trace" in traces
    assert "details" not in traces  # first line of the ship error only


def test_show_shipped_trace_and_load_ids(journal_url, runs):
    result = cli("show", runs["done"], url=journal_url)
    assert result.returncode == 0, result.stderr
    assert "1714570000.1" in result.stdout
    traces = result.stdout[result.stdout.index("\ntraces"):]
    assert "not shipped" not in traces


def test_show_json_shape(journal_url, runs):
    story = cli_json("show", runs["failed"][:10], url=journal_url)
    assert set(story) == {"run", "transitions", "attempts", "traces", "packages", "jobs", "schema_changes"}
    assert set(story["run"]) == RUN_KEYS
    assert story["run"]["id"] == runs["failed"]
    assert story["run"]["config"] == {"retries": 3, "origin": "tests"}
    assert [set(t) for t in story["transitions"]] == [TRANSITION_KEYS] * 9
    assert [t["seq"] for t in story["transitions"]] == list(range(1, 10))
    assert story["transitions"][4]["details"] == {"step": "extract"}
    assert story["transitions"][0]["details"] is None
    assert all(t["at"].endswith("Z") for t in story["transitions"])
    assert [set(a) for a in story["attempts"]] == [ATTEMPT_KEYS] * 2
    first, second = story["attempts"]
    assert (first["outcome"], first["failed_step"], first["error_class"], first["wait_seconds"]) == (
        "failed", "extract", "transient", 2.0,
    )
    assert first["exception_message"] == "api.example.com timed out [after 30s]\nsecond line"
    assert (second["number"], second["error_class"], second["load_ids"]) == (2, "terminal", [])
    assert [set(t) for t in story["traces"]] == [TRACE_KEYS]
    trace = story["traces"][0]
    assert trace["attempt"] == 2 and trace["shipped_at"] is None
    assert trace["ship_error"] == "destination refused the trace\ndetails"


def test_show_json_payload_only_on_request(journal_url, runs):
    story = cli_json("show", runs["done"], "--payload", url=journal_url)
    assert story["traces"][0]["payload"] == {"pipeline_name": "orders", "steps": 3}
    assert story["traces"][0]["shipped_at"].endswith("Z")
    assert story["attempts"][0]["load_ids"] == ["1714570000.1"]
    text = cli("show", runs["done"], "--payload", url=journal_url)
    assert '"steps": 3' in text.stdout


def test_unknown_id_is_a_usage_error(journal_url, runs):
    result = cli("show", "ffffffff", url=journal_url)
    assert result.returncode == 2
    assert "no run with id 'ffffffff'" in result.stderr
    assert result.stdout == ""
    assert_no_traceback(result)


def test_ambiguous_prefix_is_a_usage_error(journal_url, runs):
    common = next(i for i, (a, b) in enumerate(zip(runs["failed"], runs["done"])) if a != b)
    result = cli("show", runs["failed"][:common], url=journal_url)
    assert result.returncode == 2
    assert "ambiguous" in result.stderr
    assert_no_traceback(result)


def test_show_in_empty_or_missing_journal(journal_url, tmp_path):
    missing = cli("show", "abc", url=f"sqlite:///{tmp_path / 'missing.sqlite'}")
    assert missing.returncode == 2 and "no run with id 'abc'" in missing.stderr
    assert not (tmp_path / "missing.sqlite").exists()
    create_empty(journal_url)
    empty = cli("show", "abc", url=journal_url)
    assert empty.returncode == 2 and "no run with id 'abc'" in empty.stderr

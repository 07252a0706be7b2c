"""`runjournal runs`: through the real console script, on journals filled through the journal API."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from runjournal.journal import Journal

from ._cli_support import Filler, assert_no_traceback, cli, cli_json, create_empty

RUN_KEYS = {
    "id", "pipeline", "status", "state", "attempts", "host", "pid", "started_at", "finished_at",
    "duration_s", "heartbeat_at", "destination_type", "dataset_name", "error_type", "error_message", "failed_jobs",
    "presumed_crash", "labels",
}


@pytest.fixture
def filled(journal_url):
    """Four runs, an hour apart, oldest first: orders done, orders failed, customers done, customers running."""
    now = time.time()
    filler = Filler(journal_url)
    ids = {
        "orders_done": filler.succeeded("orders", at=now - 4 * 3600),
        "orders_failed": filler.failed("orders", at=now - 3 * 3600),
        "customers_done": filler.succeeded("customers", at=now - 2 * 3600, seconds=184),
        "customers_running": filler.running("customers", at=now - 60),
    }
    filler.close()
    return ids


def test_empty_journal(journal_url):
    create_empty(journal_url)
    result = cli("runs", url=journal_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "no runs in journal" in result.stderr
    assert cli_json("runs", url=journal_url) == {"runs": []}


def test_missing_journal_reads_as_empty_and_is_not_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'nowhere' / 'journal.sqlite'}"
    result = cli("runs", url=url)
    assert result.returncode == 0, result.stderr
    assert "does not exist yet" in result.stderr
    assert cli_json("runs", url=url) == {"runs": []}
    assert not (tmp_path / "nowhere").exists()


def test_table_lists_newest_first_with_short_ids_and_local_times(journal_url, filled):
    result = cli("runs", url=journal_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "pipeline", "status", "state", "att", "started", "duration", "error"]
    order = ["customers_running", "customers_done", "orders_failed", "orders_done"]
    assert [line.split()[0] for line in lines[1:]] == [filled[name][:12] for name in order]
    failed = lines[3]
    with Journal.open(journal_url) as journal:
        run = journal.get_run(filled["orders_failed"])
    assert datetime.fromtimestamp(run.started_at).strftime("%Y-%m-%d %H:%M") in failed
    assert failed.split()[1:5] == ["orders", "failed", "failed", "2"]
    assert "PipelineStepFailed: Pipeline execution failed at stage extract" in failed
    assert "more detail" not in result.stdout  # only the error's first line
    assert "3m04s" in lines[2]  # the 184 s customers run
    assert all(line == line.rstrip() for line in lines)


def test_filters(journal_url, filled):
    def ids(*args):
        return [run["id"] for run in cli_json("runs", *args, url=journal_url)["runs"]]

    assert ids("--pipeline", "orders") == [filled["orders_failed"], filled["orders_done"]]
    assert ids("--status", "failed", "--status", "running") == [filled["customers_running"], filled["orders_failed"]]
    assert ids("-s", "failed,running", "-s", "done", "-p", "customers") == [
        filled["customers_running"], filled["customers_done"],
    ]
    assert ids("--since", "30m") == [filled["customers_running"]]
    assert ids("--since", "150m", "--status", "done") == [filled["customers_done"]]
    since = datetime.fromtimestamp(time.time() - 3.5 * 3600).isoformat(timespec="minutes")
    assert ids("--since", since) == [filled["customers_running"], filled["customers_done"], filled["orders_failed"]]
    assert ids("--since", "2999-01-01") == []
    assert ids("--limit", "2") == [filled["customers_running"], filled["customers_done"]]


def test_limit_says_there_is_more(journal_url, filled):
    result = cli("runs", "-n", "1", url=journal_url)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2
    assert "--limit" in result.stderr
    everything = cli("runs", "-n", "0", url=journal_url)
    assert len(everything.stdout.splitlines()) == 5
    assert "--limit" not in everything.stderr


def test_filtered_to_nothing(journal_url, filled):
    result = cli("runs", "--pipeline", "nope", url=journal_url)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no runs matching these filters" in result.stderr


def test_json_shape(journal_url, filled):
    runs = cli_json("runs", url=journal_url)["runs"]
    assert [set(run) for run in runs] == [RUN_KEYS] * 4
    failed = next(run for run in runs if run["id"] == filled["orders_failed"])
    assert failed["pipeline"] == "orders"
    assert (failed["status"], failed["state"], failed["attempts"]) == ("failed", "failed", 2)
    assert (failed["host"], failed["pid"]) == ("worker-1", 4242)
    assert (failed["destination_type"], failed["dataset_name"]) == ("duckdb", "orders_data")
    assert failed["error_type"] == "PipelineStepFailed"
    assert failed["error_message"].endswith("\nmore detail")  # JSON keeps the whole message
    assert failed["duration_s"] == pytest.approx(2.25, abs=0.002)
    with Journal.open(journal_url) as journal:
        run = journal.get_run(filled["orders_failed"])
    for key, ts in (("started_at", run.started_at), ("finished_at", run.finished_at), ("heartbeat_at", run.heartbeat_at)):
        assert failed[key].endswith("Z")
        assert datetime.fromisoformat(failed[key].replace("Z", "+00:00")).timestamp() == pytest.approx(ts, abs=0.001)
    running = runs[0]
    assert running["status"] == "running" and running["finished_at"] is None and running["error_type"] is None


@pytest.mark.parametrize("value", ["yesterday", "-2h", "2024-13-01"])
def test_bad_since_is_a_usage_error(journal_url, value):
    create_empty(journal_url)
    result = cli("runs", "--since", value, url=journal_url)
    assert result.returncode == 2
    assert "--since" in result.stderr
    assert "30m" in result.stderr and "7d" in result.stderr and "ISO" in result.stderr
    assert_no_traceback(result)


def test_bad_status_is_a_usage_error(journal_url):
    create_empty(journal_url)
    result = cli("runs", "--status", "exploded", url=journal_url)
    assert result.returncode == 2
    assert "--status" in result.stderr and "crashed" in result.stderr


def test_journal_option_beats_the_environment(tmp_path, journal_url, filled):
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    create_empty(other)
    assert cli_json("runs", url=journal_url)["runs"]
    result = cli("--journal", other, "runs", "--json", url=journal_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().replace(" ", "").replace("\n", "") == '{"runs":[]}'
    assert Path(tmp_path / "other.sqlite").exists()

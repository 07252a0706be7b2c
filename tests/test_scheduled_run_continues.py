"""run_scheduled, what every scheduler integration is built on, without a scheduler: a task's retry (same launch
labels) continues the run its earlier try left; another launch starts its own run, which finalizes what was
left first; an interruption stays an interruption; nothing pending is dropped and no row loads twice.
"""

from __future__ import annotations

import dlt
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException

from runjournal import runner
from runjournal._scheduled import ScheduledRunFailed, run_scheduled
from runjournal.journal import Journal

LAUNCH = {"test.task_run": "t-1"}


class Sink:
    """A destination that fails its first ``failures`` loads (transiently, or terminally), then keeps the rows."""

    def __init__(self, failures: int, terminal: bool = False):
        self.failures, self.calls, self.rows = failures, 0, []

        @dlt.destination(batch_size=1000, name="scheduled_sink")
        def sink(items, table):
            self.calls += 1
            if self.calls <= self.failures:
                raise (DestinationTerminalException if terminal else ConnectionError)(f"load {self.calls} failed")
            self.rows.extend(row["id"] for row in items)

        self.destination = sink


@pytest.fixture(autouse=True)
def job_failures_surface(monkeypatch):
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")


def make_runner(tmp_path, journal_url, sink: Sink):
    pipeline = dlt.pipeline(pipeline_name="scheduled", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=sink.destination, dataset_name="data")
    return runner(pipeline, journal=journal_url)


def rows(start: int, stop: int):
    return [{"id": i} for i in range(start, stop)]


def test_retry_of_the_same_launch_continues_the_run_and_loads_its_package_once(tmp_path, journal_url):
    sink = Sink(failures=1)
    with pytest.raises(ScheduledRunFailed) as failed:
        run_scheduled(make_runner(tmp_path, journal_url, sink), rows(0, 10), launch=LAUNCH, by="test retry",
                      table_name="items")
    assert not failed.value.terminal
    run_id = failed.value.outcome.run_id
    assert f"runjournal run {run_id} of pipeline scheduled ended failed after 1 attempt(s): " in str(failed.value)

    outcome = run_scheduled(make_runner(tmp_path, journal_url, sink), rows(0, 10), launch=LAUNCH, by="test retry",
                            table_name="items")
    assert (outcome.run_id, outcome.status, outcome.attempts, outcome.continued) == (run_id, "recovered", 2, True)
    assert outcome.row_counts == {"items": 10}
    assert sorted(sink.rows) == list(range(10))  # the first try's package, loaded once; not extracted again
    with Journal.open(journal_url) as jnl:
        assert [run.id for run in jnl.list_runs()] == [run_id]
        assert jnl.get_run(run_id).labels == LAUNCH


def test_another_launch_starts_its_own_run_which_finalizes_first(tmp_path, journal_url):
    sink = Sink(failures=1)
    with pytest.raises(ScheduledRunFailed) as failed:
        run_scheduled(make_runner(tmp_path, journal_url, sink), rows(0, 10), launch=LAUNCH, by="t", table_name="items")
    outcome = run_scheduled(make_runner(tmp_path, journal_url, sink), rows(10, 20), launch={"test.task_run": "t-2"},
                            by="t", table_name="items")
    assert outcome.run_id != failed.value.outcome.run_id and not outcome.continued
    assert (outcome.status, outcome.row_counts) == ("done", {"items": 20})
    assert sorted(sink.rows) == list(range(20))
    with Journal.open(journal_url) as jnl:
        assert [a.phase for a in jnl.get_story(outcome.run_id).attempts] == ["finalize", "run"]


def test_terminal_failure_says_so(tmp_path, journal_url):
    with pytest.raises(ScheduledRunFailed) as failed:
        run_scheduled(make_runner(tmp_path, journal_url, Sink(failures=1, terminal=True)), rows(0, 3), launch=LAUNCH,
                      by="t", table_name="items")
    assert failed.value.terminal and failed.value.outcome.error_class == "terminal"


def test_an_interruption_passes_through_and_the_retry_continues_the_run(tmp_path, journal_url):
    @dlt.resource(name="items", table_name="items")
    def stopped():
        yield rows(0, 5)
        raise KeyboardInterrupt("the scheduler stops the task")

    sink = Sink(failures=0)
    with pytest.raises(BaseException) as stopped_by:
        run_scheduled(make_runner(tmp_path, journal_url, sink), stopped(), launch=LAUNCH, by="t")
    assert not isinstance(stopped_by.value, ScheduledRunFailed)
    with Journal.open(journal_url) as jnl:
        (interrupted,) = jnl.list_runs()
    assert interrupted.status == "interrupted"

    outcome = run_scheduled(make_runner(tmp_path, journal_url, sink), rows(0, 5), launch=LAUNCH, by="t",
                            table_name="items")
    assert (outcome.run_id, outcome.continued, outcome.status) == (interrupted.id, True, "done")
    assert sorted(sink.rows) == list(range(5))  # the interrupted extract never made a package: extracted again

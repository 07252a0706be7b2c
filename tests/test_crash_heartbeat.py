"""The heartbeat is how a dead run is told from a live one that is just busy (another host cannot see
its pid): while a state works for a long time without any transition, heartbeat_at must keep
moving, and it must stop moving once the run is over.

The run goes on in a thread; this test reads the journal through its own connection meanwhile.
"""

from __future__ import annotations

import threading
import time

import dlt

from runjournal import runner
from runjournal.journal import Journal

INTERVAL = 0.2
WORK_SECONDS = 1.5


def test_heartbeat_advances_while_no_transition_happens(tmp_path, journal_url, monkeypatch):
    monkeypatch.setenv("RUNJOURNAL_HEARTBEAT_SECONDS", str(INTERVAL))
    working = threading.Event()

    @dlt.resource(name="items", table_name="items")
    def slow_rows():
        working.set()
        time.sleep(WORK_SECONDS)
        yield [{"id": i} for i in range(3)]

    pipeline = dlt.pipeline(
        pipeline_name="heartbeat",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(credentials=str(tmp_path / "heartbeat.duckdb")),
        dataset_name="data",
    )
    the_runner = runner(pipeline, journal=journal_url)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            the_runner.run(slow_rows())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, name="heartbeat-test-run")
    thread.start()
    try:
        assert working.wait(20), "the resource never started"
        samples = []
        with Journal.open(journal_url) as jnl:
            (run_id,) = [r.id for r in jnl.list_runs(limit=None)]
            deadline = time.monotonic() + WORK_SECONDS - 0.3
            while time.monotonic() < deadline:
                story = jnl.get_story(run_id)
                samples.append((story.run.state, len(story.transitions), story.run.heartbeat_at,
                                story.transitions[-1].at))
                time.sleep(INTERVAL / 2)
    finally:
        thread.join(30)
    assert not thread.is_alive()
    assert errors == []

    # no transition happened while sampling: the run sat in extract all along
    assert {(s[0], s[1]) for s in samples} == {("extract", samples[0][1])}
    beats = [s[2] for s in samples]
    assert beats == sorted(beats), "heartbeat_at went backwards"
    distinct = sorted(set(beats))
    # ~1.2 s at 0.2 s intervals is ~6 beats; at least 3 even on a loaded machine
    assert len(distinct) >= 3, beats
    assert distinct[-1] > samples[0][3], "the heartbeat never passed the last transition"
    assert max(b - a for a, b in zip(distinct, distinct[1:])) < 1.0, distinct

    # once the run is over, its heartbeat stops: its thread is gone and heartbeat_at stands still
    assert not [t for t in threading.enumerate() if t.name == f"runjournal-heartbeat-{run_id}"]
    with Journal.open(journal_url) as jnl:
        done = jnl.get_run(run_id)
        time.sleep(3 * INTERVAL)
        later = jnl.get_run(run_id)
    assert done.status == "done"
    assert later.heartbeat_at == done.heartbeat_at

"""Each journal call is one transaction, on SQLite (the stdlib sqlite3 module) as on PostgreSQL
(SQLAlchemy): a write the database refuses leaves nothing behind and the journal usable, and the
threads of one process (a run and its heartbeat) share an open journal safely."""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest

from runjournal.journal import AttemptStart, Journal, JournalError, JournalUnavailable, NewRun, RunChange, Transition


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, journal_url) -> str:
    if request.param == "sqlite":
        return journal_url
    return request.getfixturevalue("pg_journal_url")


def new_run(prefix: str) -> NewRun:
    return NewRun(pipeline_name=f"{prefix}_{uuid.uuid4().hex[:8]}", host="h", pid=1, config={"k": [1, 2]})


def test_a_refused_write_leaves_nothing_and_the_journal_usable(url):
    at = float(3_000_000_000 + random.randrange(10**6) * 1000)
    with Journal.open(url) as jnl:
        run_id = jnl.start_run(new_run("refused"), at=at)
        jnl.record_transition(run_id, Transition(1, 1, "created", "extract", "start", at + 1),
                              attempt_start=AttemptStart(1, "run", at + 1))

        # attempt 1 again: its primary key refuses it, after the call's transition row was written
        with pytest.raises(JournalError, match="refused the write") as raised:
            jnl.record_transition(run_id, Transition(2, 1, "extract", "normalize", "advance", at + 2),
                                  attempt_start=AttemptStart(1, "run", at + 2), change=RunChange(status="failed"))
        assert not isinstance(raised.value, JournalUnavailable)

        story = jnl.get_story(run_id)
        assert [(t.seq, t.dest) for t in story.transitions] == [(1, "extract")]
        assert [a.number for a in story.attempts] == [1]
        assert (story.run.status, story.run.state, story.run.config) == ("running", "extract", {"k": [1, 2]})
        jnl.record_transition(run_id, Transition(2, 1, "extract", "done", "finish", at + 3),
                              change=RunChange(status="done", finished=True))
        assert jnl.get_run(run_id).status == "done"


def test_threads_of_one_process_share_an_open_journal(journal_url):
    """The engine's heartbeat thread beats while the run's thread commits transitions and others read."""
    count = 100
    errors: list[BaseException] = []
    with Journal.open(journal_url) as jnl:
        run_id = jnl.start_run(new_run("threads"))

        def transitions():
            for seq in range(1, count + 1):
                jnl.record_transition(run_id, Transition(seq, 1, f"s{seq - 1}", f"s{seq}", "advance", time.time()))

        def beats():
            for _ in range(count):
                jnl.beat(run_id)

        def reads():
            for _ in range(count):
                jnl.get_story(run_id)
                jnl.list_runs(status="running")

        def guarded(work):
            def run():
                try:
                    work()
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    errors.append(exc)
            return threading.Thread(target=run)

        threads = [guarded(work) for work in (transitions, beats, reads, reads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        story = jnl.get_story(run_id)
        assert [t.seq for t in story.transitions] == list(range(1, count + 1))
        assert story.run.state == f"s{count}"
